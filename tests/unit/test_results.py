import json
import os
from pathlib import Path

import pytest

from harness._errors import HarnessError
from harness.results import (
    SCHEMA_VERSION,
    RunDir,
    SummaryRow,
    check_schema,
    environment,
    write_json_atomic,
)


def test_write_json_atomic_leaves_no_temp_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_json_atomic(target, {"a": 1})

    class Unserialisable:
        def __repr__(self) -> str:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_json_atomic(target, {"a": Unserialisable()})
    # the old content survives and no half-written temp file is left behind
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_summary_rows_replace_same_design_and_phase(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, run_id="r1")
    run.add_summary([SummaryRow("naive", "load", "rps", 1.0, "req/s")])
    run.add_summary([SummaryRow("optimized", "load", "rps", 2.0, "req/s")])
    run.add_summary([SummaryRow("naive", "load", "rps", 3.0, "req/s", {"endpoint": "x"})])
    rows = {(r.design, r.value) for r in run.read_summary()}
    assert rows == {("optimized", 2.0), ("naive", 3.0)}


def test_summary_row_round_trip() -> None:
    row = SummaryRow("d", "probe", "alloc_peak_bytes", 12.5, "bytes", {"history_len": "100"})
    assert SummaryRow.from_json(json.loads(json.dumps(row.to_json()))) == row


def test_run_lifecycle_and_latest_link(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, run_id="r1")
    run.start_run("loadtest", {"profile": "quick"})
    run.record_phase("naive", "load", "passed", "t0", 1.23456, exit_code=0)
    run.record_phase("naive", "load", "failed", "t1", 2.0, detail="crash", exit_code=1)
    run.finish_run("failed")
    run.point_latest()
    data = run.read_run()
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["status"] == "failed"
    assert [(p["phase"], p["status"]) for p in data["phases"]] == [("load", "failed")]
    assert os.readlink(tmp_path / "latest") == "r1"
    second = RunDir.create(tmp_path, run_id="r1")
    assert second.root.name == "r1-2"


def test_environment_records_versions_not_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    env = environment()
    assert "hunter2" not in json.dumps(env)
    assert env["packages"]["pandas"] != "absent"


def test_check_schema_rejects_other_versions(tmp_path: Path) -> None:
    check_schema({"schema_version": SCHEMA_VERSION}, tmp_path)
    with pytest.raises(HarnessError) as info:
        check_schema({"schema_version": SCHEMA_VERSION + 1}, tmp_path)
    assert info.value.exit_code == 2
