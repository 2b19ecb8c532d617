"""How often the memory gate catches regressions of known size, and how often it cries wolf.

    python scripts/gate_sensitivity.py [--runs 10] [--quick-runs 5] [--parallel 2] [--out DIR]

Plants regressions into the optimized design through the reference app's test-only knobs
(reference_app.planted) and runs the real `harness gate` on each, against a baseline made from
the same tree (optimized design only, so each run takes half the time of `make gate`):

- a retained leak of 256 B, 1 KiB and 8 KiB per request, on one endpoint at a time
  (REFAPP_PLANT_LEAK=endpoint:bytes);
- an extra transient allocation of +5%, +10% and +25% of the optimized POST /chat peak (the
  smallest of its peaks in the baseline, so every chat series grows by at most that share)
  during every POST /chat (REFAPP_PLANT_TRANSIENT=chat:bytes);
- the unchanged tree.

`--runs` runs for the unchanged tree and the sizes the gate's targets name (1 KiB leaks, +10%),
`--quick-runs` for the other sizes. A planted run counts as caught when the gate exits 1 and the
regressed series include the planted endpoint; it counts as named when the explanation of one
of them points at reference_app/planted.py. Prints a Markdown table (docs/gate.md) and writes
sensitivity.json into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DESIGN = "optimized"
LEAKS = (256, 1024, 8192)
TRANSIENTS = (0.05, 0.10, 0.25)
ENDPOINTS = ("chat", "chat_stream", "history")
PLANTED_FILE = "reference_app/planted.py"


@dataclass(frozen=True)
class Condition:
    name: str
    env: dict[str, str]
    endpoint: str  # "" for the unchanged tree
    metric: str  # the gated metric the plant should move
    runs: int


@dataclass
class Outcome:
    condition: str
    exit_codes: list[int] = field(default_factory=list)
    caught: int = 0
    named: int = 0
    seconds: list[float] = field(default_factory=list)
    worst_ratio: float = 0.0  # unchanged runs: the largest change / limit of any series
    errors: int = 0  # runs whose probe failed (no verdict)


def study_config(workdir: Path) -> Path:
    """loadtest.toml with only the optimized design and a baseline in `workdir`."""
    raw = (ROOT / "loadtest.toml").read_text()
    parsed = tomllib.loads(raw)
    if DESIGN not in parsed["run"]["designs"]:
        raise SystemExit(f"loadtest.toml has no design {DESIGN!r}")
    lines = []
    for line in raw.splitlines():
        if line.startswith("designs = "):
            line = f'designs = ["{DESIGN}"]'
        elif line.startswith("baseline = "):
            line = f'baseline = "{workdir / "baseline.json"}"'
        lines.append(line)
    path = workdir / "study.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def gate(config: Path, out: Path, env: dict[str, str], update: bool = False) -> tuple[int, float]:
    argv = [sys.executable, "-m", "harness", "gate", "--config", str(config), "--out", str(out)]
    if update:
        argv.append("--update-baseline")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REFAPP_")}
    t0 = time.monotonic()
    done = subprocess.run(
        argv, cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=900
    )
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"harness gate exited {done.returncode} ({' '.join(argv)})")
    return done.returncode, time.monotonic() - t0


def latest_gate_json(out: Path) -> dict[str, Any] | None:
    """The run's gate.json; None when the gate stopped before comparing (its probe failed)."""
    runs = sorted(p for p in out.iterdir() if (p / "gate.json").exists())
    if not runs:
        return None
    data: dict[str, Any] = json.loads((runs[-1] / "gate.json").read_text())
    return data


def min_chat_peak(baseline: Path) -> float:
    rows = json.loads(baseline.read_text())["rows"]
    peaks = [
        r["value"]
        for r in rows
        if r["metric"] == "alloc_peak_bytes"
        and r["design"] == DESIGN
        and r["labels"].get("endpoint") == "chat"
    ]
    return float(min(peaks))


def conditions(chat_peak: float, runs: int, quick_runs: int) -> list[Condition]:
    out = [Condition("unchanged", {}, "", "", runs)]
    for size in LEAKS:
        for endpoint in ENDPOINTS:
            out.append(
                Condition(
                    f"leak {size} B/request on {endpoint}",
                    {"REFAPP_PLANT_LEAK": f"{endpoint}:{size}"},
                    endpoint,
                    "retained_bytes_per_request",
                    runs if size == 1024 else quick_runs,
                )
            )
    for share in TRANSIENTS:
        out.append(
            Condition(
                f"transient +{share:.0%} of the chat peak ({round(share * chat_peak)} B)",
                {"REFAPP_PLANT_TRANSIENT": f"chat:{round(share * chat_peak)}"},
                "chat",
                "alloc_peak_bytes",
                runs if share == 0.10 else quick_runs,
            )
        )
    return out


def judge(condition: Condition, result: dict[str, Any], outcome: Outcome) -> None:
    verdicts = result["verdicts"]
    if not condition.endpoint:
        ratios = [
            v["change"] / v["limit"]
            for v in verdicts
            if v.get("limit") and v.get("change") is not None
        ]
        outcome.worst_ratio = max([outcome.worst_ratio, *ratios])
        return
    hits = [
        v
        for v in verdicts
        if v["status"] == "regression"
        and v["metric"] == condition.metric
        and v["labels"].get("endpoint") == condition.endpoint
    ]
    if result["exit_code"] == 1 and hits:
        outcome.caught += 1
        # "in", not startswith: a service installed elsewhere shows its absolute path
        if any(PLANTED_FILE in s["location"] for v in hits for s in v.get("sites", [])):
            outcome.named += 1


def run_dir_of(condition: Condition, out: Path, i: int) -> Path:
    return out / f"{condition.name.split(' (')[0].replace(' ', '_').replace('/', '-')}_{i}"


def judge_again(condition: Condition, out: Path) -> Outcome:
    """The outcome of runs already made (--judge-only): exit codes and times from gate.json and
    run.json, verdicts judged by this script's current rules."""
    outcome = Outcome(condition.name)
    for i in range(condition.runs):
        runs = sorted(p for p in run_dir_of(condition, out, i).glob("*") if p.is_dir())
        if not runs:
            continue
        meta = json.loads((runs[-1] / "run.json").read_text())
        outcome.seconds.append(round(sum(p["duration_s"] for p in meta["phases"]), 1))
        result = latest_gate_json(run_dir_of(condition, out, i))
        if result is None:
            outcome.exit_codes.append(1)
            outcome.errors += 1
            continue
        outcome.exit_codes.append(int(result["exit_code"]))
        judge(condition, result, outcome)
    return outcome


def run_condition(condition: Condition, config: Path, out: Path) -> Outcome:
    outcome = Outcome(condition.name)
    for i in range(condition.runs):
        target = run_dir_of(condition, out, i)
        target.mkdir(parents=True, exist_ok=True)
        code, seconds = gate(config, target, condition.env)
        outcome.exit_codes.append(code)
        outcome.seconds.append(round(seconds, 1))
        result = latest_gate_json(target)
        if result is None:  # the probe failed: an exit 1 that is no verdict (counted apart)
            outcome.errors += 1
        else:
            judge(condition, result, outcome)
        print(f"  {condition.name} run {i + 1}: exit {code} in {seconds:.0f} s", flush=True)
    return outcome


def table(rows: list[tuple[Condition, Outcome]]) -> str:
    lines = [
        "| planted | runs | caught (exit 1, the planted series) | named the planted line "
        "| false alarms | wall time per run |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for condition, o in rows:
        times = f"{min(o.seconds):.0f}-{max(o.seconds):.0f} s" if o.seconds else "-"
        if condition.endpoint:
            lines.append(
                f"| {condition.name} | {len(o.exit_codes)} | {o.caught}/{len(o.exit_codes)} "
                f"| {o.named}/{len(o.exit_codes)} | - | {times} |"
            )
        else:
            alarms = sum(1 for c in o.exit_codes if c != 0) - o.errors
            lines.append(
                f"| nothing (unchanged tree) | {len(o.exit_codes)} | - | - "
                f"| {alarms}/{len(o.exit_codes)} (closest series at {o.worst_ratio:.2f} of "
                f"its limit) | {times} |"
            )
        if o.errors:
            lines.append(f"| (of which the probe failed, no verdict) | {o.errors} | | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--quick-runs", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=2, help="gate runs at the same time")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--judge-only",
        action="store_true",
        help="make no run: judge the runs already in --out again and print the table",
    )
    args = parser.parse_args(argv)
    if args.judge_only:
        if args.out is None:
            raise SystemExit("--judge-only needs --out")
        todo = conditions(min_chat_peak(args.out / "baseline.json"), args.runs, args.quick_runs)
        print(table([(c, judge_again(c, args.out)) for c in todo]))
        return 0
    out = args.out or Path(tempfile.mkdtemp(prefix="gate-sensitivity-"))
    out.mkdir(parents=True, exist_ok=True)
    config = study_config(out)
    print(f"baseline from this tree ({DESIGN} only) -> {out / 'baseline.json'}", flush=True)
    gate(config, out / "baseline-run", {}, update=True)
    todo = conditions(min_chat_peak(out / "baseline.json"), args.runs, args.quick_runs)
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        outcomes = list(pool.map(lambda c: run_condition(c, config, out), todo))
    rows = list(zip(todo, outcomes, strict=True))
    (out / "sensitivity.json").write_text(
        json.dumps([{"condition": asdict(c), "outcome": asdict(o)} for c, o in rows], indent=2)
    )
    print(table(rows))
    print(f"\nraw: {out / 'sensitivity.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
