"""The process-tree sampler on this test process: rows, columns, how often each figure comes."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import pytest

from harness.sampling import procfs
from harness.sampling.process_sampler import COLUMNS, ProcessTreeSampler, every


def test_every() -> None:
    assert every(1.0, 0.1) == 10
    assert every(5.0, 1.0) == 5
    assert every(1.0, 2.0) == 1
    assert every(0.3, 0.1) == 3  # not 2 from 0.3 / 0.1 = 2.9999999999999996


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.skipif(not procfs.available(), reason="needs Linux /proc")
def test_sampler_rows_carry_the_high_water_mark_and_sparse_details(tmp_path: Path) -> None:
    out = tmp_path / "samples.csv"
    sampler = ProcessTreeSampler(os.getpid(), 0.02, out, uss_every_s=0.08, connections_every_s=0.04)
    with sampler:
        deadline = time.monotonic() + 10
        while sampler.samples < 9 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert sampler.method == "procfs" and sampler.cpu_s > 0
    rows = _rows(out)
    assert list(rows[0]) == list(COLUMNS)
    totals = [r for r in rows if r["pid"] == "total"]
    assert len(totals) >= 8
    for row in totals:
        assert int(row["hwm_bytes"]) >= int(row["rss_bytes"]) > 0
    # USS every 4th sample, connections every 2nd, from the first on
    assert [bool(r["uss_bytes"]) for r in totals[:8]] == [True, False, False, False] * 2
    assert [bool(r["connections"]) for r in totals[:8]] == [True, False] * 4


def test_the_psutil_method_measures_everything_every_time(tmp_path: Path) -> None:
    out = tmp_path / "samples.csv"
    with ProcessTreeSampler(os.getpid(), 0.02, out, method="psutil") as sampler:
        deadline = time.monotonic() + 10
        while sampler.samples < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    totals = [r for r in _rows(out) if r["pid"] == "total"]
    assert totals and all(r["uss_bytes"] and r["connections"] for r in totals)
    assert all(r["hwm_bytes"] == "" for r in totals)


def test_an_unknown_method_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown sampling method"):
        ProcessTreeSampler(os.getpid(), 1.0, tmp_path / "x.csv", method="magic")  # type: ignore[arg-type]
