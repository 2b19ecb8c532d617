"""The peak helpers' warm-up until steady (MemoryProbe._warm_peak), with the requests faked:
a peak that falls over a process's first requests is read only once it has stopped falling."""

from __future__ import annotations

from collections.abc import Callable

from harness.pytest_plugin._client import Tracing
from harness.pytest_plugin._figures import Limits, RequestMemory
from harness.pytest_plugin._probe import PEAK_MAX_WARMUP, PEAK_WINDOW, MemoryProbe


def faked_probe(peaks: Callable[[int], int]) -> tuple[MemoryProbe, list[str]]:
    """A MemoryProbe whose n-th call (measured or not) peaks at peaks(n); the calls' kinds."""
    probe = MemoryProbe(Limits(), Tracing())
    calls: list[str] = []

    def measure(request: Callable[[], object]) -> RequestMemory:
        calls.append("measured")
        return RequestMemory("GET", "/x", 200, peaks(len(calls)), 0, 0, 0.0)

    def unmeasured(request: Callable[[], object]) -> None:
        calls.append("unmeasured")

    probe.measure = measure  # type: ignore[method-assign]
    probe.unmeasured = unmeasured  # type: ignore[method-assign]
    return probe, calls


def falling_to(steady: int, falls_for: int, step: int) -> Callable[[int], int]:
    return lambda n: steady + step * max(0, falls_for - n)


def test_a_falling_peak_is_warmed_until_it_stops_falling() -> None:
    """28 KB falling by 200 B a request for 25 requests, as the notes list did."""
    probe, calls = faked_probe(falling_to(23_200, 25, 200))
    probe._warm_peak(lambda: None, warmup=10)
    assert len(calls) >= 25  # past the fall
    assert len(calls) <= 10 + 2 + 2 * (PEAK_WINDOW + 1) + 25  # and not much further


def test_a_steady_peak_costs_one_window() -> None:
    probe, calls = faked_probe(lambda n: 23_200)
    probe._warm_peak(lambda: None, warmup=10)
    assert calls.count("unmeasured") == 10 + PEAK_WINDOW
    assert calls.count("measured") == 3


def test_the_warm_up_is_bounded() -> None:
    """A peak that never settles (it grows by 1 KB a request) stops at the maximum."""
    probe, calls = faked_probe(lambda n: 20_000 + 1000 * n)
    probe._warm_peak(lambda: None, warmup=0)
    assert len(calls) <= 2 + PEAK_MAX_WARMUP + PEAK_MAX_WARMUP // PEAK_WINDOW
