"""The probe phase: per-request tracemalloc figures across data sizes, one request at a time.

Any target with probe recipes (``[target.probe]``, harness.config.probe_recipe) is probed the
same way; the reference designs are described by recipes too (loadtest.toml). The app runs in
probe mode (its ``probe_command``: the TracemallocProbe middleware). For each size N of the
data-size knob:

1. the recipe's setup brings the service to size N: a request (the reference designs'
   ``PUT /__probe/history/probe-user {"length": N}``), sent with the header
   ``x-memload-unmeasured`` so it is never measured nor counted, whatever its path; or a
   command (``setup_command``, run with ``{size}`` filled in);
2. for each of the recipe's requests (the reference designs: ``chat`` = POST /chat,
   ``chat_stream`` = the same streamed and read to the end, ``history`` = GET /history):
   ``warmup`` requests that are discarded, then ``reps`` measured ones, strictly one at a time;
   after each, ``GET /__probe/last`` reads its figures.

Every rep sees the size it claims: a request marked ``reset_after`` (a POST /chat appends two
messages) is followed by the setup again, before the next request. Each figure's record is checked
to be the one for the request just sent (its ``seq`` advanced by exactly one, same path, no
overlap), so a stray request or a failed one cannot slip in.

Then the leak runs (retained memory per request) and, for the gate's explanations, the
allocation sites (see `measure`).

The figures keep the label ``history_len`` for the size, whatever the target's knob is (the
reference API's name; the unit of the slope is the recipe's ``size_unit``).

A target with a seed command is seeded fresh into ``<design>/probe/data`` with no whales and at
most ``PROBE_SEED_USERS`` users: the naive design reads its whole JSON file per request, so the
rest of the file is part of every request's cost; keeping it small and the same at every size
makes the cost's growth with the probe user's history the thing measured. The LLM emulator (for
targets that need it) answers at once: the probe measures memory, not waiting.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pandas as pd

from harness._errors import PhaseFailed
from harness.analysis import probe as analysis
from harness.config import Config, SeedConfig, UpstreamConfig
from harness.config.probe_recipe import ProbeRecipe, ProbeRequest, render_request
from harness.config.target_spec import TargetSpec, fill, start_values
from harness.phases import ProgressFn, no_progress
from harness.phases._probe_leak import (  # re-exported: the leak runs' public names
    CONFIRM_FACTOR,
    CONFIRM_TRIGGER_BYTES,
    LEAK_EVERY,
    LEAK_REQUESTS,
    LEAK_STEADY_BYTES,
    LEAK_WARMUP_MAX,
    LEAK_WARMUP_MIN,
    LEAK_WINDOW,
    PROCESS_WARMUP,
    checkpointed,
    leak_history_len,
    leak_run,
    warm_process,
)
from harness.results import RunDir, SummaryRow, write_json_atomic
from harness.sampling.tracemalloc_probe import UNMEASURED_HEADER
from harness.stack.processes import LOOPBACK
from harness.stack.targets import running_stack, seed_store

PHASE = "probe"
__all__ = [
    "CONFIRM_FACTOR",
    "CONFIRM_TRIGGER_BYTES",
    "LEAK_EVERY",
    "LEAK_REQUESTS",
    "LEAK_STEADY_BYTES",
    "LEAK_WARMUP_MAX",
    "LEAK_WARMUP_MIN",
    "LEAK_WINDOW",
    "PHASE",
    "PROCESS_WARMUP",
    "ProbeResult",
    "checkpointed",
    "leak_history_len",
    "leak_run",
    "measure",
    "probe_sizes",
    "run_probe",
    "warm_process",
]
PROBE_SEED_USERS = 10
REQUEST_TIMEOUT_S = 120.0
# Drop an idle connection before the server may: uvicorn closes one after 5 s idle (its
# keep-alive timeout, also httpx's default expiry), and a request sent on it at that moment
# fails with "Server disconnected without sending a response" (seen twice in 10 planted Flask
# gates on a busy machine, where a setup command keeps the connection idle for seconds).
KEEPALIVE_EXPIRY_S = 2.0
SETUP_TIMEOUT_S = 300.0
# Before reading a rep's figures: the middleware's window ends when the app's coroutine returns,
# which can be after the client has the whole response (a WSGI app behind a2wsgi: a thread
# handoff and a few loop turns after the last byte). GET /__probe/last sent at once then reached
# uvicorn inside the window, and its parsing and task (+5.4 KB, 52 blocks) counted in the
# request's figures: the Flask notes service's 404 peaked at 30.3 KB instead of 27.3 KB in 5 of
# 15 reps. Pausing 5 ms left 10 of 40 reps so; 10 ms none of 40 (load average 6.4).
RECORD_PAUSE_S = 0.02
REQUESTS_CSV = "probe_requests.csv"
CHECKPOINTS_CSV = "probe_retained.csv"
SITES_JSON = "probe_sites.json"


def probe_seed(cfg: SeedConfig) -> SeedConfig:
    """The probe's data set: the configured seed, no whales, at most PROBE_SEED_USERS users."""
    return replace(cfg, users=min(cfg.users, PROBE_SEED_USERS), whales=0)


def probe_upstream(cfg: UpstreamConfig) -> UpstreamConfig:
    """An upstream that answers at once, with the configured reply length."""
    return replace(cfg, first_token_ms=0, tokens_per_s=0)


class _Prober:
    """Sends a recipe's requests one at a time and checks each figure belongs to its request."""

    def __init__(
        self,
        client: httpx.Client,
        recipe: ProbeRecipe,
        base_values: Mapping[str, object] | None = None,
        cwd: str | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.client = client
        self.recipe = recipe
        self.requests = {r.name: r for r in recipe.requests}
        self.base_values = dict(base_values or {})
        self.cwd = cwd
        self.log_dir = log_dir
        self.sent = 0  # fills {i}
        self.seq = self._last_seq()
        self.step_sites: list[dict[str, Any]] = []  # watch_step_sites' findings

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(self.requests)

    @property
    def resets_after(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.recipe.requests if r.reset_after)

    def _fail(self, what: str, response: httpx.Response) -> PhaseFailed:
        return PhaseFailed(PHASE, f"{what}: HTTP {response.status_code}: {response.text[:300]!r}")

    def _last(self) -> httpx.Response:
        return self.client.get("/__probe/last")

    def _last_seq(self) -> int:
        response = self._last()
        if response.status_code == 404:
            return 0
        if response.status_code != 200:
            raise self._fail("GET /__probe/last (is the app in probe mode?)", response)
        return int(response.json()["seq"])

    def _values(self, size: int) -> dict[str, object]:
        return self.recipe.values(size, self.sent, self.base_values)

    def reset(self, size: int) -> None:
        """Bring the service to `size` with the recipe's setup (nothing without one)."""
        setup = self.recipe.setup
        if setup is None:
            return
        if setup.request is not None:
            r = render_request(setup.request, self._values(size))
            # Unmeasured whatever its path: the middleware passes it to the app unrecorded.
            headers = {**r.headers, UNMEASURED_HEADER: "setup"}
            response = self.client.request(
                r.method, r.path, headers=headers, json=r.json, content=r.content
            )
            if not response.is_success:
                raise self._fail(f"setup {r.method} {r.path} at size {size}", response)
            return
        argv = fill(setup.command or (), self._values(size))
        log = (self.log_dir / "setup.log") if self.log_dir else None
        try:
            done = subprocess.run(
                argv,
                cwd=self.cwd,
                capture_output=True,
                timeout=SETUP_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PhaseFailed(PHASE, f"setup command {argv} failed: {exc}") from None
        if log is not None:
            with log.open("ab") as out:
                out.write(done.stdout + done.stderr)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).decode(errors="replace")[-500:]
            raise PhaseFailed(
                PHASE, f"setup command {argv} at size {size} exited {done.returncode}: {tail}"
            )

    def checkpoint(self) -> dict[str, Any]:
        """Traced memory and blocks now, after a collection (GET /__probe/retained)."""
        response = self.client.get("/__probe/retained")
        if response.status_code != 200:
            raise self._fail("GET /__probe/retained", response)
        body: dict[str, Any] = response.json()
        if int(body["seq"]) != self.seq:
            raise PhaseFailed(PHASE, "a request reached the server between probe checkpoints")
        return body

    def arm_peak_sites(self) -> None:
        response = self.client.post("/__probe/sites/peak")
        if response.status_code != 200:
            raise self._fail("POST /__probe/sites/peak", response)

    def start_retained_sites(self) -> None:
        response = self.client.post("/__probe/sites/retained")
        if response.status_code != 200:
            raise self._fail("POST /__probe/sites/retained", response)

    def retained_sites(self) -> list[dict[str, Any]]:
        response = self.client.get("/__probe/sites/retained")
        if response.status_code != 200:
            raise self._fail("GET /__probe/sites/retained", response)
        return list(response.json()["sites"])

    def watch_step_sites(self, endpoint: str, history_len: int) -> Callable[[], None]:
        """Snapshot now; the returned call adds the lines that grew since (bytes in total) to
        `step_sites`, labelled with `endpoint` and `history_len`."""
        response = self.client.post("/__probe/sites/step")
        if response.status_code != 200:
            raise self._fail("POST /__probe/sites/step", response)

        def finish() -> None:
            done = self.client.get("/__probe/sites/step")
            if done.status_code != 200:
                raise self._fail("GET /__probe/sites/step", done)
            self.step_sites += [
                {"endpoint": endpoint, "history_len": history_len, **site}
                for site in done.json()["sites"]
            ]

        return finish

    def request(self, endpoint: str, size: int, *, rep: bool = False) -> dict[str, Any]:
        """One request of `endpoint` at `size`; its probe record (the setup re-run after it
        when the recipe says the request changes the size). endpoint RESET: the setup alone.
        A `rep` (its figures are kept) waits RECORD_PAUSE_S before its record is read."""
        if endpoint == analysis.RESET:
            self.reset(size)
            return {}
        recipe = self.requests[endpoint]
        self.sent += 1
        r = render_request(recipe.template, self._values(size))
        if recipe.stream:
            with self.client.stream(
                r.method, r.path, headers=r.headers, json=r.json, content=r.content
            ) as response:
                body = response.read()
        else:
            response = self.client.request(
                r.method, r.path, headers=r.headers, json=r.json, content=r.content
            )
            body = response.content
        self._check(recipe, response, body, size)
        if rep:
            time.sleep(RECORD_PAUSE_S)
        record = self._record(urlsplit(r.path).path)
        if recipe.reset_after:
            self.reset(size)
        return record

    def _check(
        self, recipe: ProbeRequest, response: httpx.Response, body: bytes, size: int
    ) -> None:
        if not recipe.accepts(response.status_code):
            raise self._fail(f"{recipe.name} at size {size}", response)
        wanted = recipe.expect_body_contains
        if wanted and wanted.encode() not in body:
            raise PhaseFailed(
                PHASE, f"{recipe.name} at size {size}: no {wanted!r} in its body: {body[-300:]!r}"
            )

    def _record(self, path: str) -> dict[str, Any]:
        response = self._last()
        if response.status_code != 200:
            raise self._fail("GET /__probe/last", response)
        record: dict[str, Any] = response.json()
        expected = self.seq + 1
        if int(record.get("seq", -1)) != expected or record.get("path") != path:
            raise PhaseFailed(
                PHASE,
                f"probe record {record.get('seq')} for {record.get('path')!r} is not the one for "
                f"this request ({expected}, {path!r}): another client is using the server, or "
                "the request failed inside the app",
            )
        if record.get("overlapped"):
            raise PhaseFailed(PHASE, f"request {path} overlapped another one: figures invalid")
        self.seq = expected
        return record


# Retained sites are looked for only where a leak run kept more than this per request, over
# SITES_REQUESTS requests traced with deep stacks (several times slower than the figures).
SITES_TRIGGER_BYTES = 128
SITES_REQUESTS = 10
SITES_WARMUP = 10


def retained_sites(
    prober: _Prober, endpoint: str, history_len: int, requests: int = SITES_REQUESTS
) -> list[dict[str, Any]]:
    """The lines whose memory grew over `requests` requests of `endpoint`, per request.

    The middleware restarts tracing with deep stacks for this (slower), so it runs after every
    figure has been measured, and only for endpoints whose leak run retained something.
    """
    prober.reset(history_len)
    # The first start restarts tracing with deep stacks, which forgets every block traced so
    # far: the next requests re-trace what the server replaces as it goes (records, buffers,
    # weak-reference sets) and would read as retained (seen: 270 B/request at the upstream
    # call over the first 10). As many requests again, then the snapshot that counts.
    prober.start_retained_sites()
    for _ in range(SITES_WARMUP):
        prober.request(endpoint, history_len)
    prober.start_retained_sites()
    for _ in range(requests):
        prober.request(endpoint, history_len)
    return [
        {"endpoint": endpoint, "history_len": history_len, **site}
        for site in prober.retained_sites()
    ]


def peak_sites(prober: _Prober, endpoint: str, history_len: int) -> list[dict[str, Any]]:
    """What one request of `endpoint` held at its high-water mark, per site (memray)."""
    prober.reset(history_len)
    prober.arm_peak_sites()
    record = prober.request(endpoint, history_len)
    return [
        {"endpoint": endpoint, "history_len": history_len, **site}
        for site in record.get("peak_sites", [])
    ]


@dataclass
class ProbeResult:
    """Everything one probe run measured (one design)."""

    requests: pd.DataFrame  # one row per measured request (REQUEST_COLUMNS)
    checkpoints: pd.DataFrame  # the leak runs' traced memory (CHECKPOINT_COLUMNS)
    sites: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # peak, retained


def measure(
    client: httpx.Client,
    recipe: ProbeRecipe,
    history_lens: Sequence[int],
    reps: int,
    warmup: int,
    progress: ProgressFn = no_progress,
    *,
    leak_requests: int = LEAK_REQUESTS,
    sites: bool = True,
    base_values: Mapping[str, object] | None = None,
    cwd: str | None = None,
    log_dir: Path | None = None,
) -> ProbeResult:
    """Run a recipe's request plan against a probe-mode app.

    First per endpoint a leak run at leak_history_len (`leak_run`: a warm-up until steady, the
    run, maybe its confirmation; and one of the resets alone, which the analysis subtracts: the
    probe's own resets must not count); then per history length and endpoint, warmup + reps
    requests (their figures, one row each); with `sites`, each endpoint's leak run is watched
    by a snapshot at the current trace depth (its step sites: where its one-time growth was
    allocated, in total bytes); then, with `sites`, the retained sites
    of endpoints whose leak run kept more than SITES_TRIGGER_BYTES per request, and one request
    per endpoint at the smallest and the largest history length under memray for its peak
    sites (a memray capture costs about a second; the gate explains a peak at another length
    with the nearest of these).
    """
    prober = _Prober(client, recipe, base_values, cwd, log_dir)
    endpoints = prober.endpoints
    resets = (analysis.RESET,) if prober.resets_after and recipe.setup is not None else ()
    leak_endpoints = (*endpoints, *resets) if leak_requests else ()
    total = (
        len(history_lens) * len(endpoints) * (warmup + reps)
        + len(leak_endpoints) * leak_requests
        + (2 * len(endpoints) if sites else 0)
    )
    done = 0
    rows: list[dict[str, Any]] = []
    # The leak runs first: each endpoint's warm-up until steady then starts at its first
    # request in this process, so a cache it fills once is counted whole as one-time growth;
    # and they warm the process up for the peaks (warm_process, without leak runs).
    checkpoints: list[dict[str, Any]] = []
    leak_len = leak_history_len(history_lens)
    for endpoint in leak_endpoints:
        text = f"leak run: {endpoint} x {leak_requests} at history_len={leak_len}"
        progress(done, total, text)
        checkpoints += [
            {**row, analysis.RESETS_COLUMN: int(endpoint in prober.resets_after)}
            for row in leak_run(
                prober,
                endpoint,
                leak_len,
                leak_requests,
                LEAK_EVERY,
                watch=prober.watch_step_sites if sites and endpoint != analysis.RESET else None,
                tick=functools.partial(progress, done, total, text),
            )
        ]
        done += leak_requests
    if not leak_endpoints:
        warm_process(prober, min(history_lens), progress)
    for history_len in history_lens:
        prober.reset(history_len)
        for endpoint in endpoints:
            for i in range(warmup + reps):
                record = prober.request(endpoint, history_len, rep=i >= warmup)
                done += 1
                progress(done, total, f"{endpoint} history_len={history_len}")
                if i < warmup:
                    continue
                rows.append(
                    {
                        "endpoint": endpoint,
                        "history_len": history_len,
                        "rep": i - warmup + 1,
                        "alloc_peak_bytes": int(record["alloc_peak_bytes"]),
                        "alloc_net_bytes": int(record["alloc_net_bytes"]),
                        "blocks": int(record["blocks"]),
                        "duration_s": float(record["duration_s"]),
                        "status": int(record["status"]),
                    }
                )
    frame = pd.DataFrame(
        checkpoints,
        columns=[*analysis.CHECKPOINT_COLUMNS, analysis.RUN_COLUMN, analysis.RESETS_COLUMN],
    )
    retained: list[dict[str, Any]] = []
    if sites and not frame.empty:
        for (endpoint, history_len), r in analysis.retention(frame).items():
            if r.bytes_per_request > SITES_TRIGGER_BYTES:
                progress(done, total, f"retained sites: {endpoint}")
                retained += retained_sites(prober, endpoint, history_len)
    peaks: list[dict[str, Any]] = []
    if sites:
        for history_len in sorted({min(history_lens), max(history_lens)}):
            for endpoint in endpoints:
                peaks += peak_sites(prober, endpoint, history_len)
                done += 1
                progress(done, total, f"peak sites: {endpoint} history_len={history_len}")
    return ProbeResult(
        requests=pd.DataFrame(rows, columns=list(analysis.REQUEST_COLUMNS)),
        checkpoints=frame,
        sites={"peak": peaks, "retained": retained, "step": prober.step_sites},
    )


def run_probe(
    run: RunDir,
    design: str,
    cfg: Config,
    *,
    history_lens: Sequence[int],
    reps: int,
    warmup: int,
    env: Mapping[str, str] | None = None,
    progress: ProgressFn | None = None,
    leak_requests: int = LEAK_REQUESTS,
    sites: bool = True,
    processes: int = 1,
    leak_processes: int = 1,
    concurrent: int = 1,
) -> list[SummaryRow]:
    """Probe `design` with its target's recipe in `processes` fresh server processes, up to
    `concurrent` of them at a time (the figures move between processes more than within one:
    docs/gate.md); the first `leak_processes` of them also run the leak runs (the longest
    part); writes <design>/probe/ (REQUESTS_CSV and CHECKPOINTS_CSV with a ``process`` column,
    SITES_JSON of the first process; process k > 1 keeps its store and logs in data-k/ and
    logs-k/) and returns the summary rows of all of them pooled. The recipe's own sizes, when
    it has them, win over `history_lens`.

    Running processes at once changes no figure (tracemalloc counts only its own process); it
    lets the peak-only processes use a core the leak runs of the first one leave idle."""
    target = cfg.target(design)
    recipe = target.probe
    if recipe is None or target.probe_command is None:
        raise PhaseFailed(PHASE, target.not_applicable(PHASE) or "no probe recipe")
    history_lens = probe_sizes(target, history_lens)
    if reps < 1 or warmup < 0 or not history_lens or processes < 1:
        raise ValueError(
            "run_probe needs reps >= 1, warmup >= 0, processes >= 1 and at least one history length"
        )
    if any(h < 0 for h in history_lens):
        raise ValueError(f"history lengths must be >= 0, got {list(history_lens)}")
    phase_dir = run.phase_dir(design, PHASE)

    def one(process: int) -> ProbeResult:
        suffix = "" if process == 1 else f"-{process}"
        data_dir = phase_dir / f"data{suffix}"
        log_dir = phase_dir / f"logs{suffix}"
        _fresh(data_dir)
        seed_store(target, data_dir, probe_seed(cfg.seed), log_dir)
        with (
            running_stack(
                target,
                data_dir,
                log_dir,
                probe_upstream(cfg.upstream),
                mode="probe",
                env=env,
                phase=PHASE,
            ) as stack,
            httpx.Client(
                base_url=stack.base_url,
                timeout=REQUEST_TIMEOUT_S,
                limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S),
            ) as client,
        ):
            port = urlsplit(stack.base_url).port or 0
            return measure(
                client,
                recipe,
                history_lens,
                reps,
                warmup,
                _in_process(progress or no_progress, process, processes),
                leak_requests=leak_requests if process <= leak_processes else 0,
                sites=sites and process == 1,
                base_values=start_values(port, LOOPBACK, data_dir, stack.upstream_url, 1),
                cwd=target.cwd,
                log_dir=log_dir,
            )

    numbers = range(1, processes + 1)
    if concurrent > 1 and processes > 1:
        # Longest first: the first process has the leak runs. An interrupt raised in one
        # thread's progress callback is raised in the others' at their next request.
        with ThreadPoolExecutor(max_workers=min(concurrent, processes)) as pool:
            results = list(pool.map(one, numbers))
    else:
        results = [one(process) for process in numbers]
    requests = _pooled([r.requests for r in results])
    checkpoints = _pooled([r.checkpoints for r in results])
    requests.to_csv(phase_dir / REQUESTS_CSV, index=False)
    checkpoints.to_csv(phase_dir / CHECKPOINTS_CSV, index=False)
    write_json_atomic(phase_dir / SITES_JSON, results[0].sites)
    return analysis.summary_rows(design, requests, checkpoints, size_unit=recipe.size_unit)


def _pooled(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The processes' frames in one, with a ``process`` column (1, 2, ...)."""
    marked = [f.assign(**{analysis.PROCESS_COLUMN: i}) for i, f in enumerate(frames, 1)]
    kept = [f for f in marked if not f.empty]
    return pd.concat(kept, ignore_index=True) if kept else marked[0]


def _in_process(progress: ProgressFn, process: int, processes: int) -> ProgressFn:
    """`progress` with the process's number in its text (when there are several)."""
    if processes == 1:
        return progress

    def update(done: float, total: float, text: str) -> None:
        progress(done, total, f"process {process}/{processes}: {text}")

    return update


def probe_sizes(target: TargetSpec, default: Sequence[int]) -> list[int]:
    """The sizes a target is probed at: its recipe's own, else `default` (the profile's or
    [gate]'s history_lens)."""
    own = target.probe.sizes if target.probe is not None else None
    return list(own) if own else list(default)


def _fresh(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
