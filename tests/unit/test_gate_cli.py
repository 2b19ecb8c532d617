"""`harness gate --run RUN_DIR`: the CLI end to end on a fabricated run directory (no processes)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.results import RunDir, SummaryRow

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "loadtest.toml"


def rows(chat_1000: float = 200_000.0, retained_chat: float = 16.0) -> list[SummaryRow]:
    out: list[SummaryRow] = []
    for design in ("naive", "optimized"):
        for endpoint in ("chat", "history"):
            for hist in (0, 1000):
                labels = {"endpoint": endpoint, "history_len": str(hist)}
                value = 100_000.0 + hist * 10
                if design == "optimized" and endpoint == "chat" and hist == 1000:
                    value = chat_1000
                out.append(SummaryRow(design, "probe", "alloc_peak_bytes", value, "bytes", labels))
                out.append(SummaryRow(design, "probe", "alloc_net_bytes", 300.0, "bytes", labels))
                out.append(SummaryRow(design, "probe", "alloc_cv", 0.01, "ratio", labels))
                out.append(
                    SummaryRow(design, "probe", "alloc_peak_spread_bytes", 50.0, "bytes", labels)
                )
                leak = retained_chat if design == "optimized" and endpoint == "chat" else 16.0
                out += [
                    SummaryRow(design, "probe", "retained_bytes_per_request", leak,
                               "bytes/request", labels),
                    SummaryRow(design, "probe", "retained_stderr_bytes", 4.0,
                               "bytes/request", labels),
                ]  # fmt: skip
            out.append(
                SummaryRow(
                    design, "probe", "alloc_slope_bytes_per_unit", 10.0, "bytes/message",
                    {"endpoint": endpoint},
                )
            )  # fmt: skip
    return out


def make_run(tmp_path: Path, summary: list[SummaryRow], name: str = "run") -> Path:
    run = RunDir.create(tmp_path / "reports", run_id=name)
    run.start_run("loadtest", {"designs": ["naive", "optimized"], "profile": {"probe_reps": 5}})
    run.add_summary(summary)
    run.finish_run("passed")
    return run.root


def gate(*args: str | Path) -> int:
    return main(["gate", "--config", str(CONFIG), *map(str, args)])


def test_no_baseline_is_exit_2_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path, rows())
    assert gate("--run", run, "--baseline", tmp_path / "none.json") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no baseline at" in err and "--baseline " in err and "--update-baseline`" in err


def test_update_then_pass_then_regress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "b" / "ci.json"
    first = make_run(tmp_path, rows(), "first")
    assert gate("--run", first, "--baseline", baseline, "--update-baseline") == 0
    payload = json.loads(baseline.read_text())
    assert payload["kind"] == "memload-gate-baseline" and payload["schema_version"] == 3
    assert payload["probe"]["history_lens"] == [0, 1000]
    assert payload["probe"]["reps"] == 5
    # the gated series and their noise figures; informational ones are not stored
    assert {r["metric"] for r in payload["rows"]} == {
        "alloc_peak_bytes",
        "retained_bytes_per_request",
        "alloc_slope_bytes_per_unit",
        "alloc_peak_spread_bytes",
        "retained_stderr_bytes",
    }
    assert payload["provenance"]["python"] and payload["provenance"]["packages"]
    assert "wrote baseline" in capsys.readouterr().out

    same = make_run(tmp_path, rows(), "same")
    assert gate("--run", same, "--baseline", baseline) == 0
    out = capsys.readouterr().out
    assert "memory gate passed" in out
    assert (same / "gate.md").exists() and (same / "gate-junit.xml").exists()
    assert json.loads((same / "gate.json").read_text())["outcome"] == "passed"

    worse = make_run(tmp_path, rows(chat_1000=260_000.0), "worse")  # +30%, +58 KiB
    assert gate("--run", worse, "--baseline", baseline) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out
    assert (
        "regression: alloc_peak_bytes{design=optimized,endpoint=chat,history_len=1000} "
        "+58.6 KiB (+30.0%) > limit +9.77 KiB"
    ) in out
    assert str(worse / "gate.md") in out and str(worse / "gate-junit.xml") in out
    junit = ET.parse(worse / "gate-junit.xml").getroot()
    assert junit.get("failures") == "1"
    assert "❌ REGRESSION" in (worse / "gate.md").read_text()


def test_missing_series_is_exit_2(tmp_path: Path) -> None:
    baseline = tmp_path / "ci.json"
    assert (
        gate("--run", make_run(tmp_path, rows(), "a"), "--baseline", baseline, "--update-baseline")
        == 0
    )
    fewer = [r for r in rows() if r.labels.get("history_len") != "1000"]
    assert gate("--run", make_run(tmp_path, fewer, "b"), "--baseline", baseline) == 2


def test_schema_mismatch_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "ci.json"
    baseline.write_text(
        json.dumps({"kind": "memload-gate-baseline", "schema_version": 99, "rows": []})
    )
    assert gate("--run", make_run(tmp_path, rows()), "--baseline", baseline) == 2
    assert "schema_version 99 is not 3" in capsys.readouterr().err


def test_version_drift_is_a_warning_not_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "ci.json"
    assert (
        gate("--run", make_run(tmp_path, rows(), "a"), "--baseline", baseline, "--update-baseline")
        == 0
    )
    payload = json.loads(baseline.read_text())
    payload["provenance"]["python"] = "3.99.0"
    payload["provenance"]["packages"]["fastapi"] = "0.0.1"
    baseline.write_text(json.dumps(payload))
    assert gate("--run", make_run(tmp_path, rows(), "b"), "--baseline", baseline) == 0
    out = capsys.readouterr().out
    assert "warning: Python" in out and "3.99.0" in out
    assert "fastapi 0.0.1 ->" in out


def test_bad_threshold_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "loadtest.toml"
    cfg.write_text(CONFIG.read_text().replace('"alloc_peak_bytes" = ', '"alloc_peek_bytes" = ', 1))
    code = main(["gate", "--config", str(cfg), "--run", str(make_run(tmp_path, rows()))])
    assert code == 2
    err = capsys.readouterr().err
    assert f'{cfg}: gate.thresholds."alloc_peek_bytes": unknown metric' in err


def test_refuses_a_baseline_with_app_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REFAPP_CONTEXT_WINDOW", "200")
    run = make_run(tmp_path, rows())
    assert gate("--run", run, "--baseline", tmp_path / "b.json", "--update-baseline") == 2
    assert "REFAPP_CONTEXT_WINDOW=200" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


def test_not_a_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gate("--run", tmp_path, "--baseline", tmp_path / "b.json", "--update-baseline") == 2
    assert "not a run directory" in capsys.readouterr().err


def test_designs_without_a_probe_are_not_gated(capsys: pytest.CaptureFixture[str]) -> None:
    from dataclasses import replace

    from rich.console import Console

    from harness import config as config_mod
    from harness._errors import UsageError
    from harness.gate._run import probe_designs

    cfg = config_mod.load(CONFIG)
    console = Console(width=200)
    assert probe_designs(cfg, console) == ["naive", "optimized"]
    targets = tuple(replace(t, probe=None) if t.name == "naive" else t for t in cfg.targets)
    assert probe_designs(replace(cfg, targets=targets), console) == ["optimized"]
    assert "naive is not gated" in capsys.readouterr().out
    none = tuple(replace(t, probe=None) for t in cfg.targets)
    with pytest.raises(UsageError, match="nothing to gate"):
        probe_designs(replace(cfg, targets=none), console)


STORE_LINE = "reference_app/optimized/store.py:88"
LEAK_LINE = "reference_app/optimized/api.py:42"


def write_sites(run: Path, peak_bytes: float, leak_bytes: float | None = None) -> None:
    """The optimized design's probe sites, as harness.phases.probe writes them."""
    sites = {
        "peak": [
            {"endpoint": "chat", "history_len": hist, "location": STORE_LINE,
             "function": "recent", "bytes": peak_bytes, "count": 3.0,
             "via": "json/decoder.py:353"}
            for hist in (0, 1000)
        ],
        "retained": [
            {"endpoint": "chat", "history_len": 100, "location": LEAK_LINE,
             "function": "chat", "bytes": leak_bytes, "count": 1.0}
        ] if leak_bytes is not None else [],
    }  # fmt: skip
    path = run / "optimized" / "probe" / "probe_sites.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sites))


def test_a_regression_names_the_site_that_grew(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "b" / "ci.json"
    first = make_run(tmp_path, rows(), "first")
    write_sites(first, 10_000)
    assert gate("--run", first, "--baseline", baseline, "--update-baseline") == 0
    stored = json.loads((tmp_path / "b" / "ci.sites.json").read_text())
    assert stored["kind"] == "memload-gate-sites" and stored["schema_version"] == 1
    assert stored["designs"]["optimized"]["peak"][0]["location"] == STORE_LINE
    capsys.readouterr()

    worse = make_run(tmp_path, rows(chat_1000=260_000.0), "worse")
    write_sites(worse, 10_000 + 60_000)
    assert gate("--run", worse, "--baseline", baseline) == 1
    out = capsys.readouterr().out
    expected = f"+58.6 KiB at {STORE_LINE} in recent (via json/decoder.py:353)"
    assert f"    {expected}" in out
    assert expected in (worse / "gate.md").read_text()
    assert "### Where it came from" in (worse / "gate.md").read_text()
    failure = ET.parse(worse / "gate-junit.xml").getroot().find("testsuite/testcase/failure")
    assert failure is not None and (failure.get("message") or "").endswith(expected)
    verdicts = json.loads((worse / "gate.json").read_text())["verdicts"]
    (regressed,) = [v for v in verdicts if v["status"] == "regression"]
    assert regressed["limit_source"] == "tolerance"
    assert regressed["sites"] == [
        {"location": STORE_LINE, "function": "recent", "via": "json/decoder.py:353",
         "baseline_bytes": 10_000.0, "current_bytes": 70_000.0, "change": 60_000.0}
    ]  # fmt: skip


def test_a_leak_fails_and_names_the_leaking_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "ci.json"
    first = make_run(tmp_path, rows(), "first")
    write_sites(first, 10_000)
    assert gate("--run", first, "--baseline", baseline, "--update-baseline") == 0
    capsys.readouterr()
    leaky = make_run(tmp_path, rows(retained_chat=16.0 + 1024.0), "leaky")
    write_sites(leaky, 10_000, leak_bytes=1024.0)
    assert gate("--run", leaky, "--baseline", baseline) == 1
    out = capsys.readouterr().out
    assert "regression: retained_bytes_per_request{design=optimized,endpoint=chat" in out
    assert f"+1 KiB/req at {LEAK_LINE} in chat" in out
    md = (leaky / "gate.md").read_text()
    assert "retained per request:" in md and LEAK_LINE in md


def test_unusable_sites_file_is_a_warning_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "ci.json"
    assert (
        gate("--run", make_run(tmp_path, rows(), "a"), "--baseline", baseline, "--update-baseline")
        == 0
    )
    (tmp_path / "ci.sites.json").write_text(json.dumps({"kind": "memload-gate-sites"}))
    worse = make_run(tmp_path, rows(chat_1000=260_000.0), "worse")
    write_sites(worse, 70_000)
    assert gate("--run", worse, "--baseline", baseline) == 1  # still judged
    out = capsys.readouterr().out
    assert "allocation sites not used" in out and "schema_version None" in out
    # the current run's sites are still shown, each counted as new growth
    assert f"+68.4 KiB at {STORE_LINE}" in out


def test_the_hint_names_the_command_the_user_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.gate._run import GateOptions, update_hint

    monkeypatch.chdir(tmp_path)
    own = GateOptions(config=Path("examples/flask_service/loadtest.toml"))
    assert update_hint(own) == (
        "harness gate --config examples/flask_service/loadtest.toml --update-baseline"
    )
    other = GateOptions(config=Path("x.toml"), baseline=Path("b.json"))
    assert update_hint(other) == "harness gate --config x.toml --baseline b.json --update-baseline"
    assert update_hint(GateOptions()) == "harness gate --config loadtest.toml --update-baseline"
    (tmp_path / "Makefile").write_text("gate:\n\t$(BIN)/harness gate $(ARGS)\n")
    assert update_hint(GateOptions()) == "make gate ARGS=--update-baseline"


def test_a_slope_s_unit_is_the_recipe_s() -> None:
    from harness.gate import compare, compile_thresholds, format_value

    row = SummaryRow("notes", "probe", "alloc_slope_bytes_per_unit", 4.8, "bytes/note",
                     {"endpoint": "list"})  # fmt: skip
    (verdict,) = compare([row], [row], compile_thresholds({}, "+10% floor 8")).verdicts
    assert verdict.unit == "bytes/note"
    assert format_value(verdict.current or 0, verdict.unit) == "4.8 B/note"


def test_one_time_growth_and_the_hint_reach_the_console_and_gate_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = {"endpoint": "chat", "history_len": "1000"}
    step = SummaryRow("optimized", "probe", "retained_step_bytes", 40_960.0, "bytes", labels)
    baseline = tmp_path / "b.json"
    assert gate("--run", make_run(tmp_path, rows(), "b"), "--baseline", baseline,
                "--update-baseline") == 0  # fmt: skip
    capsys.readouterr()
    worse = make_run(tmp_path, [*rows(chat_1000=260_000.0), step], "worse")
    assert gate("--run", worse, "--baseline", baseline) == 1
    out = capsys.readouterr().out
    assert "optimized chat at history_len=1000: one-time growth of 40 KiB (a cache filling)" in out
    hint = f"harness gate --config {CONFIG} --baseline {baseline} --update-baseline"
    assert hint in (worse / "gate.md").read_text()
    summary = json.loads((worse / "gate.json").read_text())
    assert summary["schema_version"] == 1
    assert summary["one_time_growth"][0].startswith("optimized chat at history_len=1000")
