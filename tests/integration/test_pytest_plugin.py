"""memload's pytest plugin, run by pytest itself (the pytester fixture) on small ASGI apps.

Each case writes an app and a test module into a fresh directory and runs pytest on it in this
process: limits that hold, a planted leak whose line the failure names, a bounded cache that
fills without failing a 32 B retained limit, and the plugin turned off with -p no:memload.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Imported here, before pytester's in-process runs: each run forgets the modules it imported,
# and numpy's C extension cannot be loaded twice in one process.
import harness.config
import harness.pytest_plugin._baseline
import harness.pytest_plugin._probe  # noqa: F401

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

APP = """
KEPT = []
CACHE = {}
STATE = {"requests": 0, "index": None}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await receive()
    path = scope["path"]
    STATE["requests"] += 1
    body = b"ok"
    if path == "/leak":
        KEPT.append(bytes(223))  # planted: 256 B kept per request
    elif path == "/cache":
        n = STATE["requests"]
        if len(CACHE) < 32:
            CACHE[n] = bytes(1000)  # a bounded cache, full after 32 requests
        if STATE["index"] is None and n >= 70:
            STATE["index"] = bytes(16000)  # built once, later in the run: a step
    elif path == "/big":
        body = bytes(64 * 1024)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
"""
LEAK_LINE = next(i for i, line in enumerate(APP.strip().splitlines(), 1) if "planted" in line)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(memapp=APP)
    pytester.syspathinsert()
    return pytester


def test_limits_that_hold_pass(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_ok="""
        import pytest
        import tracemalloc
        from memapp import app

        @pytest.mark.memload(peak="64 KiB", retained="32 B")
        def test_ok(memload):
            assert not tracemalloc.is_tracing()
            client = memload.client(app)
            response = client.get("/ok")
            assert response.status_code == 200 and response.memory.peak_bytes > 0
            assert not tracemalloc.is_tracing()  # stopped after the measured request
            assert memload.peak(lambda: client.get("/ok")).status == 200
            memload.retained(lambda: client.get("/ok"))
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*memload*", "*requests measured in 1 tests*"])


def test_a_planted_leak_fails_and_names_its_line(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_leak="""
        import pytest
        from memapp import app

        @pytest.mark.memload(retained="32 B")
        def test_leak(memload):
            client = memload.client(app)
            memload.retained(lambda: client.get("/leak"))
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*GET /leak: retained 2[0-9][0-9]* B/request > limit retained='32 B'*",
            f"*at memapp.py:{LEAK_LINE}*",
        ]
    )


def test_a_cache_that_fills_is_not_a_leak(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_cache="""
        import pytest
        from memapp import app

        @pytest.mark.memload(retained="32 B")
        def test_cache(memload):
            client = memload.client(app)
            result = memload.retained(lambda: client.get("/cache"))
            print("RESULT", result)
            assert result.one_time_bytes > 30_000  # the cache and the index: one-time growth
        """
    )
    result = project.runpytest("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)


def test_a_peak_over_its_limit_names_the_request(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_big="""
        import pytest
        from memapp import app

        @pytest.mark.memload(peak="16 KiB")
        def test_big(memload):
            client = memload.client(app)
            client.get("/ok")
            client.get("/big")
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    # 64 KiB of body, and uvicorn's chunked copy of it while it writes
    result.stdout.fnmatch_lines(["*GET /big (status 200): peak 1?? KiB > limit peak='16 KiB'*"])
    assert "GET /ok (status" not in result.stdout.str()


def test_a_bad_limit_names_the_key(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.memload(peak="64 KiB", slope="16 B")
        def test_bad(memload):
            pass
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*slope='16 B' needs its unit, like '16 B/item'*"])


def test_p_no_memload_turns_it_off(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_off="""
        def test_plain():
            assert True

        def test_uses_it(memload):
            pass
        """
    )
    result = project.runpytest("-p", "no:cacheprovider", "-p", "no:memload")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fixture 'memload' not found*"])
    assert "requests measured" not in result.stdout.str()


def test_baseline_written_then_compared(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_base="""
        from memapp import app

        def test_base(memload):
            client = memload.client(app)
            memload.peak(lambda: client.get("/ok"))
            memload.retained(lambda: client.get("/ok"))
        """
    )
    baseline = project.path / "baseline.json"
    written = project.runpytest(
        "-p", "no:cacheprovider", "--memload-baseline", str(baseline), "--memload-update-baseline"
    )
    written.assert_outcomes(passed=1)
    rows = json.loads(baseline.read_text())["rows"]
    assert {r["metric"] for r in rows} >= {"alloc_peak_bytes", "retained_bytes_per_request"}
    compared = project.runpytest("-p", "no:cacheprovider", "--memload-baseline", str(baseline))
    compared.assert_outcomes(passed=1)
    compared.stdout.fnmatch_lines(["*baseline comparison: 2 passed*"])
    assert compared.ret == 0


@pytest.mark.e2e
def test_the_examples_pass_under_xdist(tmp_path: Path) -> None:
    """examples/pytest_memory in its own pytest, two xdist workers: one probe per worker, one
    summary from the controller (about a minute here)."""
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", str(ROOT / "examples/pytest_memory"),
            "-n", "2", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "base"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "6 passed" in output, output
    assert output.count("requests measured in 6 tests") == 1, output
