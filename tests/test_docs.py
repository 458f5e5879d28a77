"""The README and the docs/ pages as a reader meets them: every relative link opens a file (and its
#anchor a heading there), every page is reachable from the README, every CLI command and named API
endpoint is documented somewhere, the layer order is the one tests/test_layout.py checks, and the
README stays short. Reads files only: no app, no subprocess."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from tests.api_snapshot import SNAPSHOT
from tests.conftest import ROOT

README = ROOT / "README.md"
DOC_PAGES = sorted((ROOT / "docs").rglob("*.md"))
PAGES = [README, *DOC_PAGES]
README_MAX_LINES = 130  # about two screens

FENCED_BLOCK = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n(.*?)^ {0,3}\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto: ...


def read(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def prose(text: str) -> str:
    """The text with code blocks and code spans blanked: what renders as links and headings."""
    text = FENCED_BLOCK.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return CODE_SPAN.sub(lambda m: " " * len(m.group(0)), text)


def code_spans(text: str) -> list[str]:
    return [m.group(2).strip() for m in CODE_SPAN.finditer(FENCED_BLOCK.sub("", text))]


def code_blocks(text: str) -> list[str]:
    return [m.group(2) for m in FENCED_BLOCK.finditer(text)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text lower-cased, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = text.replace("`", "").replace("*", "").strip().lower()
    return "".join(ch for ch in text if ch.isalnum() or ch in "-_ ").replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, seen = set(), {}
    for heading in HEADING.findall(prose(read(page))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(prose(read(page))) if not EXTERNAL.match(target)]


def test_the_checks_read_links_headings_and_code_as_github_renders_them():
    text = "# Will it fit my GPU?\n```bash\n# not a heading [nor](a-link.md)\n```\n## A cluster (Ray)\n"
    assert {slug(h) for h in HEADING.findall(prose(text))} == {"will-it-fit-my-gpu", "a-cluster-ray"}
    assert LINK.findall(prose("see [x](docs/a.md#b) and `[y](c.md)` and ![shot](img.png)")) == [
        "docs/a.md#b", "img.png"]
    assert slug("Controls made from a plain video (VACE, Animate)") == "controls-made-from-a-plain-video-vace-animate"
    assert slug("Presets, step cache, LoRAs and the prompt enhancer") == (
        "presets-step-cache-loras-and-the-prompt-enhancer")


def test_there_are_docs_pages_and_the_readme_links_every_one():
    assert DOC_PAGES, "docs/ has no pages"
    linked = {(README.parent / target.split("#")[0]).resolve() for target in relative_links(README)}
    orphans = [str(page.relative_to(ROOT)) for page in DOC_PAGES if page.resolve() not in linked]
    assert not orphans, f"docs pages the README does not link to: {orphans}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_opens_a_file_and_its_anchor_a_heading(page):
    broken = []
    for target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading '{anchor}' in {path.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)} has broken links:\n" + "\n".join(broken)


def everything_in_code() -> tuple[list[str], str]:
    """Every code span of the README and the docs, and all their code blocks as one text."""
    spans, blocks = [], []
    for page in PAGES:
        spans += code_spans(read(page))
        blocks += code_blocks(read(page))
    return spans, "\n".join(blocks + spans)


def cli_commands() -> list[str]:
    """Every subcommand of `python -m wan_studio`, nested ones as 'queue list', from the parser itself."""
    from wan_studio.cli import build_parser

    def walk(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield " ".join((*prefix, name))
                    yield from walk(sub, (*prefix, name))

    return list(walk(build_parser(), ()))


def test_every_cli_command_is_documented():
    commands = cli_commands()
    assert {"generate", "queue list", "cluster start"} <= set(commands)
    spans, code = everything_in_code()
    missing = [command for command in commands
               if not any(re.match(rf"{re.escape(command)}(?![\w-])", span) for span in spans)
               and not re.search(rf"(?:wan_studio|wan-studio) {re.escape(command)}(?![\w-])", code)]
    assert not missing, ("CLI commands no page documents (as `queue list` or `python -m wan_studio queue list`; "
                         f"docs/api-and-cli.md has the table): {missing}")


def test_every_api_endpoint_is_documented():
    endpoints = sorted(json.loads(SNAPSHOT.read_text()))
    assert {"/t2v", "/queue", "/extract"} <= set(endpoints)
    spans, code = everything_in_code()
    missing = [endpoint for endpoint in endpoints
               if not any(re.fullmatch(rf"{re.escape(endpoint)}(?:[ (].*)?", span) for span in spans)
               and f'api_name="{endpoint}"' not in code]
    assert not missing, f"API endpoints no page documents (as `/t2v`; docs/api-and-cli.md has the table): {missing}"


def test_the_layer_order_in_the_docs_is_the_one_the_layout_test_checks():
    from tests.test_layout import LAYERS

    section = read(ROOT / "docs" / "development.md").split("### Layers", 1)[1]
    written = re.split(r"[\s<]+", code_blocks(section)[0].strip())
    assert tuple(written) == LAYERS, f"docs/development.md's layer order differs from tests/test_layout.py: {LAYERS}"


def test_readme_fits_on_about_two_screens():
    lines = len(read(README).splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines; keep it to {README_MAX_LINES} and move reference text into docs/")
