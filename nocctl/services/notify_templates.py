"""The bodies of notifications (DESIGN §3, Notifications): what a channel sends, shaped by
its `template` key — a built-in (`json`, `slack`, `teams`, `text`) or a Jinja2 file.

Templates render in a `jinja2.sandbox.SandboxedEnvironment` (no attribute access to Python
internals, no autoescape). A template is in one of two formats:

- **json** (`slack`, `teams`, and a file named `*.json.j2` / `*.json.jinja` / `*.json`, or
  any file with `template_format = "json"`): every `{{ … }}` is written JSON-string-escaped
  (quotes, backslashes, newlines and other control characters, and `<`, `>`, `&` as
  `\\u003c`…), so it belongs *inside* double quotes — `"text": "{{ alert.message }}"` — and
  alert text can never break out of its string. `{{ value | json }}` writes a whole JSON
  value instead (a number, `null`, an object: `"alert": {{ alert | json }}`). The output is
  parsed (`json.loads`) before it is sent: a body that is not valid JSON is a failed attempt.
- **text** (`text`, and every other file): values are written as they are, `None` as nothing;
  a webhook sends it as `text/plain; charset=utf-8`, a command gets it on stdin, a mail has it
  as its body.

`json` (the default) is not a template: the payload exactly as queued, `json.dumps`'d (an
smtp channel without another template mails the payload's `text`, else the payload as JSON,
as it always did). The subject of a mail is the payload's `subject` whatever the template.

Every template sees the payload's top-level keys as variables, plus `payload` (the whole
object), `notification_id` (the outbox id; `test-…` for `notify test`) and `channel` (the
channel's name). A missing key renders as nothing (`alert.site` of a client-level alert), so
one template serves every kind of message. Filters besides Jinja's: `json` (also `tojson`;
`json(indent=2)` pretty-prints) and `slack` (Slack's escaping of `&`, `<`, `>`, so that alert
text cannot ping `<!channel>` or forge a link).

The payload of an escalation (`services/escalation.py`) — the fields a template can use:

| field | type | meaning |
|---|---|---|
| `kind` | string | `escalation` (`test` for `nocctl notify test`) |
| `test` | bool | true only in the message of `nocctl notify test` |
| `tenant` | string | the tenant's slug |
| `subject` | string | one line: `[CRITICAL] DEVICE_OFFLINE at ACME-BLR-WF: escalated to level 1` |
| `text` | string | the plain-text message (what an smtp channel mails without a template) |
| `at` | string | when the escalation happened (ISO 8601, UTC) |
| `level` | int | the escalation level reached |
| `target` | string | the level's target: `oncall`, `site_in_charge`, `client_owner`, `user:NAME` |
| `resolved_via` | string or null | the target that answered after fall-through |
| `recipient` | object or null | `username`, `name`, `email`, `phone` of the person escalated to |
| `alert.id` | int | the alert (`nocctl alert show ID`); null in a test message |
| `alert.type` | string | `DEVICE_OFFLINE`… (`NOCCTL_TEST` in a test message) |
| `alert.severity` | string | CRITICAL, HIGH, MEDIUM, LOW, INFO |
| `alert.message` | string | the alert's message, as ingested (any characters) |
| `alert.client`, `alert.site` | string, string or null | client and site codes |
| `alert.dedup_key` | string | the alert's de-duplication key |
| `alert.first_seen_at` | string | ISO 8601, UTC |
| `sent_by` | object | `login`, `host` that ran `nocctl notify test` (test messages only) |
| `payload` | object | all of the above as one object |
| `notification_id` | int or string | the outbox id (also `X-Noc-Notification-Id`) |
| `channel` | string | the channel's name |
"""
from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import jinja2
from jinja2.sandbox import SandboxedEnvironment

if TYPE_CHECKING:
    from nocctl.services.config_checks import ConfigReader

JSON: Final = "json"
TEXT: Final = "text"
FORMATS: Final = (JSON, TEXT)
MEDIA_TYPES: Final = {JSON: "application/json", TEXT: "text/plain; charset=utf-8"}
JSON_SUFFIXES: Final = (".json.j2", ".json.jinja", ".json.jinja2", ".json")
MAX_TEMPLATE_BYTES: Final = 1024 * 1024

DEFAULT: Final = "json"  # the payload as queued, not a template


class RenderError(Exception):
    """A template that did not render, or rendered a body that is not valid JSON. The text
    names the channel and the template, never the channel's address."""


class RawJson(str):
    """A JSON value a filter (`json`) made: written as it is, not escaped again."""

    __slots__ = ()


def _to_json(value: Any, indent: int | None = None) -> RawJson:
    if isinstance(value, jinja2.Undefined):
        value = None
    return RawJson(json.dumps(value, ensure_ascii=False, default=str, indent=indent, sort_keys=indent is not None))


def _escape_json_string(text: str) -> str:
    """`text` as the inside of a JSON string literal (no quotes)."""
    return (json.dumps(text, ensure_ascii=False)[1:-1]
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _plain(value: Any) -> str:
    if value is None or isinstance(value, jinja2.Undefined):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _finalize_json(value: Any) -> str:
    if type(value) is RawJson:
        return value
    return _escape_json_string(_plain(value))


def _finalize_text(value: Any) -> Any:
    if type(value) is RawJson:
        return value
    return "" if value is None or isinstance(value, jinja2.Undefined) else value


def slack_escape(value: Any) -> str:
    """Slack's control characters as entities (its "Escaping text"), so alert text shows as
    written instead of pinging `<!channel>` or forging `<http://…|links>`."""
    return _plain(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@cache
def environment(kind: str) -> SandboxedEnvironment:
    """The sandbox of a format, shared (rendering is thread-safe)."""
    env = SandboxedEnvironment(autoescape=False, undefined=jinja2.ChainableUndefined, keep_trailing_newline=True,
                               finalize=_finalize_json if kind == JSON else _finalize_text)
    env.filters["json"] = env.filters["tojson"] = _to_json
    env.filters["slack"] = slack_escape
    return env


@dataclass(frozen=True)
class Template:
    """A channel's compiled template: its label (the built-in name or the path as written in
    the config) and format."""

    label: str
    format: str
    compiled: jinja2.Template = field(repr=False, compare=False)

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    def render(self, payload: object, notification_id: int | str, channel: str) -> str:
        """The body. RenderError when the template fails or a JSON body does not parse."""
        context: dict[str, Any] = {}
        if isinstance(payload, dict):
            context.update((k, v) for k, v in payload.items() if isinstance(k, str) and k.isidentifier())
        context.update(payload=payload, notification_id=notification_id, channel=channel)
        try:
            body = self.compiled.render(context)
        except Exception as exc:  # noqa: BLE001 - any failure of a template is a failed attempt
            line = _template_line(exc, self.label)
            said = str(exc).splitlines()[0] if str(exc) else ""
            raise RenderError(f"channel {channel}: template {self.label} failed to render"
                              f"{f' at line {line}' if line else ''} ({type(exc).__name__}"
                              f"{': ' + said if said else ''})") from None
        if self.format == JSON:
            try:
                json.loads(body)
            except json.JSONDecodeError as exc:
                raise RenderError(f"channel {channel}: template {self.label} did not render valid JSON"
                                  f" ({exc.msg} at line {exc.lineno} column {exc.colno} of the output)") from None
        return body


def _template_line(exc: BaseException, label: str) -> int | None:
    """The template line a render error happened on (Jinja rewrites the traceback so that
    its frames point at the template's source)."""
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == label]
    return lines[-1] if lines else None


def compile_template(source: str, label: str, kind: str) -> Template:
    """Compile `source`; jinja2.TemplateSyntaxError (and TemplateAssertionError) when it
    cannot."""
    env = environment(kind)
    code = env.compile(source, name=label, filename=label)
    return Template(label, kind, env.template_class.from_code(env, code, env.make_globals(None)))


# ---------------------------------------------------------------- the built-ins

# Shared by the built-ins: a title, the body text and a line of details, for any payload
# (an escalation, a test message, a message of another kind with only subject/text).
_PRELUDE = r"""{%- set title = subject or ("nocctl " ~ kind if kind else "nocctl notification") -%}
{%- set body = alert.message if alert.message else (text if text and text != title else "") -%}
{%- set who = recipient.username if recipient.username else ("nobody" if kind == "escalation" else "") -%}
{%- set via = resolved_via or target -%}
{%- set details = [
      ("alert " ~ alert.id) if alert.id else "",
      (alert.severity ~ " " ~ alert.type) if alert.severity else "",
      ("client " ~ alert.client) if alert.client else "",
      ("site " ~ alert.site) if alert.site else "",
      ("level " ~ level) if level else "",
      ("to " ~ who ~ ((" (" ~ via ~ ")") if via else "")) if who else "",
      ("first seen " ~ alert.first_seen_at) if alert.first_seen_at else "",
    ] | select | join(" · ") -%}
{%- set action = ("acknowledge: nocctl alert ack " ~ alert.id) if alert.id else "" -%}
"""

# Slack limits a section's text to 3,000 characters: truncated after escaping (an entity
# cut in two at the very end is harmless; a body of `&` escaped after truncation is not).
_SLACK = _PRELUDE + r"""{%- set mark = ":rotating_light: " if alert.severity in ("CRITICAL", "HIGH") else "" -%}
{
  "text": "{{ mark }}{{ title | slack }}
    {%- if body %}\n{{ body | slack | truncate(3000, true) }}{% endif %}
    {%- if details %}\n{{ details | slack }}{% endif %}",
  "blocks": [
    {"type": "section", "text": {"type": "mrkdwn", "text": "{{ mark }}*{{ title | slack | truncate(250, true) }}*
      {%- if body %}\n{{ body | slack | truncate(2700, true) }}{% endif %}"}}
    {%- if details or action %},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "{{ details | slack }}
      {%- if action %}{% if details %}\n{% endif %}`{{ action | slack }}`{% endif %}"}]}
    {%- endif %}
  ]
}
"""

_TEAMS = _PRELUDE + r"""{%- set color = "Attention" if alert.severity in ("CRITICAL", "HIGH")
                     else ("Warning" if alert.severity == "MEDIUM" else "Default") -%}
{
  "type": "message",
  "attachments": [
    {
      "contentType": "application/vnd.microsoft.card.adaptive",
      "contentUrl": null,
      "content": {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": [
          {"type": "TextBlock", "text": "{{ title }}", "weight": "Bolder", "size": "Medium",
           "color": "{{ color }}", "wrap": true}
          {%- if body %},
          {"type": "TextBlock", "text": "{{ body | truncate(5000, true) }}", "wrap": true}
          {%- endif %}
          {%- if details %},
          {"type": "TextBlock", "text": "{{ details }}", "isSubtle": true, "size": "Small", "wrap": true}
          {%- endif %}
          {%- if action %},
          {"type": "TextBlock", "text": "{{ action }}", "fontType": "Monospace", "size": "Small", "wrap": true}
          {%- endif %}
        ]
      }
    }
  ]
}
"""

_TEXT = _PRELUDE + r"""{% if text %}{{ text }}{% else %}{{ title }}
{% if body %}
{{ body }}
{% endif %}{% if details %}
{{ details }}
{% endif %}
{{ payload | json(indent=2) }}
{% endif %}"""

BUILT_INS: Final = {"slack": (_SLACK, JSON), "teams": (_TEAMS, JSON), "text": (_TEXT, TEXT)}
NAMES: Final = (DEFAULT, *BUILT_INS)


@cache
def built_in(name: str) -> Template:
    source, kind = BUILT_INS[name]
    return compile_template(source, name, kind)


# ---------------------------------------------------------------- the config keys

def from_config(reader: ConfigReader, where: str, table: dict[str, object]) -> Template | None:
    """The channel's `template` (None: the default JSON body) and `template_format` keys,
    checked and compiled now, so a missing file or a template that does not compile is a
    config error (exit 65) naming `notify.channels.NAME.template`."""
    name = table.get("template", DEFAULT)
    kind = table.get("template_format")
    if not isinstance(name, str) or not name.strip():
        raise reader.error(f"{where}.template",
                           "must be " + ", ".join(NAMES) + " or the path of a Jinja2 template file")
    if kind is not None and kind not in FORMATS:
        raise reader.error(f"{where}.template_format", "must be \"json\" or \"text\"")
    name = name.strip()
    if name in NAMES:
        if kind is not None:
            raise reader.error(f"{where}.template_format", f"applies to a template file, not the built-in {name!r}")
        return None if name == DEFAULT else built_in(name)
    path = Path(name).expanduser()
    if not path.is_absolute() and reader.config_path is not None:
        path = reader.config_path.parent / path
    if kind is None:
        kind = JSON if path.name.lower().endswith(JSON_SUFFIXES) else TEXT
    try:
        if path.stat().st_size > MAX_TEMPLATE_BYTES:
            raise reader.error(f"{where}.template", f"{path} is larger than 1 MiB")
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise reader.error(f"{where}.template", f"cannot read {path} ({exc.strerror or type(exc).__name__}); "
                           "a relative path is taken from the config file's directory; built-ins: "
                           + ", ".join(NAMES)) from None
    except UnicodeDecodeError:
        raise reader.error(f"{where}.template", f"{path} is not UTF-8 text") from None
    try:
        return compile_template(source, str(path), kind)
    except jinja2.TemplateSyntaxError as exc:
        raise reader.error(f"{where}.template", f"{path} does not compile: {exc.message} (line {exc.lineno})") from None
