"""The HTTP contract, in process, on both designs: every endpoint and every error case.

The app is called through httpx.ASGITransport with its lifespan entered around the client (so
the store and the LLM client are opened and closed as in a server); the LLM emulator is reached
in process the same way, with no latency.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.stack.processes import free_port
from reference_app.api import create_app
from reference_app.corpus import history_for
from reference_app.settings import Settings
from reference_app.upstream import UpstreamConfig, create_upstream_app, reply_tokens

pytestmark = pytest.mark.anyio
DESIGNS = ("naive", "optimized")
REPLY_TOKENS = 12
MAX_MESSAGE = 8 * 1024
JSON = {"content-type": "application/json"}


@dataclass
class Api:
    design: str
    client: httpx.AsyncClient

    async def chat(self, user_id: str, message: str, stream: bool = False) -> httpx.Response:
        # json.dumps escapes to ASCII, so even a lone surrogate can be sent as an escape.
        body = json.dumps({"user_id": user_id, "message": message, "stream": stream})
        return await self.client.post("/chat", content=body.encode(), headers=JSON)

    async def history(self, user_id: str, **params: Any) -> httpx.Response:
        return await self.client.get(f"/history/{user_id}", params=params)

    async def history_len(self, user_id: str) -> int:
        response = await self.history(user_id, limit=1)
        if response.status_code == 404:
            return 0
        return int(response.json()["history_len"])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def running(
    design: str, data_dir: Path, probe: bool = False, upstream_url: str = "http://upstream"
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(design=design, data_dir=data_dir, upstream_url=upstream_url, probe=probe)
    transport = None
    if upstream_url == "http://upstream":
        upstream = create_upstream_app(UpstreamConfig(0, 0, REPLY_TOKENS))
        transport = httpx.ASGITransport(app=upstream)
    app = create_app(design, settings, upstream_transport=transport)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client,
    ):
        yield client


@pytest.fixture(params=DESIGNS)
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    async with running(request.param, tmp_path / "data") as client:
        yield Api(request.param, client)


def events(body: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def expected_reply(*messages: tuple[str, str]) -> str:
    return "".join(reply_tokens([{"role": r, "content": c} for r, c in messages], REPLY_TOKENS))


def assert_error(response: httpx.Response, status: int, error: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}
    if error is not None:
        assert body["error"] == error


# --- endpoints ---------------------------------------------------------------------------------


async def test_healthz(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "design": api.design}


async def test_chat_replies_and_persists_the_exchange(api: Api) -> None:
    first = await api.chat("alice", "hello")
    assert first.status_code == 200
    assert first.json() == {"reply": expected_reply(("user", "hello")), "history_len": 2}
    second = await api.chat("alice", "more")
    assert second.json()["history_len"] == 4
    reply = second.json()["reply"]
    assert reply == expected_reply(
        ("user", "hello"), ("assistant", first.json()["reply"]), ("user", "more")
    )
    page = (await api.history("alice")).json()
    assert [(m["role"], m["content"]) for m in page["messages"]] == [
        ("assistant", reply),
        ("user", "more"),
        ("assistant", first.json()["reply"]),
        ("user", "hello"),
    ]
    assert page["user_id"] == "alice"
    assert page["history_len"] == 4
    assert page["next_cursor"] is None
    assert set(page["messages"][0]) == {"id", "role", "content"}


async def test_stream_sends_tokens_then_done_and_persists(api: Api) -> None:
    response = await api.chat("bob", "tell me", stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    received = events(response.text)
    names = [name for name, _ in received]
    assert names[-1] == "done"
    assert received[-1][1] == {"history_len": 2}
    tokens = [data["token"] for name, data in received if name == "token"]
    reply = expected_reply(("user", "tell me"))
    assert "".join(tokens) == reply
    # The naive design buffers the whole reply and sends it as one event at the end.
    assert len(tokens) == (1 if api.design == "naive" else REPLY_TOKENS)
    assert (await api.history("bob", limit=1)).json()["messages"][0]["content"] == reply


async def test_history_pages_by_cursor(api: Api) -> None:
    for i in range(7):
        assert (await api.chat("carol", f"message {i}")).status_code == 200
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor is not None:
            params["before"] = cursor
        page = (await api.history("carol", **params)).json()
        assert page["history_len"] == 14
        seen.extend(page["messages"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
    assert len(seen) == 14
    assert [m["content"] for m in seen[1::2]] == [f"message {i}" for i in range(6, -1, -1)]
    assert len((await api.history("carol")).json()["messages"]) == 14  # default limit 50
    assert len((await api.history("carol", limit=200)).json()["messages"]) == 14


async def test_delete(api: Api) -> None:
    await api.chat("dave", "hi")
    await api.chat("dave", "again")
    assert (await api.client.delete("/history/dave")).json() == {"deleted": 4}
    assert_error(await api.history("dave"), 404, "unknown_user")
    assert (await api.client.delete("/history/dave")).json() == {"deleted": 0}
    assert (await api.chat("dave", "back")).json()["history_len"] == 2


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("user_id", ["", "a b", "x" * 65, "émile", "a/b", "a.b", "a;b"])
async def test_invalid_user_id_in_body_is_400(api: Api, user_id: str) -> None:
    assert_error(await api.chat(user_id, "hello"), 400, "invalid_user_id")


@pytest.mark.parametrize("path", ["a%20b", "x" * 65, "%C3%A9", "a.b", "a%2Fb"])
async def test_invalid_user_id_in_path_is_400(api: Api, path: str) -> None:
    for response in (
        await api.client.get(f"/history/{path}"),
        await api.client.delete(f"/history/{path}"),
    ):
        assert response.status_code in (400, 404), response.text
        assert response.json()["error"] in ("invalid_user_id", "not_found")
    assert_error(await api.client.get(f"/history/{path}"), *_path_error(path))


def _path_error(path: str) -> tuple[int, str]:
    # An encoded slash is a different route, not a user id.
    return (404, "not_found") if "%2F" in path else (400, "invalid_user_id")


async def test_longest_valid_user_id_is_accepted(api: Api) -> None:
    user_id = "A-z_0" * 12 + "abcd"
    assert len(user_id) == 64
    assert (await api.chat(user_id, "hi")).status_code == 200
    assert (await api.history(user_id)).status_code == 200


@pytest.mark.parametrize(
    "message",
    ["", "   \n\t", "x" * (MAX_MESSAGE + 1), "€" * (MAX_MESSAGE // 3 + 1), "lone \ud800 surrogate"],
    ids=["empty", "blank", "too-long", "too-long-utf8", "surrogate"],
)
async def test_bad_message_is_422(api: Api, message: str) -> None:
    assert_error(await api.chat("erin", message), 422, "invalid_message")
    assert await api.history_len("erin") == 0


async def test_message_at_the_limit_is_accepted(api: Api) -> None:
    assert (await api.chat("erin", "x" * MAX_MESSAGE)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"user_id": "u", "message": ',
        b"not json at all",
        b"[]",
        b'"just a string"',
        b"{}",
        b'{"user_id": "u"}',
        b'{"message": "hi"}',
        b'{"user_id": 5, "message": "hi"}',
        b'{"user_id": "u", "message": 5}',
        b'{"user_id": "u", "message": ["hi"]}',
        b'{"user_id": "u", "message": null}',
        b'{"user_id": "u", "message": "hi", "stream": "yes"}',
        b'{"user_id": "u", "message": "hi", "stream": 1}',
        b'{"user_id": "u", "message": "hi", "stream": true, "x": ' + b"[" * 30_000,
        b"[" * 60_000,
        b'{"user_id": "u", "message": "\xff\xfe"}',
        b'{"user_id": "u", "message": NaN}',
    ],
)
async def test_malformed_or_mistyped_body_is_422(api: Api, body: bytes) -> None:
    response = await api.client.post(
        "/chat", content=body, headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "invalid_request")


async def test_unknown_user_history_is_404(api: Api) -> None:
    assert_error(await api.history("nobody"), 404, "unknown_user")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"limit": -1},
        {"limit": "abc"},
        {"limit": "1.5"},
        {"before": "abc"},
        {"before": "0"},
        {"before": "-3"},
        {"before": "1e3"},
        {"before": ""},
        {"before": "9" * 30},
    ],
)
async def test_bad_query_is_422(api: Api, params: dict[str, Any]) -> None:
    await api.chat("frank", "hi")
    response = await api.history("frank", **params)
    assert response.status_code == 422, response.text
    assert response.json()["error"] in ("invalid_request", "invalid_cursor")


async def test_upstream_failure_is_502_and_nothing_is_persisted(api: Api) -> None:
    await api.chat("gina", "hi")
    for stream in (False, True):
        assert_error(
            await api.chat("gina", "boom __upstream_fail__", stream), 502, "upstream_failed"
        )
    assert await api.history_len("gina") == 2
    assert_error(await api.chat("newbie", "__upstream_fail__"), 502, "upstream_failed")
    assert_error(await api.history("newbie"), 404, "unknown_user")


async def test_upstream_dropping_a_stream_persists_nothing(api: Api) -> None:
    await api.chat("hank", "hi")
    response = await api.chat("hank", "__upstream_abort__", stream=True)
    if api.design == "naive":
        # The naive design asks for the whole reply, which the upstream refuses: a plain 502.
        assert_error(response, 502, "upstream_failed")
    else:
        # Tokens were already on their way: the stream ends with an error event, not `done`.
        assert response.status_code == 200
        received = events(response.text)
        assert received[-1][0] == "error"
        assert received[-1][1]["error"] == "upstream_failed"
        assert [name for name, _ in received[:-1]] == ["token"] * 3
    assert await api.history_len("hank") == 2


async def test_unreachable_upstream_is_502(tmp_path: Path) -> None:
    # A port that was just free: nothing listens there, so the connection is refused.
    nowhere = f"http://127.0.0.1:{free_port()}"
    for design in DESIGNS:
        async with running(design, tmp_path / design, upstream_url=nowhere) as client:
            for stream in (False, True):
                response = await client.post(
                    "/chat", json={"user_id": "u", "message": "hi", "stream": stream}
                )
                assert_error(response, 502, "upstream_failed")
            assert_error(await client.get("/history/u"), 404, "unknown_user")


async def test_body_over_the_limit_is_413(api: Api) -> None:
    body = json.dumps({"user_id": "ivy", "message": "x" * 70_000}).encode()
    response = await api.client.post(
        "/chat", content=body, headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "body_too_large")
    assert await api.history_len("ivy") == 0


async def test_unknown_route_and_method_are_json(api: Api) -> None:
    assert_error(await api.client.get("/nope"), 404, "not_found")
    assert_error(await api.client.put("/chat", json={}), 405, "method_not_allowed")


async def test_probe_route_exists_only_in_probe_mode(api: Api) -> None:
    response = await api.client.put("/__probe/history/u", json={"length": 3})
    assert response.status_code in (404, 405)


@pytest.mark.parametrize("design", DESIGNS)
async def test_probe_history_reset(design: str, tmp_path: Path) -> None:
    async with running(design, tmp_path, probe=True) as client:
        await client.post("/chat", json={"user_id": "whale", "message": "hi"})
        response = await client.put("/__probe/history/whale", json={"length": 7})
        assert response.json() == {"user_id": "whale", "history_len": 7}
        page = (await client.get("/history/whale")).json()
        assert page["history_len"] == 7
        assert [(m["role"], m["content"]) for m in reversed(page["messages"])] == history_for(
            "whale", 7
        )
        assert (await client.put("/__probe/history/whale", json={"length": 0})).status_code == 200
        assert (await client.get("/history/whale")).status_code == 404
        for bad in ({"length": -1}, {"length": "3"}, {}, {"length": 10**9}):
            assert (await client.put("/__probe/history/whale", json=bad)).status_code == 422
        assert (await client.put("/__probe/history/a b", json={"length": 1})).status_code == 400


# --- the designs cannot drift apart -----------------------------------------------------------


async def transcript(api: Api) -> list[tuple[int, Any]]:
    """A fixed session; ids and cursors are design-specific and left out."""
    steps: list[httpx.Response] = [
        await api.chat("u1", "hello"),
        await api.chat("u1", "again", stream=True),
        await api.chat("u2", "other user"),
        await api.history("u1", limit=3),
        await api.history("u1", limit=3, before="999999"),
        await api.chat("u1", "__upstream_fail__"),
        await api.history("u2"),
        await api.client.delete("/history/u2"),
        await api.history("u2"),
        await api.chat("bad id", "x"),
        await api.chat("u1", ""),
    ]
    out: list[tuple[int, Any]] = []
    for response in steps:
        if response.headers["content-type"].startswith("text/event-stream"):
            received = events(response.text)
            joined = "".join(d["token"] for n, d in received if n == "token")
            out.append((response.status_code, (joined, received[-1])))
            continue
        body = response.json()
        if "messages" in body:
            body["messages"] = [(m["role"], m["content"]) for m in body["messages"]]
            body["next_cursor"] = body["next_cursor"] is not None
        if isinstance(body.get("detail"), str) and body.get("error") == "upstream_failed":
            body["detail"] = "..."
        out.append((response.status_code, body))
    return out


async def test_both_designs_answer_a_session_identically(tmp_path: Path) -> None:
    transcripts = {}
    for design in DESIGNS:
        async with running(design, tmp_path / design) as client:
            transcripts[design] = await transcript(Api(design, client))
    assert transcripts["naive"] == transcripts["optimized"]
