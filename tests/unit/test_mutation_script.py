"""scripts/mutation.py: which modules an incremental `make mutation` runs again, and the score.

A module is due when what can change one of its verdicts changed: its source, a harness module
it imports, a unit test that reaches it, the tests' helpers or data. Anything else (another
module's tests, the docs) leaves it alone. Built on a small fake repository in tmp_path.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "mutation.py"
if not SCRIPT.exists():  # mutmut's copy of the tree (mutants/) has no scripts/
    pytest.skip("scripts/mutation.py is not in this tree", allow_module_level=True)


@pytest.fixture
def mutation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "mutation_script", module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "MUTANTS", tmp_path / "mutants")
    files = {
        "pyproject.toml": "[tool.mutmut]\n",
        "harness/__init__.py": "",
        "harness/a.py": "from harness.b import helper\n\ndef f(x):\n    return helper(x) + 1\n",
        "harness/b.py": "def helper(x):\n    return x\n",
        "harness/c.py": "def g():\n    return 2\n",
        "tests/conftest.py": "",
        "tests/unit/helpers.py": "",
        "tests/unit/test_a.py": "from harness.a import f\n",
        "tests/unit/test_c.py": "from harness.c import g\n",
        "tests/unit/test_indirect.py": "import other\n",
        "tests/data/run.csv": "t,v\n",
        "docs/mutation.md": "figures\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return module


def edit(root: Path, name: str) -> None:
    path = root / name
    path.write_text(path.read_text() + "# edited\n")


@pytest.mark.parametrize(
    "changed",
    [
        "harness/a.py",
        "harness/b.py",  # imported by a
        "tests/unit/test_a.py",  # names harness.a
        "tests/unit/test_indirect.py",  # reaches a, as mutmut recorded
        "tests/unit/helpers.py",
        "tests/conftest.py",
        "tests/data/run.csv",
        "pyproject.toml",
    ],
)
def test_a_change_that_can_flip_a_verdict_changes_the_fingerprint(
    mutation: ModuleType, tmp_path: Path, changed: str
) -> None:
    reached = {"harness.a.x_f": ["tests/unit/test_indirect.py::t"]}
    stats = {"tests_by_mangled_function_name": reached}
    before = mutation.fingerprint("harness/a.py", stats, mutation.snapshot())
    edit(tmp_path, changed)
    assert mutation.fingerprint("harness/a.py", stats, mutation.snapshot()) != before


@pytest.mark.parametrize("changed", ["harness/c.py", "tests/unit/test_c.py", "docs/mutation.md"])
def test_other_modules_and_docs_leave_the_fingerprint(
    mutation: ModuleType, tmp_path: Path, changed: str
) -> None:
    before = mutation.fingerprint("harness/a.py", {}, mutation.snapshot())
    edit(tmp_path, changed)
    assert mutation.fingerprint("harness/a.py", {}, mutation.snapshot()) == before


def write_meta(root: Path, module: str, codes: Mapping[str, int | None]) -> None:
    meta = root / "mutants" / f"{module}.meta"
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({"exit_code_by_key": codes, "durations_by_key": {}}))


def test_due_modules(mutation: ModuleType, tmp_path: Path) -> None:
    modules = ["harness/a.py", "harness/c.py"]
    assert mutation.due_modules(modules, {}, {}, mutation.snapshot()) == modules  # never run
    write_meta(tmp_path, "harness/a.py", {"harness.a.x_f__mutmut_1": 1})
    write_meta(tmp_path, "harness/c.py", {"harness.c.x_g__mutmut_1": None})  # interrupted
    state = {m: mutation.record(m, {}, mutation.snapshot(), None) for m in modules}
    assert mutation.due_modules(modules, state, {}, mutation.snapshot()) == ["harness/c.py"]
    edit(tmp_path, "harness/b.py")
    assert mutation.due_modules(modules, state, {}, mutation.snapshot()) == modules
    # mutmut found no test for any mutant (its record predates the module): not a result
    write_meta(tmp_path, "harness/c.py", {"harness.c.x_g__mutmut_1": 33})
    state = {m: mutation.record(m, {}, mutation.snapshot(), None) for m in modules}
    assert mutation.due_modules(modules, state, {}, mutation.snapshot()) == ["harness/c.py"]


def test_score_leaves_out_accepted_survivors_and_names_stale_ones(
    mutation: ModuleType, tmp_path: Path
) -> None:
    codes = {f"harness.a.x_f__mutmut_{i}": 1 for i in range(1, 9)}
    codes |= {"harness.a.x_f__mutmut_9": 0, "harness.a.x_f__mutmut_10": 0}
    write_meta(tmp_path, "harness/a.py", codes)
    mutated = tmp_path / "mutants" / "harness" / "a.py"
    mutated.write_text("def x_f__mutmut_orig(x):\n    return x\n")
    accepted = {"harness.a.x_f__mutmut_9", "harness.a.x_f__mutmut_3", "harness.c.x_g__mutmut_1"}
    score = mutation.score_module("harness/a.py", accepted)
    assert (score.mutants, score.killed, score.survived, score.accepted) == (10, 8, 1, 1)
    assert score.score == pytest.approx(8 / 9)
    assert score.stale_accepted == ["harness.a.x_f__mutmut_3"]  # killed now: not a survivor


def test_a_lost_test_record_does_not_make_a_module_due(
    mutation: ModuleType, tmp_path: Path
) -> None:
    write_meta(tmp_path, "harness/a.py", {"harness.a.x_f__mutmut_1": 1})
    reached = {"harness.a.x_f": ["tests/unit/test_indirect.py::t"]}
    stats = {"tests_by_mangled_function_name": reached}
    state = {"harness/a.py": mutation.record("harness/a.py", stats, mutation.snapshot(), None)}
    assert state["harness/a.py"]["tests"] == ["tests/unit/test_a.py", "tests/unit/test_indirect.py"]
    assert mutation.due_modules(["harness/a.py"], state, {}, mutation.snapshot()) == []
    edit(tmp_path, "tests/unit/test_indirect.py")  # still watched without mutmut's record
    assert mutation.due_modules(["harness/a.py"], state, {}, mutation.snapshot()) == [
        "harness/a.py"
    ]
