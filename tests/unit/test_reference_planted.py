"""reference_app.planted: the test-only regression knobs, and their travel through Settings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reference_app import planted
from reference_app.settings import (
    ENV_PLANT_LEAK,
    ENV_PLANT_TRANSIENT,
    Settings,
    SettingsError,
)

EMPTY = sys.getsizeof(b"")


@pytest.mark.parametrize(
    ("text", "plan"),
    [
        ("", {}),
        ("chat:1024", {"chat": 1024}),
        ("chat:1024,history:256", {"chat": 1024, "history": 256}),
        (" chat_stream:8192 , ", {"chat_stream": 8192}),
        ("chat:100,chat:200", {"chat": 200}),  # the last one wins
        (f"history:{EMPTY + 1}", {"history": EMPTY + 1}),
    ],
)
def test_parse_plan(text: str, plan: dict[str, int]) -> None:
    assert planted.parse_plan(text, "X") == plan


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("chats:1024", "unknown endpoint 'chats'"),
        ("1024", "unknown endpoint '1024'"),
        ("chat", "is not ENDPOINT:BYTES"),
        ("chat:", "is not ENDPOINT:BYTES"),
        ("chat:1KiB", "is not ENDPOINT:BYTES"),
        ("chat:1.5", "is not ENDPOINT:BYTES"),
        (f"chat:{EMPTY}", "BYTES must be more than"),
        ("chat:0", "BYTES must be more than"),
        ("chat:-256", "BYTES must be more than"),
        ("chat:1024,history:x", "'history:x' is not ENDPOINT:BYTES"),
    ],
)
def test_parse_plan_rejects(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        planted.parse_plan(text, "REFAPP_PLANT_LEAK")
    assert str(info.value).startswith("REFAPP_PLANT_LEAK: ")


@pytest.mark.parametrize("nbytes", [EMPTY + 1, 256, 1024, 8192, 1_000_003])
def test_block_has_exactly_the_size_asked(nbytes: int) -> None:
    assert sys.getsizeof(planted.block(nbytes)) == nbytes


def test_blocks_are_fresh_objects() -> None:
    assert planted.block(1024) is not planted.block(1024)


def test_on_request_leaks_only_for_planned_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    kept: list[bytes] = []
    monkeypatch.setattr(planted, "_KEPT_FOR_EVER", kept)
    leak = {"chat": 1024}
    assert planted.on_request("history", leak, {}) is None
    assert planted.on_request("chat_stream", leak, {}) is None
    assert kept == []
    for _ in range(3):
        assert planted.on_request("chat", leak, {}) is None
    assert [sys.getsizeof(b) for b in kept] == [1024] * 3
    assert len({id(b) for b in kept}) == 3  # three objects kept, not one


def test_on_request_transient_is_returned_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    kept: list[bytes] = []
    monkeypatch.setattr(planted, "_KEPT_FOR_EVER", kept)
    held = planted.on_request("chat", {}, {"chat": 4096})
    assert held is not None and sys.getsizeof(held) == 4096
    assert kept == []
    assert planted.on_request("history", {}, {"chat": 4096}) is None
    both = planted.on_request("history", {"history": 512}, {"history": 2048})
    assert both is not None and sys.getsizeof(both) == 2048
    assert [sys.getsizeof(b) for b in kept] == [512]


# --- Settings ---------------------------------------------------------------------------------


def _settings(tmp_path: Path, **plants: str) -> Settings:
    return Settings(design="optimized", data_dir=tmp_path, upstream_url="http://x", **plants)


@pytest.mark.parametrize(
    ("field", "env_name"),
    [("plant_leak", ENV_PLANT_LEAK), ("plant_transient", ENV_PLANT_TRANSIENT)],
)
def test_settings_reject_a_bad_plan_naming_the_variable(
    tmp_path: Path, field: str, env_name: str
) -> None:
    with pytest.raises(SettingsError, match=f"^{env_name}: unknown endpoint 'nope'"):
        _settings(tmp_path, **{field: "nope:1024"})
    env = {**_settings(tmp_path).to_env(), env_name: "chat:lots"}
    with pytest.raises(SettingsError, match=f"^{env_name}: 'chat:lots' is not ENDPOINT:BYTES"):
        Settings.from_env(env)
    with pytest.raises(SettingsError, match=env_name):
        Settings.for_serve("optimized", tmp_path, "http://x", env={env_name: "chat:1"})


def test_settings_plans_round_trip_through_the_environment(tmp_path: Path) -> None:
    settings = _settings(tmp_path, plant_leak="chat:1024,history:256", plant_transient="chat:4096")
    env = settings.to_env()
    assert env[ENV_PLANT_LEAK] == "chat:1024,history:256"
    assert env[ENV_PLANT_TRANSIENT] == "chat:4096"
    again = Settings.from_env(env)
    assert again == settings
    assert again.leak_plan == {"chat": 1024, "history": 256}
    assert again.transient_plan == {"chat": 4096}


def test_settings_plant_nothing_by_default(tmp_path: Path) -> None:
    settings = Settings.for_serve("optimized", tmp_path, "http://x", env={})
    assert (settings.leak_plan, settings.transient_plan) == ({}, {})
    env = {ENV_PLANT_LEAK: "chat_stream:300", ENV_PLANT_TRANSIENT: "history:700"}
    served = Settings.for_serve("optimized", tmp_path, "http://x", env=env)
    assert (served.leak_plan, served.transient_plan) == ({"chat_stream": 300}, {"history": 700})
