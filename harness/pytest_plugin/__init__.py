"""memload's pytest plugin: memory per request, asserted inside a service's own test suite.

Registered through the ``pytest11`` entry point ``memload`` (so ``-p no:memload`` turns it off).
Importing it imports nothing heavy and starts nothing: tracemalloc runs only while a test's
request is measured (docs/pytest-plugin.md).

    @pytest.mark.memload(peak="64 KiB", retained="32 B")
    def test_get_item(memload):
        client = memload.client(app)                # ASGI or WSGI app object, in process
        assert client.get("/items/1").memory.peak_bytes < 64 * 1024
        memload.retained(lambda: client.get("/items/1"))
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.gate import GateResult
    from harness.pytest_plugin._baseline import SessionFigures
    from harness.pytest_plugin._client import Tracing
    from harness.pytest_plugin._probe import MemoryProbe

MARKER = "memload"
WORKER_KEY = "memload"


class _Session:
    """This process's share of the session: one Tracing (one probe per process, so one per
    xdist worker), the figures for a baseline, and what tracemalloc cost."""

    def __init__(self) -> None:
        self._tracing: Tracing | None = None
        self._figures: SessionFigures | None = None
        self.tests = 0
        self.requests = 0
        self.traced_s = 0.0
        self.tables_peak_bytes = 0
        self.rows: list[dict[str, Any]] = []  # gathered from xdist workers
        self.result: GateResult | None = None
        self.baseline_note = ""

    @property
    def tracing(self) -> Tracing:
        if self._tracing is None:
            from harness.pytest_plugin._client import Tracing

            self._tracing = Tracing()
        return self._tracing

    @property
    def figures(self) -> SessionFigures:
        if self._figures is None:
            from harness.pytest_plugin._baseline import SessionFigures

            self._figures = SessionFigures()
        return self._figures

    def stats(self) -> dict[str, Any]:
        tracing = self._tracing
        return {
            "tests": self.tests,
            "requests": self.requests,
            "traced_s": self.traced_s + (tracing.traced_s if tracing else 0.0),
            "tables_peak_bytes": max(
                self.tables_peak_bytes, tracing.tables_peak_bytes if tracing else 0
            ),
            "rows": self.rows
            + ([r.to_json() for r in self._figures.summary_rows()] if self._figures else []),
        }

    def merge(self, stats: dict[str, Any]) -> None:
        self.tests += int(stats["tests"])
        self.requests += int(stats["requests"])
        self.traced_s += float(stats["traced_s"])
        self.tables_peak_bytes = max(self.tables_peak_bytes, int(stats["tables_peak_bytes"]))
        self.rows += list(stats["rows"])


_SESSION = pytest.StashKey[_Session]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memload", "memory per request (memload)")
    group.addoption(
        "--memload-baseline",
        metavar="PATH",
        default=None,
        help="compare the session's memload figures with this gate baseline file",
    )
    group.addoption(
        "--memload-update-baseline",
        action="store_true",
        default=False,
        help="write the session's memload figures to --memload-baseline instead",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(peak=, retained=, slope=): memory limits per request for the memload "
        "fixture, e.g. peak='64 KiB', retained='32 B', slope='16 B/item'",
    )
    config.stash[_SESSION] = _Session()
    if config.getoption("memload_update_baseline") and not config.getoption("memload_baseline"):
        raise pytest.UsageError("--memload-update-baseline needs --memload-baseline PATH")


@pytest.fixture
def memload(request: pytest.FixtureRequest) -> Iterator[MemoryProbe]:
    """In-process clients whose responses carry per-request memory figures, and the helpers
    retained() and peak_growth(); the test's @pytest.mark.memload limits are checked on them."""
    from harness.pytest_plugin._figures import Limits, parse_limits
    from harness.pytest_plugin._probe import MemoryProbe

    marker = request.node.get_closest_marker(MARKER)
    try:
        limits = parse_limits(marker.kwargs, marker.args) if marker else Limits()
    except ValueError as exc:
        pytest.fail(str(exc), pytrace=False)
    session = request.config.stash[_SESSION]
    nodeid = request.node.nodeid

    def on_figure(kind: str, figure: Any) -> None:
        session.figures.add(nodeid, kind, figure)

    probe = MemoryProbe(limits, session.tracing, on_figure)
    try:
        yield probe
    finally:
        probe.close()
        if probe.measured:
            session.tests += 1
            session.requests += probe.measured


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a passing test: every limit of its marker must have been checked against a figure."""
    result = yield
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return result
    probe = getattr(item, "funcargs", {}).get("memload")
    if probe is None:
        pytest.fail("@pytest.mark.memload needs the test to use the memload fixture", False)
    if probe.violations:
        pytest.fail("\n".join(probe.violations), False)
    unchecked = probe.unchecked_limits()
    if unchecked:
        pytest.fail("memload marker: nothing was checked against " + "; ".join(unchecked), False)
    return result


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: gather a worker's figures and costs."""
    raw = getattr(node, "workeroutput", {}).get(WORKER_KEY)
    if raw:
        node.config.stash[_SESSION].merge(json.loads(raw))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash[_SESSION]
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports
        workeroutput[WORKER_KEY] = json.dumps(state.stats())
        return
    path = config.getoption("memload_baseline")
    if not path:
        return
    from harness.pytest_plugin._baseline import compare_with_baseline, write_baseline
    from harness.results import SummaryRow

    rows = [SummaryRow.from_json(r) for r in state.stats()["rows"]]
    if config.getoption("memload_update_baseline"):
        write_baseline(rows, Path(path))
        state.baseline_note = f"baseline written: {path} ({len(rows)} rows)"
        return
    from harness._errors import HarnessError

    try:
        state.result = compare_with_baseline(rows, Path(path))
    except HarnessError as exc:
        state.baseline_note = f"baseline not compared: {exc}"
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
        return
    if state.result.regressions and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if getattr(config, "workeroutput", None) is not None:
        return
    state = config.stash[_SESSION]
    stats = state.stats()
    if not stats["requests"] and not state.baseline_note and state.result is None:
        return
    from harness.gate import format_size

    terminalreporter.section("memload")
    terminalreporter.write_line(
        f"{stats['requests']} requests measured in {stats['tests']} tests; tracemalloc's own "
        f"cost: {stats['traced_s']:.2f} s traced, its trace tables up to "
        f"{format_size(stats['tables_peak_bytes'])} (per process)"
    )
    if state.baseline_note:
        terminalreporter.write_line(state.baseline_note)
    if state.result is not None:
        from harness.pytest_plugin._baseline import verdict_lines

        for line in verdict_lines(state.result):
            terminalreporter.write_line(line, red=line.startswith("REGRESSION"))
