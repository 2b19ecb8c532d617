"""Fixtures shared by the test suites: free ports, real upstream/app processes, seeded stores.

Process fixtures start everything on 127.0.0.1 through harness.stack.processes, whose ProcessGroup
stops what it started (SIGINT, then SIGTERM, then SIGKILL to the process group) on teardown.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.stack.processes import LOOPBACK, ManagedProcess, ProcessGroup, free_port, wait_healthy

HEALTH_TIMEOUT_S = 30.0


@dataclass
class Running:
    url: str
    process: ManagedProcess


def reference_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "reference_app", *args]


def upstream_args(
    port: int, first_token_ms: float = 0, tokens_per_s: float = 0, reply_tokens: int = 20
) -> list[str]:
    return reference_argv(
        "upstream",
        "--host", LOOPBACK,
        "--port", str(port),
        "--first-token-ms", str(first_token_ms),
        "--tokens-per-s", str(tokens_per_s),
        "--reply-tokens", str(reply_tokens),
    )  # fmt: skip


def serve_args(design: str, port: int, data_dir: Path, upstream_url: str, *extra: str) -> list[str]:
    return reference_argv(
        "serve",
        "--design", design,
        "--host", LOOPBACK,
        "--port", str(port),
        "--data-dir", str(data_dir),
        "--upstream", upstream_url,
        *extra,
    )  # fmt: skip


class Launcher:
    """Starts reference_app processes in one ProcessGroup and waits until they are healthy."""

    def __init__(self, group: ProcessGroup) -> None:
        self.group = group
        self._count = 0

    def _start(
        self, name: str, argv: list[str], port: int, env: Mapping[str, str] | None
    ) -> Running:
        self._count += 1
        proc = self.group.start(f"{name}-{self._count}", argv, env=env)
        url = f"http://{LOOPBACK}:{port}"
        wait_healthy(proc, f"{url}/healthz", HEALTH_TIMEOUT_S)
        return Running(url, proc)

    def upstream(
        self, first_token_ms: float = 0, tokens_per_s: float = 0, reply_tokens: int = 20
    ) -> Running:
        port = free_port()
        argv = upstream_args(port, first_token_ms, tokens_per_s, reply_tokens)
        return self._start("upstream", argv, port, None)

    def app(
        self,
        design: str,
        data_dir: Path,
        upstream_url: str,
        *extra: str,
        env: Mapping[str, str] | None = None,
    ) -> Running:
        port = free_port()
        argv = serve_args(design, port, data_dir, upstream_url, *extra)
        return self._start(f"app-{design}", argv, port, env)


@pytest.fixture(autouse=True)
def _console_width_of_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Consoles print as they do into a CI log (no terminal, no COLUMNS): pytest-xdist's
    workers inherit COLUMNS=80 from execnet, which would wrap the lines tests look for."""
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    return free_port()


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    """Processes that live for one test."""
    with ProcessGroup(tmp_path / "logs") as group:
        yield Launcher(group)


@pytest.fixture(scope="module")
def module_launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    """Processes shared by the tests of one module."""
    with ProcessGroup(tmp_path_factory.mktemp("logs")) as group:
        yield Launcher(group)


@pytest.fixture
def seeded_dir(tmp_path: Path) -> Callable[..., Path]:
    """seeded_dir(design, users=..., whales=..., whale_history=...) -> a fresh seeded data dir."""
    from reference_app.seed import SeedSpec, seed_store

    def make(design: str, users: int = 6, whales: int = 1, whale_history: int = 40) -> Path:
        data_dir = tmp_path / f"data-{design}-{users}-{whales}-{whale_history}"
        seed_store(design, data_dir, SeedSpec(users, whales, whale_history, seed=1))
        return data_dir

    return make
