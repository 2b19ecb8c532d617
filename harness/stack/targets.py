"""How to seed, start and reach a target (a reference design or any configured service),
and the LLM emulator.

All phases start servers through `running_stack`, so the command lines live in one place:
the target's description (harness.config.target_spec.TargetSpec, a `[[target]]` table). Modes:
"plain" (load phase), "probe" (the target's probe_command: the tracemalloc middleware),
"memray" (the target's command under `memray run --trace-python-allocators`).

Targets are resolved once, from the config (`Config.target(name)`), and passed down as
TargetSpec objects: `running_stack` and `seed_store` take the target itself, so any command
(`harness loadtest`, `probe`, `gate`, `chaos`) serves the `[[target]]` tables of its own
config file. There is no registry of names.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness._errors import PhaseFailed
from harness.config import SeedConfig, UpstreamConfig
from harness.config.target_spec import (
    TargetSpec,
    fill,
    fill_env,
    start_values,
    stop_signal_number,
)
from harness.results import read_json
from harness.stack.processes import LOOPBACK, ManagedProcess, ProcessGroup, start_on_free_port

Mode = Literal["plain", "probe", "memray"]
REFERENCE_DESIGNS = ("naive", "optimized")
HEALTH_TIMEOUT_S = 30.0
SEED_TIMEOUT_S = 600.0


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
    upstream_url: str  # "" when the target needs no upstream
    app: ManagedProcess
    upstream: ManagedProcess | None
    group: ProcessGroup
    target: TargetSpec | None = None


def app_argv(
    target: TargetSpec, mode: Mode, values: Mapping[str, object], capture: Path | None = None
) -> list[str]:
    """The command line that starts `target` in `mode`, placeholders filled from values."""
    if mode == "probe":
        if target.probe_command is None:
            raise PhaseFailed("probe", target.not_applicable("probe") or "no probe_command")
        return fill(target.probe_command, values)
    argv = fill(target.command, values)
    if mode == "memray":
        if capture is None:
            raise ValueError("memray mode needs a capture path")
        if target.python_module is None:
            raise PhaseFailed("profile", target.not_applicable("profile"))
        # the command is [{python}, -m, module, *args]: checked when the target was parsed
        return memray_argv(capture, target.python_module, argv[3:])
    return argv


@contextlib.contextmanager
def running_stack(
    target: TargetSpec,
    data_dir: Path,
    log_dir: Path,
    upstream_cfg: UpstreamConfig,
    mode: Mode = "plain",
    capture: Path | None = None,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    phase: str = "",
    host: str = LOOPBACK,
    argv_prefix: Sequence[str] = (),
) -> Iterator[Stack]:
    """Start the LLM emulator (when the target needs it) and the target on free loopback
    ports; stop both on exit. `workers` fills the target's {workers}: the probe and profile
    phases leave it at 1 (tracemalloc and memray see one process). `host` fills {host} and
    is where the harness and Locust reach the target (another address than the loopback
    only for Locust workers on other machines); the emulator stays on the loopback.
    `argv_prefix` goes before the target's command only (the sizing proof's cgroup join:
    harness.sizing.cgroup.join_argv), never before the emulator's."""
    if mode == "memray" and capture is None:
        raise ValueError("memray mode needs a capture path")
    if workers > 1 and not target.takes_workers:
        raise PhaseFailed(phase or "setup", f"target {target.name} has no {{workers}} placeholder")
    with ProcessGroup(log_dir) as group:
        upstream: ManagedProcess | None = None
        upstream_url = ""
        if target.needs_upstream:
            upstream, upstream_url = start_on_free_port(
                group,
                "upstream",
                lambda port: upstream_argv(port, upstream_cfg),
                timeout=HEALTH_TIMEOUT_S,
                phase=phase,
            )

        def argv_for(port: int) -> list[str]:
            values = start_values(port, host, data_dir, upstream_url, workers)
            return [*argv_prefix, *app_argv(target, mode, values, capture)]

        def env_for(port: int) -> dict[str, str]:
            values = start_values(port, host, data_dir, upstream_url, workers)
            return {**fill_env(target.env, values), **(env or {})}

        app, base_url = start_on_free_port(
            group,
            "app",
            argv_for,
            health_path=target.health,
            timeout=HEALTH_TIMEOUT_S,
            phase=phase,
            env=env_for,
            cwd=Path(target.cwd) if target.cwd else None,
            stop_signal=stop_signal_number(target.stop_signal),
            host=host,
        )
        yield Stack(target.name, base_url, upstream_url, app, upstream, group, target)


def seed_store(
    target: TargetSpec, data_dir: Path, cfg: SeedConfig, log_dir: Path
) -> dict[str, Any]:
    """Seed a fresh store for the target into data_dir (its seed command, a subprocess);
    return its manifest ({} when the target has no seed command or writes no manifest)."""
    import subprocess

    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    if target.seed is None:
        return {}
    values = {
        "python": sys.executable,
        "data_dir": data_dir,
        "users": cfg.users,
        "whales": cfg.whales,
        "whale_history": cfg.whale_history,
        "seed": cfg.seed,
    }
    log = log_dir / "seed.log"
    with log.open("wb") as out:
        try:
            done = subprocess.run(
                fill(target.seed, values),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=SEED_TIMEOUT_S,
                cwd=target.cwd,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PhaseFailed("seed", f"seeding {target.name} failed: {exc}") from None
    if done.returncode != 0:
        from harness.stack.processes import tail

        raise PhaseFailed("seed", f"seeding {target.name} exited {done.returncode}:\n{tail(log)}")
    if not (data_dir / "manifest.json").exists():
        return {}
    return read_manifest(data_dir)
