"""Fresh baseline -> gate pairs on an unchanged tree: how often the memory gate cries wolf.

    python scripts/gate_false_alarms.py [--pairs 10] [--services ref,items,flask,cache]
                                        [--plant-leak BYTES [--shared-baseline]]
                                        [--parallel 1] [--out DIR]

For each service, each pair runs the real `harness gate --update-baseline` into a baseline of
its own, then `harness gate` against it, on the same tree: every exit 1 is a false alarm. The
services: the reference optimized design (loadtest.toml, optimized only), examples/items_service,
examples/flask_service and examples/cache_service. Per pair it records the exit status, the
wall time of both runs (contended when others share the machine: say so) and the closest
series: the largest `fraction_of_limit` in gate.json (how far above the highest value the
baseline saw, as a share of its limit; 1 or more fails).

--plant-leak BYTES makes the second run of each pair keep BYTES per request on one endpoint
(reference: REFAPP_PLANT_LEAK=chat:BYTES; Flask: a WSGI wrapper, planted_notes.py, written
next to the example, keeps BYTES per GET /notes/1): then every exit 1 with that endpoint's
retained_bytes_per_request regressed is a catch, and "named" says whether its explanation
points at the planted line. Other services are skipped with --plant-leak. With
--shared-baseline, each service's baseline is made once (unplanted) and every pair only runs
the planted gate against it: half the time, and what a catch needs (a fresh baseline per pair
is what a false alarm needs).

Results are appended to DIR/false_alarms.jsonl (plant.jsonl) as they come (a long study
survives an interruption); a Markdown table for docs/gate.md is printed at the end, and
`--table LEDGER...` prints the table of ledgers already written (a study run in batches).
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("ref", "items", "flask", "cache")
EXAMPLE_CONFIGS = {
    "items": "examples/items_service/loadtest.toml",
    "flask": "examples/flask_service/loadtest.toml",
    "cache": "examples/cache_service/loadtest.toml",
}
PLANTED = {"ref": ("chat", "reference_app/planted.py"), "flask": ("get", "planted_notes.py")}
PLANTED_NOTES = '''"""notes_app with a planted leak: every GET /notes/1 keeps PLANT_BYTES."""

import os

from notes_app import app as notes

KEPT: list[bytearray] = []
PLANT_BYTES = int(os.environ.get("PLANT_BYTES", "256"))


def app(environ, start_response):  # type: ignore[no-untyped-def]
    if environ.get("PATH_INFO") == "/notes/1":
        KEPT.append(bytearray(PLANT_BYTES - 57))  # the planted line: 57 B is a bytearray's own
    return notes(environ, start_response)
'''


@dataclass
class Pair:
    service: str
    index: int
    exit_code: int
    closest: float | None  # the largest fraction_of_limit of the second run
    closest_series: str
    seconds: float
    caught: bool = False
    named: bool = False


def reference_config(workdir: Path) -> Path:
    """loadtest.toml with only the optimized design."""
    raw = (ROOT / "loadtest.toml").read_text()
    if "optimized" not in tomllib.loads(raw)["run"]["designs"]:
        raise SystemExit("loadtest.toml has no design 'optimized'")
    lines = ['designs = ["optimized"]' if ln.startswith("designs = ") else ln
             for ln in raw.splitlines()]  # fmt: skip
    path = workdir / "ref.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def planted_flask_config() -> Path:
    """The Flask example's config serving planted_notes:app (written beside the example)."""
    folder = ROOT / "examples" / "flask_service"
    (folder / "planted_notes.py").write_text(PLANTED_NOTES)
    raw = (folder / "loadtest.toml").read_text().replace('"notes_app:app"', '"planted_notes:app"')
    path = folder / "planted.toml"
    path.write_text(raw)
    return path


def gate(config: Path, baseline: Path, out: Path, env: dict[str, str], update: bool) -> int:
    argv = [sys.executable, "-m", "harness", "gate", "--config", str(config),
            "--baseline", str(baseline), "--out", str(out)]  # fmt: skip
    if update:
        argv.append("--update-baseline")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REFAPP_")}
    done = subprocess.run(
        argv, cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=1800
    )
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
    return done.returncode


def last_gate_json(out: Path) -> dict[str, Any] | None:
    runs = sorted(p for p in out.iterdir() if (p / "gate.json").exists())
    return json.loads((runs[-1] / "gate.json").read_text()) if runs else None


def closest(verdicts: list[dict[str, Any]]) -> tuple[float | None, str]:
    best: tuple[float | None, str] = (None, "")
    for v in verdicts:
        f = v.get("fraction_of_limit")
        if f is not None and (best[0] is None or f > best[0]):
            labels = ",".join(f"{k}={x}" for k, x in sorted(v["labels"].items()))
            best = (float(f), f"{v['metric']}{{{labels}}}")
    return best


def one_pair(
    service: str,
    index: int,
    config: Path,
    workdir: Path,
    plant: int,
    base_config: Path,
    shared_baseline: Path | None = None,
) -> Pair:
    folder = workdir / f"{service}-{index}"
    folder.mkdir(parents=True, exist_ok=True)
    baseline = shared_baseline or folder / "baseline.json"
    t0 = time.monotonic()
    if shared_baseline is None and gate(base_config, baseline, folder, {}, update=True) != 0:
        return Pair(service, index, 2, None, "baseline run failed", time.monotonic() - t0)
    env: dict[str, str] = {}
    if plant and service == "ref":
        env["REFAPP_PLANT_LEAK"] = f"chat:{plant}"
    if plant and service == "flask":
        env["PLANT_BYTES"] = str(plant)
    code = gate(config, baseline, folder, env, update=False)
    result = last_gate_json(folder)
    if result is None:  # the probe itself failed (exit 1 without verdicts): an error, not a miss
        return Pair(service, index, 2, None, "gate run failed", time.monotonic() - t0)
    verdicts = list(result.get("verdicts") or [])
    fraction, series = closest(verdicts)
    pair = Pair(service, index, code, fraction, series, time.monotonic() - t0)
    if plant:
        endpoint, where = PLANTED[service]
        hits = [v for v in verdicts if v["status"] == "regression"
                and v["metric"] == "retained_bytes_per_request"
                and v["labels"].get("endpoint") == endpoint]  # fmt: skip
        pair.caught = code == 1 and bool(hits)
        pair.named = any(where in s["location"] for v in hits for s in v.get("sites") or [])
    return pair


def errored(pair: Pair) -> bool:
    """A run that failed before judging (no verdicts): neither a false alarm nor a miss. Exit 1
    without any verdict is how an older version of this script recorded a failed probe."""
    return pair.exit_code not in (0, 1) or (pair.exit_code == 1 and pair.closest is None)


def table(pairs: list[Pair], plant: int) -> str:
    lines = []
    if plant:
        lines += [f"| service | pairs | caught ({plant} B/request) | named the planted line |",
                  "|---|---:|---:|---:|"]  # fmt: skip
    else:
        lines += ["| service | pairs | false alarms | closest series (fraction of its limit) |"
                  " wall time per pair |", "|---|---:|---:|---|---|"]  # fmt: skip
    for service in SERVICES:
        mine = [p for p in pairs if p.service == service]
        if not mine:
            continue
        done = [p for p in mine if not errored(p)]
        errors = len(mine) - len(done)
        if plant:
            caught = sum(p.caught for p in done)
            named = sum(p.named for p in done)
            note = f" ({errors} errors)" if errors else ""
            lines.append(
                f"| {service} | {len(done)}{note} | {caught}/{len(done)} | {named}/{len(done)} |"
            )
            continue
        alarms = sum(p.exit_code == 1 for p in done)
        near = max((p for p in done if p.closest is not None), key=lambda p: p.closest or 0.0,
                   default=None)  # fmt: skip
        where = f"{near.closest:.2f} ({near.closest_series})" if near and near.closest else "-"
        secs = [p.seconds for p in done] or [0.0]
        note = f" ({errors} errors)" if errors else ""
        lines.append(
            f"| {service} | {len(done)}{note} | {alarms}/{len(done)} | {where} | "
            f"{min(secs):.0f}-{max(secs):.0f} s |"
        )
    return "\n".join(lines)


def ledger_table(paths: list[Path], plant: int) -> str:
    """The table of pairs already recorded in ledgers (several runs of this script)."""
    pairs = [Pair(**json.loads(line)) for p in paths for line in p.read_text().splitlines()]
    return table(pairs, plant)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--services", default=",".join(SERVICES))
    parser.add_argument("--plant-leak", type=int, default=0, metavar="BYTES")
    parser.add_argument("--shared-baseline", action="store_true")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--table", type=Path, nargs="+", metavar="JSONL",
                        help="print the table of these ledgers only")  # fmt: skip
    args = parser.parse_args()
    if args.table:
        print(ledger_table(args.table, args.plant_leak))
        return 0
    services = [s for s in args.services.split(",") if s]
    unknown = set(services) - set(SERVICES)
    if unknown:
        raise SystemExit(f"unknown services {sorted(unknown)} (known: {', '.join(SERVICES)})")
    if args.plant_leak:
        services = [s for s in services if s in PLANTED]
    workdir = args.out or Path(tempfile.mkdtemp(prefix="gate-false-alarms-"))
    workdir.mkdir(parents=True, exist_ok=True)
    configs: dict[str, tuple[Path, Path]] = {}
    for service in services:
        base = reference_config(workdir) if service == "ref" else ROOT / EXAMPLE_CONFIGS[service]
        planted = planted_flask_config() if args.plant_leak and service == "flask" else base
        configs[service] = (planted, base)
    shared: dict[str, Path] = {}
    if args.plant_leak and args.shared_baseline:
        for service in services:  # one unplanted baseline per service, made first
            shared[service] = workdir / f"{service}-baseline" / "baseline.json"
            shared[service].parent.mkdir(parents=True, exist_ok=True)
            if gate(configs[service][1], shared[service], shared[service].parent, {}, True) != 0:
                raise SystemExit(f"{service}: the baseline run failed")
    ledger = workdir / ("plant.jsonl" if args.plant_leak else "false_alarms.jsonl")
    jobs = [(s, i) for i in range(1, args.pairs + 1) for s in services]
    pairs: list[Pair] = []

    def run(job: tuple[str, int]) -> Pair:
        service, index = job
        config, base = configs[service]
        pair = one_pair(service, index, config, workdir, args.plant_leak, base, shared.get(service))
        with ledger.open("a") as handle:
            handle.write(json.dumps(asdict(pair)) + "\n")
        print(json.dumps(asdict(pair)), flush=True)
        return pair

    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        pairs = list(pool.map(run, jobs))
    print(table(pairs, args.plant_leak))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
