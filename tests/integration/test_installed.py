"""Installed, not only cloned: the built wheel in a fresh venv runs the demo from an empty
directory, with the embedded default config (the reference designs) shipped in the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from schema_check import check_run_dir

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 900  # a fresh venv fetches every dependency (pip's cache helps)


def _run(argv: list[str], cwd: Path, timeout: float, env: dict[str, str]) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"{argv[:4]} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


@pytest.mark.timeout(INSTALL_TIMEOUT_S + 600)
def test_the_wheel_runs_the_demo_from_an_empty_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    wheels = tmp_path / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        ROOT,
        300,
        env,
    )
    (wheel,) = wheels.glob("memload-*.whl")
    venv = tmp_path / "venv"
    # No pip of its own (ensurepip took ~25 s): this pip installs into it (`--python`), the
    # versions of the lock file (what CI's .venv holds: pip's cache has them), without compiling
    # every dependency's bytecode up front (~4x faster; the demo compiles what it imports).
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, 120, env)
    python = str(venv / "bin" / "python")
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-compile",
         "-c", str(ROOT / "requirements" / "lock.txt"), str(wheel)],
        tmp_path,
        INSTALL_TIMEOUT_S,
        env,
    )  # fmt: skip
    empty = tmp_path / "anywhere"
    empty.mkdir()
    before = {p.pid for p in psutil.Process().children(recursive=True)}

    _run(
        [
            str(venv / "bin" / "harness"), "loadtest",
            "--profile", "quick", "--design", "optimized",
            # a real run of the demo, shortened: the probe and memray phases have tests of
            # their own and take minutes
            "--phases", "ceiling,load,integrity", "--duration", "5", "--ceiling-duration", "3",
        ],
        empty,
        300,
        env,
    )  # fmt: skip

    (run_dir,) = (empty / "reports").glob("2*")
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "passed"
    assert run["config"]["designs"] == ["optimized"]
    phases = {(p["design"], p["phase"]): p["status"] for p in run["phases"]}
    assert phases[("optimized", "load")] == "passed"
    assert phases[("optimized", "integrity")] == "passed"
    rows = json.loads((run_dir / "summary.json").read_text())
    assert any(r["design"] == "optimized" and r["phase"] == "load" for r in rows)
    assert (run_dir / "report.html").is_file()
    checked = check_run_dir(run_dir)
    assert {"run", "summary", "ceiling-meta", "load-meta", "integrity"} <= set(checked.values())
    # the servers ran from the installed package, not from this clone
    assert str(ROOT) not in (run_dir / "run.json").read_text()
    leftover = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not leftover
