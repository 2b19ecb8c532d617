"""How to seed, start and reach the reference designs (and the LLM emulator).

All phases start servers through `running_stack`, so the command lines live in one place.
Modes: "plain" (load phase), "probe" (tracemalloc middleware, `serve --probe`),
"memray" (the app under `memray run --trace-python-allocators`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.config import SeedConfig, UpstreamConfig
from harness.processes import LOOPBACK, ManagedProcess, ProcessGroup, start_on_free_port
from harness.results import read_json

Mode = Literal["plain", "probe", "memray"]
REFERENCE_DESIGNS = ("naive", "optimized")
HEALTH_TIMEOUT_S = 30.0


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def upstream_argv(port: int, cfg: UpstreamConfig, host: str = LOOPBACK) -> list[str]:
    return python_module(
        "reference_app",
        "upstream",
        "--host", host,
        "--port", str(port),
        "--first-token-ms", str(cfg.first_token_ms),
        "--tokens-per-s", str(cfg.tokens_per_s),
        "--reply-tokens", str(cfg.reply_tokens),
    )  # fmt: skip


def seed_argv(design: str, data_dir: Path, cfg: SeedConfig) -> list[str]:
    return python_module(
        "reference_app",
        "seed",
        "--design", design,
        "--data-dir", str(data_dir),
        "--users", str(cfg.users),
        "--whales", str(cfg.whales),
        "--whale-history", str(cfg.whale_history),
        "--seed", str(cfg.seed),
    )  # fmt: skip


def serve_args(
    design: str,
    port: int,
    data_dir: Path,
    upstream_url: str,
    workers: int = 1,
    probe: bool = False,
    host: str = LOOPBACK,
) -> list[str]:
    args = [
        "serve",
        "--design", design,
        "--host", host,
        "--port", str(port),
        "--data-dir", str(data_dir),
        "--upstream", upstream_url,
        "--workers", str(workers),
    ]  # fmt: skip
    if probe:
        args.append("--probe")
    return args


def memray_argv(capture: Path, module: str, module_args: list[str]) -> list[str]:
    # --trace-python-allocators: without it memray misses memory pymalloc reuses.
    return python_module(
        "memray", "run", "--trace-python-allocators", "--force", "-o", str(capture), "-m", module,
        *module_args,
    )  # fmt: skip


def read_manifest(data_dir: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = read_json(data_dir / "manifest.json")
    return manifest


@dataclass
class Stack:
    design: str
    base_url: str
    upstream_url: str
    app: ManagedProcess
    upstream: ManagedProcess
    group: ProcessGroup


@contextlib.contextmanager
def running_stack(
    design: str,
    data_dir: Path,
    log_dir: Path,
    upstream_cfg: UpstreamConfig,
    mode: Mode = "plain",
    capture: Path | None = None,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    phase: str = "",
) -> Iterator[Stack]:
    """Start the LLM emulator and the app on free loopback ports; stop both on exit."""
    with ProcessGroup(log_dir) as group:
        if mode == "memray" and capture is None:
            raise ValueError("memray mode needs a capture path")
        upstream, upstream_url = start_on_free_port(
            group,
            "upstream",
            lambda port: upstream_argv(port, upstream_cfg),
            timeout=HEALTH_TIMEOUT_S,
            phase=phase,
        )

        def app_argv(port: int) -> list[str]:
            args = serve_args(design, port, data_dir, upstream_url, workers, mode == "probe")
            if mode == "memray" and capture is not None:
                return memray_argv(capture, "reference_app", args)
            return python_module("reference_app", *args)

        app, base_url = start_on_free_port(
            group, "app", app_argv, timeout=HEALTH_TIMEOUT_S, phase=phase, env=env
        )
        yield Stack(design, base_url, upstream_url, app, upstream, group)


def seed_store(design: str, data_dir: Path, cfg: SeedConfig, log_dir: Path) -> dict[str, Any]:
    """Seed a fresh store for `design` into data_dir (a subprocess); return its manifest."""
    import subprocess

    from harness._errors import PhaseFailed

    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "seed.log"
    with log.open("wb") as out:
        done = subprocess.run(
            seed_argv(design, data_dir, cfg), stdout=out, stderr=subprocess.STDOUT, timeout=600
        )
    if done.returncode != 0:
        from harness.processes import tail

        raise PhaseFailed("seed", f"seeding {design} exited {done.returncode}:\n{tail(log)}")
    return read_manifest(data_dir)
