"""The pytest plugin's peaks and slopes next to a `harness probe` run of the same target.

    .venv/bin/harness probe --config examples/items_service/loadtest.toml --design items \\
        --reps 5 --warmup 10
    .venv/bin/python scripts/pytest_plugin_agreement.py --run reports/<run-id>

The run directory says which target it probed (items, notes or optimized); the plugin measures
the same requests at the same sizes in this process (peak_growth: `--reps` after `--warmup`),
the optimized design with the LLM emulator in its own process on loopback. Prints one line per
request and size: the probe's median peak, the plugin's, and the difference; then the slopes.
docs/pytest-plugin.md has the results.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MESSAGE = "How much memory does one request of mine cost?"
NOTE = "probe note 10 at size 1000"  # as the recipe's "probe note {i} at size {size}"
Requests = dict[str, tuple[Callable[[], Any], bool]]  # name -> (send, reset_after)


@contextmanager
def items_target(memload: Any) -> Iterator[tuple[Callable[[int], Any], Requests]]:
    sys.path.insert(0, str(ROOT / "examples/items_service"))
    from items_app import app

    client = memload.client(app)
    yield (
        lambda n: client.put("/__probe/size", json={"n": n}),
        {
            "list": (lambda: client.get("/items"), False),
            "get": (lambda: client.get("/items/1"), False),
            "add": (
                lambda: client.post(
                    "/items", json={"name": "item 1", "size": 1}, headers={"x-user": "probe-user"}
                ),
                True,
            ),
        },
    )


@contextmanager
def notes_target(memload: Any) -> Iterator[tuple[Callable[[int], Any], Requests]]:
    sys.path.insert(0, str(ROOT / "examples/flask_service"))
    database = Path(tempfile.mkdtemp()) / "notes.db"
    os.environ["NOTES_DB"] = str(database)
    import notes_app
    from seed import seed

    client = memload.client(notes_app.app)
    yield (
        lambda n: seed(database, n),
        {
            "list": (lambda: client.get("/notes"), False),
            "get": (lambda: client.get("/notes/1"), False),
            "add": (
                lambda: client.post("/notes", json={"text": "probe note 10 at size 1000"}),
                True,
            ),
        },
    )


@contextmanager
def optimized_target(memload: Any) -> Iterator[tuple[Callable[[int], Any], Requests]]:
    from harness.stack.processes import ProcessGroup
    from reference_app.api import create_app
    from reference_app.seed import SeedSpec, seed_store
    from reference_app.settings import Settings

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import Launcher

    data = Path(tempfile.mkdtemp())
    with ProcessGroup(data / "logs") as group:
        upstream = Launcher(group).upstream(first_token_ms=0, tokens_per_s=0, reply_tokens=120)
        seed_store("optimized", data, SeedSpec(users=10, whales=0, seed=1))
        settings = Settings(
            design="optimized", data_dir=data, upstream_url=upstream.url, probe=True
        )
        client = memload.client(create_app("optimized", settings))

        def chat(stream: bool) -> Callable[[], Any]:
            body = {"user_id": "probe-user", "message": MESSAGE, "stream": stream}
            return lambda: client.post("/chat", json=body)

        yield (
            lambda n: client.put("/__probe/history/probe-user", json={"length": n}),
            {
                "chat": (chat(False), True),
                "chat_stream": (chat(True), True),
                "history": (lambda: client.get("/history/probe-user"), False),
            },
        )


TARGETS = {"items": items_target, "notes": notes_target, "optimized": optimized_target}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a harness probe run directory")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    found = sorted(args.run.glob("*/probe/probe_requests.csv"))
    if not found:
        parser.error(f"{args.run}: no */probe/probe_requests.csv")
    from harness.analysis.probe import per_point, slopes
    from harness.pytest_plugin._client import Tracing
    from harness.pytest_plugin._figures import Limits
    from harness.pytest_plugin._probe import MemoryProbe

    for csv in found:
        target = csv.parent.parent.name
        probe_points = per_point(pd.read_csv(csv))
        probe_slopes = slopes(probe_points)
        sizes = sorted(int(s) for s in probe_points["history_len"].unique())
        memload = MemoryProbe(Limits(), Tracing())
        try:
            with TARGETS[target](memload) as (setup, requests):
                for name, (send, reset_after) in requests.items():
                    growth = memload.peak_growth(
                        setup, send, sizes, reps=args.reps, warmup=args.warmup,
                        reset_after=reset_after,
                    )  # fmt: skip
                    for size, peak in zip(growth.sizes, growth.peaks, strict=True):
                        row = probe_points[
                            (probe_points["endpoint"] == name)
                            & (probe_points["history_len"] == size)
                        ]
                        theirs = float(row["alloc_peak_bytes"].iloc[0])
                        print(
                            f"{target} {name} size {size}: probe {theirs:.0f} B, plugin "
                            f"{peak:.0f} B, {(peak - theirs) / theirs:+.2%}"
                        )
                    print(
                        f"{target} {name} slope: probe {probe_slopes.get(name, float('nan')):.4f}, "
                        f"plugin {growth.bytes_per_unit:.4f} B/{growth.unit}"
                    )
        finally:
            memload.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
