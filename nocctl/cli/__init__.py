"""The `nocctl` command. Click lives only in this package. Errors are turned into one line
and the documented exit code here, in one place (`main`)."""
from __future__ import annotations

import sys
import traceback

import click

from nocctl.cli.common import App
from nocctl.errors import ExitCode, NocError, from_database_error

GLOBAL_OPTIONS = ("--db", "--tenant", "--as", "--verbose", "--quiet", "--log-format")
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(message: str, code: int, details: list[str] | None = None) -> None:
    """The error line (and its detail lines), each one line with the data in it escaped:
    a message can quote a name, a record or a database error (`output.line`)."""
    from nocctl.output import line as shown

    for line in details or []:
        click.echo(f"nocctl: {shown(line)}", err=True)
    click.echo(f"nocctl: error: {shown(message)}", err=True)
    sys.exit(int(code))


def _wants_traceback(args: list[str]) -> bool:
    return any(a == "--verbose" or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in args)


class NocGroup(click.Group):
    """The root group: every failure becomes one `nocctl: error: …` line and its exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        argv = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(argv, prog_name or "nocctl", complete_var, standalone_mode=False, **extra)
        except NocError as exc:
            if _wants_traceback(argv):
                traceback.print_exc()
            _fail(str(exc), exc.exit_code, exc.details)
        except click.exceptions.Abort:
            _fail("aborted", 130)
        except click.exceptions.NoArgsIsHelpError as exc:
            # A group run without a command: its help on stderr, then the one error line.
            click.echo(exc.format_message() + "\n", err=True)
            _fail("missing command", ExitCode.USAGE)
        except click.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            if isinstance(exc, click.NoSuchOption) and ctx is not None and ctx.parent is not None \
                    and exc.option_name in GLOBAL_OPTIONS:
                name = exc.option_name
                hint = f" ({name} is a global option: it goes before the command, `nocctl {name} … COMMAND`)"
            _fail(exc.format_message() + hint, ExitCode.USAGE if exc.exit_code == 2 else exc.exit_code)
        except BrokenPipeError:
            sys.stderr.close()  # the reader went away (`| head`): not worth a message
            sys.exit(0)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception as exc:  # noqa: BLE001 - the one place that catches everything
            if _wants_traceback(argv):
                traceback.print_exc()
            mapped = from_database_error(exc)
            if mapped is not None:
                _fail(str(mapped), mapped.exit_code)
            _fail(f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)", ExitCode.INTERNAL)
        sys.exit(code if isinstance(code, int) else 0)



@click.group(name="nocctl", cls=NocGroup, context_settings=CONTEXT_SETTINGS)
@click.option("--db", metavar="URL", help="Database URL (env NOC_DATABASE_URL; default: SQLite in the data dir).")
@click.option("--tenant", metavar="SLUG", help="Tenant (env NOC_TENANT; default: default).")
@click.option("--as", "as_user", metavar="USER",
              help="Act as this person (env NOC_ACTOR, config `actor`): needs noc:impersonate (tenant-wide); "
                   "the audit log records you too.")
@click.option("-v", "--verbose", count=True, help="More logging; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.option("--log-format", type=click.Choice(["auto", "json", "console"]), default="auto", show_default=True,
              help="Log lines on stderr: JSON off a terminal, console on one.")
@click.version_option(package_name="nocctl", prog_name="nocctl")
@click.pass_context
def cli(ctx: click.Context, db, tenant, as_user, verbose, quiet, log_format):
    """nocctl: the command-line toolkit of a Network Operations Center.

    Ingest alerts, de-duplicate and correlate them, hold them during maintenance, run
    incidents and escalation from cron, and report MTTR and SLA compliance.
    Start with `nocctl init`.
    """
    from nocctl import config, log

    verbosity = -1 if quiet else verbose
    ctx.meta["verbosity"] = verbosity
    log.configure(log_format, verbosity, command=ctx.invoked_subcommand)
    # doctor reports a broken config as one of its checks and goes on with the others
    app = App(config.resolve(db=db, tenant=tenant, actor=as_user, keep_problem=ctx.invoked_subcommand == "doctor"),
              verbosity)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _register() -> None:
    from nocctl.cli import (
        alert,
        alertmanager,
        audit,
        db_role,
        demo,
        doctor,
        escalation,
        incident,
        ingest,
        integration,
        maintenance,
        man,
        notify,
        oncall,
        org,
        prefs,
        report,
        retention,
        serve,
        setup,
        snapshot,
        status,
        user,
    )

    for module in (setup, org, user, ingest, alert, audit, incident, maintenance, oncall, escalation, notify, prefs,
                   report, snapshot, status, retention, demo, doctor, integration, alertmanager, serve, man):
        for command in module.COMMANDS:
            cli.add_command(command)
    db_role.register(user.user)  # `nocctl user db-role` (PostgreSQL multi-user mode)


_register()


def main() -> None:
    cli.main()
