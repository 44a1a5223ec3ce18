"""Issue 23, "Docs": every setting of ``Settings`` is in the configuration reference and in
``config.example.toml`` (a commented-out line counts), so an operator reading either one finds
every key. The README's hand-written table once left out ``web.secret_key_file``,
``web.session_idle_s`` and ``web.trusted_proxies``; since issue 24 the reference is generated
from the code (docs/hooks/reference.py, shown by docs/reference/configuration.md), with each
field's own description.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel

from sync.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """``section.key`` of every setting, nested sections walked (``notify.smtp.host``)."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _keys(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


KEYS = sorted(_keys(Settings))


def _load_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reference", ROOT / "docs/hooks/reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reference_table() -> str:
    """The configuration reference's table, as ``mkdocs build`` renders it into the page."""
    page = (ROOT / "docs/reference/configuration.md").read_text(encoding="utf-8")
    rendered = _load_reference().render(page)
    rows = [line for line in rendered.splitlines() if line.startswith("| `")]
    assert len(rows) > 20, "the configuration reference's table was not generated"
    return "\n".join(rows)


def _example_keys() -> set[str]:
    """``section.key`` of every line of config.example.toml that sets a key, commented or not."""
    keys: set[str] = set()
    section = ""
    for line in (ROOT / "config.example.toml").read_text(encoding="utf-8").splitlines():
        header = re.match(r"^\s*#?\s*\[([\w.]+)\]", line)
        if header:
            section = header.group(1)
            continue
        setting = re.match(r"^\s*#?\s*(\w+)\s*=", line)
        if setting and section:
            keys.add(f"{section}.{setting.group(1)}")
    return keys


def test_the_walk_finds_the_settings() -> None:
    assert len(KEYS) > 40
    assert {"state.url", "target.base_url", "web.trusted_proxies"} <= set(KEYS)


@pytest.mark.parametrize("key", KEYS)
def test_every_setting_is_in_the_configuration_reference(key: str) -> None:
    row = next((r for r in _reference_table().splitlines() if r.startswith(f"| `{key}` |")), "")
    assert row, f"{key} is missing from docs/reference/configuration.md"
    description = row.rstrip(" |").rsplit(" | ", 1)[-1].strip()
    assert description, f"{key} has no description: add a docstring under its field"


@pytest.mark.parametrize("key", KEYS)
def test_every_setting_is_in_the_example_config(key: str) -> None:
    assert key in _example_keys(), f"{key} is missing from config.example.toml"


def test_the_reference_does_not_say_the_console_key_is_kept_in_the_store() -> None:
    row = next(r for r in _reference_table().splitlines() if r.startswith("| `web.secret_key` "))
    assert "kept in the state store" not in row.replace("Never kept in the state store", "")
