"""The Jinja2 environments of the report templates (`reports/templates/`, found through
`resources.templates_dir()`): StrictUndefined everywhere, so a key missing from the model
is an error rather than an empty cell. HTML is autoescaped (and cleaned of control
characters, which HTML does not allow). Markdown and the terminal text are not HTML, so
instead every `{{ … }}` passes through a `finalize` that makes data harmless there:
Markdown escapes what could break a table row or inject markup (`|`, newlines, `<`,
backticks…); the text strips control characters (no terminal escape sequences) and keeps
each value on its line."""
from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nocctl import resources

if TYPE_CHECKING:
    import jinja2


class Block(str):
    """Text a template helper built itself (a tabulate table): printed as it is."""


def clean(text: str) -> str:
    """Control, format and line/paragraph separator characters become spaces: one value
    stays on one line, and no escape sequence reaches the terminal."""
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text)


_MARKDOWN = str.maketrans({"\\": "\\\\", "|": "\\|", "`": "\\`", "*": "\\*", "[": "\\[", "]": "\\]",
                           "&": "&amp;", "<": "&lt;", ">": "&gt;"})


def markdown_escape(value: Any) -> Any:
    """A value safe inside Markdown text and a GitHub table cell."""
    if isinstance(value, str) and not isinstance(value, Block):
        return clean(value).translate(_MARKDOWN)
    return value


def text_clean(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Block):
        return clean(value)
    return value


def html_clean(value: Any) -> Any:
    """Data cleaned before autoescaping; markup the template built itself (a macro's output)
    is left alone."""
    return value if hasattr(value, "__html__") else text_clean(value)


def grid(table: dict) -> Block:
    """A model table as a terminal table (tabulate), or its `empty` sentence."""
    from tabulate import tabulate

    if not table["rows"]:
        return Block(clean(table["empty"]))
    columns = table["columns"]
    return Block(tabulate([[clean(str(cell)) for cell in row] for row in table["rows"]],
                          headers=[clean(c["name"]) for c in columns], tablefmt="simple", disable_numparse=True,
                          colalign=[c["align"] for c in columns]))


def wrap(text: str, width: int = 92) -> Block:
    """Prose (a definition) cleaned and wrapped for the terminal."""
    import textwrap

    return Block(textwrap.fill(clean(text), width=width, break_on_hyphens=False))


@functools.cache
def environment(fmt: str) -> jinja2.Environment:
    """The environment of one output format: `html`, `markdown` or `table`."""
    import jinja2

    def made(autoescape: bool, finalize: Callable[[Any], Any]) -> jinja2.Environment:
        return jinja2.Environment(loader=jinja2.FileSystemLoader(str(resources.templates_dir())),
                                  undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                                  keep_trailing_newline=True, autoescape=autoescape, finalize=finalize)

    if fmt == "html":
        return made(True, html_clean)
    if fmt == "markdown":
        return made(False, markdown_escape)
    if fmt == "table":
        env = made(False, text_clean)
        env.globals.update(grid=grid, wrap=wrap)
        return env
    raise ValueError(f"no template environment for {fmt!r}")


def render_template(fmt: str, name: str, model: dict) -> str:
    return environment(fmt).get_template(name).render(model)
