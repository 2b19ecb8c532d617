"""report.html and compare.html in a real browser: the findings come first, every chart decodes.

Headless Chromium (Debian's `chromium` package) loads a copy of each page with a small
script appended (the reports themselves carry none), which, after the load event, records
where the findings table, the first image and the headline sit on the page, then scrolls to
each image and records its decoded size, its box on the page, its computed style and whether
it is the element on top at its centre. `--dump-dom` prints the page with that record.

The reports come from the real runs checked in under tests/data/runs (small-a has only
Locust's Aggregated history rows, small-b every endpoint's). Without chromium on PATH the
test is skipped, except under CI (CI=true), where it fails: .ci/run installs chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.report import render_compare, render_run

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

RUNS = Path(__file__).resolve().parents[1] / "data" / "runs"
CHECK_ID = "memload-image-check"
CHECK_SCRIPT = f"""<script>
window.addEventListener("load", () => {{
  const box = (el) => el ? {{top: el.getBoundingClientRect().top + window.scrollY,
                              bottom: el.getBoundingClientRect().bottom + window.scrollY}} : null;
  const img = document.images[0];
  const first = {{height: window.innerHeight,
                 findings: box(document.querySelector("table.findings")),
                 image: box(img), alt: img ? img.alt : "",
                 headline: box(document.getElementById("headline"))}};
  const found = [...document.images].map((img) => {{
    img.scrollIntoView({{block: "center"}});
    const box = img.getBoundingClientRect();
    const style = getComputedStyle(img);
    const top = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    return {{alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth,
            naturalHeight: img.naturalHeight, width: box.width, height: box.height,
            visibility: style.visibility, display: style.display, opacity: style.opacity,
            onTop: top === img}};
  }});
  const out = document.createElement("pre");
  out.id = "{CHECK_ID}";
  out.textContent = JSON.stringify({{images: found, first: first}});
  document.body.appendChild(out);
}});
</script>"""
RECORD = re.compile(rf'<pre id="{CHECK_ID}">(.*?)</pre>', re.S)


@pytest.fixture
def chromium() -> str:
    """The browser, before any report is drawn: skip (or, under CI, fail) without it."""
    path = shutil.which("chromium")
    if path is None:
        reason = "chromium is not on PATH (Debian: apt-get install chromium; .ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true, so this test must run")
        pytest.skip(reason)
    return path


def as_the_browser_sees_it(chromium: str, page: Path, work: Path) -> dict[str, Any]:
    """{images: each image's record, first: where the findings, first image and headline are
    on the page as it opens (before any scrolling), and the window's height}."""
    checked = work / f"checked-{page.name}"
    html = page.read_text(encoding="utf-8")
    assert html.count("</body>") == 1
    checked.write_text(html.replace("</body>", CHECK_SCRIPT + "</body>"), encoding="utf-8")
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # as root (CI containers), Chromium runs only without its sandbox
            "--disable-gpu",
            f"--user-data-dir={work / 'chromium-profile'}",
            "--window-size=1400,1000",
            "--virtual-time-budget=10000",
            "--dump-dom",
            checked.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = RECORD.search(result.stdout)
    assert match, f"no image record in chromium's DOM (exit {result.returncode}): {result.stderr}"
    seen: dict[str, Any] = json.loads(match.group(1).replace("&quot;", '"'))
    return seen


def assert_findings_first(first: dict[str, Any], chart: str) -> None:
    """The findings fit the first screen, then comes the over-time chart, then the headline."""
    assert first["findings"] is not None and first["findings"]["bottom"] <= first["height"]
    assert first["alt"] == chart
    assert first["findings"]["bottom"] <= first["image"]["top"] < first["headline"]["top"]


def assert_every_image_visible(found: list[dict[str, Any]], expected: int) -> None:
    assert len(found) == expected
    for image in found:
        where = image["alt"]
        assert image["complete"], where
        assert image["naturalWidth"] > 0 and image["naturalHeight"] > 0, where
        assert image["width"] > 100 and image["height"] > 50, where
        assert image["visibility"] == "visible" and image["display"] != "none", where
        assert float(image["opacity"]) > 0, where
        assert image["onTop"], f"{where}: covered by another element"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("run", ["small-a", "small-b"])
def test_every_chart_of_report_html_is_visible(run: str, chromium: str, tmp_path: Path) -> None:
    root = Path(shutil.copytree(RUNS / run, tmp_path / run))
    render_run(root)
    pngs = list((root / "figures").glob("*.png"))
    assert {"load_over_time", "latency_over_time"} <= {p.stem for p in pngs}
    seen = as_the_browser_sees_it(chromium, root / "report.html", tmp_path)
    found = seen["images"]
    assert_every_image_visible(found, len(pngs))
    assert_findings_first(seen["first"], "Memory, latency and throughput over time")
    assert {"Memory, latency and throughput over time", "Latency per endpoint over time"} <= {
        image["alt"] for image in found
    }


@pytest.mark.timeout(300)
def test_every_chart_of_compare_html_is_visible(chromium: str, tmp_path: Path) -> None:
    run_a = Path(shutil.copytree(RUNS / "small-a", tmp_path / "a"))
    run_b = Path(shutil.copytree(RUNS / "small-b", tmp_path / "b"))
    out = tmp_path / "cmp"
    written = render_compare(run_a, run_b, out)
    pngs = [p for p in written if p.suffix == ".png"]
    assert sorted(p.name for p in pngs) == ["over_time_naive.png", "over_time_optimized.png"]
    seen = as_the_browser_sees_it(chromium, out / "compare.html", tmp_path)
    assert_every_image_visible(seen["images"], len(pngs))
    assert_findings_first(seen["first"], "naive: A and B over time")
