"""The upstream's OpenAI-style wire format, as both designs read it."""

from __future__ import annotations

from typing import Any

import httpx

from reference_app.model import UpstreamError

COMPLETIONS_PATH = "/v1/chat/completions"


def completion_text(response: httpx.Response) -> str:
    """The reply of a non-streamed completion; UpstreamError for anything else."""
    if response.status_code != 200:
        raise UpstreamError(f"upstream answered {response.status_code}")
    try:
        body: Any = response.json()
        content = body["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise UpstreamError("upstream answered an unreadable body") from exc
    if not isinstance(content, str):
        raise UpstreamError("upstream reply is not a string")
    return content
