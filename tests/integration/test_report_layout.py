"""What a reviewer sees first: findings, then the over-time chart, then a headline of <= 15 rows.

The reports of the run directories checked in under tests/data/runs (small-a ran every phase
but the capacity search; small-b only load and integrity). No process is started.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.analysis.findings import MAX_FINDINGS
from harness.analysis.headline import headline_table, summary_frame
from harness.report import render_compare, render_run
from harness.report._headline_view import MAX_HEADLINE_ROWS
from harness.report._units import format_value

pytestmark = pytest.mark.integration

RUNS = Path(__file__).resolve().parents[1] / "data" / "runs"
DESIGNS = ["naive", "optimized"]
OVER_TIME = "Memory, latency and throughput over time"


@pytest.fixture(scope="module")
def small_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = Path(shutil.copytree(RUNS / "small-a", tmp_path_factory.mktemp("layout") / "a"))
    render_run(root)
    return root


def headings(md: str) -> list[str]:
    return [line[3:] for line in md.splitlines() if line.startswith("## ")]


def section(md: str, heading: str) -> str:
    start = md.index(f"## {heading}\n")
    after = md.find("\n## ", start + 3)
    return md[start : after if after >= 0 else len(md)]


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table in `text`, as cells."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


def test_markdown_opens_with_findings_then_the_chart_and_ends_with_the_run(small_a: Path) -> None:
    md = (small_a / "report.md").read_text(encoding="utf-8")
    order = headings(md)
    assert order[:3] == ["Findings", OVER_TIME, "Headline"]
    assert order[-1] == "The run"
    first_image = re.search(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert first_image is not None and first_image.group(1) == "figures/load_over_time.png"
    assert md.count("](figures/load_over_time.png)") == 1  # not again in the load section
    # the run's metadata fold away at the end
    run = section(md, "The run")
    assert "<details><summary>Run metadata" in run and "| **Git** |" in run
    assert "| **Git** |" not in md[: md.index("## The run")]


def test_findings_are_few_and_say_their_verdict(small_a: Path) -> None:
    md = (small_a / "report.md").read_text(encoding="utf-8")
    rows = table_rows(section(md, "Findings"))
    assert 0 < len(rows) <= MAX_FINDINGS
    by_title = {r[0]: r for r in rows}
    # naive's probe failed, so the probe findings show optimized's figure only
    memory = next(r for t, r in by_title.items() if t.startswith("Memory per request"))
    assert memory[1] == "–" and memory[2] != "–"
    assert by_title["Lost writes ↓"][-1] == "passed"
    rss = by_title["RSS peak under load ↓"]
    summary = json.loads((small_a / "summary.json").read_text())
    peaks = {
        r["design"]: r["value"]
        for r in summary
        if r["metric"] == "rss_peak_bytes" and not r["labels"]
    }
    assert rss[1:3] == [format_value(peaks[d], "bytes") for d in DESIGNS]
    assert rss[-1] in ("**naive worse**", "naive better", "naive same")


def test_headline_has_at_most_15_rows_and_every_figure_is_in_the_report(small_a: Path) -> None:
    md = (small_a / "report.md").read_text(encoding="utf-8")
    assert len(table_rows(section(md, "Headline"))) <= MAX_HEADLINE_ROWS
    summary: list[dict[str, Any]] = json.loads((small_a / "summary.json").read_text())
    table = headline_table(summary_frame(summary), DESIGNS)
    assert len(table) > MAX_HEADLINE_ROWS  # the fixture has more lines than the headline shows
    lines = md.splitlines()
    for row in table.to_dict("records"):
        arrow = "↓" if row["better"] == "lower" else "↑"
        cells = [format_value(row[d], str(row["unit"])) for d in DESIGNS]
        found = [
            line
            for line in lines
            if line.startswith(f"| {row['title']} {arrow} |")
            and [c.strip() for c in line.strip("|").split("|")][1:3] == cells
        ]
        assert found, f"{row['title']}: {cells} is nowhere in report.md"
    # the rest are in their phase's section
    probe = section(md, "Probe phase: tracemalloc, one request at a time")
    assert "### All figures of this phase" in probe and "| Peak growth per history message" in probe


def test_html_opens_with_findings_then_the_chart(small_a: Path) -> None:
    html = (small_a / "report.html").read_text(encoding="utf-8")
    where = [html.index(f'id="{i}"') for i in ("findings", "over-time", "headline", "warnings")]
    assert where == sorted(where)
    assert html.index('<table class="findings">') < html.index("<img ")
    first_alt = re.search(r'<img src="data:image/png;base64,[^"]*" alt="([^"]*)"', html)
    assert first_alt is not None and first_alt.group(1) == OVER_TIME
    run = html[html.index('id="run"') :]
    assert run.index("<details>") < run.index("<th>Git</th>") < run.index("</details>")
    assert "<th>Git</th>" not in html[: html.index('id="run"')]


def test_compare_opens_with_findings_then_the_charts(small_a: Path, tmp_path: Path) -> None:
    run_b = Path(shutil.copytree(RUNS / "small-b", tmp_path / "b"))
    render_compare(small_a, run_b, tmp_path / "cmp")
    md = (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8")
    order = headings(md)
    assert order[:3] == [
        "Findings: run B against run A",
        "Over time: A laid over B",
        "Headline metrics",
    ]
    assert order[-1] == "The runs"
    findings = table_rows(section(md, "Findings: run B against run A"))
    assert 0 < len(findings) <= MAX_FINDINGS
    rss = next(r for r in findings if r[0] == "RSS peak under load ↓")
    assert "→" in rss[1] and rss[3] in ("better", "**worse**", "")
    assert len(table_rows(section(md, "Headline metrics"))) <= MAX_HEADLINE_ROWS
    assert "### load" in section(md, "All figures, per phase")
    assert md.index("<details>") > md.index("## The runs")
