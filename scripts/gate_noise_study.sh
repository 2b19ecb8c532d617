#!/usr/bin/env bash
# Noise study of the memory gate: run `harness gate` N times on the unchanged tree (expect N/N
# pass, exit 0) and N times with the injected regression REFAPP_CONTEXT_WINDOW=200 (the optimized
# design keeps 200 messages of context instead of 20; expect N/N fail, exit 1).
#
#   scripts/gate_noise_study.sh [N] [extra harness gate args...]     (default N=10)
#
# Uses the committed baseline (gate.baseline of loadtest.toml) and writes the gate's run
# directories under a temporary directory, printed at the end with a summary: exit-code counts,
# wall time per run, and the closest any unchanged run came to its limit (max change/limit).
set -uo pipefail
cd "$(dirname "$0")/.."
N="${1:-10}"
shift || true
HARNESS="${HARNESS:-.venv/bin/harness}"
OUT="$(mktemp -d -t gate-noise.XXXXXX)"
LOG="$OUT/runs.tsv"
printf 'mode\trun\texit\twall_s\trun_dir\n' >"$LOG"

for mode in unchanged regression; do
  for i in $(seq 1 "$N"); do
    dir="$OUT/$mode-$i"
    start=$(date +%s.%N)
    if [ "$mode" = regression ]; then
      REFAPP_CONTEXT_WINDOW=200 "$HARNESS" gate --out "$dir" "$@" >"$dir.log" 2>&1
    else
      env -u REFAPP_CONTEXT_WINDOW "$HARNESS" gate --out "$dir" "$@" >"$dir.log" 2>&1
    fi
    rc=$?
    end=$(date +%s.%N)
    wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    run_dir=$(find "$dir" -mindepth 1 -maxdepth 1 -type d | head -n 1)
    printf '%s\t%s\t%s\t%s\t%s\n' "$mode" "$i" "$rc" "$wall" "$run_dir" >>"$LOG"
    printf '%-10s run %2d: exit %s in %6s s\n' "$mode" "$i" "$rc" "$wall"
  done
done

.venv/bin/python - "$LOG" <<'PY'
import csv, json, sys
from collections import Counter
from pathlib import Path

runs = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
for mode, expect in (("unchanged", "0"), ("regression", "1")):
    sel = [r for r in runs if r["mode"] == mode]
    codes = Counter(r["exit"] for r in sel)
    walls = sorted(float(r["wall_s"]) for r in sel)
    ok = codes.get(expect, 0)
    print(f"{mode}: {ok}/{len(sel)} exit {expect}  (exit codes {dict(codes)}); wall s "
          f"min {walls[0]:.1f} median {walls[len(walls) // 2]:.1f} max {walls[-1]:.1f}")
    worst, regressed = [], Counter()
    for r in sel:
        gate = Path(r["run_dir"]) / "gate.json"
        if not r["run_dir"] or not gate.exists():
            continue
        for v in json.loads(gate.read_text())["verdicts"]:
            if v["change"] is not None and v["limit"]:
                worst.append((v["change"] / v["limit"], v["metric"], v["design"], v["labels"]))
            if v["status"] == "regression":
                regressed[(v["metric"], v["design"], json.dumps(v["labels"], sort_keys=True))] += 1
    if worst and mode == "unchanged":
        for metric in sorted({w[1] for w in worst}):
            w = max(x for x in worst if x[1] == metric)
            print(f"  {metric}: closest to its limit, change/limit = {w[0]:+.2f} ({w[2]} {w[3]})")
    for (metric, design, labels), n in sorted(regressed.items()):
        print(f"  regressed in {n}/{len(sel)} runs: {metric} {design} {labels}")
PY
echo "logs and run directories: $OUT"
