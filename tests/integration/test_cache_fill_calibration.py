"""Calibration of the leak figures on a cache that fills once (examples/cache_service).

The example's GET /report/{i} fills a bounded cache of 100 reports (8 KiB each) during its first
100 requests, then evicts one for each new one: memory grows once and stops. A least-squares
line through a 40-request run that starts in the middle of the fill reads that as thousands of
bytes per request; the probe must instead report a rate of at most 16 B/request and a one-time
growth (retained_step_bytes) within 10% of what the cache holds. The recipe's setup is
`PUT /admin/size`, a route of the service itself: it must not count as a probe record.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from harness import config
from harness.analysis.probe import retention, summary_rows
from harness.analysis.sites import step_site
from harness.config import UpstreamConfig
from harness.config.target_spec import start_values
from harness.phases.probe import measure
from harness.stack.targets import running_stack

# ~250 probe requests (the cache's 100 fill the warm-up): over 15 s on a busy 2-core machine
pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(300)]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cache_service"


def test_a_cache_filling_once_is_one_time_growth_not_a_leak(tmp_path: Path) -> None:
    target = config.load(EXAMPLE / "loadtest.toml").target("cache")
    recipe = target.probe
    assert recipe is not None and recipe.setup is not None and recipe.setup.request is not None
    assert not recipe.setup.request.path.startswith("/__probe/")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with (
        running_stack(target, data_dir, tmp_path / "logs", UpstreamConfig(), mode="probe") as stack,
        httpx.Client(base_url=stack.base_url, timeout=30) as client,
    ):
        port = int(stack.base_url.rsplit(":", 1)[1])
        result = measure(
            client,
            recipe,
            [1000],  # one size: the leak runs are the point here
            reps=1,
            warmup=0,
            sites=True,  # the step sites name the cache's line (and peak sites: ~2 s)
            base_values=start_values(port, "127.0.0.1", data_dir, "", 1),
        )
        cached = client.get("/admin/cache").json()
    assert cached["entries"] == 100
    report = retention(result.checkpoints)[("report", 1000)]
    assert abs(report.bytes_per_request) <= 16, report
    assert abs(report.step_bytes - cached["bytes"]) <= 0.10 * cached["bytes"], (report, cached)
    rows = {r.labels.get("endpoint"): r for r in summary_rows("cache", result.requests,
            result.checkpoints, size_unit="row") if r.metric == "retained_step_bytes"}  # fmt: skip
    assert rows["report"].value == pytest.approx(report.step_bytes)
    assert abs(rows["rows"].value) < 0.10 * cached["bytes"]  # the other endpoint caches nothing
    # the one-time growth is named at the line that renders what the cache keeps
    source = (EXAMPLE / "cache_app.py").read_text().splitlines()
    kept = next(i for i, line in enumerate(source, 1) if "return (line * (REPORT_BYTES" in line)
    site = step_site(result.sites["step"], "report", 1000)
    assert site is not None and site.location == f"cache_app.py:{kept}", result.sites["step"]
    assert site.bytes >= 0.9 * cached["bytes"], (site, cached)
