"""The sizing's proof under a real kernel memory limit (its measurements: harness.sizing.measure).

- `prove`: the target's process tree started inside a kernel memory limit (`choose_limiter`:
  a `docker run --memory` container where a Docker daemon answers, harness.sizing.docker;
  else a memory cgroup it joins before it execs, harness.sizing.cgroup.join_argv: start-up
  is charged too), its data set to `max_units`, then one step of the target's own capacity
  search (harness.phases.capacity.serve_and_search) at the stated rate for `proof_s`
  seconds: the reference chat API's mix on the seeded store (whose whales hold the largest
  histories), or the target's own locustfile, open-model. OOM kills come from the cgroup
  (or Docker), requests, failures and latency from Locust. When the app dies the load
  stops; the requests it had sent by then count. The LLM emulator stays outside the limit
  (it is not part of the container).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

from harness._errors import PhaseFailed
from harness.analysis.sizing import Proof
from harness.config import Config
from harness.config.target_spec import TargetSpec
from harness.phases import ProgressFn
from harness.phases.capacity import Search, Serving, design_search, serve_and_search
from harness.sizing.cgroup import Controller, removed_on_exit
from harness.sizing.docker import container_on_exit
from harness.sizing.measure import apply_data
from harness.stack.targets import Stack


def proof_search(cfg: Config, target: TargetSpec, rate: float, proof_s: float) -> Search:
    """One step of the target's own capacity search (the chat mix on the seeded store with
    its whales, or the target's locustfile) at `rate`, `proof_s` long, and no refinement
    after it (the whole search is that one step)."""
    return replace(design_search(cfg, target.name), rates=(rate,), step_s=proof_s, max_s=proof_s)


@dataclass(frozen=True)
class Limiter:
    """Which kernel limit the proof runs under."""

    kind: Literal["docker", "cgroup"]
    controller: Controller | None = None


def choose_limiter(runtime: str, docker_reason: str, cgroup: Controller | str) -> Limiter | str:
    """Docker where its daemon answers (unless runtime = cgroup), else a memory cgroup
    (unless runtime = docker); else the one-line reason there is neither."""
    if runtime != "cgroup" and not docker_reason:
        return Limiter("docker")
    if runtime == "docker":
        return f"[size] runtime = docker, but {docker_reason}"
    if isinstance(cgroup, Controller):
        return Limiter("cgroup", cgroup)
    return cgroup if runtime == "cgroup" else f"{cgroup}; {docker_reason}"


class Confinement(Protocol):
    """What the proof needs of a limit: a prefix for the target's command, what it counts."""

    @property
    def argv_prefix(self) -> list[str]: ...

    def host_pid(self, fallback: int) -> int: ...

    def oom_kills(self) -> int: ...

    def peak_bytes(self) -> int | None: ...


@contextlib.contextmanager
def confined(
    limiter: Limiter, name: str, limit_bytes: int, target: TargetSpec, out: Path
) -> Iterator[Confinement]:
    """The limit for the `with` block, removed on every way out (Ctrl-C included)."""
    if limiter.kind == "docker":
        cwd = Path(target.cwd) if target.cwd else None
        with container_on_exit(name, limit_bytes, [out, Path("/tmp")], target.env, cwd) as box:
            yield box
        return
    assert limiter.controller is not None
    with removed_on_exit(limiter.controller, name, limit_bytes) as group:
        yield group


def prove(
    cfg: Config,
    target: TargetSpec,
    limiter: Limiter,
    *,
    label: str,
    limit_bytes: int,
    rate: float,
    workers: int,
    max_units: int,
    proof_s: float,
    seeded: Path,
    out: Path,
    progress: ProgressFn | None = None,
) -> Proof:
    """Serve `target` under a `limit_bytes` limit and load it at `rate` (module docstring)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(seeded, out / "data")  # the load writes: each run starts from the seed
    search = proof_search(cfg, target, rate, proof_s)
    name = f"harness-size-{os.getpid()}-{target.name}-{label}"
    served: list[Stack] = []

    def prepare(stack: Stack) -> None:
        served.append(stack)
        apply_data(stack.base_url, target, max_units)

    with confined(limiter, name, limit_bytes, target, out) as box:
        serving = Serving(
            workers=workers,
            argv_prefix=tuple(box.argv_prefix),
            prepare=prepare,
            sampled_pid=box.host_pid,
        )
        peaks: list[int | None] = []  # read while the app runs: a container's goes with it
        try:
            result, gone = serve_and_search(
                cfg,
                target,
                search,
                out,
                phase="size",
                progress=progress,
                serving=serving,
                after=lambda _url, _pid: peaks.append(box.peak_bytes()),
            )
        except PhaseFailed as exc:
            first = exc.reason.splitlines()[0] if exc.reason else "it did not start"
            return Proof(
                label,
                limit_bytes,
                oom_kills=box.oom_kills(),
                peak_usage_bytes=float(box.peak_bytes() or math.nan),
                problem=f"the app could not start under the limit: {first}",
            )
        oom_kills = box.oom_kills()
        peak = box.peak_bytes() or next((p for p in peaks if p is not None), None)
    requests = sum(s.requests for s in result.steps)
    failures = sum(s.failures for s in result.steps)
    p95s = [e.p95_ms for s in result.steps for e in s.endpoints if not math.isnan(e.p95_ms)]
    app_exit = served[0].app.poll() if gone and served else None
    problem = "" if result.locust.ok or gone else result.locust.problem()
    return Proof(
        label,
        limit_bytes,
        oom_kills=oom_kills,
        requests=requests,
        failures=failures,
        p95_ms=max(p95s) if p95s else math.nan,
        peak_usage_bytes=float(peak) if peak is not None else math.nan,
        app_exit=app_exit,
        problem=problem,
        runtime=limiter.kind,
    )
