"""`nocctl serve` (DESIGN §4a): alerts received over HTTP — PagerDuty Events v2,
Alertmanager and Grafana webhooks, native records — written by one writer thread in shared
transactions (group commit) and answered only once committed. No Click here: the command
is `nocctl.cli.serve`.

`app` (the WSGI routes), `keys` (the request threads' key cache), `writer` (group commit),
`metrics` (/metrics), `server` (waitress, signals, shutdown)."""
