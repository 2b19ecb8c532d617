"""The probe phase: per-request tracemalloc figures across history lengths, one request at a time.

The app runs in probe mode (``serve --probe``: the TracemallocProbe middleware, and
``PUT /__probe/history/{user_id}``). For each history length h:

1. ``PUT /__probe/history/probe-user {"length": h}`` gives the probe user exactly h deterministic
   messages (unmeasured: ``/__probe/*`` is never measured);
2. for each endpoint (``chat`` = POST /chat, ``chat_stream`` = POST /chat streamed and read to the
   end, ``history`` = GET /history first page): ``warmup`` requests that are discarded, then
   ``reps`` measured ones, strictly one at a time; after each, ``GET /__probe/last`` reads its
   figures.

At history length 0 the user has no messages; the reference designs answer GET /history for such
a user with 404 (no history), and that answer is what is measured there (status 404 in the CSV).

Every rep sees the history length it claims: a POST /chat appends two messages, so after every
POST (warm-ups included) the history is reset to h with the same PUT, before the next request.
Each figure's record is checked to be the one for the request just sent (its ``seq`` advanced by
exactly one, same path, no overlap), so a stray request or a failed one cannot slip in.

The data set is seeded fresh into ``<design>/probe/data`` with no whales and at most
``PROBE_SEED_USERS`` users. The naive design reads its whole JSON file per request, so the rest of
the file is part of every request's cost; keeping it small and the same at every history length
makes the cost's growth with the probe user's history the thing measured (its intercept is the
small, constant rest). The upstream answers at once (first_token_ms 0, tokens_per_s 0): the probe
measures memory, not waiting, and the reply keeps cfg.upstream.reply_tokens tokens.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from harness._errors import PhaseFailed
from harness.analysis import probe as analysis
from harness.config import Config, SeedConfig, UpstreamConfig
from harness.phases import ProgressFn, no_progress
from harness.results import RunDir, SummaryRow
from harness.targets import running_stack, seed_store

PHASE = "probe"
PROBE_USER = "probe-user"
PROBE_SEED_USERS = 10
CHAT_MESSAGE = "How much memory does one request of mine cost?"
REQUEST_TIMEOUT_S = 120.0
REQUESTS_CSV = "probe_requests.csv"


def probe_seed(cfg: SeedConfig) -> SeedConfig:
    """The probe's data set: the configured seed, no whales, at most PROBE_SEED_USERS users."""
    return replace(cfg, users=min(cfg.users, PROBE_SEED_USERS), whales=0)


def probe_upstream(cfg: UpstreamConfig) -> UpstreamConfig:
    """An upstream that answers at once, with the configured reply length."""
    return replace(cfg, first_token_ms=0, tokens_per_s=0)


class _Prober:
    """Sends the probe's requests one at a time and checks each figure belongs to its request."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.seq = self._last_seq()

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

    def reset(self, history_len: int) -> None:
        response = self.client.put(f"/__probe/history/{PROBE_USER}", json={"length": history_len})
        if not response.is_success:
            raise self._fail(f"PUT /__probe/history/{PROBE_USER} length={history_len}", response)

    def request(self, endpoint: str, history_len: int) -> dict[str, Any]:
        """One request of `endpoint`; returns its probe record (history restored after a POST)."""
        if endpoint == "chat":
            path = "/chat"
            body = {"user_id": PROBE_USER, "message": CHAT_MESSAGE, "stream": False}
            response = self.client.post(path, json=body)
            if not response.is_success:
                raise self._fail(f"POST /chat at history_len {history_len}", response)
        elif endpoint == "chat_stream":
            path = "/chat"
            body = {"user_id": PROBE_USER, "message": CHAT_MESSAGE, "stream": True}
            with self.client.stream("POST", path, json=body) as response:
                content = response.read()
            if not response.is_success:
                raise self._fail(f"POST /chat (stream) at history_len {history_len}", response)
            if b"event: done" not in content:
                raise PhaseFailed(
                    PHASE, f"streamed POST /chat ended without a done event: {content[-300:]!r}"
                )
        elif endpoint == "history":
            path = f"/history/{PROBE_USER}"
            response = self.client.get(path)
            empty = history_len == 0 and response.status_code == 404
            if not (response.is_success or empty):
                raise self._fail(f"GET {path} at history_len {history_len}", response)
            seen = history_len if empty else response.json().get("history_len")
            if seen is not None and int(seen) != history_len:
                raise PhaseFailed(
                    PHASE, f"GET {path} saw history_len {seen}, the probe set {history_len}"
                )
        else:
            raise ValueError(f"unknown probe endpoint {endpoint!r}")
        record = self._record(path)
        if endpoint != "history":
            self.reset(history_len)
        return record

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


PROCESS_WARMUP = 30


def warm_process(prober: _Prober, history_len: int, progress: ProgressFn = no_progress) -> None:
    """Requests whose figures are thrown away, once per process, at the cheapest history length.

    tracemalloc sees a block only when it comes from the allocator; Python's free lists (tuples,
    lists, dicts, frames...) fill up over the first few dozen requests, and until they are full
    each request draws a little less from the allocator than the one before (seen: the optimized
    POST /chat at 0 messages fell by ~250 B per request for 15 requests, a CV of 2.9%; after
    30 warm-up requests the CV was 1.2%). The per-point warm-ups then only absorb what is
    specific to a history length.
    """
    prober.reset(history_len)
    for i in range(PROCESS_WARMUP):
        for endpoint in analysis.ENDPOINTS:
            prober.request(endpoint, history_len)
        progress(0, 1, f"warming the process up ({i + 1}/{PROCESS_WARMUP})")


def measure(
    client: httpx.Client,
    history_lens: Sequence[int],
    reps: int,
    warmup: int,
    progress: ProgressFn = no_progress,
) -> pd.DataFrame:
    """Run the probe's request plan against a probe-mode app; one row per measured request."""
    prober = _Prober(client)
    total = len(history_lens) * len(analysis.ENDPOINTS) * (warmup + reps)
    done = 0
    rows: list[dict[str, Any]] = []
    warm_process(prober, min(history_lens), progress)
    for history_len in history_lens:
        prober.reset(history_len)
        for endpoint in analysis.ENDPOINTS:
            for i in range(warmup + reps):
                record = prober.request(endpoint, history_len)
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
    return pd.DataFrame(rows, columns=list(analysis.REQUEST_COLUMNS))


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
) -> list[SummaryRow]:
    """Probe `design`; writes <design>/probe/probe_requests.csv and returns the summary rows."""
    if reps < 1 or warmup < 0 or not history_lens:
        raise ValueError("run_probe needs reps >= 1, warmup >= 0 and at least one history length")
    if any(h < 0 for h in history_lens):
        raise ValueError(f"history lengths must be >= 0, got {list(history_lens)}")
    phase_dir = run.phase_dir(design, PHASE)
    data_dir = phase_dir / "data"
    log_dir = phase_dir / "logs"
    _fresh(data_dir)
    seed_store(cfg.target(design), data_dir, probe_seed(cfg.seed), log_dir)
    with (
        running_stack(
            cfg.target(design),
            data_dir,
            log_dir,
            probe_upstream(cfg.upstream),
            mode="probe",
            env=env,
            phase=PHASE,
        ) as stack,
        httpx.Client(base_url=stack.base_url, timeout=REQUEST_TIMEOUT_S) as client,
    ):
        requests = measure(client, history_lens, reps, warmup, progress or no_progress)
    requests.to_csv(phase_dir / REQUESTS_CSV, index=False)
    return analysis.summary_rows(design, requests)


def _fresh(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
