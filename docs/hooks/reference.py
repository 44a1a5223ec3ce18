"""The reference pages, generated from the code at every ``mkdocs build`` so they cannot drift.

A page asks for a table with a marker line, e.g. ``<!-- reference: settings -->``; this hook
(``mkdocs.yml``: ``hooks:``) puts the table built from the code after the marker, at every
build, and ends it with ``<!-- end reference: settings -->``:

- ``settings``: every field of ``Settings``, with its type, default and environment variable;
- ``cli``: every command of the Typer app, with its help and options;
- ``metrics``: every metric the daemon's ``/metrics`` serves;
- ``exit-codes``: the exit codes of ``sync.cli.output``.

``tests/unit/test_docs_reference.py`` checks that each table covers everything it should.

A page may also keep the table in the repository, between the two markers, so that it reads
the same on GitHub and in the copy installed with the service (the configuration, metrics and
exit codes pages do; the command line's help changes too often). The build replaces the kept
table with a fresh one all the same, and the test fails when the kept one is not current:
``.venv/bin/python docs/hooks/reference.py`` rewrites them.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer.main
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

# A marker line, and the table kept after it up to its end marker, if the page keeps one.
_MARKER = re.compile(
    r"^<!-- reference: ([a-z-]+) -->$(?:.*?^<!-- end reference: \1 -->$)?", re.MULTILINE | re.DOTALL
)
ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "EKINERJA_SYNC_"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if value is None:
        return "(not set)"
    if isinstance(value, BaseModel):
        return ""
    if hasattr(value, "get_secret_value"):
        return "(secret)"
    return f"`{value!r}`" if not isinstance(value, str) else f'`"{value}"`'


def _type(field: FieldInfo) -> str:
    text = str(field.annotation).replace("typing.", "")
    text = re.sub(r"<class '([^']+)'>", r"\1", text)
    text = re.sub(r"\b[a-z_]+\.(?:[a-z_]+\.)*([A-Z]\w*)", r"\1", text)
    return f"`{text}`"


def settings_rows() -> Iterator[tuple[str, FieldInfo]]:
    """(``section.key``, field) for every setting, nested sections walked."""
    from sync.settings import Settings

    def walk(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, FieldInfo]]:
        for name, field in model.model_fields.items():
            key = f"{prefix}{name}"
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                yield from walk(annotation, f"{key}.")
            else:
                yield key, field

    yield from walk(Settings, "")


def settings_table() -> str:
    lines = [
        "| key | type | default | environment variable | what it does |",
        "|---|---|---|---|---|",
    ]
    for key, field in settings_rows():
        env = ENV_PREFIX + key.upper().replace(".", "__")
        lines.append(
            f"| `{key}` | {_type(field)} | {_default(field)} | `{env}` | "
            f"{_cell(field.description or '')} |"
        )
    return "\n".join(lines)


def cli_commands() -> Iterator[tuple[str, Any]]:
    """(``name path``, command) for every command and group of the CLI."""
    from sync.cli import app

    root = typer.main.get_command(app)

    def walk(command: Any, path: str) -> Iterator[tuple[str, Any]]:
        yield path, command
        children = getattr(command, "commands", None)  # a group (typer vendors its own click)
        for name in sorted(children or {}):
            yield from walk(children[name], f"{path} {name}")

    yield from walk(root, "ekinerja-sync")


def cli_reference() -> str:
    parts: list[str] = []
    for path, command in cli_commands():
        if command.hidden:
            continue
        depth = min(path.count(" ") + 2, 4)
        parts.append(f"{'#' * depth} `{path}`\n")
        if command.help:
            parts.append(command.help.strip() + "\n")
        options = [p for p in command.params if p.param_type_name == "option" and not p.hidden]
        arguments = [p for p in command.params if p.param_type_name == "argument"]
        if arguments or options:
            parts.append("| argument or option | what it does |\n|---|---|")
            for argument in arguments:
                help_text = getattr(argument, "help", None) or ""
                parts.append(f"| `{(argument.name or '').upper()}` | {_cell(help_text)} |")
            for option in options:
                names = ", ".join(f"`{n}`" for n in option.opts + option.secondary_opts)
                parts.append(f"| {names} | {_cell(option.help or '')} |")
            parts.append("")
    return "\n".join(parts)


def metric_families() -> list[tuple[str, str, str]]:
    """(name, type, help) of every metric, read from a real registry over an empty store."""
    from sync.bootstrap import build_store
    from sync.service.health import DaemonMetrics
    from sync.settings import Settings

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.model_validate(
            {"state": {"url": f"sqlite:///{Path(folder) / 'reference.db'}"}}
        )
        store = build_store(settings, create=True)
        try:
            metrics = DaemonMetrics(store)
            families = list(metrics.registry.collect())
        finally:
            store.engine.dispose()
    return sorted({(f.name, f.type, f.documentation) for f in families})


def metrics_table() -> str:
    lines = ["| metric | type | what it counts |", "|---|---|---|"]
    for name, kind, documentation in metric_families():
        suffix = {"counter": "_total", "info": "_info"}.get(kind, "")
        lines.append(f"| `{name}{suffix}` | {kind} | {_cell(documentation)} |")
    return "\n".join(lines)


def exit_codes() -> list[tuple[int, str, str]]:
    """(code, name, meaning) from ``sync.cli.output``: the constants and their comments."""
    import sync.cli.output as output

    source = Path(output.__file__).read_text(encoding="utf-8")
    found: list[tuple[int, str, str]] = [(0, "EXIT_OK", "done, nothing needs a person")]
    comment: list[str] = []
    for line in source.splitlines():
        match = re.match(r"^(EXIT_[A-Z_]+) = (\d+)\s*(?:#\s*(.*))?$", line)
        if match:
            name, code, tail = match.groups()
            meaning = " ".join([*comment, tail or ""]).strip()
            if int(code) != 0:
                found.append((int(code), name, meaning))
            comment = []
        elif line.startswith("#"):
            comment.append(line.lstrip("# ").strip())
        else:
            comment = []
    return sorted(found)


def exit_codes_table() -> str:
    lines = ["| code | meaning |", "|---|---|"]
    lines += [f"| `{code}` | {_cell(meaning)} |" for code, _name, meaning in exit_codes()]
    return "\n".join(lines)


TABLES: dict[str, Callable[[], str]] = {
    "settings": settings_table,
    "cli": cli_reference,
    "metrics": metrics_table,
    "exit-codes": exit_codes_table,
}


def render(markdown: str) -> str:
    """The page with a fresh table after every reference marker (a kept one replaced)."""

    def table(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in TABLES:
            raise ValueError(f"unknown reference table {name!r}; known: {', '.join(TABLES)}")
        return f"<!-- reference: {name} -->\n\n{TABLES[name]()}\n\n<!-- end reference: {name} -->"

    return _MARKER.sub(table, markdown)


def kept_pages() -> list[Path]:
    """The reference pages that keep their table in the repository (an end marker)."""
    return sorted(
        page
        for page in (ROOT / "docs").rglob("*.md")
        if "<!-- end reference: " in page.read_text(encoding="utf-8")
    )


def on_page_markdown(markdown: str, **_kwargs: Any) -> str:
    """mkdocs' hook: fill the reference markers of a page."""
    return render(markdown)


if __name__ == "__main__":
    # Rewrite the tables the pages keep in the repository (run after changing a setting, a
    # metric or an exit code; the docs test says when).
    for page in kept_pages():
        text = page.read_text(encoding="utf-8")
        fresh = render(text)
        if fresh != text:
            page.write_text(fresh, encoding="utf-8")
            print(f"rewrote {page.relative_to(ROOT)}")
