"""The README and the guides in docs/: links that resolve, shell blocks that parse, runnable blocks that run,
worked examples quoted word for word from the code that runs them, and a README that stays short."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

README_MAX_LINES = 250
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
GUIDES = ("ui-tour", "pipeline", "operating", "serving", "reliability", "performance", "scale", "development")
RUNNABLE = "<!-- runnable -->"
QUOTED = re.compile(r"<!-- quoted from (\S+): (.+?) -->")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)


def page_id(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def blocks(path: Path):
    """(language, code, the line before the fence) of each fenced block."""
    text = path.read_text()
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        yield match.group(1), match.group(2), before


def prose(text: str) -> str:
    """The text outside fenced blocks and inline code, where links live."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen, out = {}, set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            base = slug(match.group(1))
            n = seen.get(base, 0)
            out.add(base if n == 0 else f"{base}-{n}")
            seen[base] = n + 1
    return out


def test_every_guide_exists_and_opens_with_what_the_reader_can_do():
    for name in GUIDES:
        text = (REPO_ROOT / "docs" / f"{name}.md").read_text()
        first_paragraph = text.split("\n\n")[1]
        assert first_paragraph.startswith("After reading this you"), name


def test_the_readme_is_short_and_starts_with_the_two_commands():
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, len(lines)
    language, code, _ = next(blocks(REPO_ROOT / "README.md"))
    assert language == "bash"
    assert [line.split("#")[0].strip() for line in code.splitlines()] == ["make demo", "make test"]
    # ... on the first screen, and every guide is linked from it.
    assert lines.index("make demo   # demo corpus -> inbox -> stages 1-4 for every video -> train 9 models x 5 folds -> comparison") < 25
    for name in GUIDES:
        assert f"(docs/{name}.md)" in "\n".join(lines), name


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_and_images_point_to_files_and_headings_that_exist(page):
    targets = re.findall(r"\]\(([^)\s]+)\)", prose(page.read_text()))
    assert targets, "a page without a single link is not one of these pages"
    broken = []
    for target in targets:
        if re.match(r"[a-z]+:", target):  # http(s), mailto
            continue
        file, _, anchor = target.partition("#")
        resolved = (page.parent / file).resolve() if file else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {page_id(resolved)}")
    assert broken == []


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_shell_blocks_parse(page):
    for language, code, _ in blocks(page):
        if language == "bash":
            done = subprocess.run(["bash", "-n"], input=code, capture_output=True, text=True)
            assert done.returncode == 0, f"{page_id(page)}:\n{code}\n{done.stderr}"


def runnable_blocks():
    for page in PAGES:
        for language, code, before in blocks(page):
            if before.strip() == RUNNABLE:
                assert language == "bash", page_id(page)
                yield pytest.param(code, id=f"{page_id(page)}:{code.splitlines()[0]}")


@pytest.mark.parametrize("code", list(runnable_blocks()))
def test_runnable_blocks_run_as_written(code):
    """From the project folder, with this interpreter's environment standing in for `.venv`."""
    venv_bin = Path(sys.executable).parent
    script = code.replace(".venv/bin/", f"{venv_bin}/")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=REPO_ROOT, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_some_blocks_are_marked_runnable():
    assert len(list(runnable_blocks())) >= 1


def quoted_blocks():
    for page in PAGES:
        for language, code, before in blocks(page):
            match = QUOTED.fullmatch(before.strip())
            if match:
                yield pytest.param(match.group(1), match.group(2), code, id=f"{page_id(page)}:{match.group(2)}")


@pytest.mark.parametrize(("source", "name", "code"), list(quoted_blocks()))
def test_worked_examples_are_quoted_word_for_word_from_the_code_that_runs_them(source, name, code):
    text = (REPO_ROOT / source).read_text()
    match = re.search(rf"^[ \t]*# \[doc: {re.escape(name)}\]\n(.*?)^[ \t]*# \[end doc\]\n", text, re.S | re.M)
    assert match, f"{source} has no block '{name}'"
    assert textwrap.dedent(match.group(1)) == code


def test_the_development_guide_quotes_both_worked_examples():
    names = {name for _, name, _ in (p.values for p in quoted_blocks())}
    assert {"model module", "model spec", "model fold", "model partitions",
            "stage asset", "stage materialise", "stage jobs"} <= names
