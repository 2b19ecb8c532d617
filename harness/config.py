"""loadtest.toml: read, validate and resolve against command-line overrides.

A config error names the file and the key (ConfigError). Resolution is pure:
`resolve(raw, path, overrides)` takes the parsed TOML and returns a frozen Config.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from harness._errors import ConfigError

DEFAULT_CONFIG = Path("loadtest.toml")
KNOWN_PHASES = ("load", "profile", "probe", "integrity")
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
    phases: tuple[str, ...] = KNOWN_PHASES
    scenario: str = "spike"
    users: int = 20
    spawn_rate: float = 10.0
    duration_s: float = 60.0
    profile_duration_s: float = 20.0
    probe_history_lens: tuple[int, ...] = (0, 100, 1000, 5000)
    probe_reps: int = 5
    probe_warmup: int = 2


@dataclass(frozen=True)
class GateConfig:
    baseline: str = "baselines/ci.json"
    history_lens: tuple[int, ...] = (0, 100, 1000, 5000)
    reps: int = 3
    warmup: int = 1
    default: str = "+10% floor 16KiB"
    thresholds: Mapping[str, str] = field(default_factory=dict)


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def load(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read the TOML file (default ./loadtest.toml) and apply command-line overrides."""
    cfg_path = Path(path) if path is not None else DEFAULT_CONFIG
    try:
        raw = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(cfg_path, "-", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(cfg_path, "-", f"not valid TOML: {exc}") from None
    return resolve(raw, cfg_path, overrides or {})


def resolve(raw: Mapping[str, Any], path: Path, overrides: Mapping[str, Any]) -> Config:
    """Validate the parsed TOML and apply overrides.

    overrides keys: profile, designs, out, users, spawn_rate, duration_s, and any other
    ProfileConfig field name; None values are ignored.
    """
    v = _Validator(path)
    v.only_keys(raw, "", {"run", "seed", "upstream", "sampling", "profiles", "gate"})

    run = v.table(raw, "run")
    v.only_keys(run, "run", {"designs", "out", "profile"})
    designs = tuple(v.str_list(run, "run.designs", ["naive", "optimized"]))
    out = v.string(run, "run.out", "reports")
    profile_name = v.string(run, "run.profile", "quick")

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
    if overrides.get("out"):
        out = str(overrides["out"])
    if not designs:
        raise ConfigError(*designs_where, "at least one design is needed")
    duplicates = sorted({d for d in designs if designs.count(d) > 1})
    if duplicates:
        raise ConfigError(*designs_where, f"design {duplicates[0]!r} is listed twice")

    gate_t = v.table(raw, "gate")
    v.only_keys(
        gate_t, "gate", {"baseline", "history_lens", "reps", "warmup", "default", "thresholds"}
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
        default=v.string(gate_t, "gate.default", "+10% floor 16KiB"),
        thresholds=thresholds,
    )

    return Config(
        path=str(path),
        designs=designs,
        out=out,
        profile=profile,
        seed=seed,
        upstream=upstream,
        sample_interval_s=interval,
        gate=gate,
    )


def _profile(v: _Validator, name: str, t: Mapping[str, Any]) -> ProfileConfig:
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
    )
    _check_profile(v, profile, str(v.path))
    return profile


def _check_profile(v: _Validator, profile: ProfileConfig, where: str) -> None:
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
    for name in ("users", "duration_s", "profile_duration_s", "spawn_rate"):
        value = getattr(profile, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(where, f"{p}.{name}", f"must be a positive number, got {value!r}")
    if any(h < 0 for h in profile.probe_history_lens):
        raise ConfigError(where, f"{p}.probe_history_lens", "history lengths must be >= 0")


class _Validator:
    def __init__(self, path: Path) -> None:
        self.path = path

    def only_keys(self, t: Mapping[str, Any], prefix: str, allowed: set[str]) -> None:
        for key in t:
            if key not in allowed:
                where = f"{prefix}.{key}" if prefix else key
                raise ConfigError(
                    self.path, where, f"unknown key (allowed: {', '.join(sorted(allowed))})"
                )

    def table(self, t: Mapping[str, Any], key: str, prefix: str = "") -> Mapping[str, Any]:
        value = t.get(key, {})
        if not isinstance(value, Mapping):
            raise ConfigError(self.path, f"{prefix}.{key}" if prefix else key, "must be a table")
        return value

    def _leaf(self, dotted: str) -> str:
        return dotted.rsplit(".", 1)[-1]

    def string(self, t: Mapping[str, Any], dotted: str, default: str) -> str:
        value = t.get(self._leaf(dotted), default)
        if not isinstance(value, str) or not value:
            raise ConfigError(self.path, dotted, f"must be a non-empty string, got {value!r}")
        return value

    def integer(
        self, t: Mapping[str, Any], dotted: str, default: int, minimum: int | None = None
    ) -> int:
        value = t.get(self._leaf(dotted), default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.path, dotted, f"must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise ConfigError(self.path, dotted, f"must be >= {minimum}, got {value}")
        return value

    def number(
        self, t: Mapping[str, Any], dotted: str, default: float, minimum: float | None = None
    ) -> float:
        value = t.get(self._leaf(dotted), default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(self.path, dotted, f"must be a number, got {value!r}")
        if minimum is not None and value < minimum:
            raise ConfigError(self.path, dotted, f"must be >= {minimum}, got {value}")
        return float(value)

    def str_list(self, t: Mapping[str, Any], dotted: str, default: list[str]) -> list[str]:
        value = t.get(self._leaf(dotted), default)
        if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
            raise ConfigError(self.path, dotted, f"must be a list of strings, got {value!r}")
        return value

    def int_list(self, t: Mapping[str, Any], dotted: str, default: list[int]) -> list[int]:
        value = t.get(self._leaf(dotted), default)
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in value)
        ):
            raise ConfigError(
                self.path, dotted, f"must be a non-empty list of integers, got {value!r}"
            )
        return value
