"""`nocctl man`: manual pages in man(7) format, generated from the Click command tree at run
time, so they always say what this nocctl does (the same text as `--help`).

One page per command: nocctl(1) for the root, nocctl-alert(1) for a group, nocctl-alert-list(1)
for a command, each with NAME, SYNOPSIS, DESCRIPTION, OPTIONS, COMMANDS (groups) and SEE ALSO;
the root page adds EXIT STATUS and ENVIRONMENT. Help text is escaped for troff: backslashes,
a leading `.` or `'` (which would start a request), hyphen-minus as `\\-` (so an option
pasted from the page is an option), other non-ASCII characters as `\\[uXXXX]`; a Click
`\\b` paragraph is kept as it is written (no fill). The output is plain ASCII.

Written pages are documentation, not data: created with the usual mode (0644 under the
usual umask), not nocctl's private 0600 (`nocctl.private`)."""
from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from pathlib import Path

import click

EXIT_STATUS = (("0", "success"), ("1", "internal error"), ("2", "usage error"), ("3", "not found"),
               ("4", "invalid state transition or conflict"), ("65", "bad input data"),
               ("75", "temporary failure: database unavailable, or another pass holds the lock (retry)"),
               ("77", "permission denied"))
ENVIRONMENT = (("NOC_DATABASE_URL", "database URL (after --db)"), ("NOC_TENANT", "tenant (after --tenant)"),
               ("NOC_ACTOR", "act as this person (needs noc:impersonate)"),
               ("NOC_CONFIG",
                "the configuration file (else ~/.config/nocctl/config.toml, then /etc/nocctl/config.toml)"),
               ("NOC_NOW", "fix the clock of every command (ISO 8601 with an offset)"))


# ---------------------------------------------------------------- troff text

def escape(text: str) -> str:
    """`text` as troff input text (no request): backslash, hyphen-minus and non-ASCII
    escaped; a line made of it must still be guarded with `line` against a leading . or '."""
    out = []
    for ch in text.replace("\\", "\\e"):
        if ch == "-":
            out.append("\\-")
        elif ord(ch) > 126 or (ord(ch) < 32 and ch != "\t"):
            out.append(f"\\[u{ord(ch):04X}]" if ord(ch) > 126 else " ")
        else:
            out.append(ch)
    return "".join(out)


def line(text: str) -> str:
    """One input line of escaped text: `\\&` before a leading control character (. or ')."""
    return "\\&" + text if text.startswith((".", "'")) else text


def _paragraphs(help_text: str) -> Iterator[tuple[bool, list[str]]]:
    """(verbatim, lines) of each paragraph of a Click help text: `\\b` paragraphs verbatim,
    the others to be filled."""
    text = inspect.cleandoc(help_text).partition("\f")[0]
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if lines and lines[0].strip() == "\b":
            yield True, lines[1:]
        elif block.strip():
            yield False, [" ".join(part.strip() for part in lines if part.strip())]


def _body(help_text: str) -> list[str]:
    out: list[str] = []
    for verbatim, lines in _paragraphs(help_text):
        if out:
            out.append(".PP")
        if verbatim:
            out += [".nf", *(line(escape(text.rstrip())) for text in lines), ".fi"]
        else:
            out += [line(escape(text)) for text in lines]
    return out


def _tag(opts: str) -> str:
    """An option's help record name (`-o, --out FILE`, `--format [a|b]`): option names in
    bold, metavars in italics."""
    words = []
    for word in opts.split(" "):
        name, comma = (word[:-1], ",") if word.endswith(",") else (word, "")
        font = "B" if name.startswith("-") else "I"
        # A long choice list ([a|b|…]) may break after each `|` (`\:`: a break point, no hyphen).
        words.append(f"\\f{font}{escape(name).replace('|', '|' + chr(92) + ':')}\\fR{comma}")
    return line(" ".join(words))


def _quoted(text: str) -> str:
    """A macro argument in double quotes."""
    return '"' + escape(text).replace('"', "\\(dq") + '"'


# ---------------------------------------------------------------- the tree

def page_name(path: tuple[str, ...]) -> str:
    return "-".join(("nocctl", *path))


def walk(ctx: click.Context, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Context]]:
    """Every visible command under `ctx`'s (itself first), each with a context for it."""
    yield path, ctx
    command = ctx.command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(click.Context(sub, info_name=name, parent=ctx, **sub.context_settings), path + (name,))


def find(root: click.Context, words: tuple[str, ...]) -> click.Context:
    ctx = root
    for index, word in enumerate(words):
        command = ctx.command
        sub = command.get_command(ctx, word) if isinstance(command, click.Group) else None
        if sub is None or sub.hidden:
            raise click.UsageError(f"no such command: nocctl {' '.join(words[:index + 1])}")
        ctx = click.Context(sub, info_name=word, parent=ctx, **sub.context_settings)
    return ctx


def render(path: tuple[str, ...], ctx: click.Context, version: str, day: str) -> str:
    """The man page of the command at `path`."""
    command = ctx.command
    name = page_name(path)
    summary = command.get_short_help_str(limit=200).rstrip(".").removeprefix(" ".join(("nocctl", *path)) + ": ")
    out = [f'.\\" {name}(1): generated by `nocctl man` from the command tree of nocctl {version}.',
           f".TH {_quoted(name.upper())} 1 {_quoted(day)} {_quoted('nocctl ' + version)} {_quoted('nocctl manual')}",
           ".nh",  # no hyphenation: the words are identifiers and options
           ".SH NAME", line(f"{escape(name)} \\- {escape(summary)}"),
           ".SH SYNOPSIS", ".ad l",
           line(f"\\fB{escape(' '.join(('nocctl', *path)))}\\fR "
                + " ".join(f"\\fI{escape(piece)}\\fR" for piece in command.collect_usage_pieces(ctx))),
           ".ad"]
    if command.help:
        out += [".SH DESCRIPTION", *_body(command.help)]
    records = [record for param in command.get_params(ctx)
               if isinstance(param, click.Option) and (record := param.get_help_record(ctx)) is not None]
    if records:
        out.append(".SH OPTIONS")
        for opts, text in records:
            names, bracket, choices = opts.partition(" [")
            if not bracket or len(opts) <= 50:  # a long list of choices goes below the tag
                names, choices = opts, ""
            out += [".TP", _tag(names), *(_body(text) if text else [])]
            if choices:
                out += [".br", line("One of: " + escape(", ".join(choices.removesuffix("]").split("|"))) + ".")]
    children = []
    if isinstance(command, click.Group):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                children.append((sub_name, sub))
    if children:
        out.append(".SH COMMANDS")
        for sub_name, sub in children:
            out += [".TP", f"\\fB{escape(sub_name)}\\fR",
                    line(escape(sub.get_short_help_str(limit=200))),
                    f"See \\fB{escape(page_name((*path, sub_name)))}\\fR(1)."]
    if not path:
        out.append(".SH EXIT STATUS")
        for code, meaning in EXIT_STATUS:
            out += [".TP", f"\\fB{code}\\fR", line(escape(meaning))]
        out.append(".SH ENVIRONMENT")
        for variable, meaning in ENVIRONMENT:
            out += [".TP", f"\\fB{escape(variable)}\\fR", line(escape(meaning))]
    related = [page_name(path[:i]) for i in range(len(path))] + [page_name((*path, n)) for n, _ in children]
    if related:
        out += [".SH SEE ALSO", ",\n".join(f"\\fB{escape(r)}\\fR(1)" for r in related)]
    return "\n".join(out) + "\n"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nocctl")
    except PackageNotFoundError:
        return "unknown"


def _day() -> str:
    """The page date: SOURCE_DATE_EPOCH (reproducible builds) when set, else the clock's day."""
    from datetime import UTC, datetime

    from nocctl import clock

    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC).date().isoformat()
    return clock.now().date().isoformat()


@click.command("man")
@click.argument("words", nargs=-1, metavar="[COMMAND]...")
@click.option("-o", "--output-dir", "out_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Write one page per command (the COMMAND's and those under it; default all) into DIR, "
                   "named like nocctl-alert-list.1, and print their paths.")
@click.pass_context
def man(ctx: click.Context, words, out_dir):
    """Show the manual page of nocctl or of a COMMAND, generated from this nocctl.

    Prints the page in man(7) format: `nocctl man` is nocctl(1), `nocctl man alert list`
    is nocctl-alert-list(1). With -o DIR it writes the pages instead, one per command.

    \b
    nocctl man | man -l -                       # read nocctl(1) now
    nocctl man alert list | man -l -
    nocctl man -o ~/.local/share/man/man1 && man nocctl-alert-list
    """
    root = ctx.find_root()
    start = find(click.Context(root.command, info_name="nocctl", **root.command.context_settings), tuple(words))
    version, day = _version(), _day()
    path = tuple(words)
    if out_dir is None:
        click.echo(render(path, start, version, day), nl=False)
        return
    try:
        os.makedirs(out_dir, exist_ok=True)  # documentation: the usual modes, not nocctl's private ones
        written = []
        for sub_path, sub_ctx in walk(start, path):
            target = out_dir / f"{page_name(sub_path)}.1"
            target.write_text(render(sub_path, sub_ctx, version, day), encoding="ascii")
            written.append(target)
    except OSError as exc:
        from nocctl import output
        from nocctl.errors import UsageError

        raise UsageError(f"cannot write the man pages into {out_dir}: {output.reason(exc)}",
                         output.path_remedy(exc, str(out_dir))) from None
    for target in written:
        click.echo(str(target))
    from nocctl.cli.common import note

    note(f"nocctl: wrote {len(written)} man page{'s' * (len(written) != 1)} into {out_dir}")


COMMANDS = (man,)
