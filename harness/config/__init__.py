"""loadtest.toml: read, validate and resolve against command-line overrides.

A config error names the file and the key (ConfigError). Resolution is pure:
`resolve(raw, path, overrides)` takes the parsed TOML and returns a frozen Config.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from harness._errors import ConfigError
from harness.analysis.sizing import SizeTable, parse_size_table
from harness.config._toml_tables import TableValidator
from harness.config.target_spec import REFERENCE_TARGETS, TargetSpec, parse_targets

DEFAULT_CONFIG = Path("loadtest.toml")
PACKAGED_CONFIG = "loadtest.toml"  # package data of `harness`
# "ceiling" runs once per run, before the designs (see harness.phases.ceiling).
KNOWN_PHASES = ("load", "profile", "probe", "integrity", "ceiling", "capacity", "size")
DEFAULT_PHASES = ("load", "profile", "probe", "integrity")
KNOWN_SCENARIOS = ("chat", "whales", "spike")


@dataclass(frozen=True)
class SeedConfig:
    users: int = 200
    whales: int = 5
    whale_history: int = 5000
    seed: int = 1


@dataclass(frozen=True)
class UpstreamConfig:
    first_token_ms: int = 50
    tokens_per_s: int = 200
    reply_tokens: int = 120


@dataclass(frozen=True)
class ProfileConfig:
    name: str = "quick"
    phases: tuple[str, ...] = DEFAULT_PHASES
    scenario: str = "spike"
    users: int = 20
    spawn_rate: float = 10.0
    duration_s: float = 60.0
    profile_duration_s: float = 20.0
    probe_history_lens: tuple[int, ...] = (0, 100, 1000, 5000)
    probe_reps: int = 5
    probe_warmup: int = 2
    load_workers: int = 1  # Locust processes on this machine (`locust --processes N`)
    app_workers: int = 1  # server processes in the load phase (the target's {workers})
    ceiling_duration_s: float = 50.0  # the ceiling's capacity search, at most this long
    capacity_step_s: float = 5.0  # the capacity search: seconds per step of offered rate
    capacity_step_factor: float = 1.7  # each step offers this times the rate of the last
    capacity_max_steps: int = 13  # a design's staircase stops here if the knee is not found
    capacity_max_s: float = 120.0  # one search (staircase and refinement) at most this long
    capacity_precision: float = 0.1  # refine the knee until the knee is within 10% of capacity
    # Locust processes for the ceiling's search: 0 = "auto", one per core of this machine
    ceiling_load_workers: int = 0


# The reference chat API's endpoints: their corrected p95 objectives. A chat reply takes the
# emulator ~0.65 s at the default [upstream] (50 ms + 120 tokens at 200 tokens/s).
DEFAULT_OBJECTIVES_P95_MS: Mapping[str, float] = {
    "POST /chat": 1500.0,
    "POST /chat [stream]": 1500.0,
    "GET /history": 250.0,
}


@dataclass(frozen=True)
class CapacityConfig:
    """The open-model capacity search ([capacity]; the step sizes are per profile)."""

    arrival: str = "poisson"  # poisson | constant
    start_rps: float = 0.5
    ceiling_start_rps: float = 200.0  # the health endpoint holds far more: start higher
    max_error_ratio: float = 0.01
    max_dropped_ratio: float = 0.05
    ceiling_objective_p95_ms: float = 100.0  # the health endpoint, in the ceiling's search
    objectives_p95_ms: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_OBJECTIVES_P95_MS)
    )


@dataclass(frozen=True)
class LocustConfig:
    """Distributed load: this side runs the Locust master; workers connect from elsewhere."""

    master: bool = False
    expect_workers: int = 1
    master_bind_host: str = "127.0.0.1"
    master_bind_port: int = 5557
    expect_workers_max_wait_s: float = 120.0
    # where the servers of the load and ceiling phases listen, and the address the workers
    # load them at: the loopback unless the workers run on other machines
    server_host: str = "127.0.0.1"


MIN_LEAK_REQUESTS = 8  # two checkpoints of harness.phases.probe.LEAK_EVERY requests


@dataclass(frozen=True)
class GateConfig:
    baseline: str = "baselines/ci.json"
    history_lens: tuple[int, ...] = (0, 100, 1000, 5000)
    reps: int = 3
    warmup: int = 1
    default: str = "+5% floor 1KiB"
    thresholds: Mapping[str, str] = field(default_factory=dict)
    noise_k: float = 4.0  # a series may move by noise_k x its measured noise (docs/gate.md)
    leak_requests: int = 40  # requests per leak run (retained_bytes_per_request); 0: none
    # fresh server processes per design; the reps of all of them are pooled (docs/gate.md)
    processes: int = 3
    leak_processes: int = 1  # of them, how many also run the leak runs (the longest part)
    # the baseline ledger and the creep check (docs/history.md); ledger "" = beside the baseline
    ledger: str = ""
    creep_window: int = 10
    creep_budget: str = "+15%"
    creep_action: str = "warn"


@dataclass(frozen=True)
class Config:
    path: str
    designs: tuple[str, ...] = ("naive", "optimized")
    out: str = "reports"
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    seed: SeedConfig = field(default_factory=SeedConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    sample_interval_s: float = 0.1
    gate: GateConfig = field(default_factory=GateConfig)
    locust: LocustConfig = field(default_factory=LocustConfig)
    targets: tuple[TargetSpec, ...] = REFERENCE_TARGETS
    ceiling_target: str = ""  # the target the ceiling phase serves; "" when no ceiling runs
    capacity: CapacityConfig = field(default_factory=CapacityConfig)
    size: SizeTable = field(default_factory=SizeTable)  # [size]; a target's [target.size] wins

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = [t.to_json() for t in self.targets]
        return data

    def target(self, name: str) -> TargetSpec:
        """The `[[target]]` of this config named `name` (targets resolve here, once)."""
        for spec in self.targets:
            if spec.name == name:
                return spec
        known = ", ".join(t.name for t in self.targets)
        raise ConfigError(self.path, "run.designs", f"unknown target {name!r} (known: {known})")


def packaged_default() -> Path:
    """The embedded default (the reference designs as targets), shipped inside the package:
    in a clone, harness/loadtest.toml is a link to the repository's loadtest.toml."""
    return Path(str(resources.files("harness").joinpath(PACKAGED_CONFIG)))


def default_path() -> Path:
    """./loadtest.toml when there is one, else the embedded default."""
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else packaged_default()


def load(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read the TOML file (default: ./loadtest.toml, else the embedded default) and apply
    command-line overrides."""
    cfg_path = Path(path) if path is not None else default_path()
    try:
        raw = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            cfg_path,
            "-",
            "file not found; pass --config FILE with a loadtest.toml of your own, or leave "
            "--config out to use ./loadtest.toml or, without one, the embedded default",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(cfg_path, "-", f"not valid TOML: {exc}") from None
    return resolve(raw, cfg_path, overrides or {})


def resolve(raw: Mapping[str, Any], path: Path, overrides: Mapping[str, Any]) -> Config:
    """Validate the parsed TOML and apply overrides.

    overrides keys: profile, designs, out, users, spawn_rate, duration_s, and any other
    ProfileConfig field name (load_workers, app_workers, ...); target_files (TOML files of
    [[target]] tables: their targets are added and, without designs, are the ones run);
    locust_master, expect_workers, master_bind (HOST or HOST:PORT), server_host; size (a
    SizeTable: its keys win over [size]). None values are ignored.
    """
    v = TableValidator(path)
    top = {"run", "seed", "upstream", "sampling", "profiles", "gate", "locust", "target"}
    v.only_keys(raw, "", top | {"capacity", "size"})

    run = v.table(raw, "run")
    v.only_keys(run, "run", {"designs", "out", "profile", "ceiling_target"})
    designs = tuple(v.str_list(run, "run.designs", ["naive", "optimized"]))
    out = v.string(run, "run.out", "reports")
    profile_name = v.string(run, "run.profile", "quick")
    ceiling_raw = run.get("ceiling_target")
    if ceiling_raw is not None:
        ceiling_raw = v.string(run, "run.ceiling_target", "")

    targets = parse_targets(raw["target"], path) if "target" in raw else REFERENCE_TARGETS
    file_targets: list[TargetSpec] = []
    for target_file in overrides.get("target_files") or ():
        for spec in _target_file(Path(target_file)):
            if any(t.name == spec.name for t in (*targets, *file_targets)):
                raise ConfigError(
                    target_file,
                    f"target.{spec.name}.name",
                    f"target {spec.name!r} is already defined",
                )
            file_targets.append(spec)
    targets = (*targets, *file_targets)

    seed_t = v.table(raw, "seed")
    v.only_keys(seed_t, "seed", {"users", "whales", "whale_history", "seed"})
    seed = SeedConfig(
        users=v.integer(seed_t, "seed.users", 200, minimum=1),
        whales=v.integer(seed_t, "seed.whales", 5, minimum=0),
        whale_history=v.integer(seed_t, "seed.whale_history", 5000, minimum=1),
        seed=v.integer(seed_t, "seed.seed", 1),
    )

    up_t = v.table(raw, "upstream")
    v.only_keys(up_t, "upstream", {"first_token_ms", "tokens_per_s", "reply_tokens"})
    upstream = UpstreamConfig(
        first_token_ms=v.integer(up_t, "upstream.first_token_ms", 50, minimum=0),
        tokens_per_s=v.integer(up_t, "upstream.tokens_per_s", 200, minimum=0),
        reply_tokens=v.integer(up_t, "upstream.reply_tokens", 120, minimum=1),
    )

    sampling = v.table(raw, "sampling")
    v.only_keys(sampling, "sampling", {"interval_s"})
    interval = v.number(sampling, "sampling.interval_s", 0.1, minimum=0.01)

    profiles = v.table(raw, "profiles")
    # Validate every profile, not only the chosen one: a typo in [profiles.full] must not
    # wait for the first `--profile full` run to surface.
    resolved = {
        str(name): _profile(v, str(name), v.table(profiles, str(name), prefix="profiles"))
        for name in profiles
    }
    chosen = overrides.get("profile") or profile_name
    if chosen not in resolved:
        known = ", ".join(sorted(resolved)) or "none"
        where, key = (
            ("command line", "--profile") if overrides.get("profile") else (path, "run.profile")
        )
        raise ConfigError(where, key, f"unknown profile {chosen!r} (known: {known})")
    profile = resolved[chosen]

    profile_overrides = {
        k: val
        for k, val in overrides.items()
        if val is not None and k in ProfileConfig.__dataclass_fields__ and k != "name"
    }
    if profile_overrides:
        profile = replace(profile, **profile_overrides)
        _check_profile(v, profile, f"command line (profile {chosen})")
    designs_where: tuple[object, str] = (path, "run.designs")
    if overrides.get("designs"):
        designs = tuple(str(d) for d in overrides["designs"])
        designs_where = ("command line", "--design")
    elif file_targets:
        designs = tuple(t.name for t in file_targets)
        designs_where = ("command line", "--target")
    if overrides.get("out"):
        out = str(overrides["out"])
    if not designs:
        raise ConfigError(*designs_where, "at least one design is needed")
    duplicates = sorted({d for d in designs if designs.count(d) > 1})
    if duplicates:
        raise ConfigError(*designs_where, f"design {duplicates[0]!r} is listed twice")
    target_names = [t.name for t in targets]
    for design in designs:
        if design not in target_names:
            raise ConfigError(
                *designs_where, f"unknown design {design!r} (known: {', '.join(target_names)})"
            )
        spec = next(t for t in targets if t.name == design)
        if profile.app_workers > 1 and not spec.takes_workers:
            raise ConfigError(
                spec.source,
                f"target.{design}.command",
                f"app_workers = {profile.app_workers} needs a {{workers}} placeholder",
            )

    ceiling_target = ""
    if "ceiling" in profile.phases:
        if ceiling_raw:
            if ceiling_raw not in target_names:
                raise ConfigError(
                    path,
                    "run.ceiling_target",
                    f"unknown target {ceiling_raw!r} (known: {', '.join(target_names)})",
                )
            ceiling_target = ceiling_raw
        else:
            ceiling_target = "optimized" if "optimized" in designs else designs[0]

    locust_t = v.table(raw, "locust")
    v.only_keys(
        locust_t,
        "locust",
        {
            "master",
            "expect_workers",
            "master_bind_host",
            "master_bind_port",
            "expect_workers_max_wait_s",
            "server_host",
        },
    )
    master = locust_t.get("master", False)
    if not isinstance(master, bool):
        raise ConfigError(path, "locust.master", f"must be true or false, got {master!r}")
    locust = LocustConfig(
        master=master,
        expect_workers=v.integer(locust_t, "locust.expect_workers", 1, minimum=1),
        master_bind_host=v.string(locust_t, "locust.master_bind_host", "127.0.0.1"),
        master_bind_port=v.integer(locust_t, "locust.master_bind_port", 5557, minimum=1),
        expect_workers_max_wait_s=v.number(
            locust_t, "locust.expect_workers_max_wait_s", 120.0, minimum=1
        ),
        server_host=v.string(locust_t, "locust.server_host", "127.0.0.1"),
    )
    locust = _locust_overrides(locust, overrides)
    if locust.master and profile.load_workers > 1:
        raise ConfigError(
            "command line" if overrides.get("locust_master") else path,
            "locust.master",
            "a Locust master takes its workers from other machines: "
            "use load_workers = 1 with it (locust refuses --master with --processes)",
        )

    gate_t = v.table(raw, "gate")
    v.only_keys(
        gate_t,
        "gate",
        {
            "baseline",
            "history_lens",
            "reps",
            "warmup",
            "default",
            "thresholds",
            "noise_k",
            "leak_requests",
            "processes",
            "leak_processes",
            *CREEP_KEYS,
        },
    )
    thresholds_t = v.table(gate_t, "thresholds", prefix="gate")
    thresholds: dict[str, str] = {}
    for key, value in thresholds_t.items():
        if not isinstance(value, str):
            raise ConfigError(
                path, f"gate.thresholds.{key}", "must be a string like '+10% floor 16KiB'"
            )
        thresholds[str(key)] = value
    gate = GateConfig(
        baseline=v.string(gate_t, "gate.baseline", "baselines/ci.json"),
        history_lens=tuple(v.int_list(gate_t, "gate.history_lens", [0, 100, 1000, 5000])),
        reps=v.integer(gate_t, "gate.reps", 3, minimum=1),
        warmup=v.integer(gate_t, "gate.warmup", 1, minimum=0),
        default=v.string(gate_t, "gate.default", "+5% floor 1KiB"),
        thresholds=thresholds,
        noise_k=v.number(gate_t, "gate.noise_k", 4.0, minimum=0.0),
        leak_requests=v.integer(gate_t, "gate.leak_requests", 40, minimum=0),
        processes=v.integer(gate_t, "gate.processes", 3, minimum=1),
        leak_processes=v.integer(gate_t, "gate.leak_processes", 1, minimum=0),
        **_creep_settings(v, gate_t, path),
    )
    if gate.leak_processes > gate.processes:
        raise ConfigError(
            path,
            "gate.leak_processes",
            f"must be at most gate.processes ({gate.processes}), got {gate.leak_processes}",
        )
    if 0 < gate.leak_requests < MIN_LEAK_REQUESTS:
        raise ConfigError(
            path,
            "gate.leak_requests",
            f"must be 0 (no leak run) or at least {MIN_LEAK_REQUESTS}, got {gate.leak_requests}",
        )

    capacity = _capacity(v, v.table(raw, "capacity"))
    size = parse_size_table(raw.get("size", {}), path)
    if isinstance(flags := overrides.get("size"), SizeTable):  # the command line's flags win
        size = flags.over(size)
        targets = tuple(replace(t, size=flags.over(t.size or SizeTable())) for t in targets)

    return Config(
        path=str(path),
        designs=designs,
        out=out,
        profile=profile,
        seed=seed,
        upstream=upstream,
        sample_interval_s=interval,
        gate=gate,
        locust=locust,
        targets=targets,
        ceiling_target=ceiling_target,
        capacity=capacity,
        size=size,
    )


def _capacity(v: TableValidator, t: Mapping[str, Any]) -> CapacityConfig:
    keys = set(CapacityConfig.__dataclass_fields__)
    v.only_keys(t, "capacity", keys)
    d = CapacityConfig()
    arrival = v.string(t, "capacity.arrival", d.arrival)
    if arrival not in ("poisson", "constant"):
        raise ConfigError(
            v.path, "capacity.arrival", f"must be poisson or constant, got {arrival!r}"
        )
    objectives = dict(d.objectives_p95_ms)
    table = v.table(t, "objectives_p95_ms", prefix="capacity")
    for endpoint, value in table.items():
        key = f"capacity.objectives_p95_ms.{endpoint}"
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(v.path, key, f"must be a positive number of ms, got {value!r}")
        objectives[str(endpoint)] = float(value)
    ratios = {}
    for name in ("max_error_ratio", "max_dropped_ratio"):
        ratios[name] = v.number(t, f"capacity.{name}", getattr(d, name), minimum=0)
        if ratios[name] >= 1:
            raise ConfigError(v.path, f"capacity.{name}", "must be below 1 (a ratio)")
    return CapacityConfig(
        arrival=arrival,
        start_rps=v.number(t, "capacity.start_rps", d.start_rps, minimum=0.01),
        ceiling_start_rps=v.number(
            t, "capacity.ceiling_start_rps", d.ceiling_start_rps, minimum=0.01
        ),
        max_error_ratio=ratios["max_error_ratio"],
        max_dropped_ratio=ratios["max_dropped_ratio"],
        ceiling_objective_p95_ms=v.number(
            t, "capacity.ceiling_objective_p95_ms", d.ceiling_objective_p95_ms, minimum=0.001
        ),
        objectives_p95_ms=objectives,
    )


CREEP_KEYS = ("ledger", "creep_window", "creep_budget", "creep_action")
CREEP_ACTIONS = ("warn", "fail")


def _creep_settings(v: TableValidator, gate_t: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """[gate] ledger, creep_window, creep_budget, creep_action (docs/history.md)."""
    from harness.gate import parse_threshold

    budget = v.string(gate_t, "gate.creep_budget", "+15%")
    try:
        parse_threshold(budget)
    except ValueError as exc:
        raise ConfigError(path, "gate.creep_budget", str(exc)) from None
    action = v.string(gate_t, "gate.creep_action", "warn")
    if action not in CREEP_ACTIONS:
        raise ConfigError(path, "gate.creep_action", f"must be one of {', '.join(CREEP_ACTIONS)}")
    ledger = ""  # beside the baseline
    return {
        "ledger": v.string(gate_t, "gate.ledger", ledger) if "ledger" in gate_t else ledger,
        "creep_window": v.integer(gate_t, "gate.creep_window", 10, minimum=0),
        "creep_budget": budget,
        "creep_action": action,
    }


def _target_file(path: Path) -> tuple[TargetSpec, ...]:
    """A `--target FILE`: one or more [[target]] tables and nothing else."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "-", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "-", f"not valid TOML: {exc}") from None
    for key in raw:
        if key != "target":
            raise ConfigError(path, key, "unknown key (a target file holds only [[target]] tables)")
    if "target" not in raw:
        raise ConfigError(path, "target", "no [[target]] table")
    return parse_targets(raw["target"], path)


def _locust_overrides(locust: LocustConfig, overrides: Mapping[str, Any]) -> LocustConfig:
    if overrides.get("locust_master"):
        locust = replace(locust, master=True)
    if overrides.get("server_host"):
        locust = replace(locust, server_host=str(overrides["server_host"]))
    if overrides.get("expect_workers") is not None:
        locust = replace(locust, expect_workers=int(overrides["expect_workers"]))
    bind = overrides.get("master_bind")
    if bind:
        host, _, port = str(bind).partition(":")
        if port and not port.isdigit():
            raise ConfigError("command line", "--master-bind", f"not HOST[:PORT]: {bind!r}")
        locust = replace(
            locust,
            master_bind_host=host or locust.master_bind_host,
            master_bind_port=int(port) if port else locust.master_bind_port,
        )
    return locust


def _profile(v: TableValidator, name: str, t: Mapping[str, Any]) -> ProfileConfig:
    p = f"profiles.{name}"
    v.only_keys(t, p, set(ProfileConfig.__dataclass_fields__) - {"name"})
    d = ProfileConfig()
    profile = ProfileConfig(
        name=name,
        phases=tuple(v.str_list(t, f"{p}.phases", list(d.phases))),
        scenario=v.string(t, f"{p}.scenario", d.scenario),
        users=v.integer(t, f"{p}.users", d.users, minimum=1),
        spawn_rate=v.number(t, f"{p}.spawn_rate", d.spawn_rate, minimum=0.1),
        duration_s=v.number(t, f"{p}.duration_s", d.duration_s, minimum=1),
        profile_duration_s=v.number(t, f"{p}.profile_duration_s", d.profile_duration_s, minimum=1),
        probe_history_lens=tuple(
            v.int_list(t, f"{p}.probe_history_lens", list(d.probe_history_lens))
        ),
        probe_reps=v.integer(t, f"{p}.probe_reps", d.probe_reps, minimum=1),
        probe_warmup=v.integer(t, f"{p}.probe_warmup", d.probe_warmup, minimum=0),
        load_workers=v.integer(t, f"{p}.load_workers", d.load_workers, minimum=1),
        app_workers=v.integer(t, f"{p}.app_workers", d.app_workers, minimum=1),
        ceiling_duration_s=v.number(t, f"{p}.ceiling_duration_s", d.ceiling_duration_s, minimum=1),
        capacity_step_s=v.number(t, f"{p}.capacity_step_s", d.capacity_step_s, minimum=1),
        capacity_step_factor=v.number(
            t, f"{p}.capacity_step_factor", d.capacity_step_factor, minimum=1.01
        ),
        capacity_max_steps=v.integer(t, f"{p}.capacity_max_steps", d.capacity_max_steps, minimum=1),
        capacity_max_s=v.number(t, f"{p}.capacity_max_s", d.capacity_max_s, minimum=1),
        capacity_precision=v.number(
            t, f"{p}.capacity_precision", d.capacity_precision, minimum=0.001
        ),
        ceiling_load_workers=_load_workers(v, t, f"{p}.ceiling_load_workers"),
    )
    _check_profile(v, profile, str(v.path))
    return profile


def _load_workers(v: TableValidator, t: Mapping[str, Any], key: str) -> int:
    """A count of Locust processes, or "auto" (0: one per core)."""
    raw = t.get(key.rsplit(".", 1)[-1], "auto")
    if raw == "auto":
        return 0
    return v.integer(t, key, 0, minimum=1)


def _check_profile(v: TableValidator, profile: ProfileConfig, where: str) -> None:
    p = f"profiles.{profile.name}"
    if not profile.phases:
        raise ConfigError(where, f"{p}.phases", "at least one phase is needed")
    if len(set(profile.phases)) != len(profile.phases):
        raise ConfigError(where, f"{p}.phases", "a phase is listed twice")
    for phase in profile.phases:
        if phase not in KNOWN_PHASES:
            raise ConfigError(
                where, f"{p}.phases", f"unknown phase {phase!r} (known: {', '.join(KNOWN_PHASES)})"
            )
    if profile.scenario not in KNOWN_SCENARIOS:
        raise ConfigError(
            where,
            f"{p}.scenario",
            f"unknown scenario {profile.scenario!r} (known: {', '.join(KNOWN_SCENARIOS)})",
        )
    for name in ("load_workers", "app_workers"):
        value = getattr(profile, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(where, f"{p}.{name}", f"must be an integer >= 1, got {value!r}")
    if profile.capacity_step_factor <= 1:
        raise ConfigError(where, f"{p}.capacity_step_factor", "must be > 1")
    for name in (
        "users",
        "duration_s",
        "profile_duration_s",
        "spawn_rate",
        "ceiling_duration_s",
        "capacity_step_s",
        "capacity_max_steps",
        "capacity_max_s",
        "capacity_precision",
    ):
        value = getattr(profile, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(where, f"{p}.{name}", f"must be a positive number, got {value!r}")
    if any(h < 0 for h in profile.probe_history_lens):
        raise ConfigError(where, f"{p}.probe_history_lens", "history lengths must be >= 0")
