"""The report header: each setting shown only where it applied, every target described."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import config
from harness.report._header import phases_that_ran, profile_text, target_rows

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello_service" / "loadtest.toml"
REFERENCE = ROOT / "loadtest.toml"


def recorded(path: Path) -> dict[str, Any]:
    """The config as `harness loadtest` records it in run.json."""
    return config.load(path).to_json()


def test_a_target_without_seed_or_probe_shows_no_reference_dataset() -> None:
    cfg = recorded(HELLO)
    ran = phases_that_ran(
        [
            {"design": "ceiling", "phase": "ceiling", "status": "passed"},
            {"design": "hello", "phase": "load", "status": "passed"},
            {"design": "hello", "phase": "profile", "status": "skipped"},
        ]
    )
    text = profile_text(cfg, ran)
    assert text.startswith("quick; ")
    assert "20 users at 10" in text and "load 30" in text and "ceiling 10" in text
    assert "probe" not in text and "memray" not in text  # neither ran
    rows = dict(target_rows(cfg, ["hello"]))
    assert set(rows) == {"Target hello"}  # no Dataset row
    hello = rows["Target hello"]
    assert hello.startswith("command: {python} -m harness.serve hello_app:app --host {host}")
    assert "scenario: " in hello and hello.rstrip().endswith("locustfile.py")
    assert "seed" not in hello and "whales" not in hello


def test_reference_targets_show_their_dataset_and_the_phases_that_ran() -> None:
    cfg = recorded(REFERENCE)
    ran = {"load", "probe", "profile", "integrity"}
    text = profile_text(cfg, ran)
    profile = cfg["profile"]
    lens = ", ".join(str(x) for x in profile["probe_history_lens"])
    assert f"probe history {lens} x {profile['probe_reps']} reps" in text
    assert f"memray profile {profile['profile_duration_s']} s" in text
    rows = dict(target_rows(cfg, ["naive", "optimized"]))
    seed = cfg["seed"]
    assert rows["Dataset"] == (
        f"seed {seed['seed']}: {seed['users']} users, {seed['whales']} whales of "
        f"{seed['whale_history']} messages (seeded for naive, optimized)"
    )
    for design in ("naive", "optimized"):
        assert f"--design {design}" in rows[f"Target {design}"]
        assert "scenario: scenarios/spike.py" in rows[f"Target {design}"]


def test_a_failed_probe_ran_a_skipped_one_did_not() -> None:
    assert phases_that_ran([{"phase": "probe", "status": "failed"}]) == {"probe"}
    assert phases_that_ran([{"phase": "probe", "status": "skipped"}]) == set()


def test_runs_recorded_before_targets_fall_back_to_the_reference_designs() -> None:
    cfg = recorded(REFERENCE)
    del cfg["targets"]
    rows = dict(target_rows(cfg, ["naive", "mystery"]))
    assert "--design naive" in rows["Target naive"]
    assert rows["Target mystery"] == "not recorded in run.json"
    assert rows["Dataset"].endswith("(seeded for naive)")
