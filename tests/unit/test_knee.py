"""The knee's refinement (harness.analysis.knee) and the bounds every display qualifies
(harness.analysis.headline.bounds): pure logic, no processes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness._errors import ConfigError
from harness.analysis.bounds import (
    AT_LEAST,
    AT_MOST,
    BELOW,
    QUALIFIERS_COLUMN,
    TWO_BOUNDS,
    bounds,
    combine,
    qualified,
)
from harness.analysis.capacity import Capacity, Limits, Verdict
from harness.analysis.headline import compare_table, headline_table, summary_frame
from harness.analysis.knee import Probe, next_rate, refine, within
from harness.config.target_spec import DEFAULT_TARGET_P95_MS, parse_target
from harness.results import SummaryRow

MET = Verdict("met")
MISSED = Verdict("missed", "GET /work p95 900 ms > 500 ms")
SATURATED = Verdict("saturated", "load generator saturated: 9% of sends dropped (> 5%)")


def knee(met: float, missed: float) -> Capacity:
    return Capacity(met, "knee", f"at {missed:g} req/s: p95", 3, 4, missed)


def bisect(true_capacity: float, start: Capacity, precision: float = 0.1) -> Capacity:
    """Run the refinement against an oracle: a rate meets when it is at most the truth."""
    capacity = start
    for _ in range(20):
        rate = next_rate(capacity, precision)
        if rate is None:
            return capacity
        capacity = refine(capacity, Probe(rate, MET if rate <= true_capacity else MISSED))
    raise AssertionError("the refinement did not end")


def test_within_is_the_knee_at_most_precision_above_the_capacity() -> None:
    assert within(100.0, 110.0, 0.1)
    assert not within(100.0, 110.5, 0.1)
    assert not within(0.0, 1.0, 0.1)  # below the first step: nothing to be within


def test_next_rate_is_the_geometric_middle_of_the_bracket() -> None:
    assert next_rate(knee(10.0, 40.0), 0.1) == 20.0
    assert next_rate(knee(101.0, 171.0), 0.1) == pytest.approx(math.sqrt(101 * 171), rel=5e-3)


@pytest.mark.parametrize(
    "capacity",
    [
        Capacity(101.0, "not reached", "every step met the objective, up to 101 req/s", 10),
        Capacity(0.0, "below start", "at 0.5 req/s: p95", None, 0, 0.5),
        Capacity(50.0, "saturated", "at 85 req/s: load generator saturated", 5, 6, 85.0),
        Capacity(0.0, "no data", "no open-model rows in the statistics"),
        knee(100.0, 109.0),  # already within 10%
    ],
)
def test_nothing_to_refine_without_a_bracket_wider_than_the_precision(capacity: Capacity) -> None:
    assert next_rate(capacity, 0.1) is None


def test_met_raises_the_floor_missed_lowers_the_knee() -> None:
    up = refine(knee(10.0, 17.0), Probe(13.0, MET))
    assert (up.capacity_rps, up.knee_rps, up.status) == (13.0, 17.0, "knee")
    down = refine(knee(10.0, 17.0), Probe(13.0, MISSED))
    assert (down.capacity_rps, down.knee_rps, down.status) == (10.0, 13.0, "knee")
    assert "13 req/s" in down.reason


def test_a_saturated_probe_ends_with_a_lower_bound() -> None:
    ended = refine(knee(10.0, 17.0), Probe(13.0, SATURATED))
    assert ended.capacity_rps == 10.0 and ended.lower_bound
    assert next_rate(ended, 0.1) is None


@pytest.mark.parametrize(
    ("true_capacity", "met", "missed"),
    [
        (62.5, 59.0, 101.0),  # x1.7 staircase, 16 ms a request
        (20.0, 14.4, 24.6),  # x1.7, 50 ms
        (130.0, 101.0, 171.0),
        (5.0, 4.9, 8.4),  # the truth just above the last met step
        (8.3, 4.9, 8.4),  # the truth just under the missed step
        (1.43, 1.28, 1.66),  # x1.3: one probe may suffice
    ],
)
def test_bisection_ends_within_ten_percent_around_the_truth(
    true_capacity: float, met: float, missed: float
) -> None:
    found = bisect(true_capacity, knee(met, missed))
    assert found.status == "knee"
    assert found.knee_rps is not None
    assert found.capacity_rps <= true_capacity < found.knee_rps
    assert within(found.capacity_rps, found.knee_rps, 0.1)


@pytest.mark.parametrize(
    ("met", "missed"),
    [(59.0, 101.0), (32.0, 64.0)],  # the staircases of x1.7 and of x2 (quick) around 62.5
)
def test_a_x17_or_x2_bracket_takes_three_probes(met: float, missed: float) -> None:
    capacity, probes = knee(met, missed), 0
    while (rate := next_rate(capacity, 0.1)) is not None:
        capacity = refine(capacity, Probe(rate, MET if rate <= 62.5 else MISSED))
        probes += 1
    assert probes == 3


# --- bounds ----------------------------------------------------------------------------------


def test_combine_gives_the_ratio_s_bound() -> None:
    assert combine("", "") == ""
    assert combine(AT_LEAST, "") == AT_LEAST  # a / b, a at least: at least
    assert combine("", AT_LEAST) == AT_MOST  # divided by at least: at most
    assert combine(AT_MOST, AT_LEAST) == AT_MOST
    assert combine(AT_LEAST, AT_LEAST) == TWO_BOUNDS
    assert qualified("101 req/s", AT_LEAST) == "at least 101 req/s"
    assert qualified("0.024×", AT_MOST) == "at most 0.024×"
    assert qualified("–", AT_LEAST) == "–"
    assert qualified("1.0×", TWO_BOUNDS).startswith("?")


def capacity_rows(
    design: str, rps: float, bound: bool, phase: str = "capacity"
) -> list[SummaryRow]:
    return [
        SummaryRow(design, phase, "capacity_rps", rps, "req/s"),
        SummaryRow(design, phase, "capacity_lower_bound", float(bound), "bool"),
    ]


def test_no_knee_says_at_least_in_the_headline_and_its_ratio_is_a_bound() -> None:
    frame = summary_frame(
        capacity_rows("naive", 2.46, False) + capacity_rows("optimized", 101.0, True)
    )
    assert bounds(frame) == {
        ("optimized", "capacity_rps"): AT_LEAST,
        ("optimized", "capacity_ceiling_fraction"): AT_LEAST,
    }
    table = headline_table(frame, ["naive", "optimized"])
    (row,) = table.to_dict("records")
    assert row[QUALIFIERS_COLUMN] == {"optimized": AT_LEAST, "naive / optimized": AT_MOST}


def test_a_ceiling_without_a_knee_makes_the_fractions_at_most() -> None:
    frame = summary_frame(
        [
            *capacity_rows("naive", 2.0, False),
            SummaryRow("naive", "capacity", "capacity_ceiling_fraction", 0.002, "ratio"),
            *capacity_rows("ceiling", 1190.0, True, phase="ceiling"),
        ]
    )
    assert bounds(frame)[("naive", "capacity_ceiling_fraction")] == AT_MOST
    assert bounds(frame)[("ceiling", "capacity_rps")] == AT_LEAST


def test_a_capacity_below_the_first_step_reads_below_that_rate_not_zero() -> None:
    frame = summary_frame(
        [
            *capacity_rows("naive", 0.0, False),
            SummaryRow("naive", "capacity", "knee_rps", 0.5, "req/s"),
            SummaryRow("naive", "capacity", "capacity_ceiling_fraction", 0.0, "ratio"),
            *capacity_rows("optimized", 80.0, False),
            SummaryRow("optimized", "capacity", "knee_rps", 86.0, "req/s"),
            *capacity_rows("ceiling", 2000.0, False, phase="ceiling"),
        ]
    )
    assert bounds(frame) == {
        ("naive", "capacity_rps"): BELOW,
        ("naive", "capacity_ceiling_fraction"): BELOW,
    }
    table = headline_table(frame, ["naive", "optimized"]).set_index("metric")
    row = table.loc["capacity_rps"]
    assert (row["naive"], row["optimized"]) == (0.5, 80.0)
    assert row["naive / optimized"] == pytest.approx(0.5 / 80.0)
    assert row[QUALIFIERS_COLUMN] == {"naive": BELOW, "naive / optimized": BELOW}
    assert table.loc["capacity_ceiling_fraction", "naive"] == pytest.approx(0.5 / 2000.0)
    assert qualified("0.5 req/s", BELOW) == "below 0.5 req/s"
    # what the summary rows hold is unchanged: 0, the search's own figure
    assert frame[frame["metric"] == "capacity_rps"]["value"].min() == 0.0


def test_a_below_figure_in_a_ratio_is_an_upper_bound() -> None:
    assert combine(BELOW, "") == BELOW
    assert combine("", BELOW) == AT_LEAST  # divided by less than b: more than a / b
    assert combine(BELOW, AT_LEAST) == AT_MOST  # less, over more: at most
    assert combine(BELOW, AT_MOST) == TWO_BOUNDS
    assert combine(AT_LEAST, BELOW) == AT_LEAST


def test_compare_carries_each_run_s_qualifier() -> None:
    a = summary_frame(capacity_rows("optimized", 101.0, True))
    b = summary_frame(capacity_rows("optimized", 140.0, False))
    (row,) = compare_table(a, b, ["optimized"]).to_dict("records")
    assert (row["a_qualifier"], row["b_qualifier"]) == (AT_LEAST, "")


# --- [target.capacity] -----------------------------------------------------------------------

BASE = {"name": "svc", "command": "{python} -m svc --port {port}", "scenario": "locustfile.py"}


def test_target_capacity_table_is_parsed(tmp_path: Path) -> None:
    (tmp_path / "locustfile.py").write_text("", encoding="utf-8")
    spec = parse_target(
        {
            **BASE,
            "capacity": {
                "objectives_p95_ms": {"GET /items/{id}": 200},
                "default_p95_ms": 800,
                "start_rps": 10,
            },
        },
        tmp_path / "t.toml",
        "target[0]",
    )
    assert dict(spec.capacity.objectives_p95_ms) == {"GET /items/{id}": 200.0}
    assert (spec.capacity.default_p95_ms, spec.capacity.start_rps) == (800.0, 10.0)
    assert spec.not_applicable("capacity") == ""  # its own scenario, chat_api or not
    limits = Limits(spec.capacity.objectives_p95_ms, default_p95_ms=spec.capacity.default_p95_ms)
    assert limits.objective_for("GET /items/{id}") == 200.0
    assert limits.objective_for("POST /items") == 800.0


def test_target_without_a_capacity_table_gets_the_default_objective(tmp_path: Path) -> None:
    (tmp_path / "locustfile.py").write_text("", encoding="utf-8")
    spec = parse_target(dict(BASE), tmp_path / "t.toml", "target[0]")
    assert spec.capacity.default_p95_ms == DEFAULT_TARGET_P95_MS
    no_scenario = parse_target(
        {k: v for k, v in BASE.items() if k != "scenario"}, tmp_path / "t.toml", "target[0]"
    )
    assert "no scenario" in no_scenario.not_applicable("capacity")


@pytest.mark.parametrize(
    ("capacity", "key"),
    [
        ({"objectives_p95_ms": {"GET /": -1}}, "target.svc.capacity.objectives_p95_ms.GET /"),
        ({"default_p95_ms": "fast"}, "target.svc.capacity.default_p95_ms"),
        ({"start_rps": 0}, "target.svc.capacity.start_rps"),
        ({"objective": 1}, "target.svc.capacity.objective"),
        ("fast", "target.svc.capacity"),
    ],
)
def test_bad_target_capacity_names_the_key(tmp_path: Path, capacity: object, key: str) -> None:
    (tmp_path / "locustfile.py").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        parse_target({**BASE, "capacity": capacity}, tmp_path / "t.toml", "target[0]")
    assert key in str(caught.value)


def test_the_console_s_ceiling_line_says_at_least_and_gives_the_bare_locust() -> None:
    from harness.analysis.scale import ceiling_line

    rows = [
        SummaryRow("ceiling", "ceiling", "capacity_rps", 289.0, "req/s"),
        SummaryRow("ceiling", "ceiling", "capacity_lower_bound", 1.0, "bool"),
        SummaryRow("ceiling", "ceiling", "bare_locust_rps", 700.0, "req/s"),
    ]
    line = ceiling_line(rows, 100, "/healthz", "optimized")
    assert line.startswith("ceiling: at least 289 req/s at p95 <= 100 ms")
    assert "Bare Locust on the same endpoint: 700 req/s (the ceiling: at least 41%)" in line
    exact = ceiling_line(rows[:1], 100, "/healthz", "optimized")
    assert "at least" not in exact and "Bare" not in exact
    assert "delivered" not in line  # no such row: nothing said


def test_the_ceiling_line_gives_what_the_generator_delivered_beside_the_bare_locust() -> None:
    from harness.analysis.scale import ceiling_line

    rows = [
        SummaryRow("ceiling", "ceiling", "capacity_rps", 2070.0, "req/s"),
        SummaryRow("ceiling", "ceiling", "bare_locust_rps", 3288.0, "req/s"),
        SummaryRow("ceiling", "ceiling", "delivered_max_rps", 3138.4, "req/s"),
    ]
    line = ceiling_line(rows, 100, "/healthz", "optimized")
    assert "(the ceiling: 63%)" in line
    assert "delivered up to 3,138 req/s in the search (95% of the bare Locust's)" in line


def test_the_ceiling_s_calibration_rows(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from harness.phases.ceiling import bare_rows

    history = tmp_path / "bare_stats_history.csv"
    lines = ["Timestamp,User Count,Type,Name,Requests/s,Failures/s,Total Request Count"]
    lines += [f"{t},100,,Aggregated,3000,0,{3000 * t}" for t in range(1, 9)]
    history.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bare = SimpleNamespace(history_csv=history)  # bare_rows reads only its history
    rows = {r.metric: r.value for r in bare_rows(bare, 2100.0, 2, 2850.0)}  # type: ignore[arg-type]
    assert rows["ceiling_load_workers"] == 2
    assert rows["delivered_max_rps"] == 2850.0
    assert rows["ceiling_bare_fraction"] == pytest.approx(2100.0 / rows["bare_locust_rps"])
    assert rows["delivered_bare_fraction"] == pytest.approx(2850.0 / rows["bare_locust_rps"])
    without = {r.metric for r in bare_rows(None, 2100.0, 2)}
    assert without == {"ceiling_load_workers"}


def test_the_report_gives_the_ceiling_the_bare_locust_and_what_the_generator_delivered() -> None:
    from harness.report._capacity import capacity_notes
    from harness.report._model import RunData

    rows = [
        SummaryRow("ceiling", "ceiling", "capacity_rps", 2070.0, "req/s"),
        SummaryRow("ceiling", "ceiling", "capacity_lower_bound", 0.0, "bool"),
        SummaryRow("ceiling", "ceiling", "knee_rps", 2260.0, "req/s"),
        SummaryRow("ceiling", "ceiling", "bare_locust_rps", 3288.0, "req/s"),
        SummaryRow("ceiling", "ceiling", "delivered_max_rps", 3138.4, "req/s"),
        *capacity_rows("naive", 0.0, False),
        SummaryRow("naive", "capacity", "knee_rps", 0.5, "req/s"),
    ]
    data = RunData(Path("run"), {}, summary_frame(rows), ["naive"])
    notes = capacity_notes(data)
    assert any(n.startswith("naive: below 0.5 req/s") for n in notes)
    assert any("the ceiling is 63% of it" in n for n in notes)
    assert any("delivered up to 3,138 req/s" in n and "95%" in n for n in notes)
