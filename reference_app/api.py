"""The HTTP API both designs serve: `create_app(design, settings)`.

Error contract (the same on both designs; every error body is `{"error": slug, "detail": ...}`):

- 400 `invalid_user_id`: a user_id (path or body) outside ^[A-Za-z0-9_-]{1,64}$.
- 422 for everything else a client can get wrong in a request it was allowed to send:
  malformed JSON, wrong types, missing fields (`invalid_request`), an empty, blank, over-long
  (> max_message_bytes of UTF-8) or non-encodable message (`invalid_message`), limit outside
  1..200 (`invalid_request`), a cursor that is not a message id (`invalid_cursor`).
- 413 `body_too_large`: a body over max_body_bytes, refused before it is read (limits.py).
- 404 `unknown_user` on GET /history for a user without messages; `not_found` for other paths.
- 502 `upstream_failed`: the upstream failed, timed out or answered garbage. Nothing is
  persisted: the user message and the reply are written together, after the reply is complete.
  A stream that fails after its first token has already been sent ends with an `event: error`
  (same body) instead of `event: done`, and again nothing is persisted.
- 500 `internal_error` only as a last resort (logged); no input is meant to reach it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from reference_app import planted
from reference_app.corpus import history_for
from reference_app.designs import open_llm, open_store
from reference_app.limits import BodySizeLimit
from reference_app.model import LLMClient, Message, Store, UpstreamError, valid_user_id
from reference_app.settings import Settings

log = logging.getLogger("reference_app")

MAX_PAGE = 200
MAX_PROBE_HISTORY = 100_000
_CURSOR_RE = re.compile(r"[1-9][0-9]{0,17}")  # a positive id that fits SQLite's int64

_ERROR_SLUGS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    422: "invalid_request",
}


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail


class ChatRequest(BaseModel):
    model_config = ConfigDict(strict=True)

    user_id: str
    message: str
    stream: bool = False


class ProbeHistory(BaseModel):
    model_config = ConfigDict(strict=True)

    length: int = Field(ge=0, le=MAX_PROBE_HISTORY)


class _Runtime:
    """What the lifespan opens and closes; set before the first request is served."""

    store: Store
    llm: LLMClient


def create_app(
    design: str,
    settings: Settings,
    *,
    upstream_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The service for `design`. `upstream_transport` lets tests reach an in-process upstream."""
    if settings.design != design:
        settings = replace(settings, design=design)
    runtime = _Runtime()
    leak, transient = settings.leak_plan, settings.transient_plan

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.store = open_store(settings)
        try:
            runtime.llm = open_llm(settings, upstream_transport)
            try:
                yield
            finally:
                await runtime.llm.aclose()
        finally:
            await runtime.store.close()

    app = FastAPI(
        title=f"reference chat service ({design})",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    _add_error_handlers(app)

    @app.get("/healthz")
    async def healthz() -> Response:
        return JSONResponse({"status": "ok", "design": design})

    @app.post("/chat")
    async def chat(body: ChatRequest) -> Response:
        _check_user_id(body.user_id)
        _check_message(body.message, settings.max_message_bytes)
        held = planted.on_request("chat_stream" if body.stream else "chat", leak, transient)
        context = await runtime.store.context(body.user_id)
        messages = _upstream_messages(context, body.message)
        if not body.stream:
            try:
                reply = await runtime.llm.complete(messages)
            except UpstreamError as exc:
                raise _upstream_error(exc) from exc
            history_len = await runtime.store.append_exchange(body.user_id, body.message, reply)
            response = JSONResponse({"reply": reply, "history_len": history_len})
            del held  # a planted transient (reference_app.planted) lives until the answer is built
            return response

        tokens = runtime.llm.stream(messages)
        try:
            # Wait for the first token before answering, so a failure before it is still a 502.
            first: str | None = await anext(tokens)
        except StopAsyncIteration:
            first = None
        except UpstreamError as exc:
            await tokens.aclose()
            raise _upstream_error(exc) from exc
        return StreamingResponse(
            _exchange_events(runtime.store, body.user_id, body.message, first, tokens),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    @app.get("/history/{user_id}")
    async def history(
        user_id: str,
        limit: int = Query(50, ge=1, le=MAX_PAGE),
        before: str | None = None,
    ) -> Response:
        _check_user_id(user_id)
        cursor = _parse_cursor(before)
        held = planted.on_request("history", leak, transient)
        page = await runtime.store.page(user_id, limit, cursor)
        if page is None:
            raise ApiError(404, "unknown_user", f"no history for user {user_id!r}")
        response = JSONResponse(
            {
                "user_id": user_id,
                "messages": [
                    {"id": m.id, "role": m.role, "content": m.content} for m in page.messages
                ],
                "next_cursor": None if page.next_cursor is None else str(page.next_cursor),
                "history_len": page.history_len,
            }
        )
        del held  # a planted transient (reference_app.planted) lives until the answer is built
        return response

    @app.delete("/history/{user_id}")
    async def delete_history(user_id: str) -> Response:
        _check_user_id(user_id)
        return JSONResponse({"deleted": await runtime.store.delete(user_id)})

    if settings.probe:

        @app.put("/__probe/history/{user_id}")
        async def probe_history(user_id: str, body: ProbeHistory) -> Response:
            _check_user_id(user_id)
            messages = history_for(user_id, body.length)
            length = await runtime.store.replace_history(user_id, messages)
            return JSONResponse({"user_id": user_id, "history_len": length})

    return app


def _check_user_id(user_id: str) -> None:
    if not valid_user_id(user_id):
        raise ApiError(400, "invalid_user_id", "user_id must match ^[A-Za-z0-9_-]{1,64}$")


def _check_message(message: str, max_bytes: int) -> None:
    if not message.strip():
        raise ApiError(422, "invalid_message", "message is empty")
    try:
        size = len(message.encode("utf-8"))
    except UnicodeEncodeError:
        raise ApiError(422, "invalid_message", "message is not valid UTF-8 text") from None
    if size > max_bytes:
        raise ApiError(422, "invalid_message", f"message exceeds {max_bytes} bytes of UTF-8")


def _parse_cursor(before: str | None) -> int | None:
    if before is None:
        return None
    if not _CURSOR_RE.fullmatch(before):
        raise ApiError(422, "invalid_cursor", "before must be a next_cursor value")
    return int(before)


def _upstream_messages(context: list[Message], message: str) -> list[dict[str, str]]:
    messages = [{"role": m.role, "content": m.content} for m in context]
    messages.append({"role": "user", "content": message})
    return messages


def _upstream_error(exc: UpstreamError) -> ApiError:
    return ApiError(502, "upstream_failed", str(exc))


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


async def _exchange_events(
    store: Store,
    user_id: str,
    message: str,
    first: str | None,
    tokens: AsyncGenerator[str, None],
) -> AsyncIterator[bytes]:
    parts: list[str] = []
    async with aclosing(tokens):
        try:
            if first is not None:
                parts.append(first)
                yield _event("token", {"token": first})
            async for token in tokens:
                parts.append(token)
                yield _event("token", {"token": token})
        except UpstreamError as exc:
            yield _event("error", {"error": "upstream_failed", "detail": str(exc)})
            return
    try:
        history_len = await store.append_exchange(user_id, message, "".join(parts))
    except Exception:
        log.exception("storing a streamed exchange failed")
        yield _event("error", {"error": "internal_error", "detail": "could not store the reply"})
        return
    yield _event("done", {"history_len": history_len})


def _error(status: int, error: str, detail: Any) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc.status, exc.error, exc.detail)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        detail = [
            {"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", ""))}
            for err in exc.errors()
        ]
        return _error(422, "invalid_request", detail)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        # FastAPI's own 400 means a body it could not parse (JSON nested too deep, for one):
        # the same class of client error as malformed JSON, so the same 422.
        if status == 400:
            status = 422
        slug = _ERROR_SLUGS.get(status, "http_error")
        return JSONResponse(
            {"error": slug, "detail": exc.detail},
            status_code=status,
            headers=dict(exc.headers) if exc.headers else None,
        )

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal_error", "unexpected server error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)
