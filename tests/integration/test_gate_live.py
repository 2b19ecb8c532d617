"""`harness gate` end to end: the real probe on the optimized design, a baseline made from this
tree, and regressions planted into it: REFAPP_CONTEXT_WINDOW=200 (the optimized design reads 200
messages of context instead of 20 per chat request: a wider query) and REFAPP_PLANT_LEAK (a list
that keeps 1 KiB per history request for ever). Passes without them, exit 1 with each, and the
leak's failure names the leaking line, with the shipped thresholds of loadtest.toml.

Small on purpose (one design, history lengths 0 and 1000, 3 reps) to stay fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(300)]
pytest.importorskip("harness.phases.probe", reason="the probe phase is not available")

ROOT = Path(__file__).resolve().parents[2]
# The shipped thresholds, so the test fails if they stop catching these regressions.
THRESHOLDS = (ROOT / "loadtest.toml").read_text(encoding="utf-8").split("[gate.thresholds]")[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gate")
    (root / "loadtest.toml").write_text(
        f"""
[run]
designs = ["optimized"]
out = "{root / "reports"}"
profile = "quick"

[profiles.quick]

[gate]
baseline = "{root / "ci.json"}"
history_lens = [0, 1000]
reps = 3
warmup = 1

[gate.thresholds]
{THRESHOLDS}
""",
        encoding="utf-8",
    )
    return root


def gate(workdir: Path, *args: str) -> int:
    return main(["gate", "--config", str(workdir / "loadtest.toml"), *args])


def last_gate_json(workdir: Path) -> dict[str, object]:
    runs = sorted((workdir / "reports").glob("*/gate.json"), key=lambda p: p.stat().st_mtime)
    assert runs, "no gate.json written"
    data: dict[str, object] = json.loads(runs[-1].read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def baseline(workdir: Path) -> Path:
    mp = pytest.MonkeyPatch()
    for knob in ("REFAPP_CONTEXT_WINDOW", "REFAPP_PLANT_LEAK", "REFAPP_PLANT_TRANSIENT"):
        mp.delenv(knob, raising=False)
    try:
        assert gate(workdir, "--update-baseline") == 0
    finally:
        mp.undo()
    path = workdir / "ci.json"
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["kind"] == "memload-gate-baseline"
    assert payload["probe"]["history_lens"] == [0, 1000]
    assert payload["rows"], "the baseline has no rows"
    return path


def test_gate_passes_against_a_baseline_from_the_same_tree(
    workdir: Path, baseline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REFAPP_CONTEXT_WINDOW", raising=False)
    assert gate(workdir) == 0
    result = last_gate_json(workdir)
    assert result["outcome"] == "passed"


def test_gate_fails_with_the_regression_knob(
    workdir: Path,
    baseline: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REFAPP_CONTEXT_WINDOW", "200")
    assert gate(workdir) == 1
    out = capsys.readouterr().out
    assert "REFAPP_CONTEXT_WINDOW=200" in out
    assert "REGRESSION" in out
    result = last_gate_json(workdir)
    verdicts = result["verdicts"]
    assert isinstance(verdicts, list)
    regressed = {
        (v["metric"], v["labels"].get("endpoint"), v["labels"].get("history_len"))
        for v in verdicts
        if v["status"] == "regression"
    }
    assert ("alloc_peak_bytes", "chat", "1000") in regressed
    # the knob only widens the context a chat request reads: history pages are unaffected
    assert not any(endpoint == "history" for _, endpoint, _ in regressed)
    run_dir = Path(str(result["run_dir"]))
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert run["command"] == "gate"
    assert run["config"]["app_env"] == {"REFAPP_CONTEXT_WINDOW": "200"}
    assert (run_dir / "gate-junit.xml").exists() and (run_dir / "gate.md").exists()


def test_gate_names_the_line_of_a_leak(
    workdir: Path,
    baseline: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("REFAPP_CONTEXT_WINDOW", raising=False)
    monkeypatch.setenv("REFAPP_PLANT_LEAK", "history:1024")
    assert gate(workdir) == 1
    out = capsys.readouterr().out
    source = (ROOT / "reference_app" / "planted.py").read_text(encoding="utf-8").splitlines()
    # the line that creates the kept object (planted.block), called from the leaking list's
    line = next(i for i, text in enumerate(source, 1) if "return bytes(" in text)
    assert f"reference_app/planted.py:{line}" in out
    result = last_gate_json(workdir)
    verdicts = result["verdicts"]
    assert isinstance(verdicts, list)
    leak = [
        v
        for v in verdicts
        if v["status"] == "regression" and v["metric"] == "retained_bytes_per_request"
    ]
    assert [v["labels"]["endpoint"] for v in leak] == ["history"]
    assert 0.95 * 1032 <= leak[0]["current"] - leak[0]["baseline"] <= 1.05 * 1032
    assert leak[0]["sites"][0]["location"] == f"reference_app/planted.py:{line}"
