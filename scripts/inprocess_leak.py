"""What a request keeps for good, measured the slow, plain way: 2,000 requests in-process.

    python scripts/inprocess_leak.py --config examples/items_service/loadtest.toml [--design D]
                                     [--requests 2000] [--warmup 20] [--size N]
                                     [--compare RUN_DIR]

The reference the probe's `retained_bytes_per_request` is checked against (docs/gate.md,
"Leak rate"): the target's app (`python_app`, ASGI or WSGI) is imported into this process and
driven through httpx's in-process ASGI transport (a WSGI app through a2wsgi, as harness.serve
serves it), request after request, under tracemalloc, with
the target's own probe recipe (the same rendered requests, the same setup after a request that
changes the size). After --warmup requests, traced memory is read after a `gc.collect()` every
100 requests; the first 200 requests after the warm-up are the fill (what caches took once) and
the rate is the least-squares slope of the readings after them. An endpoint whose requests are
followed by the setup has the rate of the setup alone subtracted, as the probe does; a setup
command (a subprocess per request) is not re-run here, so such endpoints run without it.

--compare RUN_DIR reads that run's summary.json (a `harness probe` or `harness gate` run of the
same config) and prints both figures and their difference per endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EVERY = 100
FILL = 200


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--design")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--size", type=int, help="default: the probe's leak-run size")
    parser.add_argument("--compare", type=Path, metavar="RUN_DIR")
    args = parser.parse_args()

    from harness import config as config_mod
    from harness.config.probe_recipe import render_request
    from harness.phases.probe import leak_history_len

    cfg = config_mod.load(args.config)
    design = args.design or cfg.designs[0]
    target = cfg.target(design)
    recipe = target.probe
    app_spec = _app_of(list(target.command or ()))
    if recipe is None or app_spec is None:
        raise SystemExit(f"{design}: needs a probe recipe and an app served by harness.serve")
    size = args.size if args.size is not None else leak_history_len(recipe.sizes or [0, 1000])
    cwd = Path(target.cwd or ".").resolve()
    data_dir = Path(tempfile.mkdtemp(prefix="inprocess-"))
    base = {"python": sys.executable, "host": "127.0.0.1", "port": 0, "data_dir": str(data_dir),
            "upstream_url": "", "workers": 1}  # fmt: skip
    for key, value in (target.env or {}).items():
        os.environ[key] = value.format(**base)
    os.chdir(cwd)
    sys.path.insert(0, str(cwd))
    module_name, _, attr = app_spec.partition(":")
    app = getattr(importlib.import_module(module_name), attr)
    from harness.serve import as_asgi

    # WSGI apps through a2wsgi, as harness.serve serves them: the same stack but uvicorn
    send = _sender(as_asgi(app, "auto"), wsgi=False)
    counter = [0]

    def setup() -> None:
        if recipe.setup is None:
            return
        values = recipe.values(size, counter[0], base)
        if recipe.setup.request is not None:
            r = render_request(recipe.setup.request, values)
            send(r.method, r.path, r.headers, r.json, r.content)
        elif recipe.setup.command is not None:
            argv = [part.format(**values) for part in recipe.setup.command]
            subprocess.run(argv, cwd=cwd, check=True, timeout=300, capture_output=True)

    tracemalloc.start(1)
    setup()
    figures: dict[str, dict[str, float]] = {}
    resets_rate = 0.0
    endpoints: list[tuple[str, Any]] = [(r.name, r) for r in recipe.requests]
    if recipe.setup is not None and recipe.setup.request is not None:
        endpoints.append(("(setup alone)", None))
    for name, request in endpoints:

        def one(request: Any = request) -> None:
            counter[0] += 1
            if request is None:
                setup()
                return
            r = render_request(request.template, recipe.values(size, counter[0], base))
            send(r.method, r.path, r.headers, r.json, r.content)
            if request.reset_after and recipe.setup is not None and recipe.setup.request:
                setup()

        figures[name] = measure(one, args.warmup, args.requests)
        if request is None:
            resets_rate = figures[name]["rate"]
    for name, request in endpoints:
        if request is not None and request.reset_after and recipe.setup is not None:
            figures[name]["rate"] -= resets_rate
    print(f"{design} at size {size}: {args.requests} requests in-process after {args.warmup}")
    probe = _probe_figures(args.compare) if args.compare else {}
    for name, f in figures.items():
        line = f"  {name}: fill {f['fill']:,.0f} B in the first {FILL}, then {f['rate']:.1f} B/req"
        if name in probe:
            line += f"; probe {probe[name]:.1f} B/req (difference {probe[name] - f['rate']:+.1f})"
        print(line)
    return 0


def measure(one: Callable[[], None], warmup: int, requests: int) -> dict[str, float]:
    for _ in range(warmup):
        one()
    xs, ys = [], []
    for i in range(requests + 1):
        if i % EVERY == 0:
            gc.collect()
            xs.append(i)
            ys.append(tracemalloc.get_traced_memory()[0])
        if i < requests:
            one()
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    after = x >= FILL
    rate = float(np.polyfit(x[after], y[after], 1)[0])
    fill = float(y[after][0] - y[0])
    return {"rate": rate, "fill": fill}


def _sender(app: Any, wsgi: bool) -> Callable[..., None]:
    base_url = "http://inprocess"
    if wsgi:
        client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url=base_url)

        def send_sync(method: str, path: str, headers: Any, body: Any, content: Any) -> None:
            client.request(method, path, headers=headers, json=body, content=content)

        return send_sync
    loop = asyncio.new_event_loop()
    aclient = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)

    def send_async(method: str, path: str, headers: Any, body: Any, content: Any) -> None:
        loop.run_until_complete(
            aclient.request(method, path, headers=headers, json=body, content=content)
        )

    return send_async


def _app_of(command: list[str]) -> str | None:
    """'module:app' of a target served by `python -m harness.serve module:app ...`."""
    if "harness.serve" in command:
        following = command[command.index("harness.serve") + 1 :]
        return next((part for part in following if ":" in part and "{" not in part), None)
    return None


def _probe_figures(run_dir: Path) -> dict[str, float]:
    rows = json.loads((run_dir / "summary.json").read_text())
    rows = rows if isinstance(rows, list) else rows.get("rows", [])
    return {
        r["labels"]["endpoint"]: float(r["value"])
        for r in rows
        if r["metric"] == "retained_bytes_per_request" and "endpoint" in r["labels"]
    }


if __name__ == "__main__":
    raise SystemExit(main())
