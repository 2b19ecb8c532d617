"""Targets ([[target]] tables, --target FILE), the scale-out keys, the ceiling's figure, the
merge of several Locust processes' acknowledged writes. Pure: no process is started."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from config_helpers import error_of, write

from harness import config
from harness._errors import ConfigError
from harness.analysis.load import (
    ceiling_fraction,
    ceiling_rps,
    console_specs,
    worker_summary,
)
from harness.cli.loadtest import phase_plan
from harness.config.target_spec import (
    REFERENCE_TARGETS,
    SERVE_MODULE,
    fill,
    fill_env,
    parse_target,
    reference_target,
    start_values,
)
from harness.load import acks
from harness.load.locust_runner import MasterMode, locust_argv, locustfile
from harness.results import SummaryRow
from harness.stack.targets import app_argv

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello_service" / "loadtest.toml"

BASE = """
[run]
designs = ["naive", "optimized"]
profile = "quick"

[profiles.quick]
phases = ["load", "integrity"]
users = 20
duration_s = 60
"""

HELLO = """
[[target]]
name = "hello"
command = "{python} -m harness.serve app:app --host {host} --port {port} --workers {workers}"
python_module = "harness.serve"
health = "/healthz"
"""


# --- the new profile keys -------------------------------------------------------------------


def test_scale_keys_default_to_one_process(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, BASE))
    assert (cfg.profile.load_workers, cfg.profile.app_workers) == (1, 1)
    assert cfg.profile.ceiling_duration_s == 50
    assert not cfg.locust.master
    assert cfg.ceiling_target == ""  # no ceiling phase in the profile
    data = json.loads(json.dumps(cfg.to_json()))
    assert data["profile"]["load_workers"] == 1 and data["profile"]["app_workers"] == 1
    assert [t["name"] for t in data["targets"]] == ["naive", "optimized"]


def test_scale_keys_from_file_and_flags(tmp_path: Path) -> None:
    text = BASE.replace("users = 20", "users = 20\nload_workers = 2\napp_workers = 3")
    cfg = config.load(write(tmp_path, text))
    assert (cfg.profile.load_workers, cfg.profile.app_workers) == (2, 3)
    cfg = config.load(write(tmp_path, BASE), {"load_workers": 4, "app_workers": 2})
    assert (cfg.profile.load_workers, cfg.profile.app_workers) == (4, 2)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("load_workers = 0", "profiles.quick.load_workers"),
        ("app_workers = true", "profiles.quick.app_workers"),
        ("app_workers = 1.5", "profiles.quick.app_workers"),
        ("ceiling_duration_s = 0", "profiles.quick.ceiling_duration_s"),
    ],
)
def test_bad_scale_keys_name_the_key(tmp_path: Path, line: str, key: str) -> None:
    path = write(tmp_path, BASE.replace("users = 20", f"users = 20\n{line}"))
    err = error_of(path)
    assert err.key == key and err.path == str(path)


def test_ceiling_phase_and_its_target(tmp_path: Path) -> None:
    text = BASE.replace('phases = ["load", "integrity"]', 'phases = ["ceiling", "load"]')
    cfg = config.load(write(tmp_path, text))
    assert cfg.ceiling_target == "optimized"
    assert phase_plan(cfg.profile.phases) == ["load"]  # once per run, not per design
    cfg = config.load(write(tmp_path, text), {"designs": ["naive"]})
    assert cfg.ceiling_target == "naive"
    bad = text.replace('profile = "quick"', 'profile = "quick"\nceiling_target = "nope"')
    assert error_of(write(tmp_path, bad)).key == "run.ceiling_target"


def test_locust_master_settings(tmp_path: Path) -> None:
    cfg = config.load(
        write(tmp_path, BASE),
        {"locust_master": True, "expect_workers": 3, "master_bind": "0.0.0.0:6000"},
    )
    assert cfg.locust.master and cfg.locust.expect_workers == 3
    assert (cfg.locust.master_bind_host, cfg.locust.master_bind_port) == ("0.0.0.0", 6000)
    assert cfg.locust.server_host == "127.0.0.1"
    remote = config.load(write(tmp_path, BASE), {"locust_master": True, "server_host": "10.1.2.3"})
    assert remote.locust.server_host == "10.1.2.3"
    err = error_of(write(tmp_path, BASE), {"locust_master": True, "load_workers": 2})
    assert err.key == "locust.master"
    assert error_of(write(tmp_path, BASE), {"master_bind": "h:x"}).key == "--master-bind"
    text = BASE + "\n[locust]\nmaster = true\nexpect_workerz = 2\n"
    assert error_of(write(tmp_path, text)).key == "locust.expect_workerz"


# --- [[target]] tables ----------------------------------------------------------------------


def test_repository_config_spells_out_the_reference_targets() -> None:
    cfg = config.load(ROOT / "loadtest.toml")
    assert [t.name for t in cfg.targets] == ["naive", "optimized"]
    for spec in cfg.targets:
        ref = reference_target(spec.name)
        for key in ("command", "probe_command", "probe", "seed", "health", "python_module"):
            assert getattr(spec, key) == getattr(ref, key), (spec.name, key)
        assert spec.chat_api and spec.needs_upstream and spec.takes_workers
    assert "ceiling" in cfg.profile.phases and cfg.ceiling_target == "optimized"


def test_config_without_targets_gets_the_reference_ones(tmp_path: Path) -> None:
    assert config.load(write(tmp_path, BASE)).targets == REFERENCE_TARGETS


def test_target_table_parses_and_fills(tmp_path: Path) -> None:
    (tmp_path / "load.py").write_text("# a locustfile\n")
    text = BASE.replace('["naive", "optimized"]', '["hello"]') + HELLO.replace(
        'health = "/healthz"',
        'health = "/up"\nscenario = "load.py"\nstop_signal = "SIGTERM"\n'
        'seed = ["{python}", "mk.py", "{data_dir}", "{users}"]\nenv = { A = "1" }',
    )
    cfg = config.load(write(tmp_path, text))
    spec = cfg.target("hello")
    assert spec.command[:3] == ("{python}", "-m", "harness.serve")
    assert spec.scenario == str((tmp_path / "load.py").resolve())
    assert spec.cwd == str(tmp_path.resolve()) and spec.env == {"A": "1"}
    assert (spec.health, spec.stop_signal, spec.chat_api, spec.needs_upstream) == (
        "/up",
        "SIGTERM",
        False,
        False,
    )
    assert spec.not_applicable("load") == ""
    assert spec.not_applicable("profile") == ""  # python_module: memray can wrap it
    assert "no probe recipes" in spec.not_applicable("probe")
    assert "chat_api" in spec.not_applicable("integrity")
    values = {"python": "py", "host": "h", "port": 1, "workers": 2, "data_dir": "d"}
    argv = app_argv(spec, "plain", values)
    assert argv == fill(spec.command, values)
    assert argv[-6:] == ["--host", "h", "--port", "1", "--workers", "2"]
    memray = app_argv(spec, "memray", values, capture=tmp_path / "cap.bin")
    assert memray[memray.index("-m", 3) + 1 :][:2] == ["harness.serve", "app:app"]


def test_python_app_is_a_short_form(tmp_path: Path) -> None:
    spec = parse_target({"name": "x", "python_app": "pkg.mod:app"}, tmp_path / "t.toml", "t[0]")
    assert spec.python_module == SERVE_MODULE
    assert "pkg.mod:app" in spec.command and "{workers}" in " ".join(spec.command)
    assert spec.probe_command is not None and spec.probe_command[-1] == "--probe"


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ("bogus = 1", "target.hello.bogus", "unknown key"),
        ('python_module = "other"', "target.hello.python_module", "{python} -m other"),
        ('health = "healthz"', "target.hello.health", "path"),
        ('scenario = "missing.py"', "target.hello.scenario", "no locustfile"),
        ('stop_signal = "SIGUSR1"', "target.hello.stop_signal", "SIGINT"),
        ('seed = "{python} s.py {port}"', "target.hello.seed", "unknown placeholder {port}"),
        ('chat_api = "yes"', "target.hello.chat_api", "true or false"),
        ("env = { A = 1 }", "target.hello.env", "strings"),
    ],
)
def test_bad_target_keys_name_file_and_key(
    tmp_path: Path, extra: str, key: str, words: str
) -> None:
    text = HELLO.replace('python_module = "harness.serve"\n', "").replace(
        'health = "/healthz"\n', ""
    )
    text += extra + "\n"
    if "python_module" not in extra:
        text += 'python_module = "harness.serve"\n'
    path = write(tmp_path, BASE + text)
    err = error_of(path)
    assert err.path == str(path) and err.key == key, str(err)
    assert words in err.problem


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ('name = "x"\ncommand = "serve --port 1"', "target.x.command", "{port}"),
        ('name = "x"\ncommand = "s {port} {nope}"', "target.x.command", "{nope}"),
        ('name = "x"', "target.x.command", "missing"),
        ('name = "x"\ncommand = "s {port} {upstream_url}"', "target.x.command", "needs_upstream"),
        ('name = "ceiling"\ncommand = "s {port}"', "target.ceiling.name", "reserved"),
        ('name = "a b"\ncommand = "s {port}"', "target[0].name", "name"),
        ('name = "x"\ncommand = "s {port}"\npython_app = "m:a"', "target.x.command", "not both"),
    ],
)
def test_bad_target_tables(tmp_path: Path, table: str, key: str, words: str) -> None:
    err = error_of(write(tmp_path, BASE + "\n[[target]]\n" + table + "\n"))
    assert err.key == key and words in err.problem, str(err)


def test_targets_listed_twice_and_unknown_designs(tmp_path: Path) -> None:
    twice = BASE + '\n[[target]]\nname = "x"\ncommand = "s {port}"\n' * 2
    assert "twice" in error_of(write(tmp_path, twice)).problem
    err = error_of(write(tmp_path, BASE + HELLO), {"designs": ["hello", "nope"]})
    assert err.key == "--design" and "nope" in err.problem


def test_app_workers_need_a_workers_placeholder(tmp_path: Path) -> None:
    text = BASE.replace('["naive", "optimized"]', '["x"]')
    text += '\n[[target]]\nname = "x"\ncommand = "s --port {port}"\n'
    assert config.load(write(tmp_path, text)).profile.app_workers == 1
    err = error_of(write(tmp_path, text), {"app_workers": 2})
    assert err.key == "target.x.command" and "{workers}" in err.problem


def test_target_file_adds_targets_and_selects_them(tmp_path: Path) -> None:
    target_file = write(tmp_path, HELLO, "hello.toml")
    cfg = config.load(write(tmp_path, BASE), {"target_files": [target_file]})
    assert cfg.designs == ("hello",)
    assert [t.name for t in cfg.targets] == ["naive", "optimized", "hello"]
    assert cfg.target("hello").source == str(target_file)
    both = config.load(
        write(tmp_path, BASE), {"target_files": [target_file], "designs": ["naive", "hello"]}
    )
    assert both.designs == ("naive", "hello")
    clash = write(tmp_path, HELLO.replace('"hello"', '"naive"'), "clash.toml")
    err = error_of(write(tmp_path, BASE), {"target_files": [clash]})
    assert err.path == str(clash) and "already defined" in err.problem
    extra = write(tmp_path, HELLO + "\n[run]\nx = 1\n", "extra.toml")
    err = error_of(write(tmp_path, BASE), {"target_files": [extra]})
    assert err.path == str(extra) and err.key == "run"


def test_example_config_resolves() -> None:
    cfg = config.load(EXAMPLE)
    assert cfg.designs == ("hello",)
    hello = cfg.target("hello")
    assert hello.scenario is not None and Path(hello.scenario).is_file()
    assert hello.cwd is not None and (Path(hello.cwd) / "hello_app.py").is_file()
    assert hello.python_module == "harness.serve" and not hello.chat_api
    assert cfg.ceiling_target == "hello"


def test_targets_resolve_from_the_config_they_were_read_from(tmp_path: Path) -> None:
    cfg_file = tmp_path / "mine.toml"
    cfg_file.write_text(
        '[run]\ndesigns = ["mine"]\n[profiles.quick]\n'
        '[[target]]\nname = "mine"\ncommand = "s --port {port}"\n',
        encoding="utf-8",
    )
    cfg = config.load(cfg_file)
    assert cfg.target("mine").command == ("s", "--port", "{port}")
    with pytest.raises(ConfigError) as err:
        cfg.target("naive")  # this file's targets replace the built-in ones
    assert str(cfg_file) in str(err.value) and "unknown target 'naive'" in str(err.value)
    assert "mine" in str(err.value)
    default = config.resolve({"profiles": {"quick": {}}}, Path("x.toml"), {})
    assert default.target("naive") == reference_target("naive")


# --- Locust's command line ------------------------------------------------------------------


def test_locust_argv_processes_and_master(tmp_path: Path) -> None:
    one = locust_argv("http://h", Path("f.py"), 5, 1, 10, tmp_path)
    assert "--processes" not in one and "--master" not in one
    two = locust_argv("http://h", Path("f.py"), 5, 1, 10, tmp_path, processes=2)
    assert two[two.index("--processes") + 1] == "2"
    master = locust_argv(
        "http://h", Path("f.py"), 5, 1, 10, tmp_path, processes=2, master=MasterMode(3)
    )
    assert "--processes" not in master
    assert master[master.index("--expect-workers") + 1] == "3"
    assert master[master.index("--master-bind-host") + 1] == "127.0.0.1"


def test_local_workers_meet_their_parent_on_the_port_given() -> None:
    """Two runs with --processes on one machine must not both bind Locust's default 5557."""
    argv = locust_argv(
        "http://h", Path("f.py"), 5, 1, 10, Path("out"), processes=2, local_master_port=43210
    )
    for flag, value in (
        ("--master-bind-host", "127.0.0.1"),
        ("--master-bind-port", "43210"),
        ("--master-host", "127.0.0.1"),
        ("--master-port", "43210"),
    ):
        assert argv[argv.index(flag) + 1] == value
    single = locust_argv("http://h", Path("f.py"), 5, 1, 10, Path("out"), local_master_port=43210)
    assert "--master-port" not in single


def test_locustfile_by_name_or_path(tmp_path: Path) -> None:
    assert locustfile("ceiling").name == "ceiling.py"
    own = tmp_path / "mine.py"
    own.write_text("")
    assert locustfile(str(own)) == own.resolve()
    with pytest.raises(FileNotFoundError):
        locustfile(str(tmp_path / "absent.py"))


# --- acknowledged writes from several processes ----------------------------------------------


def _ledger(path: Path, acknowledged: dict[str, int], **extra: object) -> None:
    path.write_text(json.dumps({"acknowledged": acknowledged, "attempted": {}, **extra}))


def test_worker_parts_are_summed_once(tmp_path: Path) -> None:
    path = tmp_path / "acks.json"
    _ledger(tmp_path / "acks.json.worker-11", {"u1": 2, "u2": 1})
    _ledger(tmp_path / "acks.json.worker-12", {"u1": 1, "u3": 4})
    _ledger(tmp_path / "acks.json.master", {"u1": 1})  # a lower bound: workers' files win
    assert acks.acks_exist(path) and not path.exists()
    assert acks.read_acks(path) == {"u1": 3, "u2": 1, "u3": 4}  # before the merge, too
    assert acks.merge_parts(path)
    merged = json.loads(path.read_text())
    assert merged["source"] == "workers"
    assert merged["merged_from"] == ["acks.json.worker-11", "acks.json.worker-12"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acks.json"]
    assert acks.read_acks(path) == {"u1": 3, "u2": 1, "u3": 4}
    assert not acks.merge_parts(path)  # nothing left to merge


def test_a_part_left_next_to_its_merge_is_not_counted_twice(tmp_path: Path) -> None:
    path = tmp_path / "acks.json"
    _ledger(path, {"u1": 3}, merged_from=["acks.json.worker-11"])
    _ledger(tmp_path / "acks.json.worker-11", {"u1": 3})
    assert acks.read_acks(path) == {"u1": 3}


def test_master_part_when_the_workers_were_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "acks.json"
    _ledger(tmp_path / "acks.json.master", {"u1": 5})
    assert acks.merge_parts(path)
    assert json.loads(path.read_text())["source"] == "master"
    assert acks.read_acks(path) == {"u1": 5}


def test_one_process_file_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "acks.json"
    _ledger(path, {"u1": 1})
    assert not acks.merge_parts(path)
    assert acks.read_acks(path) == {"u1": 1}
    assert acks.stale_files(path) == [path]


# --- the ceiling's rows -----------------------------------------------------------------------


def test_ceiling_rows_and_fraction() -> None:
    # the ceiling's figure is its capacity search's (harness.analysis.capacity.capacity_rows)
    rows = [
        SummaryRow("ceiling", "ceiling", "capacity_lower_bound", 0.0, "bool"),
        SummaryRow("ceiling", "ceiling", "capacity_rps", 20.0, "req/s"),
    ]
    assert ceiling_rps(rows) == 20.0
    assert ceiling_rps([SummaryRow("ceiling", "ceiling", "capacity_rps", 0.0, "req/s")]) is None
    load = [SummaryRow("optimized", "load", "rps", 15.0, "req/s")]
    (fraction,) = ceiling_fraction("optimized", load, 20.0)
    assert (fraction.metric, fraction.phase, fraction.value, fraction.unit) == (
        "rps_ceiling_fraction",
        "load",
        0.75,
        "ratio",
    )
    assert ceiling_fraction("optimized", load, None) == []
    assert ceiling_rps([]) is None
    assert "rps_ceiling_fraction" in [s.metric for s in console_specs()]


def test_worker_rows() -> None:
    rows = {r.metric: r.value for r in worker_summary("d", 2, 3)}
    assert rows == {"load_workers": 2.0, "app_workers": 3.0}


# --- placeholders in env and elsewhere ------------------------------------------------------


def test_env_values_take_the_command_placeholders(tmp_path: Path) -> None:
    text = BASE.replace('["naive", "optimized"]', '["svc"]') + (
        '[[target]]\nname = "svc"\ncommand = "s --port {port}"\nneeds_upstream = true\n'
        'env = { OPENAI_BASE_URL = "{upstream_url}/v1", PLAIN = "x", WHERE = "{host}:{port}" }\n'
    )
    spec = config.load(write(tmp_path, text)).target("svc")
    values = start_values(8123, "127.0.0.1", tmp_path, "http://127.0.0.1:9", 1)
    assert fill_env(spec.env, values) == {
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "PLAIN": "x",
        "WHERE": "127.0.0.1:8123",
    }


@pytest.mark.parametrize(
    ("extra", "key", "problem"),
    [
        ('env = { URL = "{upstream}/v1" }', "target.svc.env.URL", "unknown placeholder {upstream}"),
        ('env = { URL = "{upstream_url}/v1" }', "target.svc.env", "set needs_upstream = true"),
        ('health = "/h/{port}"', "target.svc.health", "unknown placeholder {port}"),
        ('seed = "seed --into {data}"', "target.svc.seed", "unknown placeholder {data}"),
    ],
)
def test_an_unknown_placeholder_anywhere_names_its_key(
    tmp_path: Path, extra: str, key: str, problem: str
) -> None:
    text = BASE.replace('["naive", "optimized"]', '["svc"]') + (
        f'[[target]]\nname = "svc"\ncommand = "s --port {{port}}"\n{extra}\n'
    )
    err = error_of(write(tmp_path, text))
    assert err.key == key and problem in err.problem, str(err)


@pytest.mark.parametrize(
    ("example", "name", "unit"),
    [("items_service", "items", "item"), ("flask_service", "notes", "note")],
)
def test_the_examples_with_recipes_can_be_probed(example: str, name: str, unit: str) -> None:
    cfg = config.load(ROOT / "examples" / example / "loadtest.toml")
    target = cfg.target(name)
    assert target.not_applicable("probe") == ""
    assert target.probe is not None and target.probe.size_unit == unit
    assert target.probe_command == (*target.command, "--probe")  # harness.serve: the default
    assert not target.chat_api and target.not_applicable("integrity")
