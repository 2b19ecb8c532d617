"""A history built from synthetic run directories with a known step and a known creep."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import pytest
from history_helpers import baseline_payload, rows, write_run

from harness.cli import main
from harness.gate import parse_threshold
from harness.history import (
    CreepSettings,
    append_to_ledger,
    build_history,
    render_history,
    trend_link,
)

REPO = Path(__file__).resolve().parents[2]
CHAT = ("optimized", "chat", "1000")
HIST = ("optimized", "history", "1000")
NAIVE = ("naive", "chat", "1000")
STEP_AT = 4  # the commit that makes optimized chat +30%
COMMITS = 8


def sha(i: int) -> str:
    return f"c0ffee{i:04d}"


def values_at(i: int) -> dict[tuple[str, str, str], float]:
    jitter = 1.0 + 0.001 * ((-1) ** i)  # the probe's rep-to-rep noise: well under 1%
    return {
        CHAT: (130_000.0 if i >= STEP_AT else 100_000.0) * jitter,
        HIST: 200_000.0 * 1.04 ** min(i, 6),  # +4% per commit: each passes a 10% gate
        NAIVE: 400_000.0 * jitter,
    }


@pytest.fixture
def synthetic(tmp_path: Path) -> tuple[Path, Path]:
    """8 commits, one gate run each (one of them run twice), and a ledger with a baseline at
    each of the first 6 commits."""
    reports = tmp_path / "reports"
    ledger = tmp_path / "baselines" / "history.jsonl"
    for i in range(COMMITS):
        when = f"2026-11-{i + 1:02d}T10:00:00+00:00"
        name = f"202611{i + 1:02d}T100000Z-{sha(i)}"
        write_run(reports, name, sha(i), when, rows(values_at(i)))
        if i < 6:
            append_to_ledger(ledger, baseline_payload(values_at(i), sha(i), when, name))
    write_run(reports, "rerun-of-3", sha(3), "2026-11-04T11:00:00+00:00", rows(values_at(3)))
    write_run(
        reports, "loadtest-of-3", sha(3), "2026-11-04T12:00:00+00:00", rows(values_at(3)),
        command="harness loadtest --config loadtest.toml --out reports",
    )  # fmt: skip
    (reports / "latest").symlink_to(reports / f"20261108T100000Z-{sha(7)}")
    return reports, ledger


def test_the_step_is_marked_at_the_commit_that_made_it_and_the_creep_is_flagged(
    synthetic: tuple[Path, Path], tmp_path: Path
) -> None:
    reports, ledger = synthetic
    history = build_history(
        [reports], ledger=ledger, creep=CreepSettings(10, parse_threshold("+15%"))
    )
    assert [c.sha for c in history.commits] == [sha(i) for i in range(COMMITS)]
    assert history.runs == COMMITS + 2  # reports/latest is not read twice
    assert history.baselines == 6

    by_key = {str(t.key): t for t in history.series}
    chat = by_key["alloc_peak_bytes{design=optimized,endpoint=chat,history_len=1000}"]
    assert [history.commits[chat.step_commit(s)].sha for s in chat.steps] == [sha(STEP_AT)]
    assert chat.steps[0].ratio == pytest.approx(0.30, abs=0.01)
    assert chat.baseline_updates == list(range(6))  # one ledger baseline at each of 0..5
    naive = by_key["alloc_peak_bytes{design=naive,endpoint=chat,history_len=1000}"]
    assert naive.steps == []

    # the newest run (commit 7) against the oldest of the ledger's 6 baselines: history crept
    # +26.5% in +4% steps; chat's +30% step was accepted at commit 4, within the window too
    assert [str(f.key) for f in history.creep] == [
        "alloc_peak_bytes{design=optimized,endpoint=chat,history_len=1000}",
        "alloc_peak_bytes{design=optimized,endpoint=history,history_len=1000}",
    ]
    assert "+27% over the last 6 baselines" in history.creep[1].message()

    out = tmp_path / "page"
    render_history(history, out)
    data = json.loads((out / "history.json").read_text(encoding="utf-8"))
    steps = {s["series"]: s["steps"] for s in data["series"]}
    assert [s["sha"] for s in steps[str(chat.key)]] == [sha(STEP_AT)]
    html = (out / "history.html").read_text(encoding="utf-8")
    assert re.search(rf"<code>{sha(STEP_AT)}</code>", html)  # the steps table names the commit
    assert "+27% over the last 6 baselines" in html
    md = (out / "history.md").read_text(encoding="utf-8")
    assert f"`{sha(STEP_AT)}`" in md and "▁" in md


def test_without_git_the_runs_times_order_commits_with_git_the_topological_order(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip

    git("init", "-q")
    shas = []
    for i in range(3):
        git("commit", "-q", "--allow-empty", "-m", f"commit {i}")
        shas.append(git("rev-parse", "--short=10", "HEAD"))
    reports = tmp_path / "reports"
    # measured newest commit first: the times disagree with the commit order
    for i, when in enumerate(["2026-11-03", "2026-11-02", "2026-11-01"]):
        write_run(reports, f"run{i}", shas[i], f"{when}T00:00:00+00:00", rows(values_at(i)))
    by_time = build_history([reports])
    assert [c.sha for c in by_time.commits] == shas[::-1]
    by_git = build_history([reports], repo=repo)
    assert [c.sha for c in by_git.commits] == shas
    assert [c.subject for c in by_git.commits] == ["commit 0", "commit 1", "commit 2"]


def test_harness_history_embeds_every_chart(
    synthetic: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports, ledger = synthetic
    code = main(
        ["history", str(reports), "--ledger", str(ledger),
         "--config", str(REPO / "loadtest.toml"), "--repo", str(tmp_path)]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "8 commits, 10 runs, 6 ledger baselines, 3 series" in out
    assert main(["history", str(reports), "--no-ledger", "--command", "loadtest"]) == 0
    assert "1 commits, 1 runs, 0 ledger baselines, 3 series" in capsys.readouterr().out
    assert "creep: optimized history peak (history 1000) +27%" in out
    html = (reports / "history.html").read_text(encoding="utf-8")
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)"', html)
    assert sorted(alt for _b64, alt in images) == sorted(
        f"alloc_peak_bytes{{design={d},endpoint={e},history_len={h}}}" for d, e, h in values_at(0)
    )
    for b64, _alt in images:
        assert base64.b64decode(b64).startswith(b"\x89PNG\r\n\x1a\n")
    assert len(list((reports / "history-figures").glob("*.png"))) == 3
    assert trend_link(reports / f"20261101T100000Z-{sha(0)}") == "../history.html"


def test_usage_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["history", str(tmp_path / "empty"), "--config", str(tmp_path / "no")]) == 2
    assert main(["history", str(tmp_path / "absent")]) == 2
    assert main(["history", str(tmp_path / "empty"), "--min-step", "two"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("harness: error:") for line in err)
    assert "no probe figures" in err[0]


def test_trend_link_needs_a_page_covering_the_run(tmp_path: Path) -> None:
    run = write_run(tmp_path, "run", sha(0), "2026-11-01T00:00:00+00:00", rows(values_at(0)))
    assert trend_link(run) is None
    (tmp_path / "history.html").write_text("<html></html>", encoding="utf-8")
    (tmp_path / "history.json").write_text(json.dumps({"series": []}), encoding="utf-8")
    assert trend_link(run) is None
    series = {"design": "naive", "metric": "alloc_peak_bytes",
              "labels": {"endpoint": "chat", "history_len": "1000"}}  # fmt: skip
    (tmp_path / "history.json").write_text(json.dumps({"series": [series]}), encoding="utf-8")
    assert trend_link(run) == "../history.html"


def test_the_run_report_links_to_the_trend_page_once_it_exists(
    synthetic: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reports, _ledger = synthetic
    run = reports / f"20261103T100000Z-{sha(2)}"
    link = '<a href="../history.html">Memory over commit history</a>'
    assert main(["report", str(run)]) == 0
    assert link not in (run / "report.html").read_text(encoding="utf-8")
    assert main(["history", str(reports), "--config", str(REPO / "loadtest.toml")]) == 0
    assert main(["report", str(run)]) == 0
    assert link in (run / "report.html").read_text(encoding="utf-8")


def test_a_step_says_when_the_environment_changed_between_its_measurements() -> None:
    from harness.history._collect import Commit, Point, environment_change

    def commit(python: str, packages: dict[str, str]) -> Commit:
        point = Point("run", "r", "abc", "", "gate", {}, python=python, packages=packages)
        return Commit("abc", "", (point,))

    same = commit("3.11.7", {"uvicorn": "0.54.0"})
    assert environment_change(same, commit("3.11.9", {"uvicorn": "0.54.0"})) == ""
    assert environment_change(
        same, commit("3.12.1", {"uvicorn": "0.54.0", "uvloop": "0.23.0"})
    ) == ("Python 3.11.7 -> 3.12.1, uvloop absent -> 0.23.0")
