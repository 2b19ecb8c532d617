"""Mutation testing of the pure modules (`make mutation`); only what changed since the last run.

    python scripts/mutation.py [--full] [--jobs N] [--summary-only] [MODULE ...]

Runs mutmut (configured in pyproject.toml, [tool.mutmut]) on the modules in MODULES (or the
ones named) that changed since their last complete run, then prints, per module: mutants,
logic mutants, killed, survived, accepted survivors (tests/mutation-survivors.txt), the logic
score and the time spent testing its mutants. Exits 1 when a module's logic score is under
THRESHOLD.

Incremental: a module is *due* when its fingerprint differs from the one recorded after its
last complete run (mutants/mutation-state.json; mutants/ is git-ignored). The fingerprint
hashes what can change a verdict: the module's source and the harness modules it imports, the
unit tests that reach it (mutmut's own record of which tests call which function, plus every
test file that names the module), the tests' helpers and data (tests/*.py, tests/unit/*.py
that are not tests, tests/data/), pyproject.toml and the mutmut version. mutmut's own cache
is not enough: it keeps a verdict until the *function* changes, so a new or weakened test
would not re-test a mutant. `--full` runs every module whatever the fingerprints say.

Parallel: all due modules go to ONE mutmut run, which tests `--jobs` mutants at a time across
them (mutmut's --max-children). One run copies the tree, generates the mutants and checks the
clean tests once, not once per module, and two mutmut processes cannot share mutants/ (they
rewrite the same meta and stats files).

A mutant is a *message* mutant when all it changes is the text of a message: a piece of an
f-string, or a string literal of prose (whitespace and at least MESSAGE_LENGTH characters). A
key such as "design" or a status such as "not run" is logic. Message mutants are counted but
not scored.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.metadata
import json
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
STATE = MUTANTS / "mutation-state.json"
STATS = MUTANTS / "mutmut-stats.json"
RUN_LOG = MUTANTS / "mutmut-run.log"
SURVIVORS = ROOT / "tests" / "mutation-survivors.txt"
THRESHOLD = 0.90
MESSAGE_LENGTH = 16

MODULES = [
    "harness/analysis/headline.py",
    "harness/analysis/integrity.py",
    "harness/analysis/leak.py",
    "harness/analysis/load.py",
    "harness/analysis/probe.py",
    "harness/analysis/profile.py",
    "harness/analysis/sites.py",
    "harness/history/_steps.py",
    "harness/report/_frames.py",
    "harness/report/_probe_frames.py",
    "harness/report/_units.py",
    "harness/analysis/bounds.py",
    "harness/analysis/capacity.py",
    "harness/analysis/findings.py",
    "harness/analysis/knee.py",
    "harness/gate/_thresholds.py",
    "harness/gate/_verdicts.py",
    "harness/gate/_baseline.py",
    "harness/gate/_explain.py",
    "harness/gate/_format.py",
    "harness/gate/_render.py",
    "harness/config/probe_recipe.py",
]

KILLED_CODES = {1, 3, 36, -24, 24, 152, 255, 37}  # failed tests, timeouts, type check
SURVIVED_CODE = 0
NO_TESTS_CODES = {5, 33}


@dataclass
class ModuleScore:
    module: str
    mutants: int = 0
    messages: int = 0
    killed: int = 0
    survived: int = 0
    no_tests: int = 0
    accepted: int = 0
    not_run: int = 0
    seconds: float = 0.0  # summed test time of its mutants (mutmut's durations)
    ran: bool = False  # tested in this run (else: the last run's verdicts)
    stale_accepted: list[str] = field(default_factory=list)

    @property
    def logic(self) -> int:
        return self.mutants - self.messages

    @property
    def raw(self) -> float:
        """killed / logic mutants, counting accepted survivors as not killed."""
        return 1.0 if self.logic <= 0 else self.killed / self.logic

    @property
    def score(self) -> float:
        scored = self.logic - self.accepted
        return 1.0 if scored <= 0 else self.killed / scored


def dotted(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def accepted_survivors() -> set[str]:
    if not SURVIVORS.exists():
        return set()
    names = set()
    for line in SURVIVORS.read_text(encoding="utf-8").splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.add(name)
    return names


# --- message mutants ---------------------------------------------------------------------------


def _message_constants(tree: ast.AST) -> set[int]:
    """ids of string constants that are message text (inside an f-string)."""
    return {
        id(value)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for value in node.values
        if isinstance(value, ast.Constant)
    }


def _reads_as_message(text: str) -> bool:
    """Prose, not a key or a status value: whitespace and at least MESSAGE_LENGTH characters
    ('not run' and 'no record' are status values and stay logic)."""
    return len(text) >= MESSAGE_LENGTH and any(c.isspace() for c in text)


def _is_message_only(original: ast.FunctionDef, mutant: ast.FunctionDef) -> bool:
    orig_nodes = list(ast.walk(original))
    mut_nodes = list(ast.walk(mutant))
    if len(orig_nodes) != len(mut_nodes):
        return False
    in_fstring = _message_constants(original)
    changed = False
    for a, b in zip(orig_nodes, mut_nodes, strict=True):
        if type(a) is not type(b):
            return False
        if isinstance(a, ast.Constant) and isinstance(b, ast.Constant):
            if a.value == b.value:
                continue
            if not (isinstance(a.value, str) and isinstance(b.value, str)):
                return False
            if not (id(a) in in_fstring or _reads_as_message(a.value)):
                return False
            changed = True
            continue
        if a is original:  # the function's own name differs (x_f__mutmut_orig, x_f__mutmut_3)
            continue
        fields_a = [(k, v) for k, v in ast.iter_fields(a) if not isinstance(v, (ast.AST, list))]
        fields_b = [(k, v) for k, v in ast.iter_fields(b) if not isinstance(v, (ast.AST, list))]
        if fields_a != fields_b:
            return False
    return changed


def _functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name: node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and "__mutmut_" in node.name
    }


# --- scoring -----------------------------------------------------------------------------------


def _meta(module: str) -> dict[str, object] | None:
    path = MUTANTS / f"{module}.meta"
    if not path.exists():
        return None
    meta: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return meta


def score_module(module: str, accepted: set[str]) -> ModuleScore:
    result = ModuleScore(module)
    meta = _meta(module)
    if meta is None:
        return result
    exit_codes: dict[str, int | None] = meta["exit_code_by_key"]  # type: ignore[assignment]
    durations: dict[str, float] = meta.get("durations_by_key") or {}  # type: ignore[assignment]
    functions = _functions(MUTANTS / module)
    prefix = dotted(module) + "."
    surviving: set[str] = set()
    for key, code in exit_codes.items():
        result.mutants += 1
        result.seconds += float(durations.get(key) or 0.0)
        name = key.removeprefix(prefix)
        original = functions.get(name.rsplit("__mutmut_", 1)[0] + "__mutmut_orig")
        mutant = functions.get(name)
        if original is not None and mutant is not None and _is_message_only(original, mutant):
            result.messages += 1
        elif code in KILLED_CODES:
            result.killed += 1
        elif key in accepted:
            result.accepted += 1
            surviving.add(key)
        elif code == SURVIVED_CODE:
            result.survived += 1
        elif code in NO_TESTS_CODES:
            result.no_tests += 1
        elif code is None:
            result.not_run += 1
        else:  # suspicious, skipped: not killed
            result.survived += 1
    result.stale_accepted = sorted(
        n for n in accepted if n.startswith(prefix) and n not in surviving
    )
    return result


# --- what is due: fingerprints -----------------------------------------------------------------


Tree = Mapping[str, bytes]  # relative path -> content


def snapshot() -> dict[str, bytes]:
    """The files a verdict can depend on, read once: the harness's modules, the tests and their
    data, pyproject.toml. Taken before mutmut copies the tree, so that the fingerprints recorded
    after the run are those of what was tested, even if a file is edited meanwhile."""
    files = [
        *(ROOT / "harness").rglob("*.py"),
        *(p for p in (ROOT / "tests").rglob("*") if "__pycache__" not in p.parts),
        ROOT / "pyproject.toml",
    ]
    return {p.relative_to(ROOT).as_posix(): p.read_bytes() for p in files if p.is_file()}


def _harness_imports(module: str, tree: Tree) -> set[str]:
    """The harness modules `module` imports, transitively, as paths (itself included)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        path = todo.pop()
        if path in seen or path not in tree:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(tree[path])):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name == "harness" or name.startswith("harness."):
                    base = name.replace(".", "/")
                    todo += [base + ".py", base + "/__init__.py"]
    return seen


def reaching_tests(module: str, stats: Mapping[str, object], tree: Tree) -> set[str]:
    """Test files that mutmut saw call a function of `module` (its stats), or that name it."""
    prefix = dotted(module) + "."
    by_function: Mapping[str, list[str]] = stats.get("tests_by_mangled_function_name") or {}  # type: ignore[assignment]
    files = {
        test.split("::", 1)[0]
        for function, tests in by_function.items()
        if function.startswith(prefix)
        for test in tests
    }
    name = dotted(module).encode()
    files |= {p for p, text in tree.items() if p.startswith("tests/unit/test_") and name in text}
    return files


def _support_files(tree: Tree) -> set[str]:
    """What every unit test may read: the helpers (not tests themselves), the data, the config."""
    return {p for p in tree if p == "pyproject.toml" or p.startswith("tests/data/") or _helper(p)}


def _helper(path: str) -> bool:
    folder, _, name = path.rpartition("/")
    return (
        folder in ("tests", "tests/unit") and name.endswith(".py") and not name.startswith("test_")
    )


def fingerprint(
    module: str, stats: Mapping[str, object], tree: Tree, known_tests: Iterable[str] = ()
) -> str:
    """`known_tests`: the test files that reached the module at its last run (kept in the
    state, so that a lost or rebuilt mutmut record does not change the fingerprint)."""
    paths = _harness_imports(module, tree) | reaching_tests(module, stats, tree) | set(known_tests)
    digest = hashlib.sha256(importlib.metadata.version("mutmut").encode())
    for path in sorted(paths | _support_files(tree)):
        content = tree.get(path, b"<missing>")
        digest.update(f"\0{path}\0".encode() + hashlib.sha256(content).digest())
    return digest.hexdigest()


def _read_json(path: Path) -> dict[str, object]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def complete(module: str) -> bool:
    """Every mutant of `module` has a verdict from a run (its meta exists, none is pending)."""
    meta = _meta(module)
    if meta is None:
        return False
    codes: dict[str, int | None] = meta["exit_code_by_key"]  # type: ignore[assignment]
    if not codes or any(code is None for code in codes.values()):
        return False
    return not all(code in NO_TESTS_CODES for code in codes.values())  # no test found: see below


def due_modules(
    modules: list[str], state: Mapping[str, object], stats: Mapping[str, object], tree: Tree
) -> list[str]:
    return [m for m in modules if not complete(m) or not _unchanged(m, state.get(m), stats, tree)]


def _unchanged(module: str, last: object, stats: Mapping[str, object], tree: Tree) -> bool:
    if not isinstance(last, dict):
        return False
    return bool(last.get("fingerprint") == fingerprint(module, stats, tree, last.get("tests", ())))


def record(module: str, stats: Mapping[str, object], tree: Tree, last: object) -> dict[str, object]:
    """The state of a module after a complete run: its fingerprint and the tests it counted."""
    known = set(last.get("tests", ())) if isinstance(last, dict) else set()
    tests = sorted(known | reaching_tests(module, stats, tree))
    return {"fingerprint": fingerprint(module, stats, tree, tests), "tests": tests}


# --- running -----------------------------------------------------------------------------------


def run_mutmut(modules: list[str], jobs: int, stats: Mapping[str, object]) -> tuple[int, float]:
    """One mutmut run over the mutants of `modules`, `jobs` at a time: (exit status, seconds)."""
    MUTANTS.mkdir(exist_ok=True)
    reached: Mapping[str, object] = stats.get("tests_by_mangled_function_name") or {}  # type: ignore[assignment]
    for module in modules:
        # mutmut mutates a file again only when the source is newer than its copy in mutants/,
        # and records which tests reach which function once (later only for new tests): a
        # module that joined only_mutate after the first run would never be mutated, then find
        # no test. Drop the copy and the record; mutmut makes both again (the record: ~2 min).
        if not (MUTANTS / f"{module}.meta").exists():
            (MUTANTS / module).unlink(missing_ok=True)
        if not any(name.startswith(dotted(module) + ".") for name in reached):
            STATS.unlink(missing_ok=True)
    for source in (ROOT / "harness").rglob("*"):
        # mutmut copies a file that is not Python only when mutants/ has none yet: a data file
        # changed since (a packaged template or config) would stay stale there.
        copy = MUTANTS / source.relative_to(ROOT)
        stale = source.suffix != ".py" and copy.is_file() and source.is_file()
        if stale and copy.read_bytes() != source.read_bytes():
            copy.unlink()
    mutmut = Path(sys.executable).with_name("mutmut")
    started = time.monotonic()
    with RUN_LOG.open("w", encoding="utf-8") as out:
        status = subprocess.run(
            [str(mutmut), "run", "--max-children", str(jobs), *(dotted(m) + ".*" for m in modules)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    return status, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("modules", nargs="*", default=MODULES)
    parser.add_argument(
        "--jobs", "--max-children", type=int, default=2, help="mutants tested at once (default 2)"
    )
    parser.add_argument("--full", action="store_true", help="run every module, changed or not")
    parser.add_argument("--summary-only", action="store_true", help="score the last run")
    args = parser.parse_args(argv)
    state = _read_json(STATE)
    tree = snapshot()
    if args.summary_only:
        due: list[str] = []
    elif args.full:
        due = list(args.modules)
    else:
        due = due_modules(args.modules, state, _read_json(STATS), tree)
    if due:
        print(f"mutating {len(due)} module(s), {args.jobs} mutant(s) at a time: {', '.join(due)}")
        status, wall = run_mutmut(due, args.jobs, _read_json(STATS))
        stats = _read_json(STATS)
        for module in due:
            if status == 0 and complete(module):
                state[module] = record(module, stats, tree, state.get(module))
            else:
                state.pop(module, None)
        STATE.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
        print(f"mutmut exit status {status} after {wall:.0f} s (log: {RUN_LOG.relative_to(ROOT)})")
    elif not args.summary_only:
        print("nothing changed since the last run (--full to run every module again)")
    accepted = accepted_survivors()
    scores = []
    for module in args.modules:
        score = score_module(module, accepted)
        score.ran = module in due
        scores.append(score)
        print(_row(score), flush=True)
    print(_row(_total(scores)))
    for s in scores:
        if s.stale_accepted:
            print(f"accepted but not a survivor of {s.module} (remove from {SURVIVORS.name}):")
            print("".join(f"  {name}\n" for name in s.stale_accepted), end="")
    failing = [s.module for s in scores if s.score < THRESHOLD or s.not_run or not s.mutants]
    if failing:
        print(f"under {THRESHOLD:.0%} of logic mutants killed, or not run: {', '.join(failing)}")
        print("list survivors: .venv/bin/mutmut results; inspect: .venv/bin/mutmut show NAME")
        return 1
    return 0


COUNTS = ("mutants", "messages", "killed", "survived", "no_tests", "accepted", "not_run")


def _total(scores: list[ModuleScore]) -> ModuleScore:
    total = ModuleScore("all")
    for s in scores:
        for name in COUNTS:
            setattr(total, name, getattr(total, name) + getattr(s, name))
        total.seconds += s.seconds
    total.ran = any(s.ran for s in scores)
    return total


def _row(s: ModuleScore) -> str:
    return (
        f"{s.module:32} mutants {s.mutants:4}  logic {s.logic:4}  killed {s.killed:4}  "
        f"survived {s.survived:3}  no-tests {s.no_tests:3}  accepted {s.accepted:2}  "
        f"raw {s.raw:6.1%}  score {s.score:6.1%}  {s.seconds:5.0f} s  "
        f"{'run' if s.ran else 'cached'}" + (f"  NOT RUN {s.not_run}" if s.not_run else "")
    )


if __name__ == "__main__":
    sys.exit(main())
