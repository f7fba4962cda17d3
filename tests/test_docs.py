"""Every relative link and image of the README and the docs/ pages points at a file or folder of the repository;
every flag the docs give a program is one of its flags, and every flag of a program the docs show is documented."""
import contextlib
import io
import re
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "ckpts").rglob("README.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def relative_links(page):
    for target in LINK.findall(page.read_text()):
        if not re.match(r"[a-z]+:", target) and not target.startswith("#"):
            yield target.split("#")[0]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    links = list(relative_links(page))
    missing = [t for t in links if not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing paths: {missing}"


def test_the_readme_links_every_docs_page():
    linked = {(ROOT / t).resolve() for t in relative_links(ROOT / "README.md")}
    assert not [p.name for p in (ROOT / "docs").glob("*.md") if p.resolve() not in linked]


SOURCES = [p for p in ROOT.rglob("*.py") if not {".venv", "tests"} & set(p.relative_to(ROOT).parts)]
CITATION = re.compile(r"(docs/[A-Z_]+\.md)(?:,?\s+(?:sections?\s+(\d+)(?:-(\d+))?|\"([^\"]+)\"))?")


def test_every_document_and_section_the_code_cites_exists():
    """A docstring or comment naming docs/X.md (with a section number or a quoted heading) points at a real one."""
    checked = 0
    for source in SOURCES:
        text = re.sub(r"\s+", " ", source.read_text())  # citations may wrap over lines
        bare = re.findall(r"(?<!docs/)\b[A-Z_]+\.md,? (?:sections? )?\d", text)
        assert not bare, f"{source.relative_to(ROOT)} cites {bare} without its folder (docs/...)"
        for page, first, last, heading in CITATION.findall(text):
            path = ROOT / page
            assert path.is_file(), f"{source.relative_to(ROOT)} cites missing {page}"
            headings = [line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")]
            for number in range(int(first), int(last or first) + 1) if first else ():
                assert any(h.startswith(f"{number}. ") for h in headings), f"{source.name}: {page} section {number}"
            assert not heading or heading in headings, f"{source.relative_to(ROOT)}: {page} has no '{heading}'"
            checked += 1
    assert checked >= 8  # the model files and the data pipeline cite their documents


PROGRAM = re.compile(r"((?:scripts/|benchmarks/)?[a-z_0-9]+\.py)")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_]*")


def commands(text):
    """(program, the --flags after it) of each command in the page's code blocks and code spans that runs one."""
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, re.S) + re.findall(r"^(?: {4}|\t)(.+)$", text, re.M)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    for block in blocks + spans:
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            for command in re.split(r"&&|;|\|", line.split(" #")[0]):
                if (program := PROGRAM.search(command)) and (ROOT / program.group(1)).is_file():
                    yield program.group(1), FLAG.findall(command[program.end():])


def help_flags(program):
    """The flags that `python PROGRAM --help` lists (run in this process: the imports are shared)."""
    shown, argv = io.StringIO(), sys.argv
    sys.argv = [program, "--help"]
    try:
        with contextlib.redirect_stdout(shown), contextlib.suppress(SystemExit):
            runpy.run_path(str(ROOT / program), run_name="__main__")
    finally:
        sys.argv = argv
    return set(FLAG.findall(shown.getvalue())) - {"--help"}


@pytest.fixture(scope="module")
def shown_flags():
    """Program -> the flags the docs' commands give it."""
    shown = {}
    for page in PAGES:
        for program, flags in commands(page.read_text()):
            shown.setdefault(program, set()).update(flags)
    assert {"main_finetune.py", "predict.py", "app.py", "scripts/extract_clips.py"} <= set(shown)
    return shown


def test_every_flag_a_doc_shows_is_one_of_its_program(shown_flags):
    unknown = {program: sorted(flags - help_flags(program) - {"--help"}) for program, flags in shown_flags.items()}
    assert not {program: flags for program, flags in unknown.items() if flags}


def test_every_flag_of_a_documented_program_appears_in_the_docs(shown_flags):
    documented = set(FLAG.findall("\n".join(page.read_text() for page in PAGES)))
    missing = {program: sorted(help_flags(program) - documented) for program in shown_flags}
    assert not {program: flags for program, flags in missing.items() if flags}
