"""docs/schemas/: the result formats, checked against the fixture runs and the baseline, and
a reader that refuses a version it does not know."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from schema_check import SCHEMAS, check_run_dir, errors, schema

from harness._errors import HarnessError
from harness.report._model import load_run
from harness.results import SCHEMA_VERSION, check_file_version

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "tests" / "data" / "runs"


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.schema.json")), ids=lambda p: p.name)
def test_every_schema_is_a_valid_json_schema(path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


@pytest.mark.parametrize("run", ["small-a", "small-b"])
def test_the_fixture_runs_validate(run: str) -> None:
    checked = check_run_dir(RUNS / run)
    assert {"run.json", "summary.json"} <= set(checked)
    assert "integrity" in checked.values()


def test_the_committed_baseline_validates() -> None:
    assert errors(json.loads((ROOT / "baselines" / "ci.json").read_text()), "baseline") == []


def _row(**changes: Any) -> dict[str, Any]:
    row = {"design": "naive", "phase": "load", "metric": "rps", "value": 1.0, "unit": "req/s"}
    return {**row, "labels": {}, **changes}


def test_a_new_metric_name_needs_no_schema_change() -> None:
    assert errors([_row(metric="retained_bytes_per_request", unit="bytes")], "summary") == []


@pytest.mark.parametrize(
    ("row", "where"),
    [
        (_row(value="12"), "0/value"),
        (_row(labels={"history_len": 100}), "0/labels/history_len"),
        ({k: v for k, v in _row().items() if k != "unit"}, "<root>"),
        (_row(metric=""), "0/metric"),
    ],
)
def test_a_malformed_row_is_rejected(row: dict[str, Any], where: str) -> None:
    found = errors([row], "summary")
    assert found and found[0].startswith(where if where != "<root>" else "0")


def test_run_status_and_version_are_checked() -> None:
    run = json.loads((RUNS / "small-b" / "run.json").read_text())
    assert errors(run, "run") == []
    assert errors({**run, "status": "done"}, "run")
    assert errors({**run, "schema_version": SCHEMA_VERSION + 1}, "run")


def test_a_json_file_without_a_schema_fails_the_check(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text((RUNS / "small-b" / "run.json").read_text())
    (tmp_path / "naive").mkdir()
    (tmp_path / "naive" / "mystery.json").write_text("{}")
    with pytest.raises(AssertionError, match=r"naive/mystery.json: no schema"):
        check_run_dir(tmp_path)


def test_gate_verdict_status_is_an_enum() -> None:
    verdict = {
        "metric": "alloc_peak_bytes", "design": "naive", "labels": {"endpoint": "chat"},
        "unit": "bytes", "baseline": 1.0, "current": 1.0, "change": 0.0, "limit": 1.0,
        "threshold": "+10%", "rule": "alloc_peak_bytes", "status": "pass",
    }  # fmt: skip
    gate = {"schema_version": 1, "outcome": "passed", "exit_code": 0, "baseline": "b.json",
            "run_dir": "r",
            "warnings": [], "verdicts": [verdict]}  # fmt: skip
    assert errors(gate, "gate") == []
    assert errors({**gate, "verdicts": [{**verdict, "status": "fine"}]}, "gate")


def test_a_file_of_another_version_is_refused_naming_file_and_version(tmp_path: Path) -> None:
    check_file_version({"schema_version": SCHEMA_VERSION}, tmp_path / "x.json")
    check_file_version({"design": "naive"}, tmp_path / "x.json")  # written before versions
    with pytest.raises(HarnessError, match=r"x\.json: schema_version 7 is not"):
        check_file_version({"schema_version": 7}, tmp_path / "x.json")


def test_the_report_refuses_an_integrity_file_of_another_version(tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(RUNS / "small-b", run)
    integrity = run / "naive" / "integrity.json"
    data = json.loads(integrity.read_text())
    integrity.write_text(json.dumps({**data, "schema_version": 99}))
    with pytest.raises(HarnessError) as info:
        load_run(run)
    assert str(integrity) in str(info.value) and "schema_version 99" in str(info.value)


def test_schema_names_cover_the_documented_files() -> None:
    names = {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")}
    assert {"run", "summary", "gate", "chaos", "integrity", "baseline"} <= names
    assert schema("run")["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_a_gate_run_and_the_baseline_it_writes_validate(tmp_path: Path) -> None:
    from test_gate_cli import gate, make_run, rows

    baseline = tmp_path / "ci.json"
    assert gate("--run", make_run(tmp_path, rows(), "b"), "--baseline", baseline,
                "--update-baseline") == 0  # fmt: skip
    assert errors(json.loads(baseline.read_text()), "baseline") == []
    run = make_run(tmp_path, rows(chat_1000=400_000.0), "regressed")
    assert gate("--run", run, "--baseline", baseline) == 1
    checked = check_run_dir(run)
    assert checked["gate.json"] == "gate"


def test_the_baseline_schema_knows_the_current_baseline_version() -> None:
    from harness.gate import BASELINE_SCHEMA_VERSION

    assert BASELINE_SCHEMA_VERSION in schema("baseline")["properties"]["schema_version"]["enum"]
