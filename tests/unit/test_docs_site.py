"""The documentation site (issue 24): the README stays short and points into ``docs/``; the
site's navigation names only pages that exist and every page is in it; the Indonesian guides
follow the English ones page for page, with the same commands' output. ``mkdocs build
--strict`` (CI) checks the links between the pages; this checks what it does not see."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
MAX_README_LINES = 250
# Markdown links and images: [text](target) and ![alt](target); the target up to a blank or ).
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_CONSOLE = re.compile(r"```(?:console|python)\n.*?```", re.DOTALL)


class _Loader(yaml.SafeLoader):
    """mkdocs.yml with its ``!relative`` tag (pymdownx.snippets' base path) read as text."""


_Loader.add_constructor("!relative", lambda loader, node: str(node.value))


def _config() -> dict[str, Any]:
    loaded = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    assert isinstance(loaded, dict)
    return loaded


def _nav_pages(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return []


NAV = _nav_pages(_config()["nav"])


def _links(markdown: str) -> list[str]:
    """The relative link targets of a Markdown text, outside code blocks, anchors dropped."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)
    targets = [match.group(1) for match in _LINK.finditer(text)]
    return [
        target.split("#", 1)[0]
        for target in targets
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")
    ]


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_README_LINES}): move the detail into a "
        "page of docs/ and link it"
    )


def test_every_relative_link_of_the_readme_is_a_file() -> None:
    links = _links(README.read_text(encoding="utf-8"))
    assert len(links) > 20
    missing = sorted({link for link in links if not (ROOT / link).is_file()})
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_the_readme_links_the_configuration_reference_and_every_guide() -> None:
    links = set(_links(README.read_text(encoding="utf-8")))
    expected = {
        "docs/reference/configuration.md",
        "docs/dinas-it/service.md",
        "docs/operators/index.md",
        "docs/auditors/index.md",
        "docs/id/operators/index.md",
        "docs/id/auditors/index.md",
        "docs/design.md",
        "docs/performance.md",
    }
    assert expected <= links, expected - links


def test_the_readme_keeps_the_test_command_ci_runs() -> None:
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    command = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/pytest"
    assert command in ci
    assert command in README.read_text(encoding="utf-8")
    assert ".venv/bin/mkdocs build --strict" in ci


@pytest.mark.parametrize("page", NAV)
def test_every_page_of_the_nav_exists(page: str) -> None:
    assert (DOCS / page).is_file(), f"mkdocs.yml's nav names {page}, which is not in docs/"


def test_every_page_is_in_the_nav() -> None:
    pages = {
        str(path.relative_to(DOCS))
        for path in DOCS.rglob("*.md")
        if "hooks" not in path.relative_to(DOCS).parts
    }
    assert pages - set(NAV) == set(), "pages missing from mkdocs.yml's nav"


def test_the_snippets_the_site_takes_from_the_readme_are_there() -> None:
    readme = README.read_text(encoding="utf-8")
    for page in DOCS.rglob("*.md"):
        asked = re.findall(r'^--8<-- "README\.md:([\w-]+)"$', page.read_text("utf-8"), re.M)
        for section in asked:
            assert f"--8<-- [start:{section}]" in readme, (page, section)
            assert f"--8<-- [end:{section}]" in readme, (page, section)


GUIDES = sorted(
    str(path.relative_to(DOCS))
    for folder in ("operators", "auditors")
    for path in (DOCS / folder).glob("*.md")
)


def test_the_guides_are_there_to_mirror() -> None:
    assert len(GUIDES) >= 10


@pytest.mark.parametrize("page", GUIDES)
def test_each_guide_has_its_indonesian_page_with_the_same_output(page: str) -> None:
    english = (DOCS / page).read_text(encoding="utf-8")
    translated = DOCS / "id" / page
    assert translated.is_file(), f"docs/{page} has no Indonesian page docs/id/{page}"
    # Commands' output and scripts stay as they are: the same blocks, in the same order.
    assert _CONSOLE.findall(translated.read_text(encoding="utf-8")) == _CONSOLE.findall(english)


def test_no_indonesian_page_without_its_english_one() -> None:
    for path in (DOCS / "id").rglob("*.md"):
        assert (DOCS / path.relative_to(DOCS / "id")).is_file(), path


# Code comments cite the project's own pages: ``docs/domain.md, "Angka kredit"``,
# ``docs/design.md, "When something is sent"``, ``docs/design.md, invariant 4``,
# ``docs/apis.md, "Target: SKP"``. The brief's notes (../shared/, its contracts/) are not in
# the repository, so a citation of them leads nowhere.
CODE_DIRS = ("sync", "connectors", "mappings", "state", "tests", "bench")
CITED_PAGES = ("domain", "design", "apis")
_CITED_SECTION = re.compile(r'docs/(domain|design|apis)\.md, "([^"\n]+)"')
_CITED_INVARIANT = re.compile(r"docs/design\.md, invariant (\d+)")
_BARE_PAGE = re.compile(r"(?<!docs/)\b(?:domain|design|apis)\.md\b")
# The brief's API contracts: contracts/pmm-source.md, contracts/ekinerja-target.md.
_CONTRACTS = re.compile(r"(?<!docs/)\bcontracts/|\b(?:pmm-source|ekinerja-target)\.md\b")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.M)
_INVARIANT = re.compile(r"^(\d+)\. \*\*", re.M)
THIS_FILE = Path(__file__).resolve()


def _code_files() -> list[Path]:
    return sorted(
        path
        for folder in CODE_DIRS
        for path in (ROOT / folder).rglob("*.py")
        if path.resolve() != THIS_FILE
    )


def _citations(kind: re.Pattern[str]) -> list[tuple[str, re.Match[str]]]:
    return [
        (f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}", match)
        for path in _code_files()
        for text in [path.read_text(encoding="utf-8")]
        for match in kind.finditer(text)
    ]


def test_the_code_cites_the_domain_pages_sections() -> None:
    cited = _citations(_CITED_SECTION)
    # The scan finds what it checks, on every page.
    assert len(cited) > 10
    assert {match[1] for _, match in cited} == set(CITED_PAGES)
    headings = {
        page: set(_HEADING.findall((DOCS / f"{page}.md").read_text(encoding="utf-8")))
        for page in CITED_PAGES
    }
    wrong = [
        f'{where}: docs/{match[1]}.md has no section "{match[2]}"'
        for where, match in cited
        if match[2] not in headings[match[1]]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_code_cites_invariants_that_exist() -> None:
    numbers = set(_INVARIANT.findall((DOCS / "design.md").read_text(encoding="utf-8")))
    assert {str(n) for n in range(1, 10)} <= numbers
    wrong = [
        f"{where}: docs/design.md has no invariant {match[1]}"
        for where, match in _citations(_CITED_INVARIANT)
        if match[1] not in numbers
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "pattern",
    [re.compile(r"\bshared/"), _BARE_PAGE, _CONTRACTS],
    ids=["shared", "bare-page", "contracts"],
)
def test_the_code_cites_no_page_outside_docs(pattern: re.Pattern[str]) -> None:
    wrong = [f"{where}: {match[0]}" for where, match in _citations(pattern)]
    assert not wrong, "cite docs/domain.md, docs/design.md or docs/apis.md instead:\n" + "\n".join(
        wrong
    )
