"""The container-sizing model: the [size] table, the sum term by term, what people paste."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from config_helpers import error_of, write

from harness import config
from harness._errors import ConfigError
from harness.analysis.sizing import (
    MIB,
    PeakAtUnits,
    ProbePoint,
    Proof,
    SizeTable,
    docker_flag,
    in_flight,
    kubernetes_resources,
    mib_ceil,
    parse_size_table,
    peak_at_units,
    poisson_quantile,
    size_container,
    sizing_rows,
    worker_note,
)

TARGET = """
[run]
designs = ["svc"]

[profiles.quick]

[[target]]
name = "svc"
command = ["{python}", "-m", "harness.serve", "m:app", "--port", "{port}"]
"""


# --- the [size] table ---------------------------------------------------------------------------


def test_a_full_table_parses() -> None:
    table = parse_size_table(
        {"workers": 2, "rate": 3, "max_units": 20000, "headroom": 0.5, "proof_s": 10},
        "f.toml",
    )
    assert table == SizeTable(workers=2, rate=3.0, max_units=20000, headroom=0.5, proof_s=10.0)


@pytest.mark.parametrize(
    ("raw", "key", "words"),
    [
        ({"wokers": 2}, "size.wokers", "unknown key"),
        ({"workers": 0}, "size.workers", "> 0"),
        ({"workers": 1.5}, "size.workers", "integer"),
        ({"rate": "fast"}, "size.rate", "number"),
        ({"rate": True}, "size.rate", "number"),
        ({"runtime": "podman"}, "size.runtime", "one of auto, docker, cgroup"),
        ({"headroom": 25}, "size.headroom", "fraction"),
        ({"headroom": -0.1}, "size.headroom", ">= 0"),
        ({"prove": "yes"}, "size.prove", "true or false"),
    ],
)
def test_a_bad_key_is_named_with_the_file(raw: dict[str, object], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_size_table(raw, "here.toml")
    assert info.value.path == "here.toml"
    assert info.value.key == key
    assert words in info.value.problem


def test_a_target_table_wins_key_by_key() -> None:
    base = SizeTable(workers=1, rate=2.0, headroom=0.25)
    assert SizeTable(rate=5.0).over(base) == SizeTable(workers=1, rate=5.0, headroom=0.25)


def test_config_reads_size_and_target_size(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        TARGET + "[target.size]\nmax_units = 20000\n\n[size]\nworkers = 2\n",
    )
    cfg = config.load(path)
    assert cfg.size == SizeTable(workers=2)
    assert cfg.target("svc").size == SizeTable(max_units=20000)
    assert "size" in config.KNOWN_PHASES


def test_config_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, TARGET + "[target.size]\nheadroom = 'lots'\n")
    error = error_of(path)
    assert error.key == "target.svc.size.headroom"
    assert error.path == str(path)
    path = write(tmp_path, TARGET + "[size]\nmaxunits = 3\n", name="b.toml")
    assert error_of(path).key == "size.maxunits"


def test_command_line_size_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, TARGET + "[size]\nrate = 2\nworkers = 3\n")
    cfg = config.load(path, {"size": SizeTable(rate=9.0)})
    assert cfg.size == SizeTable(rate=9.0, workers=3)
    path = write(tmp_path, TARGET + "[target.size]\nrate = 4\n", name="t.toml")
    assert config.load(path, {"size": SizeTable(rate=9.0)}).target("svc").size == SizeTable(
        rate=9.0
    )


def test_size_runs_last_in_the_plan() -> None:
    from harness.phases.orchestration import phase_plan

    assert phase_plan(["size", "load", "probe", "integrity"]) == [
        "load",
        "integrity",
        "probe",
        "size",
    ]


# --- the inputs ---------------------------------------------------------------------------------


def test_peak_is_the_worst_endpoint_measured_at_max_units() -> None:
    points = [
        ProbePoint("history", 5000, 100.0),
        ProbePoint("chat", 0, 10.0),
        ProbePoint("chat", 5000, 900.0),
        ProbePoint("chat", 5000, 1100.0),
    ]
    assert peak_at_units(points, 5000) == PeakAtUnits("chat", 1000.0, True)


def test_peak_beyond_the_probe_is_read_off_its_line() -> None:
    points = [ProbePoint("list", 0, 1000.0), ProbePoint("list", 1000, 3000.0)]
    peak = peak_at_units(points, 2000)
    assert not peak.measured
    assert peak.bytes == pytest.approx(5000.0)


def test_extrapolating_up_never_goes_below_the_largest_probed_peak() -> None:
    points = [ProbePoint("x", 0, 500.0), ProbePoint("x", 10, 400.0)]
    assert peak_at_units(points, 100).bytes == 400.0


def test_no_probe_points_is_an_error() -> None:
    with pytest.raises(ValueError, match="no probe points"):
        peak_at_units([], 10)


@pytest.mark.parametrize(
    ("mean", "expected"), [(0.0, 0), (1.0, 4), (2.0, 6), (10.0, 18), (1000.0, 1074)]
)
def test_poisson_quantile(mean: float, expected: int) -> None:
    assert poisson_quantile(mean) == expected


def test_in_flight_from_littles_law_at_its_99th_percentile() -> None:
    flight = in_flight(rate=2.0, latency_s=1.0, concurrency=None)
    assert flight.mean == 2.0
    assert flight.requests == 6
    assert "Little" in flight.source


def test_in_flight_is_at_least_one_and_a_stated_concurrency_wins() -> None:
    assert in_flight(0.01, 0.01, None).requests == 1
    assert in_flight(5.0, 1.0, 3.0).requests == 3.0
    with pytest.raises(ValueError):
        in_flight(None, 1.0, None)


# --- the sum ------------------------------------------------------------------------------------


def test_the_sum_term_by_term() -> None:
    s = size_container(
        workers=2,
        idle_rss_bytes=50 * MIB,
        data_growth_bytes=10 * MIB,
        peak=PeakAtUnits("chat", 30 * MIB, True),
        flight=in_flight(None, None, 4.0),
        max_units=5000,
    )
    assert {t.name: t.bytes / MIB for t in s.terms} == {
        "workers": 100.0,
        "data": 20.0,
        "in_flight": 120.0,
    }
    assert s.request_bytes == 240 * MIB
    assert s.limit_bytes == 300 * MIB  # 25% headroom
    assert s.dominant.name == "in_flight"
    assert s.per_worker_bytes == 75 * MIB  # (50 + 10) x 1.25


def test_what_a_worker_retains_past_one_request_s_peak_is_a_term_per_worker() -> None:
    s = size_container(
        workers=2,
        idle_rss_bytes=50 * MIB,
        data_growth_bytes=0,
        peak=PeakAtUnits("chat", 6 * MIB, True),
        flight=in_flight(None, None, 4.0),
        max_units=5000,
        headroom=0.0,
        retained_rss_bytes=36 * MIB,  # RSS kept after the whale's requests
    )
    terms = {t.name: t.bytes / MIB for t in s.terms}
    assert terms == {"workers": 100.0, "data": 0.0, "retained": 60.0, "in_flight": 24.0}
    assert [t.name for t in s.terms] == ["workers", "data", "retained", "in_flight"]
    assert s.request_bytes == 184 * MIB
    assert s.per_worker_bytes == 80 * MIB  # 50 idle + 30 retained
    assert "36.0 MiB RSS kept" in s.terms[2].formula


def test_retaining_less_than_one_request_s_peak_adds_nothing() -> None:
    common = {
        "workers": 1,
        "idle_rss_bytes": 50 * MIB,
        "data_growth_bytes": 0.0,
        "peak": PeakAtUnits("get", 4 * MIB, True),
        "flight": in_flight(None, None, 2.0),
        "max_units": 10,
    }
    kept = size_container(**common, retained_rss_bytes=3 * MIB)  # type: ignore[arg-type]
    assert {t.name: t.bytes for t in kept.terms}["retained"] == 0.0
    unmeasured = size_container(**common)  # type: ignore[arg-type]
    assert "retained" not in {t.name for t in unmeasured.terms}
    assert kept.limit_bytes == unmeasured.limit_bytes


def test_limits_are_whole_mib_rounded_up() -> None:
    assert mib_ceil(1) == MIB
    assert mib_ceil(MIB) == MIB
    assert mib_ceil(-5) == 0


def test_negative_data_growth_counts_as_none() -> None:
    s = size_container(
        workers=1,
        idle_rss_bytes=40 * MIB,
        data_growth_bytes=-3 * MIB,
        peak=PeakAtUnits("a", MIB, False),
        flight=in_flight(None, None, 1.0),
        max_units=10,
        headroom=0.0,
    )
    assert s.request_bytes == s.limit_bytes == 41 * MIB
    assert "from the probe line" in s.terms[2].formula


def test_what_people_paste() -> None:
    s = size_container(
        workers=1,
        idle_rss_bytes=100 * MIB,
        data_growth_bytes=0,
        peak=PeakAtUnits("chat", 10 * MIB, True),
        flight=in_flight(None, None, 2.0),
        max_units=5000,
    )
    assert kubernetes_resources(s) == (
        "resources:\n  requests:\n    memory: 120Mi\n  limits:\n    memory: 150Mi\n"
    )
    assert docker_flag(s) == "docker run --memory=150m"
    assert "+125 MiB" in worker_note(s)


def test_rows_carry_the_limits_the_terms_and_the_proofs() -> None:
    s = size_container(
        workers=1,
        idle_rss_bytes=100 * MIB,
        data_growth_bytes=0,
        peak=PeakAtUnits("chat", 10 * MIB, True),
        flight=in_flight(None, None, 2.0),
        max_units=5000,
    )
    proofs = [
        Proof("limit", s.limit_bytes, oom_kills=0, requests=100, failures=0, p95_ms=300.0),
        Proof("60pct", int(s.limit_bytes * 0.6), oom_kills=2, requests=40, failures=30),
    ]
    rows = {(r.metric, r.labels.get("term", "")): r.value for r in sizing_rows("d", s, proofs, 2.0)}
    assert rows[("memory_limit_bytes", "")] == 150 * MIB
    assert rows[("memory_request_bytes", "")] == 120 * MIB
    assert rows[("size_term_bytes", "in_flight")] == 20 * MIB
    assert rows[("oom_kills_at_limit", "")] == 0
    assert rows[("oom_kills_at_60pct", "")] == 2
    assert rows[("failures_at_limit", "")] == 0
    assert rows[("size_rate_rps", "")] == 2.0
    assert proofs[0].held and not proofs[1].held


def test_a_proof_without_requests_did_not_hold() -> None:
    assert not Proof("limit", MIB).held
    assert math.isnan(Proof("limit", MIB).failure_ratio)
    assert not Proof("limit", MIB, requests=10, problem="could not start").held


def test_rate_and_concurrency_together_size_by_one_and_load_at_the_other() -> None:
    table = parse_size_table({"rate": 100, "concurrency": 20, "runtime": "cgroup"}, "here.toml")
    assert (table.rate, table.concurrency, table.runtime) == (100.0, 20.0, "cgroup")


def test_the_size_command_refuses_a_bad_headroom(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["size", "--headroom", "30"]) == 2
