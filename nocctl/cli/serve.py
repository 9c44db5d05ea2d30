"""`nocctl serve`: receive alerts over HTTP (DESIGN §4a). The server lives in
`nocctl.server`; waitress, prometheus_client and the database layer are imported only when
the command runs."""
from __future__ import annotations

import click

from nocctl.cli.common import App, pass_app

DEFAULT_LISTEN = "127.0.0.1:9095"


def parse_listen(_ctx: click.Context | None, _param: click.Parameter | None, text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT`, or `:PORT` (every IPv4 address) -> (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise click.BadParameter(f"{text!r} is not HOST:PORT (e.g. {DEFAULT_LISTEN}, [::1]:9095, :9095)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port)


def _size(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    from nocctl.errors import BadInput
    from nocctl.tunables import parse_size

    try:
        return parse_size(value, "--max-body")
    except BadInput as exc:
        raise click.BadParameter(str(exc)) from None


def _seconds(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    from nocctl import clock
    from nocctl.errors import BadInput

    try:
        return clock.parse_duration(value, "--request-timeout")
    except BadInput as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, metavar="HOST:PORT", callback=parse_listen,
              help="Address to listen on ([::1]:PORT for IPv6; port 0 picks a free one).")
@click.option("--threads", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="Request threads: how many requests are handled at once (they share the writer's transactions).")
@click.option("--max-body", default="1MiB", show_default=True, callback=_size, metavar="SIZE",
              help="Largest request body (413 beyond).")
@click.option("--request-timeout", default="10s", show_default=True, callback=_seconds, metavar="DURATION",
              help="How long a client may stay silent mid-request, and a request may wait for the database (503).")
@pass_app
def serve(app: App, listen: tuple[str, int], threads: int, max_body: int, request_timeout: int):
    """Receive alerts over HTTP until SIGTERM (then finish what was received, exit 0).

    \b
    POST /v2/enqueue           PagerDuty Events v2 (the key is the routing_key)
    POST /api/v1/alertmanager  Alertmanager / Grafana webhook (Bearer key or basic-auth password)
    POST /api/v1/alerts        native records: NDJSON, array or one document (Bearer key)
    GET  /-/healthy  /-/ready  /metrics

    Keys come from `nocctl integration add`; each acts as its integration, with noc:ingest
    over its scope only (keys name their tenant: --tenant does not apply). A 2xx is sent
    only once the records are committed; 503 + Retry-After when the database is
    unavailable or locked; 400 for bad input (kept as dead letters); 401 for a wrong or
    revoked key; 413 over --max-body.
    """
    from nocctl.server.server import ServeOptions
    from nocctl.server.server import serve as run

    host, port = listen
    run(app.settings, ServeOptions(host, port, threads, max_body, request_timeout))


COMMANDS = (serve,)
