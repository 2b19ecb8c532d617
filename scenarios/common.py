"""What the locustfiles share: the seed manifest, acknowledged writes, time to first token.

This package is the only one that imports locust (which monkey-patches the standard library
with gevent); the harness runs `locust -f scenarios/<name>.py` as a subprocess and talks to
it through environment variables and files:

- HARNESS_MANIFEST: the seed manifest (`{"users": [{"user_id", "history_len", "whale"}]}`);
  user ids come from it, so every design sees the same users.
- HARNESS_ACKS: where to write, at test stop, how many `POST /chat` exchanges the server
  acknowledged per user (2xx plain, or a stream whose `done` event arrived). The integrity
  phase compares these with what the store holds.
- HARNESS_SEED: seeds each simulated user's random choices (default 1).

With several Locust processes (`--processes N`, or `--master` and `--worker`s elsewhere) the
users run in the workers: each worker writes its own `<HARNESS_ACKS>.worker-<pid>` and also
attaches its counts to its statistics reports, which the master writes to
`<HARNESS_ACKS>.master` (for workers on other machines); the harness merges them
(harness.load.acks). The master sends the seed manifest (and HARNESS_SEED, HARNESS_CEILING_PATH)
to its workers when the test starts, so a worker on another machine needs no HARNESS_*
variable; started as `locust -f - --worker --master-host HOST` it also takes the locustfile
from the master (the `scenarios` package must be installed there). Each worker seeds its
users' random generators apart (by worker index), so that two workers do not replay the
same choices.

Requests are named by endpoint so that Locust's statistics group per endpoint. Streamed
requests fire one extra event, request_type "TTFT", timed by hand from the request's start
to the first `event: token` line (Locust's own response time stops at the headers); the
harness leaves TTFT rows out of request and failure totals.

The stream is read line by line as its bytes arrive (`sse_lines`), not with
`iter_content(chunk_size)`: FastHttpUser's `iter_content` calls geventhttpclient's
`HTTPSocketResponse.read(chunk_size)`, which keeps calling `recv` until `chunk_size` bytes
are buffered or the body ends. With 1 KiB chunks the first token (a ~60-byte event) was
handed over only once a dozen more tokens had arrived, and TTFT came out ~130 ms late; a
small chunk size instead costs one `recv` system call per chunk (per byte with 1).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gevent
from locust import FastHttpUser, between, events, task
from locust.env import Environment
from locust.runners import MasterRunner, Runner, WorkerRunner

from scenarios import locust_fixes  # noqa: F401  (Locust's per-spawn-message parse: its doc)

MANIFEST_ENV = "HARNESS_MANIFEST"
ACKS_ENV = "HARNESS_ACKS"
SEED_ENV = "HARNESS_SEED"

CHAT = "POST /chat"
CHAT_STREAM = "POST /chat [stream]"
HISTORY = "GET /history"
TTFT = "TTFT"  # request_type of the time-to-first-token event (name: CHAT_STREAM)

HISTORY_PAGE = 50
MAX_HISTORY_PAGES = 3


# --- the seed manifest ---------------------------------------------------------------------


@dataclass(frozen=True)
class Pools:
    """User ids of the seeded dataset, split into ordinary users and whales."""

    ordinary: tuple[str, ...]
    whales: tuple[str, ...]

    def get(self, name: str) -> tuple[str, ...]:
        chosen = self.whales if name == "whales" else self.ordinary
        # Fall back to every user when a pool is empty (e.g. a dataset without whales).
        return chosen or (self.ordinary + self.whales)


def pools_from_manifest(manifest: dict[str, Any]) -> Pools:
    ordinary: list[str] = []
    whales: list[str] = []
    for user in manifest.get("users", []):
        (whales if user.get("whale") else ordinary).append(str(user["user_id"]))
    if not ordinary and not whales:
        raise RuntimeError("the seed manifest lists no users")
    return Pools(tuple(ordinary), tuple(whales))


SETUP_MESSAGE = "harness_setup"  # master -> workers: the seed manifest and HARNESS_* settings
FORWARDED_ENV = (SEED_ENV, "HARNESS_CEILING_PATH")  # settings a remote worker lacks
_received_manifest: dict[str, Any] | None = None


def read_manifest() -> dict[str, Any] | None:
    """The manifest HARNESS_MANIFEST names, or None when it is not set or not there."""
    path = os.environ.get(MANIFEST_ENV)
    if not path or not Path(path).is_file():
        return None
    manifest: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return manifest


@functools.cache
def pools() -> Pools:
    manifest = read_manifest() or _received_manifest
    if manifest is None:
        raise RuntimeError(
            f"{MANIFEST_ENV} is not set (or not a file) and no master sent the seed manifest"
        )
    return pools_from_manifest(manifest)


_user_numbers = itertools.count()
WORKER_STRIDE = 100_019  # user numbers of worker k start at k * WORKER_STRIDE


def next_rng(worker_index: int = 0) -> random.Random:
    """A random generator per simulated user, reproducible from HARNESS_SEED; each Locust
    worker (index 0, 1, ...) gets its own sequence."""
    base = int(os.environ.get(SEED_ENV, "1"))
    number = max(0, worker_index) * WORKER_STRIDE + next(_user_numbers)
    return random.Random(base * 1_000_003 + number)


@events.init.add_listener
def _receive_setup_from_master(environment: Environment, **_kwargs: Any) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        return

    def on_setup(msg: Any, **_kw: Any) -> None:
        global _received_manifest
        data = dict(msg.data or {})
        if data.get("manifest") is not None:
            _received_manifest = dict(data["manifest"])
            pools.cache_clear()
        for key, value in dict(data.get("env") or {}).items():
            os.environ.setdefault(str(key), str(value))  # a local worker has them already

    environment.runner.register_message(SETUP_MESSAGE, on_setup)


@events.test_start.add_listener
def _send_setup_to_workers(environment: Environment, **_kwargs: Any) -> None:
    # test_start fires on the master before it dispatches users: the message arrives first.
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        env = {key: os.environ[key] for key in FORWARDED_ENV if key in os.environ}
        runner.send_message(SETUP_MESSAGE, {"manifest": read_manifest(), "env": env})


# --- acknowledged writes -------------------------------------------------------------------


class AckLedger:
    """Exchanges the server acknowledged, per user id (one exchange = 2 stored messages)."""

    def __init__(self) -> None:
        self.acknowledged: Counter[str] = Counter()
        self.attempted: Counter[str] = Counter()

    def attempt(self, user_id: str) -> None:
        self.attempted[user_id] += 1

    def ack(self, user_id: str) -> None:
        self.acknowledged[user_id] += 1

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            "acknowledged": dict(sorted(self.acknowledged.items())),
            "attempted": dict(sorted(self.attempted.items())),
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.counts(), "written_at": time.time()}

    def write(self, path: Path) -> None:
        """Write atomically: a reader never sees half a file."""
        write_json(path, self.to_json())


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def merge_counts(snapshots: Iterable[dict[str, dict[str, int]]]) -> dict[str, Any]:
    """The sum of several ledgers' counts (one per worker)."""
    acknowledged: Counter[str] = Counter()
    attempted: Counter[str] = Counter()
    for snap in snapshots:
        acknowledged.update(snap.get("acknowledged", {}))
        attempted.update(snap.get("attempted", {}))
    return {
        "acknowledged": dict(sorted(acknowledged.items())),
        "attempted": dict(sorted(attempted.items())),
    }


LEDGER = AckLedger()
WORKER_ACKS: dict[str, dict[str, dict[str, int]]] = {}  # on a master: client id -> counts
ACKS_REPORT_KEY = "harness_acks"


def ack_file(runner: Runner | None) -> Path | None:
    """Where this process writes its acknowledged writes (None: nowhere).

    One process: HARNESS_ACKS. A worker: HARNESS_ACKS.worker-<pid>. A master runs no users;
    it writes HARNESS_ACKS.master from its workers' reports (see `_write_master_acks`).
    """
    path = os.environ.get(ACKS_ENV)
    if not path or isinstance(runner, MasterRunner):
        return None
    if isinstance(runner, WorkerRunner):
        return Path(f"{path}.worker-{os.getpid()}")
    return Path(path)


def _write_master_acks(runner: Runner | None) -> None:
    path = os.environ.get(ACKS_ENV)
    if path and isinstance(runner, MasterRunner) and WORKER_ACKS:
        payload = merge_counts(WORKER_ACKS.values())
        payload["workers"] = sorted(WORKER_ACKS)
        payload["written_at"] = time.time()
        write_json(Path(f"{path}.master"), payload)


CSV_SETTLE_S = 1.2  # > locust's CSV_STATS_INTERVAL_SEC (1 s)


@events.report_to_master.add_listener
def _acks_to_master(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    data[ACKS_REPORT_KEY] = LEDGER.counts()  # cumulative: the last report holds them all


@events.worker_report.add_listener
def _acks_from_worker(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    if ACKS_REPORT_KEY in data:
        WORKER_ACKS[client_id] = data[ACKS_REPORT_KEY]


@events.test_stop.add_listener
def _write_acks(environment: Environment, **_kwargs: Any) -> None:
    runner = environment.runner
    target = ack_file(runner)
    if target is not None:
        LEDGER.write(target)
    _write_master_acks(runner)
    if not isinstance(runner, WorkerRunner):
        # Locust rewrites <prefix>_stats.csv once a second and not at exit: give its writer
        # one more turn now that every user has stopped, so the file counts the last
        # requests too. (A worker writes no CSV.)
        gevent.sleep(CSV_SETTLE_S)


@events.quitting.add_listener
def _write_acks_on_quit(environment: Environment, **_kwargs: Any) -> None:
    target = ack_file(environment.runner)
    if target is not None:
        LEDGER.write(target)
    _write_master_acks(environment.runner)


# --- server-sent events --------------------------------------------------------------------


@dataclass
class StreamOutcome:
    first_token_s: float | None = None  # seconds from request start to the first token
    done: bool = False
    tokens: int = 0


def sse_lines(resp: Any) -> Iterator[bytes]:
    """The lines of a streamed FastHttpUser response, each as soon as its newline arrived.

    geventhttpclient's `readline` returns a line once it is buffered and otherwise takes what
    one `recv` delivers (up to its block size), so a short first event is not held back until
    a fixed number of bytes arrived (see the module doc).
    """
    body = resp._response  # geventhttpclient's HTTPSocketResponse; locust exposes no reader
    while line := body.readline(b"\n"):
        yield line
    if rest := body.read():  # a last line without its newline, at the end of the body
        yield rest


def read_stream(chunks: Iterable[str | bytes], started: float) -> StreamOutcome:
    """Follow `event: token` / `event: done` lines; note when the first token arrived."""
    outcome = StreamOutcome()
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else chunk
        while "\n" in buffer:
            line, buffer = buffer.split("\n", 1)
            line = line.strip()
            if line == "event: token":
                outcome.tokens += 1
                if outcome.first_token_s is None:
                    outcome.first_token_s = time.perf_counter() - started
            elif line == "event: done":
                outcome.done = True
    if buffer.strip() == "event: done":
        outcome.done = True
    return outcome


# --- the simulated users -------------------------------------------------------------------


class ChatBehaviour(FastHttpUser):
    """A chat user: sends messages (plain and streamed) and pages through history."""

    abstract = True
    wait_time = between(0.5, 1.5)
    network_timeout = 30.0
    connection_timeout = 10.0
    pool: ClassVar[str] = "ordinary"

    def on_start(self) -> None:
        self.rng = next_rng(int(getattr(self.environment.runner, "worker_index", 0) or 0))
        self.user_ids = pools().get(self.pool)
        self.sent = 0

    def pick_user(self) -> str:
        return self.rng.choice(self.user_ids)

    def message(self, user_id: str) -> str:
        self.sent += 1
        return f"message {self.sent} for {user_id}: how much memory does this request cost?"

    @task(3)
    def chat(self) -> None:
        user_id = self.pick_user()
        body = {"user_id": user_id, "message": self.message(user_id), "stream": False}
        LEDGER.attempt(user_id)
        with self.client.post("/chat", json=body, name=CHAT, catch_response=True) as resp:
            if 200 <= resp.status_code < 300:
                LEDGER.ack(user_id)

    @task(3)
    def chat_stream(self) -> None:
        user_id = self.pick_user()
        body = {"user_id": user_id, "message": self.message(user_id), "stream": True}
        LEDGER.attempt(user_id)
        started = time.perf_counter()
        with self.client.post(
            "/chat", json=body, name=CHAT_STREAM, stream=True, catch_response=True
        ) as resp:
            if not 200 <= resp.status_code < 300:
                return  # the context manager reports the bad status as a failure
            try:
                outcome = read_stream(sse_lines(resp), started)
            except Exception as exc:  # connection dropped mid-stream
                resp.request_meta["response_time"] = (time.perf_counter() - started) * 1000
                resp.failure(f"stream broken: {exc!r}")
                return
            # The stream's latency is the whole exchange, not just the headers.
            resp.request_meta["response_time"] = (time.perf_counter() - started) * 1000
            if outcome.first_token_s is not None:
                self.environment.events.request.fire(
                    request_type=TTFT,
                    name=CHAT_STREAM,
                    response_time=outcome.first_token_s * 1000,
                    response_length=0,
                    exception=None,
                    context={},
                )
            if outcome.done:
                LEDGER.ack(user_id)
                resp.success()
            else:
                resp.failure("stream ended before its done event")

    @task(2)
    def history(self) -> None:
        user_id = self.pick_user()
        cursor: str | None = None
        for _page in range(self.rng.randint(1, MAX_HISTORY_PAGES)):
            url = f"/history/{user_id}?limit={HISTORY_PAGE}"
            if cursor:
                url += f"&before={cursor}"
            with self.client.get(url, name=HISTORY, catch_response=True) as resp:
                if not 200 <= resp.status_code < 300:
                    return
                try:
                    cursor = resp.json().get("next_cursor")
                except ValueError as exc:
                    resp.failure(f"not JSON: {exc}")
                    return
            if not cursor:
                return


class ChatUser(ChatBehaviour):
    """Ordinary users: short and medium histories."""

    abstract = False
    weight = 4
    pool = "ordinary"


class WhaleUser(ChatBehaviour):
    """Users with the longest histories: the naive design's worst case."""

    abstract = False
    weight = 1
    pool = "whales"
