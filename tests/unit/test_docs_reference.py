"""The generated reference (docs/hooks/reference.py, issue 24) covers everything it should: a
setting, command or metric missing from it fails here, before a reader misses it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from prometheus_client import generate_latest
from pydantic import BaseModel, ConfigDict
from typer.testing import CliRunner

from sync.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reference", ROOT / "docs/hooks/reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _load_hook()


def _flatten(value: dict[str, object], model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every ``section.key`` of a dump of the settings (nested sections walked)."""
    keys: set[str] = set()
    for name, inner in value.items():
        annotation = model.model_fields[name].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            assert isinstance(inner, dict)
            keys |= _flatten(inner, annotation, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_every_setting_is_in_the_configuration_reference() -> None:
    # Independently of the generator's walk: what a dump of the default settings holds.
    keys = _flatten(Settings().model_dump(), Settings)
    table = reference.settings_table()
    missing = sorted(key for key in keys if f"| `{key}` |" not in table)
    assert not missing, f"settings missing from the reference: {missing}"
    for key in keys:
        env = "EKINERJA_SYNC_" + key.upper().replace(".", "__")
        assert f"`{env}`" in table


def test_every_command_is_in_the_cli_reference() -> None:
    page = reference.cli_reference()
    # Independently: every command name the top-level help lists, and their subcommands.
    from sync.cli import app

    runner = CliRunner()
    top = runner.invoke(app, ["--help"]).output
    names = [path for path, command in reference.cli_commands() if not command.hidden]
    assert len(names) > 20
    for path in names:
        assert f"`{path}`" in page
        if path.count(" ") == 1:
            assert path.split(" ")[1] in top


def test_every_metric_is_in_the_metrics_reference(tmp_path: Path) -> None:
    from sync.bootstrap import build_store
    from sync.service.health import DaemonMetrics

    settings = Settings.model_validate({"state": {"url": f"sqlite:///{tmp_path / 's.db'}"}})
    store = build_store(settings, create=True)
    scraped = generate_latest(DaemonMetrics(store).registry).decode()
    store.engine.dispose()
    # ``*_created`` are prometheus_client's timestamps of the counters above them, not metrics.
    names = {
        line.split()[2]
        for line in scraped.splitlines()
        if line.startswith("# TYPE ") and not line.split()[2].endswith("_created")
    }
    table = reference.metrics_table()
    assert names
    for name in names:
        assert name in table, f"metric {name} missing from the reference"


def test_every_exit_code_is_in_the_reference() -> None:
    import sync.cli.output as output

    codes = {value for name, value in vars(output).items() if name.startswith("EXIT_")}
    table = reference.exit_codes_table()
    for code in codes | {0}:
        assert f"| `{code}` |" in table


def test_an_unknown_marker_is_an_error_not_a_blank() -> None:
    with pytest.raises(ValueError, match="unknown reference table"):
        reference.render("<!-- reference: nonsense -->")
    assert "EKINERJA_SYNC_STATE__URL" in reference.render("<!-- reference: settings -->")


@pytest.mark.parametrize("page", sorted((ROOT / "docs/reference").glob("*.md")))
def test_each_reference_page_asks_for_a_generated_table(page: Path) -> None:
    assert "<!-- reference: " in page.read_text(encoding="utf-8")


def test_every_setting_has_a_description() -> None:
    # The reference is where a dinas IT engineer learns what a key does: a field without a
    # docstring (or ``Field(description=...)``) would be a blank cell there.
    rows = list(reference.settings_rows())
    assert len(rows) > 40
    blank = [key for key, field in rows if not (field.description or "").strip()]
    assert not blank, f"settings without a description (add a docstring under the field): {blank}"
    table = reference.settings_table()
    for key, field in rows:
        first_words = " ".join((field.description or "").split()[:3])
        assert first_words in table, key


def test_a_field_without_a_description_would_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    # The check above can fail: a section with an undocumented field is caught.
    from sync import settings as settings_module

    class Bare(BaseModel):
        model_config = ConfigDict(use_attribute_docstrings=True)

        documented: int = 1
        """It has words."""
        bare: int = 2

    class WithBare(settings_module.Settings):
        bare: Bare = Bare()

    monkeypatch.setattr(settings_module, "Settings", WithBare)
    blank = [k for k, f in reference.settings_rows() if not (f.description or "").strip()]
    assert blank == ["bare.bare"]


def test_the_tables_kept_in_the_repository_are_current() -> None:
    # The configuration, metrics and exit codes pages keep their table in the repository, so
    # that the README's link shows it on GitHub and in the copy installed with the service.
    kept = reference.kept_pages()
    assert {page.name for page in kept} >= {"configuration.md", "metrics.md", "exit-codes.md"}
    stale = [
        str(page.relative_to(ROOT))
        for page in kept
        if reference.render(page.read_text(encoding="utf-8")) != page.read_text(encoding="utf-8")
    ]
    assert not stale, f"{stale}: run .venv/bin/python docs/hooks/reference.py to rewrite them"


def test_a_kept_table_is_replaced_not_repeated() -> None:
    page = "# T\n\n<!-- reference: exit-codes -->\n| old |\n<!-- end reference: exit-codes -->\n"
    once = reference.render(page)
    assert "| old |" not in once
    assert reference.render(once) == once
    assert once.count("| `130` |") == 1
