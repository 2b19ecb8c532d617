"""The two designs, each a store and an LLM client strategy behind the shared API."""

from __future__ import annotations

import httpx

from reference_app.model import LLMClient, Store
from reference_app.naive.llm import NaiveLLM
from reference_app.naive.store import NaiveStore
from reference_app.optimized.llm import PooledLLM
from reference_app.optimized.store import OptimizedStore
from reference_app.settings import Settings


def open_store(settings: Settings) -> Store:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.design == "naive":
        return NaiveStore(settings.data_dir)
    return OptimizedStore(settings.data_dir, context_window=settings.context_window)


def open_llm(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> LLMClient:
    if settings.design == "naive":
        return NaiveLLM(settings.upstream_url, settings.upstream_timeout_s, transport)
    return PooledLLM(settings.upstream_url, settings.upstream_timeout_s, transport)
