"""`python -m reference_app` argument handling and the settings that travel to workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_app.cli import build_parser, main
from reference_app.settings import Settings, SettingsError


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--design", "naive", "--port", "1", "--data-dir", "d", "--upstream", "u", "--x"],
        ["serve", "--design", "mongo", "--port", "1", "--data-dir", "d", "--upstream", "u"],
        ["serve", "--design", "naive", "--port", "1", "--data-dir", "d"],
        ["serve", "--design", "naive", "--port", "1", "--data-dir", "d", "--upstream", "u",
         "--workers", "0"],
        ["upstream", "--port", "70000"],
        ["upstream", "--port", "1", "--tokens-per-s", "-1"],
        ["upstream", "--port", "1", "--reply-tokens", "many"],
        ["seed", "--design", "naive"],
        ["seed", "--design", "naive", "--data-dir", "d", "--users", "-2"],
        ["frobnicate"],
    ],
)  # fmt: skip
def test_bad_arguments_are_a_one_line_error_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "error:" in err


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "serve" in capsys.readouterr().out


def test_documented_flags_and_defaults() -> None:
    parser = build_parser()
    serve = parser.parse_args(
        ["serve", "--design", "optimized", "--port", "8000", "--data-dir", "d",
         "--upstream", "http://127.0.0.1:9000", "--workers", "2", "--probe"]
    )  # fmt: skip
    assert (serve.host, serve.workers, serve.probe) == ("127.0.0.1", 2, True)
    upstream = parser.parse_args(["upstream", "--port", "9000"])
    assert (upstream.host, upstream.first_token_ms, upstream.tokens_per_s) == (
        "127.0.0.1",
        50.0,
        200.0,
    )
    assert upstream.reply_tokens == 120
    seed = parser.parse_args(["seed", "--design", "naive", "--data-dir", "d"])
    assert (seed.users, seed.whales, seed.whale_history, seed.seed) == (200, 5, 5000, 1)


def test_seed_command_writes_store_and_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["seed", "--design", "optimized", "--data-dir", str(tmp_path), "--users", "3"]
    assert main([*argv, "--whales", "1", "--whale-history", "10"]) == 0
    assert (tmp_path / "manifest.json").is_file()
    assert (tmp_path / "chat.sqlite3").is_file()
    assert "seeded optimized: 4 users" in capsys.readouterr().out


def test_settings_round_trip_through_the_environment(tmp_path: Path) -> None:
    settings = Settings(
        design="optimized",
        data_dir=tmp_path,
        upstream_url="http://127.0.0.1:1",
        probe=True,
        context_window=7,
        max_message_bytes=100,
        max_body_bytes=1000,
        upstream_timeout_s=2.5,
    )
    assert Settings.from_env(settings.to_env()) == settings


def test_context_window_comes_from_the_environment(tmp_path: Path) -> None:
    env = {"REFAPP_CONTEXT_WINDOW": "5"}
    assert Settings.for_serve("naive", tmp_path, "http://x", env=env).context_window == 5
    assert Settings.for_serve("naive", tmp_path, "http://x", env={}).context_window == 20


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"REFAPP_DESIGN": "mongo", "REFAPP_DATA_DIR": "d", "REFAPP_UPSTREAM": "u"},
        {"REFAPP_DESIGN": "naive", "REFAPP_DATA_DIR": "d", "REFAPP_UPSTREAM": "u",
         "REFAPP_CONTEXT_WINDOW": "lots"},
        {"REFAPP_DESIGN": "naive", "REFAPP_DATA_DIR": "d", "REFAPP_UPSTREAM": "u",
         "REFAPP_CONTEXT_WINDOW": "0"},
    ],
)  # fmt: skip
def test_bad_environment_is_a_settings_error(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(env)
