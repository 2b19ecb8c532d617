"""Hostile input against real servers: no 5xx, the server stays up, nothing is written outside
the data directory, and histories that existed are unchanged by the rejected requests.

Hypothesis generates the requests (bounded: HOSTILE_EXAMPLES per design, derandomized so a
failure reproduces; 10,000 in CI, 1,000 locally); each one goes over a real socket to a
real uvicorn process.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.config import SeedConfig, UpstreamConfig
from harness.config.target_spec import reference_target
from harness.stack.targets import running_stack, seed_store

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

# CI (CI=true) sends 10,000 per design; a local `make test-e2e` 1,000.
# HOSTILE_EXAMPLES overrides both.
CI_EXAMPLES, LOCAL_EXAMPLES = 10_000, 1_000


def hostile_examples(env: Mapping[str, str]) -> int:
    if env.get("HOSTILE_EXAMPLES"):
        return int(env["HOSTILE_EXAMPLES"])
    ci = env.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return CI_EXAMPLES if ci else LOCAL_EXAMPLES


HOSTILE_EXAMPLES = hostile_examples(os.environ)
DESIGNS = ("naive", "optimized")
SEED = SeedConfig(users=8, whales=1, whale_history=200, seed=7)
FAST_UPSTREAM = UpstreamConfig(first_token_ms=0, tokens_per_s=0, reply_tokens=8)

TRAVERSALS = [
    "../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "....//....//etc/passwd",
    "/etc/passwd",
    "..\\..\\windows\\win.ini",
    "chat_history.json",
    "chat.db",
    "user\x00-0001",
    "ユーザー",
    "a" * 65,
    "",
    " ",
    "user 0001",
    "user-0001;DROP TABLE messages",
]

odd_text = st.one_of(
    st.text(max_size=64),
    st.sampled_from(TRAVERSALS),
    st.text(alphabet=st.characters(min_codepoint=0xD800 - 5, max_codepoint=0x10FFFF), max_size=16),
)
json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40)
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def _is_seeded(user_id: object, seeded: set[str]) -> bool:
    return isinstance(user_id, str) and user_id in seeded


@st.composite
def hostile_requests(draw: st.DrawFn, seeded: frozenset[str]) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            ["raw_body", "json_body", "bad_types", "huge", "history", "delete", "empty", "ctype"]
        )
    )
    if kind == "raw_body":
        body = draw(st.binary(max_size=512))
        return {"method": "POST", "path": "/chat", "content": body}
    if kind == "json_body":
        return {"method": "POST", "path": "/chat", "content": json.dumps(draw(json_value)).encode()}
    if kind == "bad_types":
        user_id = draw(st.one_of(odd_text, json_value))
        message = draw(st.one_of(json_value, st.just(""), st.just("x" * 9000), st.just("   ")))
        payload = {"user_id": user_id, "message": message, "stream": draw(json_value)}
        if _is_seeded(user_id, set(seeded)):
            payload["user_id"] = "../../etc/passwd"
        return {"method": "POST", "path": "/chat", "content": json.dumps(payload).encode()}
    if kind == "huge":
        size = draw(st.sampled_from([70_000, 256 * 1024, 2 * 1024 * 1024]))
        return {"method": "POST", "path": "/chat", "content": b"{" + b" " * size + b"}"}
    if kind == "empty":
        return {"method": "POST", "path": "/chat", "content": b""}
    if kind == "ctype":
        body = json.dumps({"user_id": "fuzz-new", "message": 12}).encode()
        return {"method": "POST", "path": "/chat", "content": body, "ctype": "text/plain"}
    user_id = draw(odd_text)
    quoted = _path_segment(user_id, encode=draw(st.booleans()))
    if kind == "delete":
        if user_id in seeded or not quoted or quoted in seeded:
            quoted = "..%2f..%2fetc%2fpasswd"
        return {"method": "DELETE", "path": f"/history/{quoted}"}
    query = {
        "limit": draw(st.one_of(st.integers(), st.text(max_size=8))),
        "before": draw(st.one_of(st.integers(), st.text(max_size=12))),
    }
    target = draw(st.one_of(st.just(quoted), st.sampled_from(sorted(seeded))))
    return {"method": "GET", "path": f"/history/{target}", "params": query}


def _path_segment(text: str, encode: bool) -> str:
    """A path segment as a hostile client would send it; lone surrogates become the
    invalid UTF-8 bytes they stand for (%ED%A0%80), which a URL cannot carry otherwise."""
    raw = text.encode("utf-8", "surrogatepass")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        encode = True
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        encode = True  # a URL cannot carry control characters unencoded
    return urllib.parse.quote(raw, safe="") if encode else text


def _snapshot(client: httpx.Client, users: list[str]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for user in users:
        response = client.get(f"/history/{user}", params={"limit": 200})
        state[user] = response.json()
    return state


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@dataclass(frozen=True)
class LiveApp:
    design: str
    base_url: str
    sandbox: Path
    users: list[str]


@pytest.fixture
def live_apps(tmp_path: Path) -> Iterator[list[LiveApp]]:
    """Both designs, each seeded in its own sandbox, served side by side."""
    with contextlib.ExitStack() as stack:
        apps = []
        for design in DESIGNS:
            root = tmp_path / design
            sandbox = root / "sandbox"
            data_dir = sandbox / "a" / "b" / "data"
            manifest = seed_store(reference_target(design), data_dir, SEED, root / "logs")
            running = stack.enter_context(
                running_stack(reference_target(design), data_dir, root / "logs", FAST_UPSTREAM)
            )
            users = [u["user_id"] for u in manifest["users"]]
            apps.append(LiveApp(design, running.base_url, sandbox, users))
        yield apps


def test_hostile_requests_are_rejected_cleanly(live_apps: list[LiveApp]) -> None:
    """Each generated request goes to both designs: one Hypothesis run (half the generation
    time of one run per design), HOSTILE_EXAMPLES requests per design."""
    seeded = frozenset(user for app in live_apps for user in app.users)
    sent: dict[str, dict[int, int]] = {app.design: {} for app in live_apps}
    with contextlib.ExitStack() as stack:
        clients = {
            app.design: stack.enter_context(httpx.Client(base_url=app.base_url, timeout=30.0))
            for app in live_apps
        }
        before = {app.design: _snapshot(clients[app.design], app.users) for app in live_apps}
        files_before = {app.design: _tree(app.sandbox) for app in live_apps}

        @settings(
            max_examples=HOSTILE_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(req=hostile_requests(seeded))
        def send(req: dict[str, Any]) -> None:
            headers = {"content-type": req.get("ctype", "application/json")}
            for design, client in clients.items():
                response = client.request(
                    req["method"],
                    req["path"],
                    content=req.get("content"),
                    params=req.get("params"),
                    headers=headers,
                )
                code = response.status_code
                sent[design][code] = sent[design].get(code, 0) + 1
                assert code < 500, (design, req, code, response.text[:300])
                if code >= 400:
                    assert "error" in response.json(), (design, response.text[:300])

        send()

        for app in live_apps:
            client = clients[app.design]
            assert client.get("/healthz").status_code == 200, app.design
            assert _snapshot(client, app.users) == before[app.design], app.design
    for app in live_apps:
        total = sum(sent[app.design].values())
        assert total >= HOSTILE_EXAMPLES * 0.9, (app.design, sent[app.design])
        # Nothing new outside the data directory; inside it, only the store's own files.
        new_files = _tree(app.sandbox) - files_before[app.design]
        assert all(f.startswith("a/b/data/") for f in new_files), (app.design, new_files)
        print(f"hostile requests sent to {app.design}: {total} by status {sent[app.design]}")


def test_ci_sends_ten_thousand_hostile_requests_per_design() -> None:
    assert hostile_examples({"CI": "true"}) == 10_000
    assert hostile_examples({}) == 1_000
    assert hostile_examples({"CI": "false"}) == 1_000
    assert hostile_examples({"CI": "true", "HOSTILE_EXAMPLES": "50"}) == 50
