"""The house rules, held by tests: errors meant for the user are one line, bugs keep
their traceback (CLI crash log, widget outcome), decisions are logged, functions
stay short, and the core layers import only downwards."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny
from PIL import Image

from napari_resjnd.cli import main
from napari_resjnd.core.errors import ResJNDError
from napari_resjnd.core.weights import WeightsError, save_weights
from napari_resjnd.widgets._work import guarded

SRC = Path(__file__).resolve().parents[1] / "src" / "napari_resjnd"


def test_user_errors_share_one_base_class():
    from napari_resjnd.cli._common import UsageError

    assert issubclass(WeightsError, ResJNDError) and issubclass(UsageError, ResJNDError)
    assert issubclass(ResJNDError, ValueError)  # code that caught ValueError still catches it


def test_a_bug_is_not_shown_as_bad_input_and_its_traceback_is_kept(tmp_path, monkeypatch, capsys):
    from napari_resjnd.core import batch

    def broken(*_a, **_k):
        raise ValueError("operands could not be broadcast together")  # a numpy-style bug

    monkeypatch.setattr(batch, "list_jobs", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    assert main(["predict", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), "--model", "chou1995"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ValueError: operands could not" in err and "a bug" in err
    logs = list(tmp_path.glob("resjnd-crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in err
    text = logs[0].read_text()
    assert "Traceback" in text and "broken" in text and "predict" in text


def test_bad_input_is_one_line_with_exit_2(tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    rc = main(["predict", str(tmp_path / "bad.png"), "--out", str(tmp_path / "o"), "--model", "chou1995"])
    err = capsys.readouterr().err.strip()
    assert rc in (1, 2) and "bad.png" in err and "a bug" not in err and "Traceback" not in err


def test_verbose_logs_the_precision_decision_and_its_reason(tmp_path, capsys):
    weights = save_weights(make_tiny(), tmp_path / "tiny.safetensors")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    args = ["predict", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), "--weights", str(weights)]
    assert main([*args, "--verbose", "--device", "cpu", "--quiet"]) == 0
    err = capsys.readouterr().err
    # tiny weights are not a registry entry's: auto never picks int8 for them, and says why
    assert "napari_resjnd.core.inference: predict:" in err and "on cpu (auto:" in err
    assert ("bf16" in err or "fp32" in err) and "int8" not in err.split("predict:")[1].split("(")[0]
    meta = (tmp_path / "o" / "a.json").read_text()
    assert '"precision_reason": "auto:' in meta


def _steps(exc: BaseException):
    yield from ()
    raise exc


@pytest.mark.parametrize(
    ("exc", "bug"),
    [(ResJNDError("a.png: not an image"), False), (OSError(28, "No space left"), False), (KeyError("x"), True)],
)
def test_widget_workers_keep_the_traceback_of_bugs_only(exc, bug):
    from napari_resjnd.core.events import drive

    out = drive(guarded("test", _steps(exc)))
    assert out.value is None and out.error
    assert (out.bug is exc) if bug else (out.bug is None)
    assert ("a bug" in out.error) == bug


def _long_functions() -> list[tuple[str, str, int]]:
    found = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    found.append((rel, node.name, length))
    return found


def test_no_function_runs_over_80_lines():
    assert _long_functions() == []


def test_no_module_of_the_core_imports_qt_or_napari():
    """The layering contracts in pyproject.toml, checked by import-linter."""
    pytest.importorskip("importlinter")
    import subprocess
    import sys

    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("lint-imports is not installed beside this Python")
    done = subprocess.run([str(lint)], cwd=SRC.parents[1], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "0 broken" in done.stdout


def test_the_architecture_page_draws_the_imports_as_they_are():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "architecture_graph", SRC.parents[1] / "docs" / "architecture_graph.py"
    )
    graph = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(graph)
    page = graph.PAGE.read_text(encoding="utf-8")
    assert page == graph.page_with_graph(page), "run: python docs/architecture_graph.py"
    edges = graph.reduce(graph.import_graph())
    assert "core.inference" in edges["core.outputs"]  # a real arrow, drawn
    assert not any(n.startswith(("widgets", "cli")) for n in set().union(*edges.values()) if n != "launcher")


def test_a_bug_inside_a_batch_is_not_recorded_as_a_bad_input(tmp_path, monkeypatch, capsys):
    """A plain ValueError while computing (a numpy bug, say) stops the batch as a bug,
    with its traceback kept; it is not reported as 'skipping a.png'."""
    from napari_resjnd.core import inference

    weights = save_weights(make_tiny(), tmp_path / "tiny.safetensors")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.setattr(inference, "plane_rgb", lambda *a: (_ for _ in ()).throw(ValueError("shapes do not align")))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    argv = ["predict", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), "--weights", str(weights), "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "skipping" not in err and "ValueError: shapes do not align (a bug" in err
    assert list(tmp_path.glob("resjnd-crash-*.log"))


def test_the_architecture_page_names_every_core_module():
    """Each module of the core stands in the layout of docs/architecture.md, under its
    own folder (a moved or new module without a line there fails)."""
    page = (SRC.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    layout = page.split("## Layout", 1)[1].split("```")[1]
    listed: set[str] = set()
    stack: list[tuple[int, str]] = []
    for line in layout.splitlines():
        name = line.strip().split(" ")[0]
        if not name or not (name.endswith(("/", ".py"))):
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = "/".join([p for _, p in stack] + [name.rstrip("/")])
        if name.endswith("/"):
            stack.append((indent, name.rstrip("/")))
        listed.add(path)
    core = SRC / "core"
    modules = {
        p.relative_to(SRC.parent).as_posix().removeprefix("napari_resjnd/")
        for p in core.rglob("*.py")
        if p.name != "__init__.py" and "zoo" not in p.relative_to(core).parts[:-1]
    }
    missing = sorted(m for m in modules if f"src/napari_resjnd/{m}" not in listed)
    assert not missing, f"docs/architecture.md does not name {missing}"
    assert "src/napari_resjnd/core/coding/pipeline.py" in listed  # the check reads the tree as a tree
