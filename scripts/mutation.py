"""Mutation testing of the pure modules, one module at a time (`make mutation`).

    python scripts/mutation.py [--max-children N] [--summary-only] [MODULE ...]

Runs mutmut (configured in pyproject.toml, [tool.mutmut]) on each module in MODULES (or the
ones named), then prints, per module: mutants, logic mutants, killed, survived, accepted
survivors (tests/mutation-survivors.txt), the logic score and the wall time. Exits 1 when a
module's logic score is under THRESHOLD.

A mutant is a *message* mutant when all it changes is the text of a message: a piece of an
f-string, or a string literal of prose (whitespace and at least MESSAGE_LENGTH characters). A
key such as "design" or a status such as "not run" is logic. Message mutants are counted but
not scored.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
SURVIVORS = ROOT / "tests" / "mutation-survivors.txt"
THRESHOLD = 0.90
MESSAGE_LENGTH = 16

MODULES = [
    "harness/analysis/headline.py",
    "harness/analysis/integrity.py",
    "harness/analysis/load.py",
    "harness/analysis/probe.py",
    "harness/analysis/profile.py",
    "harness/report/_frames.py",
    "harness/report/_units.py",
    "harness/analysis/leak.py",
    "harness/analysis/sites.py",
    "harness/analysis/capacity.py",
    "harness/gate/_thresholds.py",
    "harness/gate/_verdicts.py",
    "harness/gate/_baseline.py",
    "harness/gate/_explain.py",
    "harness/gate/_format.py",
    "harness/gate/_render.py",
    "harness/probe_recipe.py",
    "harness/history/_steps.py",  # the history's step detection
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
    seconds: float = 0.0

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


def score_module(module: str, accepted: set[str]) -> ModuleScore:
    meta_path = MUTANTS / f"{module}.meta"
    result = ModuleScore(module)
    if not meta_path.exists():
        return result
    exit_codes: dict[str, int | None] = json.loads(meta_path.read_text(encoding="utf-8"))[
        "exit_code_by_key"
    ]
    functions = _functions(MUTANTS / module)
    prefix = dotted(module) + "."
    for key, code in exit_codes.items():
        result.mutants += 1
        name = key.removeprefix(prefix)
        original = functions.get(name.rsplit("__mutmut_", 1)[0] + "__mutmut_orig")
        mutant = functions.get(name)
        if original is not None and mutant is not None and _is_message_only(original, mutant):
            result.messages += 1
        elif code in KILLED_CODES:
            result.killed += 1
        elif key in accepted:
            result.accepted += 1
        elif code == SURVIVED_CODE:
            result.survived += 1
        elif code in NO_TESTS_CODES:
            result.no_tests += 1
        else:  # not checked, suspicious, skipped: not killed
            result.survived += 1
    return result


def run_module(module: str, max_children: int) -> float:
    MUTANTS.mkdir(exist_ok=True)
    log = MUTANTS / (module.replace("/", "_") + ".log")
    mutmut = Path(sys.executable).with_name("mutmut")
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        subprocess.run(
            [str(mutmut), "run", "--max-children", str(max_children), dotted(module) + ".*"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=MODULES)
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--summary-only", action="store_true", help="score the last run")
    args = parser.parse_args(argv)
    accepted = accepted_survivors()
    scores = []
    for module in args.modules:
        seconds = 0.0 if args.summary_only else run_module(module, args.max_children)
        score = score_module(module, accepted)
        score.seconds = seconds
        scores.append(score)
        print(_row(score), flush=True)
    failing = [s.module for s in scores if s.score < THRESHOLD]
    if failing:
        print(f"under {THRESHOLD:.0%} of logic mutants killed: {', '.join(failing)}")
        print("list survivors: .venv/bin/mutmut results; inspect: .venv/bin/mutmut show NAME")
        return 1
    return 0


def _row(s: ModuleScore) -> str:
    return (
        f"{s.module:32} mutants {s.mutants:4}  logic {s.logic:4}  killed {s.killed:4}  "
        f"survived {s.survived:3}  no-tests {s.no_tests:3}  accepted {s.accepted:2}  "
        f"raw {s.raw:6.1%}  score {s.score:6.1%}  {s.seconds:5.0f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
