"""The size phase's inputs (the run's rows, the capacity steps), the text and the report
section, on files written here (no server)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pandas as pd
import pytest

from harness.analysis.sizing import (
    MIB,
    PeakAtUnits,
    Proof,
    SizeTable,
    in_flight,
    size_container,
    to_json,
)
from harness.config.target_spec import reference_target
from harness.phases import FailedWithResults
from harness.phases.size import (
    latency_at,
    load_for,
    probe_points,
    settings_for,
    why_not_proven,
)
from harness.report._sizing import model_gap, model_rss, points, sizing_notes, sizing_table
from harness.results import RunDir, SummaryRow
from harness.sizing.text import sizing_lines

STEPS = (
    "offered_rps,achieved_rps,p50_ms,rss_max_bytes\n"
    "0.5,0.5,700,60000000\n1.0,1.0,800,62000000\n2.0,1.9,4000,70000000\n"
)


def run_dir(tmp_path: Path) -> RunDir:
    return RunDir.create(tmp_path / "runs")


def capacity_steps(run: RunDir, design: str, text: str = STEPS) -> None:
    path = run.phase_dir(design, "capacity") / "capacity_steps.csv"
    path.write_text(text, encoding="utf-8")


def test_probe_points_come_from_the_designs_peak_rows() -> None:
    rows = [
        SummaryRow(
            "a",
            "probe",
            "alloc_peak_bytes",
            5.0,
            "bytes",
            {"endpoint": "chat", "history_len": "100"},
        ),
        SummaryRow(
            "a", "probe", "alloc_slope_bytes_per_unit", 1.0, "bytes/message", {"endpoint": "chat"}
        ),
        SummaryRow(
            "b", "probe", "alloc_peak_bytes", 9.0, "bytes", {"endpoint": "chat", "history_len": "1"}
        ),
    ]
    (point,) = probe_points(rows, "a")
    assert (point.endpoint, point.size, point.peak_bytes) == ("chat", 100.0, 5.0)


def test_latency_at_the_highest_step_at_or_below_the_rate(tmp_path: Path) -> None:
    run = run_dir(tmp_path)
    capacity_steps(run, "d")
    steps = run.root / "d" / "capacity"
    assert latency_at(steps, 1.0) == pytest.approx(0.8)
    assert latency_at(steps, 1.5) == pytest.approx(0.8)
    assert latency_at(steps, 0.1) is None
    assert latency_at(tmp_path / "missing", 1.0) is None


def test_latency_is_every_endpoints_median_weighted_by_requests(tmp_path: Path) -> None:
    run = run_dir(tmp_path)
    capacity_steps(run, "d")
    (run.root / "d" / "capacity" / "capacity_endpoints.csv").write_text(
        "step,offered_rps,endpoint,requests,p50_ms\n"
        "1,0.5,GET /history,9,10.0\n"
        "2,1.0,GET /history,1,20.0\n2,1.0,POST /chat,3,700.0\n",
        encoding="utf-8",
    )
    assert latency_at(run.root / "d" / "capacity", 1.0) == pytest.approx(0.53)
    assert latency_at(run.root / "d" / "capacity", 0.6) == pytest.approx(0.01)


def test_the_measured_capacity_is_the_default_rate(tmp_path: Path) -> None:
    run = run_dir(tmp_path)
    capacity_steps(run, "d")
    rows = [SummaryRow("d", "capacity", "capacity_rps", 1.0, "req/s")]
    load = load_for(SizeTable(), rows, run, "d")
    assert load.rate == 1.0 and load.source == "the measured capacity"
    assert load.flight.mean == pytest.approx(0.8)
    stated = load_for(SizeTable(rate=0.5), rows, run, "d")
    assert stated.rate == 0.5 and stated.source == "[size] rate"
    assert load_for(SizeTable(latency_ms=2000.0), rows, run, "d").flight.mean == 2.0
    assert load_for(SizeTable(concurrency=7.0), rows, run, "d").flight.requests == 7.0


def test_no_rate_or_a_zero_capacity_says_what_to_state(tmp_path: Path) -> None:
    run = run_dir(tmp_path)
    with pytest.raises(FailedWithResults, match="states neither rate nor concurrency"):
        load_for(SizeTable(), [], run, "d")
    zero = [SummaryRow("d", "capacity", "capacity_rps", 0.0, "req/s")]
    with pytest.raises(FailedWithResults, match="states neither rate nor concurrency"):
        load_for(SizeTable(), zero, run, "d")
    with pytest.raises(FailedWithResults, match="latency_ms"):
        load_for(SizeTable(rate=3.0), [], run, "d")


def test_a_zero_capacity_sizes_at_the_first_step(tmp_path: Path) -> None:
    run = run_dir(tmp_path)
    capacity_steps(run, "d")
    rows = [
        SummaryRow("d", "capacity", "capacity_rps", 0.0, "req/s"),
        SummaryRow("d", "capacity", "knee_rps", 0.5, "req/s"),
    ]
    load = load_for(SizeTable(), rows, run, "d")
    assert load.rate == 0.5 and "first step" in load.source
    assert load.flight.mean == pytest.approx(0.35)


def test_settings_a_target_wins_over_size(tmp_path: Path) -> None:
    target = reference_target("naive")
    cfg = SimpleNamespace(size=SizeTable(workers=2, rate=1.0))
    sized = SimpleNamespace(size=SizeTable(rate=4.0))
    assert settings_for(cast(Any, cfg), target) == SizeTable(workers=2, rate=1.0)
    assert settings_for(cast(Any, cfg), cast(Any, sized)) == SizeTable(workers=2, rate=4.0)


def test_why_not_proven_without_a_load_or_when_asked_not_to() -> None:
    target = reference_target("naive")
    assert why_not_proven(SizeTable(prove=False), target, 1.0) == "[size] prove = false"
    other = SimpleNamespace(name="other", chat_api=False, scenario=None)
    assert "no scenario" in why_not_proven(SizeTable(), cast(Any, other), 1.0)
    assert "concurrency only" in why_not_proven(SizeTable(), target, None)


def sizing_json(design: str, limit_mib: float) -> dict[str, Any]:
    s = size_container(
        workers=1,
        idle_rss_bytes=limit_mib * 0.5 * MIB,
        data_growth_bytes=0,
        peak=PeakAtUnits("chat", limit_mib * 0.1 * MIB, True),
        flight=in_flight(2.0, 1.0, None),
        max_units=5000,
    )
    proof = Proof("limit", s.limit_bytes, requests=50, failures=0, p95_ms=900.0)
    low = Proof("60pct", int(s.limit_bytes * 0.6), oom_kills=1, requests=50, failures=20)
    return {
        **to_json(s),
        "design": design,
        "rate_rps": 2.0,
        "rate_source": "the measured capacity",
        "not_proven": "",
        "proofs": [
            {**vars(p), "held": p.held, "failure_ratio": p.failure_ratio} for p in (proof, low)
        ],
    }


def test_the_text_people_paste() -> None:
    lines = sizing_lines(sizing_json("naive", 200))
    text = "\n".join(lines)
    assert lines[0].startswith("naive: request ")
    assert "dominant term: in_flight" in lines[0]
    assert "memory: " in text and "docker run --memory=" in text
    assert "at the limit" in text and ": held:" in text
    assert "at 60% of it" in text and "did not hold" in text and "1 OOM kill(s)" in text


def test_the_report_section_names_terms_proofs_and_the_ratio(tmp_path: Path) -> None:
    run = run_dir(tmp_path)
    for design, mib in (("naive", 400), ("optimized", 100)):
        path = run.phase_dir(design, "size") / "sizing.json"
        path.write_text(json.dumps(sizing_json(design, mib)), encoding="utf-8")
    capacity_steps(run, "naive")
    data = cast(Any, SimpleNamespace(root=run.root, designs=["naive", "optimized"]))
    table = sizing_table(data)
    assert table is not None
    labels = [(r["design"], r["label"]) for r in table["rows"]]
    assert ("naive", "in_flight") in labels and ("optimized", "proof at 60%") in labels
    notes = sizing_notes(data)
    assert notes[-1] == "naive / optimized limit: 3.99."  # 550 MiB / 138 MiB
    assert "dominant term is in_flight" in notes[0]
    found = points(run.root, "naive")
    assert list(found["in_flight"]) == pytest.approx([0.35, 0.8, 7.6])
    assert any(n.startswith("naive: the model (no headroom) is ") for n in notes)


def test_the_model_s_gap_to_the_measured_steps() -> None:
    sizing = sizing_json("naive", 100)  # 50 MiB idle + in flight x 10 MiB
    assert model_rss(sizing, 2.0) == pytest.approx(70 * MIB)
    steps = pd.DataFrame({"in_flight": [0.0, 2.0], "rss_bytes": [40 * MIB, 70 * MIB]})
    assert model_gap(sizing, steps) == pytest.approx((0.0, 0.25))
    assert model_gap(sizing, steps.iloc[0:0]) is None


def test_the_largest_user_of_the_seeded_store() -> None:
    from harness.sizing.measure import largest_user

    manifest = {
        "users": [
            {"user_id": "user-0001", "history_len": 10, "whale": False},
            {"user_id": "whale-01", "history_len": 5000, "whale": True},
            {"user_id": "broken"},
        ]
    }
    assert largest_user(manifest) == ("whale-01", 5000)
    assert largest_user({}) is None
