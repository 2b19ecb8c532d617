"""Does the sizing model predict RSS at a known number of requests in flight?

The proof's load gives a mean in flight per step, but RSS is a high-water mark: it keeps the
most the run ever had in flight, which the mean does not say. This sends bursts of exactly k
of the probe recipe's request `--request` in parallel (for the reference designs at the
seeded store's largest users, the whales; else at `--max-units` after the recipe's setup)
to one worker, three times per k, and prints the RSS it keeps past its idle RSS, next to the
model's figure for k in flight from a `harness size` run's sizing.json:

    idle + data + retained + k x peak per request   (no headroom)

    python scripts/sizing_bursts.py RUN_DIR naive --request chat --bursts 1 2 5
    python scripts/sizing_bursts.py RUN_DIR items --request list --max-units 20000 \
        --config examples/items_service/loadtest.toml

Load goes to 127.0.0.1 only: at most 3 x sum(bursts) requests.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from harness import config as config_mod
from harness.config.probe_recipe import render_request
from harness.sizing.measure import SETTLE_S, apply_data, send, tree_rss_bytes
from harness.stack.targets import read_manifest, running_stack

REPS = 3
MIB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a `harness size` run directory")
    parser.add_argument("design")
    parser.add_argument("--request", required=True, help="a probe request's name (the peak's)")
    parser.add_argument("--bursts", type=int, nargs="+", default=[1, 2, 5])
    parser.add_argument("--max-units", type=int, default=0, help="else the whales")
    parser.add_argument("--config", type=Path)
    args = parser.parse_args()
    cfg = config_mod.load(args.config, {})
    target = cfg.target(args.design)
    recipe = target.probe
    assert recipe is not None, f"{args.design} has no probe recipe"
    template = next(r.template for r in recipe.requests if r.name == args.request)
    sizing = json.loads((args.run / args.design / "size" / "sizing.json").read_text())
    base = sum(t["bytes"] for t in sizing["terms"] if t["name"] != "in_flight")
    seed = args.run / args.design / "size" / "data" / "seed"
    for k in args.bursts:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            shutil.copytree(seed, data)
            manifest = read_manifest(data) if (data / "manifest.json").exists() else {}
            whales = sorted(
                (u for u in manifest.get("users", []) if u.get("whale")),
                key=lambda u: -int(u["history_len"]),
            )
            with running_stack(target, data, Path(tmp) / "logs", cfg.upstream) as stack:
                time.sleep(SETTLE_S)
                idle = tree_rss_bytes(stack.app.pid)
                if args.max_units:
                    assert not apply_data(stack.base_url, target, args.max_units)
                    users = [recipe.user] * k
                else:
                    users = [str(whales[i % len(whales)]["user_id"]) for i in range(k)]

                def one(user: str) -> int:
                    values = {**recipe.values(args.max_units, 0, {}), "user": user}
                    with httpx.Client(base_url=stack.base_url, timeout=120.0) as client:
                        return send(client, render_request(template, values)).status_code

                kept = []
                for _ in range(REPS):
                    with ThreadPoolExecutor(k) as pool:
                        codes = list(pool.map(one, users))
                    time.sleep(SETTLE_S)
                    kept.append(tree_rss_bytes(stack.app.pid) - idle)
        measured = idle + max(kept)
        model = base + k * sizing["peak_bytes"]
        kept_mib = [round(x / MIB, 1) for x in kept]
        print(
            f"{args.design} k={k}: idle {idle / MIB:.1f} MiB, kept {kept_mib}"
            f" MiB (statuses {sorted(set(codes))}); measured {measured / MIB:.1f} MiB, model "
            f"{model / MIB:.1f} MiB ({(model - measured) / measured:+.0%})"
        )


if __name__ == "__main__":
    main()
