"""`harness report` and `harness compare` on the run directories checked in under tests/data/runs.

The fixtures are copied to a temporary directory first: rendering writes into the run dir.
No process is started; the tests read files and draw charts (a few seconds).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.analysis.headline import compare_table, headline_table, summary_frame
from harness.cli import main
from harness.report import render_compare, render_run
from harness.report._units import format_percent, format_value

RUNS = Path(__file__).resolve().parents[1] / "data" / "runs"
DESIGNS = ("naive", "optimized")
# The one relative link a report may carry: each design's memray flamegraph, next to it.
FLAMEGRAPH_LINK = re.compile(r"^[A-Za-z0-9_.-]+/profile/flamegraph\.html$")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """small-a rendered once for the tests that only read the result (drawing takes seconds)."""
    root = Path(shutil.copytree(RUNS / "small-a", tmp_path_factory.mktemp("rendered") / "a"))
    return root, render_run(root)


@pytest.fixture
def run_a(tmp_path: Path) -> Path:
    return Path(shutil.copytree(RUNS / "small-a", tmp_path / "small-a"))


@pytest.fixture
def run_b(tmp_path: Path) -> Path:
    return Path(shutil.copytree(RUNS / "small-b", tmp_path / "small-b"))


class _Refs(HTMLParser):
    """Every URL-bearing attribute, every tag, and the inline CSS of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.css: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in {"src", "href", "srcset", "action", "poster", "data", "formaction"}:
                self.refs.append((tag, name, value or ""))
            if name == "style" and value:
                self.css.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.css.append(data)


def parse(html: str) -> _Refs:
    parser = _Refs()
    parser.feed(html)
    parser.close()
    return parser


def external_refs(page: _Refs) -> list[tuple[str, str, str]]:
    bad = []
    for tag, attr, value in page.refs:
        if value.startswith("data:") or value.startswith("#"):
            continue
        if tag == "a" and attr == "href" and FLAMEGRAPH_LINK.match(value):
            continue
        bad.append((tag, attr, value))
    return bad


def summary_of(run: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((run / "summary.json").read_text())
    return rows


def value(rows: list[dict[str, Any]], design: str, metric: str, **labels: str) -> float:
    hits = [
        r
        for r in rows
        if r["design"] == design and r["metric"] == metric and (r.get("labels") or {}) == labels
    ]
    assert len(hits) == 1, (design, metric, labels, hits)
    return float(hits[0]["value"])


# --- report ----------------------------------------------------------------------------------


def test_report_html_is_self_contained_and_embeds_every_figure(
    rendered: tuple[Path, list[Path]],
) -> None:
    run_a, written = rendered
    html_path = run_a / "report.html"
    assert html_path in written and (run_a / "report.md") in written
    pngs = sorted((run_a / "figures").glob("*.png"))
    assert pngs and set(pngs) == {p for p in written if p.suffix == ".png"}
    for png in pngs:
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    html = html_path.read_text(encoding="utf-8")
    page = parse(html)
    assert page.tags[:2] == ["html", "head"] or "html" in page.tags
    assert external_refs(page) == []
    assert "script" not in page.tags and "link" not in page.tags
    assert not any(re.search(r"url\(|@import", css) for css in page.css)
    # every figure is embedded, once, as a PNG data URI
    assert html.count("data:image/png;base64,") == len(pngs)
    assert page.tags.count("img") == len(pngs)
    # the charts the issue asks for
    names = {p.stem for p in pngs}
    assert {
        "load_over_time",
        "latency_over_time",
        "resources_over_time",
        "latency",
        "alloc_vs_history",
        "retained_over_requests",
    } <= names
    assert {f"top_sites_{d}" for d in DESIGNS} <= names


def test_report_markdown_has_headline_rows_for_both_designs(
    rendered: tuple[Path, list[Path]],
) -> None:
    run_a, _ = rendered
    md = (run_a / "report.md").read_text(encoding="utf-8")
    rows = summary_of(run_a)
    headline = md[md.index("## Headline") : md.index("## Warnings")]
    header = next(line for line in headline.splitlines() if line.startswith("| metric |"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "metric",
        "naive",
        "optimized",
        "naive / optimized",
        "phase",
    ]
    for metric, title in (("rss_peak_bytes", "RSS peak"), ("rps", "Throughput")):
        unit = next(r["unit"] for r in rows if r["metric"] == metric)
        cells = [format_value(value(rows, d, metric), unit) for d in DESIGNS]
        line = next(x for x in headline.splitlines() if x.startswith(f"| {title} "))
        assert [c.strip() for c in line.strip("|").split("|")][1:3] == cells
        assert line.rstrip().endswith("| load |")
    # figures referenced relatively, and the notes a reader needs
    for png in (run_a / "figures").glob("*.png"):
        assert f"](figures/{png.name})" in md
    assert "tracemalloc sees only memory allocated through Python's allocators" in md
    assert "SQLite's page cache" in md
    assert "2-5x" in md and "8x" in md
    # what the over-time curves show, per design, at peak load
    assert "### What the curves show" in md
    for design in DESIGNS:
        assert f"| {design} | RSS |" in md and f"| {design} | requests/s |" in md
    # every phase that did not pass is named, with its status
    for phase in json.loads((run_a / "run.json").read_text())["phases"]:
        if phase["status"] != "passed":
            assert f"{phase['design']} {phase['phase']}: " in md
            assert f"{phase['phase']}: {phase['status']}" in md or "not run" in md


def test_report_probe_section_has_the_leak_runs_and_a_requests_sites(
    rendered: tuple[Path, list[Path]],
) -> None:
    run_a, _ = rendered
    md = (run_a / "report.md").read_text(encoding="utf-8")
    html = (run_a / "report.html").read_text(encoding="utf-8")
    rows = summary_of(run_a)
    probe = md[md.index("## Probe phase") : md.index("## Profile phase")]
    assert "![Memory retained over a run of requests](figures/retained_over_requests.png)" in probe
    assert "gc.collect()" in probe and "(here chat, chat_stream)" in probe
    # the headline: one row per endpoint, the figure as the summary has it
    for endpoint in ("chat", "chat_stream", "history"):
        figure = value(
            rows, "optimized", "retained_bytes_per_request", endpoint=endpoint, history_len="100"
        )
        line = next(
            line
            for line in md.splitlines()
            if line.startswith(f"| Retained per request ({endpoint}, history 100) ")
        )
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[1:4] == ["–", format_value(figure, "bytes/request"), "–"]  # naive failed
    # the sites table: optimized only (naive's probe failed), the top peak sites at 1,000
    sites = json.loads((run_a / "optimized" / "probe" / "probe_sites.json").read_text())
    assert "### Where a request's memory goes (probe): optimized" in probe
    assert "Where a request's memory goes (probe): naive" not in probe
    chat = sorted(
        (s for s in sites["peak"] if s["endpoint"] == "chat" and s["history_len"] == 1000),
        key=lambda s: -s["bytes"],
    )
    table = [line for line in probe.splitlines() if line.startswith("| chat | 1,000 | peak |")]
    assert len(table) == 5
    assert f"`{chat[0]['location']}`" in table[0]
    assert format_value(chat[0]["bytes"], "bytes") in table[0]
    assert any(
        line.startswith("| chat | 100 | retained |") and line.endswith("|")
        for line in probe.splitlines()
        if "B/request" in line
    )
    assert "Where a request&#39;s memory goes (probe): optimized</h3>" in html
    assert '<table class="sites">' in html
    # the profile section points to it
    assert 'in the probe section: "Where a request\'s memory goes (probe)"' in md


def test_report_flamegraph_link_or_its_absence_is_stated(
    rendered: tuple[Path, list[Path]],
) -> None:
    run_a, _ = rendered
    md = (run_a / "report.md").read_text(encoding="utf-8")
    for design in DESIGNS:
        flame = run_a / design / "profile" / "flamegraph.html"
        if flame.exists():
            assert f"({design}/profile/flamegraph.html)" in md
        else:
            assert f"{design}/profile/flamegraph.html is missing" in md


def test_report_with_a_missing_phase_says_so(run_a: Path) -> None:
    # optimized's profile was skipped; naive's integrity left no record at all
    shutil.rmtree(run_a / "optimized" / "profile")
    (run_a / "naive" / "integrity.json").unlink(missing_ok=True)
    gone = {("optimized", "profile"), ("naive", "integrity")}
    rows = [r for r in summary_of(run_a) if (r["design"], r["phase"]) not in gone]
    (run_a / "summary.json").write_text(json.dumps(rows))
    run = json.loads((run_a / "run.json").read_text())
    for phase in run["phases"]:
        if (phase["design"], phase["phase"]) == ("optimized", "profile"):
            phase.update(status="skipped", detail="--phases load,probe", duration_s=0.0)
    run["phases"] = [
        p for p in run["phases"] if (p["design"], p["phase"]) != ("naive", "integrity")
    ]
    (run_a / "run.json").write_text(json.dumps(run))

    render_run(run_a)
    md = (run_a / "report.md").read_text(encoding="utf-8")
    html = (run_a / "report.html").read_text(encoding="utf-8")
    for text in (md, html):
        assert "optimized profile: not run (skipped: --phases load,probe)" in text
        assert "naive integrity: not run (no record in run.json)" in text
    # the other design's profile is still charted, the skipped one is not
    assert (run_a / "figures" / "top_sites_naive.png").exists()
    assert not (run_a / "figures" / "top_sites_optimized.png").exists()
    assert html.count("data:image/png;base64,") == len(list((run_a / "figures").glob("*.png")))


def test_report_says_when_requests_failed_over_time(run_b: Path) -> None:
    """Failures added to naive's history: the caption counts them and dates the first."""
    history_path = run_b / "naive" / "load" / "locust_stats_history.csv"
    history = pd.read_csv(history_path)
    stamps = sorted(history["Timestamp"].unique())
    broken = history["Timestamp"] >= stamps[5]
    chat = history["Name"] == "POST /chat"
    history.loc[broken & chat, "Total Failure Count"] = 3
    history.loc[broken & chat, "Failures/s"] = 0.3
    history.to_csv(history_path, index=False)
    samples = pd.read_csv(run_b / "naive" / "load" / "process_samples.csv")
    origin = float((samples["unix_s"] - samples["t_s"]).median())

    render_run(run_b)
    md = (run_b / "report.md").read_text(encoding="utf-8")
    first = stamps[5] - origin
    assert f"Failures: naive 3 failed requests (the first at {first:.0f} s)." in md
    assert "optimized" not in md.split("Failures: ")[1].split(".")[0]
    # and a clean run says so
    clean = RUNS / "small-b" / "optimized" / "load" / "locust_stats_history.csv"
    assert pd.read_csv(clean)["Total Failure Count"].max() == 0


def test_report_header_fits_a_target_without_seed_or_probe(run_b: Path) -> None:
    run = json.loads((run_b / "run.json").read_text())
    hello = {
        "name": "hello",
        "command": ["{python}", "-m", "harness.serve", "hello_app:app", "--port", "{port}"],
        "scenario": "/somewhere/locustfile.py",
        "seed": None,
        "chat_api": False,
    }
    run["config"]["designs"] = ["naive", "optimized"]
    run["config"]["targets"] = [
        {**hello, "name": "naive"},
        {**hello, "name": "optimized", "scenario": None},
    ]
    (run_b / "run.json").write_text(json.dumps(run))
    render_run(run_b)
    md = (run_b / "report.md").read_text(encoding="utf-8")
    header = md.split("## The run")[1].split("Resolved configuration")[0]
    assert "whales" not in header and "probe history" not in header and "Dataset" not in header
    assert (
        "| **Target naive** | command: {python} -m harness.serve hello_app:app --port {port}; "
        "scenario: /somewhere/locustfile.py |" in header
    )
    assert "scenario: scenarios/spike.py |" in header  # optimized: the profile's scenario


def test_report_with_only_run_json(tmp_path: Path) -> None:
    run = json.loads((RUNS / "small-a" / "run.json").read_text())
    run["phases"] = []
    root = tmp_path / "bare"
    root.mkdir()
    (root / "run.json").write_text(json.dumps(run))
    written = render_run(root)
    assert {p.name for p in written} == {"report.md", "report.html"}
    md = (root / "report.md").read_text(encoding="utf-8")
    assert "load: not run (no record in run.json)" in md
    assert "No headline figures" in md


# --- compare ---------------------------------------------------------------------------------


def test_compare_deltas_match_the_fixture_summaries(run_a: Path, run_b: Path) -> None:
    rows_a, rows_b = summary_of(run_a), summary_of(run_b)
    table = compare_table(summary_frame(rows_a), summary_frame(rows_b), list(DESIGNS))
    for metric in ("rss_peak_bytes", "rps"):
        for design in DESIGNS:
            a, b = value(rows_a, design, metric), value(rows_b, design, metric)
            line = table[(table["key"] == metric) & (table["design"] == design)].iloc[0]
            assert line["a"] == a and line["b"] == b
            assert line["delta"] == pytest.approx(b - a)
            assert line["delta_pct"] == pytest.approx((b - a) / abs(a) * 100)

    written = render_compare(run_a, run_b)
    run_a_id = json.loads((run_a / "run.json").read_text())["run_id"]
    out = run_b / f"compare-{run_a_id}"
    figures = [out / "figures" / f"over_time_{d}.png" for d in DESIGNS]
    assert written == [out / "compare.md", out / "compare.html", *figures]
    md = (out / "compare.md").read_text(encoding="utf-8")
    a = value(rows_a, "naive", "rss_peak_bytes")
    b = value(rows_b, "naive", "rss_peak_bytes")
    line = next(x for x in md.splitlines() if x.startswith("| RSS peak ↓ | naive |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[2:6] == [
        format_value(a, "bytes"),
        format_value(b, "bytes"),
        format_value(b - a, "bytes", signed=True) if b != a else "0",
        format_percent((b - a) / abs(a) * 100, signed=True),
    ]
    page = parse((out / "compare.html").read_text(encoding="utf-8"))
    assert external_refs(page) == []
    assert "script" not in page.tags
    # the over-time charts: embedded in the HTML, referenced relatively in the Markdown
    html = (out / "compare.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == len(figures)
    for png in figures:
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert f"](figures/{png.name})" in md


def test_compare_out_dir(run_a: Path, run_b: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    assert main(["compare", str(run_a), str(run_b), "--out", str(out)]) == 0
    assert (out / "compare.md").is_file() and (out / "compare.html").is_file()


def test_headline_table_on_fixture_has_every_design() -> None:
    table = headline_table(summary_frame(summary_of(RUNS / "small-a")), list(DESIGNS))
    load = table[table["phase"] == "load"]
    assert not load.empty
    assert load[list(DESIGNS)].notna().all(axis=None)


# --- the command line ------------------------------------------------------------------------


def test_cli_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "one"
    root.mkdir()
    shutil.copy(RUNS / "small-a" / "run.json", root)
    shutil.copy(RUNS / "small-a" / "summary.json", root)  # no CSVs: quick, headline only
    assert main(["report", str(root)]) == 0
    out = capsys.readouterr().out
    assert str(root / "report.html") in out


def test_cli_missing_dir_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such run directory" in err[0]


def test_cli_missing_run_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no run.json" in err[0]


def test_cli_schema_mismatch_exits_2(run_a: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = json.loads((run_a / "run.json").read_text())
    run["schema_version"] = 999
    (run_a / "run.json").write_text(json.dumps(run))
    assert main(["report", str(run_a)]) == 2
    assert "schema_version 999" in capsys.readouterr().err
    assert not (run_a / "report.html").exists()


def test_importing_the_report_package_is_light() -> None:
    code = "import sys, harness.report; print(sorted({'matplotlib', 'pandas'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
