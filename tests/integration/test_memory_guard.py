"""The pytest-memray guard: it holds for the optimized design and bites on the naive one.

limit_memory markers are inert without --memray, and the main test run is plain pytest, so the
guarded cases (memory_guard_cases.py) run in a pytest subprocess with
`--memray --trace-python-allocators` (without the latter, memray misses memory that pymalloc
reuses, and the naive design's JSON parsing would be undercounted).
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
CASES = Path(__file__).with_name("memory_guard_cases.py")
ROOT = Path(__file__).resolve().parents[2]


def test_memory_guard_passes_optimized_and_catches_naive(tmp_path: Path) -> None:
    pytest.importorskip("pytest_memray")
    report = tmp_path / "junit.xml"
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", str(CASES),
            "--memray", "--trace-python-allocators",
            "-p", "no:cacheprovider",
            "--basetemp", str(tmp_path / "basetemp"),
            "--junitxml", str(report),
            "-q",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 1, output  # exactly: some test failed, nothing else went wrong
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        failure = case.find("failure")
        error = case.find("error")
        if error is not None:
            outcomes[case.attrib["name"]] = "error: " + (error.attrib.get("message") or "")
        elif failure is not None:
            outcomes[case.attrib["name"]] = "failed: " + (failure.text or "")
        else:
            outcomes[case.attrib["name"]] = "passed"
    assert set(outcomes) == {"test_whale_chat[naive]", "test_whale_chat[optimized]"}, output
    assert outcomes["test_whale_chat[optimized]"] == "passed", output
    naive = outcomes["test_whale_chat[naive]"]
    assert naive.startswith("failed: ") and "Test was limited to" in naive, output
