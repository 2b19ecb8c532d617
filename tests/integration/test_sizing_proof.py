"""The sizing proof on a target of its own (the items example): its locustfile's tasks,
open-model, at a stated rate, with its data set to max_units, inside a real kernel limit,
and the limit gone afterwards (harness.sizing.proof.prove)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import config as config_mod
from harness.sizing.cgroup import detect
from harness.sizing.proof import Limiter, prove

pytestmark = pytest.mark.integration

ITEMS = Path(__file__).resolve().parents[2] / "examples" / "items_service" / "loadtest.toml"
MIB = 2**20


def test_the_items_example_is_loaded_by_its_own_locustfile_under_a_cgroup(
    tmp_path: Path,
) -> None:
    controller = detect()
    if isinstance(controller, str):
        pytest.skip(controller)
    cfg = config_mod.load(ITEMS, {"out": str(tmp_path / "runs")})
    seeded = tmp_path / "seed"
    seeded.mkdir()  # the items service has no seed command: its store starts empty
    proof = prove(
        cfg,
        cfg.target("items"),
        Limiter("cgroup", controller),
        label="limit",
        limit_bytes=256 * MIB,
        rate=20.0,
        workers=1,
        max_units=1000,
        proof_s=1.0,
        seeded=seeded,
        out=tmp_path / "proof",
    )
    assert proof.runtime == "cgroup"
    assert proof.requests > 0, proof.problem
    assert proof.held, proof
    assert proof.peak_usage_bytes > 0
    assert not list(controller.parent.glob("harness-size-*-items-limit"))  # removed
    steps = (tmp_path / "proof" / "capacity_steps.csv").read_text()
    assert "GET /items" in (tmp_path / "proof" / "capacity_endpoints.csv").read_text()
    assert steps.count("\n") == 2  # one step: no refinement after it
