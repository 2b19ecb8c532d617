"""loadtest.toml: resolution, validation (errors name the file and the key), overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_helpers import error_of, write

from harness import config
from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "loadtest-tiny.toml"

BASE = """
[run]
designs = ["naive", "optimized"]
profile = "quick"

[profiles.quick]
phases = ["load", "integrity"]
users = 20
duration_s = 60

[profiles.full]
users = 50
duration_s = 180
"""
DESIGNS = 'designs = ["naive", "optimized"]'
PHASES = 'phases = ["load", "integrity"]'


def test_repository_config_resolves() -> None:
    cfg = config.load(ROOT / "loadtest.toml")
    assert cfg.designs == ("naive", "optimized")
    assert cfg.profile.name == "quick"
    assert set(cfg.profile.phases) == {
        "ceiling",
        "load",
        "capacity",
        "profile",
        "probe",
        "integrity",
    }
    assert cfg.profile.duration_s <= 60  # the quick profile's time budget
    assert cfg.sample_interval_s == pytest.approx(0.1)
    full = config.load(ROOT / "loadtest.toml", {"profile": "full"})
    assert full.profile.name == "full"
    assert full.profile.duration_s > cfg.profile.duration_s


def test_tiny_test_config_resolves() -> None:
    cfg = config.load(TINY)
    assert cfg.profile.name == "tiny"
    assert cfg.profile.phases == ("load", "integrity")
    assert (cfg.seed.users, cfg.seed.whales, cfg.seed.whale_history) == (20, 2, 300)


def test_defaults_fill_missing_keys(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, BASE))
    assert cfg.profile.users == 20
    assert cfg.profile.scenario == "spike"  # not in the file: the dataclass default
    assert cfg.seed == config.SeedConfig()
    assert cfg.upstream == config.UpstreamConfig()
    assert cfg.out == "reports"


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("users = 20", "user = 20"))
    err = error_of(path)
    assert err.path == str(path)
    assert err.key == "profiles.quick.user"
    assert str(path) in str(err) and "profiles.quick.user" in str(err)
    assert "unknown key" in str(err)


def test_unknown_top_level_table(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, BASE + "\n[sampler]\ninterval_s = 1\n"))
    assert err.key == "sampler"


def test_typo_in_a_profile_not_chosen_is_caught(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, BASE.replace("users = 50", "userz = 50")))
    assert err.key == "profiles.full.userz"


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        ("users = 20", 'users = "20"', "profiles.quick.users", "integer"),
        ("users = 20", "users = true", "profiles.quick.users", "integer"),
        ("users = 20", "users = 0", "profiles.quick.users", ">= 1"),
        ("duration_s = 60", 'duration_s = "1m"', "profiles.quick.duration_s", "number"),
        ('profile = "quick"', "profile = 3", "run.profile", "string"),
        (DESIGNS, 'designs = "naive"', "run.designs", "list"),
        (DESIGNS, "designs = []", "run.designs", "at least one"),
        (DESIGNS, 'designs = ["naive", "naive"]', "run.designs", "twice"),
        (PHASES, 'phases = ["load", "lod"]', "profiles.quick.phases", "lod"),
        (PHASES, "phases = []", "profiles.quick.phases", "at least one"),
        (PHASES, 'phases = ["load", "load"]', "profiles.quick.phases", "twice"),
    ],
)  # fmt: skip
def test_bad_values_name_the_key(
    tmp_path: Path, old: str, new: str, key: str, problem: str
) -> None:
    assert old in BASE
    err = error_of(write(tmp_path, BASE.replace(old, new)))
    assert err.key == key
    assert problem in err.problem


def test_bad_scenario_and_sampling(tmp_path: Path) -> None:
    text = BASE.replace("users = 20", 'users = 20\nscenario = "storm"')
    assert error_of(write(tmp_path, text)).key == "profiles.quick.scenario"
    text = BASE + "\n[sampling]\ninterval_s = 0.001\n"
    assert error_of(write(tmp_path, text, "b.toml")).key == "sampling.interval_s"


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    cfg = config.load(
        path,
        {
            "users": 7,
            "spawn_rate": 2.5,
            "duration_s": 12.0,
            "designs": ["optimized"],
            "out": "elsewhere",
            "profile": None,  # None: not given on the command line
        },
    )
    assert cfg.profile.users == 7
    assert cfg.profile.spawn_rate == 2.5
    assert cfg.profile.duration_s == 12.0
    assert cfg.profile.phases == ("load", "integrity")  # untouched
    assert cfg.designs == ("optimized",)
    assert cfg.out == "elsewhere"


def test_profile_override_selects_and_then_overrides(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, BASE), {"profile": "full", "users": 3})
    assert cfg.profile.name == "full"
    assert cfg.profile.users == 3
    assert cfg.profile.duration_s == 180


def test_invalid_override_is_a_config_error(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, BASE), {"duration_s": 0.0})
    assert err.key == "profiles.quick.duration_s"
    assert "command line" in err.path


def test_unknown_profile(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    err = error_of(path, {"profile": "huge"})
    assert err.key == "--profile"
    assert "huge" in err.problem and "full, quick" in err.problem
    err = error_of(write(tmp_path, BASE.replace('profile = "quick"', 'profile = "x"'), "b.toml"))
    assert err.key == "run.profile"
    assert err.path.endswith("b.toml")


def test_duplicate_design_on_the_command_line(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, BASE), {"designs": ["naive", "naive"]})
    assert err.key == "--design"


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    err = error_of(tmp_path / "nope.toml")
    assert "file not found" in str(err) and "nope.toml" in str(err)
    err = error_of(write(tmp_path, "[run\n"))
    assert "not valid TOML" in str(err)


def test_to_json_round_trips_through_json(tmp_path: Path) -> None:
    import json

    cfg = config.load(write(tmp_path, BASE))
    data = json.loads(json.dumps(cfg.to_json()))
    assert data["profile"]["name"] == "quick"
    assert data["designs"] == ["naive", "optimized"]


# --- through the command line: a config error is one line and exit 2 -----------------------


def test_cli_config_error_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BASE.replace("users = 20", "user = 20"))
    out = tmp_path / "reports"
    assert main(["loadtest", "--config", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(path) in err and "profiles.quick.user" in err
    assert not out.exists()  # nothing started, no run directory


def test_cli_unknown_design_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports"
    code = main(["loadtest", "--config", str(TINY), "--design", "fancy", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--design" in err and "fancy" in err
    assert not out.exists()


def test_cli_bad_flag_value_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["loadtest", "--config", str(TINY), "--duration", "0"])
    assert info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# --- [gate]: noise_k and the leak run ---------------------------------------------------------


def test_gate_defaults(tmp_path: Path) -> None:
    gate = config.load(write(tmp_path, BASE)).gate
    assert gate == config.GateConfig()
    assert (gate.noise_k, gate.leak_requests, gate.default) == (4.0, 40, "+5% floor 1KiB")


@pytest.mark.parametrize(
    ("lines", "noise_k", "leak_requests"),
    [
        ("noise_k = 3\nleak_requests = 80", 3.0, 80),
        ("noise_k = 2.5", 2.5, 40),
        ("noise_k = 0", 0.0, 40),
        ("leak_requests = 0", 4.0, 0),  # no leak run
        (f"leak_requests = {config.MIN_LEAK_REQUESTS}", 4.0, config.MIN_LEAK_REQUESTS),
    ],
)
def test_gate_noise_k_and_leak_requests(
    tmp_path: Path, lines: str, noise_k: float, leak_requests: int
) -> None:
    gate = config.load(write(tmp_path, BASE + f"\n[gate]\n{lines}\n")).gate
    assert isinstance(gate.noise_k, float)
    assert (gate.noise_k, gate.leak_requests) == (noise_k, leak_requests)


@pytest.mark.parametrize(
    ("lines", "key", "problem"),
    [
        ("noise_k = -1", "gate.noise_k", ">= 0"),
        ('noise_k = "4"', "gate.noise_k", "number"),
        ("noise_k = true", "gate.noise_k", "number"),
        ("leak_requests = -1", "gate.leak_requests", ">= 0"),
        ("leak_requests = 40.0", "gate.leak_requests", "integer"),
        ("leak_requests = 1", "gate.leak_requests", "at least 8, got 1"),
        ("leak_requests = 7", "gate.leak_requests", "at least 8, got 7"),
        ("leak_request = 40", "gate.leak_request", "unknown key"),
    ],
)
def test_gate_bad_noise_k_and_leak_requests_name_the_key(
    tmp_path: Path, lines: str, key: str, problem: str
) -> None:
    path = write(tmp_path, BASE + f"\n[gate]\n{lines}\n")
    err = error_of(path)
    assert err.key == key
    assert err.path == str(path)
    assert problem in err.problem
    assert str(path) in str(err) and key in str(err)


def test_repository_gate_settings() -> None:
    gate = config.load(ROOT / "loadtest.toml").gate
    assert gate.leak_requests >= config.MIN_LEAK_REQUESTS
    assert gate.noise_k > 0


# --- the embedded default: the demo runs outside a clone ------------------------------------


def test_the_package_ships_the_repository_config() -> None:
    shipped = config.packaged_default()
    assert shipped.read_bytes() == (ROOT / "loadtest.toml").read_bytes()


def test_without_a_local_config_the_embedded_default_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = config.load()
    assert cfg.path == str(config.packaged_default())
    assert cfg.designs == ("naive", "optimized")
    assert [t.name for t in cfg.targets][:2] == ["naive", "optimized"]


def test_a_local_config_wins_over_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, BASE.replace('profile = "quick"', 'profile = "full"'), "loadtest.toml")
    monkeypatch.chdir(tmp_path)
    assert config.load().profile.name == "full"


def test_a_missing_config_says_what_to_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.toml"
    assert main(["loadtest", "--config", str(missing), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(missing) in err and "file not found" in err and "--config" in err


def test_phases_flag_replaces_the_profile_phases() -> None:
    cfg = config.load(TINY, {"phases": ("ceiling", "load")})
    assert cfg.profile.phases == ("ceiling", "load")
    err = error_of(TINY, {"phases": ("load", "nap")})
    assert "unknown phase 'nap'" in str(err)


def test_capacity_search_keys_of_a_profile(tmp_path: Path) -> None:
    quick = config.load(ROOT / "loadtest.toml").profile
    assert quick.ceiling_load_workers == 0  # "auto": one Locust process per core
    assert quick.capacity_max_s > 0 and 0 < quick.capacity_precision < 1
    extra = "capacity_max_s = 30\ncapacity_precision = 0.05\nceiling_load_workers = 3\n"
    cfg = config.load(
        write(tmp_path, BASE.replace("duration_s = 60\n", "duration_s = 60\n" + extra, 1))
    )
    assert (cfg.profile.capacity_max_s, cfg.profile.capacity_precision) == (30, 0.05)
    assert cfg.profile.ceiling_load_workers == 3
    err = error_of(
        write(tmp_path, BASE.replace("users = 20", 'users = 20\nceiling_load_workers = "many"'))
    )
    assert err.key == "profiles.quick.ceiling_load_workers"
