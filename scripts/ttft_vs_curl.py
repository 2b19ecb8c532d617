"""Time to first token: curl's time to first byte next to the scenario's TTFT, same server.

Seeds an optimized store and starts the LLM emulator and the optimized reference app on
127.0.0.1 with the quick profile's settings (loadtest.toml: 200 users, 5 whales of 5,000
messages; first token after 50 ms, then 200 tokens/s, 120 tokens). Then, against that one
server:

1. `curl -N -w %{time_starttransfer}` on a streamed `POST /chat`, `--curl` times in a row
   (the optimized design sends its headers with the first token, so the first byte is the
   first token); before the load, or with `--during` while Locust runs (from its 5th second,
   one every 0.5 s), so that both see the same load;
2. Locust with the load phase's own scenario (`--scenario`, default spike; `--users`
   users for `--seconds` s; through harness.load.locust_runner.run_locust, as the load phase
   runs it), whose TTFT row (median, mean) it prints.

    .venv/bin/python scripts/ttft_vs_curl.py [--curl 20] [--users 1] [--seconds 30] [--during]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from harness.load.locust_runner import run_locust
from harness.stack.processes import LOOPBACK, ProcessGroup, start_on_free_port
from reference_app.seed import SeedSpec, seed_store

UPSTREAM = ("--first-token-ms", "50", "--tokens-per-s", "200", "--reply-tokens", "120")


def reference(*args: str) -> list[str]:
    return [sys.executable, "-m", "reference_app", *args, "--host", LOOPBACK]


def curl_first_byte_ms(
    base_url: str, user_id: str, n: int, delay_s: float = 0.0, gap_s: float = 0.0
) -> list[float]:
    curl = shutil.which("curl")
    if curl is None:
        raise SystemExit("curl is not installed")
    out: list[float] = []
    time.sleep(delay_s)
    for i in range(n):
        time.sleep(gap_s)
        body = json.dumps({"user_id": user_id, "message": f"curl {i}", "stream": True})
        command = [
            curl, "-sN", "-o", "/dev/null", "-w", "%{time_starttransfer}",
            "-H", "content-type: application/json", "-d", body, f"{base_url}/chat",
        ]  # fmt: skip
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        out.append(float(done.stdout) * 1000)
    return out


def locust_ttft(stats_csv: Path) -> dict[str, str]:
    with stats_csv.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["Type"] == "TTFT":
                return row
    raise SystemExit(f"no TTFT row in {stats_csv}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curl", type=int, default=20, help="curl requests (default 20)")
    parser.add_argument("--users", type=int, default=1, help="Locust users (default 1)")
    parser.add_argument("--seconds", type=float, default=30.0, help="Locust run (default 30)")
    parser.add_argument("--scenario", default="spike", help="locustfile (default spike)")
    parser.add_argument("--during", action="store_true", help="curl while Locust runs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ttft-") as tmp_name:
        tmp = Path(tmp_name)
        seed_store("optimized", tmp / "data", SeedSpec(200, 5, 5000, seed=1))
        with ProcessGroup(tmp / "logs") as group:
            _up, upstream_url = start_on_free_port(
                group, "upstream", lambda p: reference("upstream", "--port", str(p), *UPSTREAM)
            )
            serve = ("serve", "--design", "optimized", "--data-dir", str(tmp / "data"))
            _app, base_url = start_on_free_port(
                group,
                "app",
                lambda p: reference(*serve, "--upstream", upstream_url, "--port", str(p)),
            )
            manifest = tmp / "data" / "manifest.json"
            user_id = json.loads(manifest.read_text())["users"][0]["user_id"]
            curl_ms: list[float] = []
            if not args.during:
                curl_ms = curl_first_byte_ms(base_url, user_id, args.curl)
            meanwhile = threading.Thread(
                target=lambda: curl_ms.extend(
                    curl_first_byte_ms(base_url, user_id, args.curl, delay_s=5.0, gap_s=0.5)
                )
            )
            if args.during:
                meanwhile.start()
            result = run_locust(
                base_url, args.scenario, args.users, 10.0, args.seconds, tmp / "load", manifest
            )
            if args.during:
                meanwhile.join()
        if result.stats_csv is None:
            raise SystemExit(f"locust wrote no statistics: {result.problem()}")
        ttft = locust_ttft(result.stats_csv)
    when = "during the load" if args.during else "before the load"
    print(
        f"curl time_starttransfer {when}, {len(curl_ms)} streamed POST /chat: "
        f"median {statistics.median(curl_ms):.1f} ms, "
        f"min {min(curl_ms):.1f}, max {max(curl_ms):.1f}"
    )
    print(
        f"scenario {args.scenario} TTFT, {args.users} users, {args.seconds:g} s: "
        f"{ttft['Request Count']} streams, median {ttft['50%']} ms, "
        f"mean {float(ttft['Average Response Time']):.1f} ms, "
        f"min {float(ttft['Min Response Time']):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
