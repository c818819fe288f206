"""The documentation cannot drift: the CLI reference equals the parser, every table of
measured figures says where and how it was measured, README's speed table has the
benchmark's format, and every link to a heading finds it."""

from __future__ import annotations

import argparse
import importlib.util
import re
import unicodedata
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

#: A cell holding a measured figure: a number, or a range or pair of numbers, with an optional unit.
NUMBER = r"\d[\d.,]*"
FIGURE_CELL = re.compile(
    rf"^[~≈<>≤≥±+\-−]?\s*{NUMBER}(\s*(?:[–-]|to|/)\s*{NUMBER})*\s*(×|x|%|s|ms|GB|MB|GiB|MiB|dB|s/MP)?$"
)
#: How far (in lines) the "Measured on" paragraph may be from its table.
WINDOW = 12


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tables(lines: list[str]) -> list[tuple[int, int]]:
    """(first, last) line index of every Markdown table outside code blocks."""
    found, start, fenced = [], None, False
    for i, line in enumerate([*lines, ""]):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        is_row = not fenced and line.lstrip().startswith("|")
        if is_row and start is None:
            start = i
        elif not is_row and start is not None:
            found.append((start, i - 1))
            start = None
    return found


def cells(row: str) -> list[str]:
    text = re.sub(r"`[^`]*`", "code", row.strip().strip("|"))
    return [c.replace("*", "").strip() for c in text.split("|")]


def is_figure_table(lines: list[str], first: int, last: int) -> bool:
    body = lines[first + 2 : last + 1]
    return any(FIGURE_CELL.match(c) for row in body for c in cells(row))


def paragraphs_near(lines: list[str], first: int, last: int) -> list[str]:
    """The paragraphs that start within WINDOW lines of the table, each joined into one line."""
    out = []
    for i in range(max(0, first - WINDOW), min(len(lines), last + WINDOW + 1)):
        if first <= i <= last or not lines[i].strip() or (i > 0 and lines[i - 1].strip()):
            continue
        para = []
        for line in lines[i:]:
            if not line.strip():
                break
            para.append(line.strip())
        out.append(" ".join(para))
    return out


def measured_line_problems(para: str) -> list[str]:
    """What a "Measured on" paragraph lacks: the machine, the versions, the command."""
    missing = []
    if not re.search(r"\d+-core|\bGPU\b", para):
        missing.append("the machine (its core count, e.g. '2-core AMD EPYC', or the GPU)")
    if not re.search(r"torch \d", para):
        missing.append("the library versions (at least 'torch X.Y.Z')")
    if "`" not in para:
        missing.append("the command that reproduces it, in backticks")
    return missing


def figure_table_problems(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    problems = []
    for first, last in tables(lines):
        if not is_figure_table(lines, first, last):
            continue
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{first + 1}"
        measured = [p for p in paragraphs_near(lines, first, last) if re.match(r"[*_]*Measured on", p)]
        if not measured:
            problems.append(f"{where}: a table of figures with no 'Measured on' paragraph within {WINDOW} lines")
        elif all(measured_line_problems(p) for p in measured):
            lacks = "; ".join(measured_line_problems(measured[0]))
            problems.append(f"{where}: its 'Measured on' paragraph lacks {lacks}")
    return problems


def test_cli_reference_is_the_parser():
    gen_cli = load(DOCS / "gen_cli.py")
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert gen_cli.render(page) == page, "docs/cli.md differs from the parser: run `python docs/gen_cli.py`"


def test_cli_reference_lists_every_command_and_option():
    """The generator itself: every subcommand gets a section, every option a line."""
    from napari_resjnd.cli import build_parser

    gen_cli = load(DOCS / "gen_cli.py")
    text = gen_cli.reference()
    for name, _, sub in gen_cli._subcommands(build_parser()):
        if gen_cli._subcommands(sub):
            continue  # a group (annotations): its subcommands have the sections
        assert f"## `resjnd {name}`" in text
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue  # every command has -h/--help; the page says so once
            for flag in action.option_strings:
                assert f"`{flag}" in text or f", {flag}" in text, (name, flag)


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_every_figure_table_names_machine_versions_and_command(path):
    assert figure_table_problems(path) == []


def test_the_figure_check_catches_a_bare_table(tmp_path):
    """A table of numbers with no 'Measured on' paragraph, or one that leaves out the
    command, is reported; one with all three is not."""
    table = "| run | s / MP |\n| --- | ---: |\n| fp32 | 123–138 |\n"
    bare = tmp_path / "bare.md"
    bare.write_text(f"# Speed\n\n{table}")
    no_command = tmp_path / "no_command.md"
    no_command.write_text(f"# Speed\n\n{table}\nMeasured on: a 2-core AMD EPYC, torch 2.13.0.\n")
    good = tmp_path / "good.md"
    good.write_text(f"# Speed\n\nMeasured on: a 2-core AMD EPYC, torch 2.13.0, `python bench.py`.\n\n{table}")
    assert "no 'Measured on' paragraph" in " ".join(figure_table_problems(bare))
    assert "the command" in " ".join(figure_table_problems(no_command))
    assert figure_table_problems(good) == []


def test_readme_speed_table_has_the_benchmarks_format():
    """README's speed table is what `python benchmarks/bench_int8.py` prints: same header,
    rows the benchmark produces (with ranges over runs in place of single figures)."""
    bench = load(ROOT / "benchmarks" / "bench_int8.py")
    runs = [
        {"row": r, "seconds": 1.0, "speedup": 1.0, "peak_rss_mb": 800.0, "err_mean": 0.0, "err_p99_9": 0.0}
        for r in bench.ROWS
    ]
    printed = bench.markdown_table(runs, 512).splitlines()
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    readme_tables = [lines[a : b + 1] for a, b in tables(lines) if lines[a] == bench.TABLE_HEADER]
    assert readme_tables, f"README.md has no table headed {bench.TABLE_HEADER!r}"
    table = readme_tables[0]
    assert table[1] == printed[1]
    labels = {cells(row)[0] for row in printed[2:]}
    for row in table[2:]:
        assert cells(row)[0] in labels, f"README row {row!r} is not one bench_int8.py prints"
        assert len(cells(row)) == len(cells(printed[0]))


def slug(heading: str) -> str:
    """Python-Markdown's default heading id (what mkdocs links to)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[`*_]", "", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    out, fenced = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            out.add(slug(line.lstrip("#").strip()))
    return out


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_links_to_pages_and_headings_resolve(path):
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with id {anchor!r} in {dest.name}")
    assert broken == []


def test_citation_file_is_valid_and_matches_the_docs():
    """CITATION.cff validates against the CFF 1.2.0 schema (cffconvert, in the dev extra), and
    its ResJND authors and version are the ones the How to cite page gives."""
    cffconvert = pytest.importorskip("cffconvert.cli.create_citation", reason="pip install -e '.[dev]'")
    import napari_resjnd

    citation = cffconvert.create_citation(str(ROOT / "CITATION.cff"), None)
    citation.validate()  # raises on a schema violation
    cff = citation.cffobj
    page = (DOCS / "citing.md").read_text(encoding="utf-8")
    authors = " and ".join(f"{a['family-names']}, {a['given-names']}" for a in cff["preferred-citation"]["authors"])
    assert f"author  = {{{authors}}}" in page
    assert cff["version"] == napari_resjnd.__version__
    assert f"version = {{{cff['version']}}}" in page


#: A line that git leaves where a merge conflict was not resolved.
CONFLICT = re.compile(r"^(<{7}|={7}|>{7})( |$)", re.M)
#: The pages that name every widget and every command (where users look first).
ENTRY_PAGES = [ROOT / "README.md", DOCS / "index.md", DOCS / "quickstart.md", DOCS / "cli.md"]


def repository_files() -> list[Path]:
    """Every text file of the repository (git's list where there is one, else a walk)."""
    import subprocess

    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        files = [ROOT / p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".tox", ".venv", "site", "build", "dist", "__pycache__"}
        files = [p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]
    text = []
    for p in files:
        try:
            p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        text.append(p)
    return text


def test_no_merge_conflict_markers_anywhere():
    found = [
        f"{p.relative_to(ROOT)}:{p.read_text(encoding='utf-8')[: m.start()].count(chr(10)) + 1}"
        for p in repository_files()
        for m in CONFLICT.finditer(p.read_text(encoding="utf-8"))
    ]
    assert found == [], f"unresolved merge conflicts at {found}"


def test_the_conflict_check_catches_markers(tmp_path):
    page = "text\n" + "<" * 7 + " HEAD\nours\n" + "=" * 7 + "\ntheirs\n" + ">" * 7 + " branch\n"
    assert len(CONFLICT.findall(page)) == 3
    assert not CONFLICT.search("# Title\n\n======== a rule that is not a marker\n")


def test_generated_reference_expands_argparse_placeholders():
    """`%(default)s` and the like read in the pages as `--help` prints them."""
    gen_cli = load(DOCS / "gen_cli.py")
    assert "%(" not in gen_cli.reference()
    assert "%(" not in (DOCS / "cli.md").read_text(encoding="utf-8")
    parser = argparse.ArgumentParser()
    action = parser.add_argument("--slope", type=float, default=3.5, help="slope (default: %(default)s)")
    assert gen_cli._option_line(action) == "- `--slope SLOPE`: slope (default: 3.5)"


def widget_names() -> list[str]:
    import yaml

    manifest = yaml.safe_load((ROOT / "src" / "napari_resjnd" / "napari.yaml").read_text(encoding="utf-8"))
    return [w["display_name"] for w in manifest["contributions"]["widgets"]]


def command_names() -> list[str]:
    """Every command as typed: `resjnd predict`, …, `resjnd visibility map`, …"""
    from napari_resjnd.cli import build_parser

    gen_cli = load(DOCS / "gen_cli.py")

    def leaves(path: str, parser) -> list[str]:
        subs = gen_cli._subcommands(parser)
        return [n for name, _, sub in subs for n in leaves(f"{path} {name}", sub)] if subs else [path]

    return leaves("resjnd", build_parser())


@pytest.mark.parametrize("path", ENTRY_PAGES, ids=lambda p: p.name)
def test_entry_pages_name_every_widget_and_command(path):
    """README, the landing page, the quick start and the command-line page name each widget
    as napari's menu shows it and each command as it is typed (cli.md before its generated
    reference, which would name them all anyway)."""
    text = path.read_text(encoding="utf-8").split("## Reference")[0]
    assert len(widget_names()) == 7 and len(command_names()) >= 13
    missing = [w for w in widget_names() if w not in text] + [c for c in command_names() if c not in text]
    assert missing == []


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_menu_paths_go_through_the_resjnd_submenu(path):
    """napari shows a plugin's several widgets under Plugins → ResJND → …"""
    text = re.sub(r"\s+", " ", path.read_text(encoding="utf-8"))
    paths = re.findall(r"Plugins → [^*]*", text)
    wrong = [m for m in paths if not m.startswith(("Plugins → ResJND", "Plugins → Install"))]
    assert wrong == []


def test_api_page_lists_the_whole_public_api():
    import napari_resjnd

    page = (DOCS / "api.md").read_text(encoding="utf-8")
    members = re.search(r"::: napari_resjnd\n\s+options:\n\s+members: \[([^\]]*)\]", page)
    assert members is not None
    assert set(napari_resjnd.__all__) <= {m.strip() for m in members.group(1).split(",")}
