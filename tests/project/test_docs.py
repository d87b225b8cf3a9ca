"""The docs hold together: a short README, links that resolve, no history outside the CHANGELOG, recipes
with their parts, every sample mapped, an Apache-2.0 LICENSE."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGES = [ROOT / "README.md", ROOT / "events" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RECIPES = sorted((ROOT / "docs" / "recipes").glob("*.md"))
HISTORY = re.compile(r"\bissue \d+|\bthe reference\b|\bissue #\d+", re.I)
# Code says why in a sentence; where a figure was read, and with which tool, is for docs/models.md.
CODE_HISTORY = re.compile(HISTORY.pattern + r"|\bsearch tool\b|\bstored cop(?:y|ies)\b|\bread (?:on )?20\d\d", re.I)
SOURCES = sorted((ROOT / "handler").rglob("*.py"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
APACHE_2_MD5 = "86d3f3a95c324c9479bd8986968f4327"  # the text apache.org publishes (as dashscope ships it)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text().splitlines() if line.startswith("#")}


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_history_outside_the_changelog(page):
    found = HISTORY.findall(page.read_text())
    assert not found, f"{page.relative_to(ROOT)} speaks of the project's history: {found}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_history_in_the_code(source):
    found = CODE_HISTORY.findall(source.read_text())
    assert not found, f"{source.relative_to(ROOT)} speaks of history or research tools (docs/models.md): {found}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.relative_to(ROOT)}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{page.relative_to(ROOT)}: no heading #{anchor} in {path or page.name}"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_each_recipe_has_its_parts(recipe):
    """A local try, the s.yaml lines, a deploy and a way to read the answer back; its JSON blocks parse."""
    text = recipe.read_text()
    assert ".venv/bin/python -m handler" in text and "s deploy" in text
    assert "```yaml" in text or "Nothing to create" in text  # the chat needs no trigger and no role
    for block in re.findall(r"```json\n(.+?)\n```", text, re.S):
        document = json.loads(block)
        assert document.get("Version") == "1" and document["Statement"]


# The chat and calling the function from an application create no bucket: their policies, if any, are not OSS's.
@pytest.mark.parametrize(
    "recipe", [r for r in RECIPES if r.name not in ("chat.md", "call-from-your-app.md")], ids=lambda p: p.name
)
def test_each_recipe_with_a_resource_gives_its_role_policy(recipe):
    policies = [json.loads(b) for b in re.findall(r"```json\n(.+?)\n```", recipe.read_text(), re.S)]
    actions = {
        a
        for p in policies
        for s in p["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert "oss:PutObject" in actions


def test_the_readme_links_every_recipe():
    readme = (ROOT / "README.md").read_text()
    for recipe in RECIPES:
        assert f"(docs/recipes/{recipe.name})" in readme


def test_events_readme_maps_every_sample():
    mapped = (ROOT / "events" / "README.md").read_text()
    for sample in (ROOT / "events").iterdir():
        if sample.name != "README.md":
            assert f"`{sample.name}`" in mapped, f"events/README.md does not say what {sample.name} is"


def test_the_license_is_apache_2():
    assert hashlib.md5((ROOT / "LICENSE").read_bytes()).hexdigest() == APACHE_2_MD5


def test_every_troubleshooting_code_is_one_the_code_gives():
    """Each code or log event the README's troubleshooting table names is spelled as the handler spells it."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Troubleshooting") :].split("\n## ", 1)[0]
    first_column = [row.split("|")[1] for row in table.splitlines() if row.startswith("| ") and "---" not in row]
    named = {m.rstrip("*") for cell in first_column for m in re.findall(r"`([A-Za-z_.]+\*?)`", cell)} - {"code"}
    source = "\n".join(p.read_text() for p in (ROOT / "handler").rglob("*.py"))
    assert len(named) > 20
    assert sorted(name for name in named if name not in source) == []
