"""What the harness needs to know about a service under test: a `[[target]]` table.

A target says how to start the service (a command with placeholders), how to tell it is up
(a health path, polled until it answers 200), which locustfile loads it, how to seed its
data (optional), how to stop it, and what else the harness can do with it:

- `python_module`: the command is `{python} -m <python_module> ...`, so memray can wrap it
  (`memray run -m <python_module> ...`): the profile phase applies.
- `probe_command`: the command that serves it wrapped in the tracemalloc probe
  (`harness.sampling.tracemalloc_probe.TracemallocProbe`).
- `probe`: the probe's recipes (harness.config.probe_recipe): the requests it measures and the
  data-size knob it sweeps. The probe phase applies with recipes and a `probe_command`.
- `chat_api`: it serves the reference chat API (`POST /chat`, `GET /history/{user_id}` with
  `history_len`): the integrity phase applies.
- `needs_upstream`: start the LLM emulator and fill `{upstream_url}`.
- `env`: environment variables for it; their values take the command's placeholders
  (`OPENAI_BASE_URL = "{upstream_url}/v1"`).

`python_app = "module:app"` is a shorthand: the harness serves that ASGI or WSGI app itself
with `{python} -m harness.serve module:app ...` (see harness.serve), which memray and the
probe can both wrap. A command that is `{python} -m harness.serve ...` gets the same default
`probe_command` (the command with `--probe`).

The reference designs are targets like any other (`reference_target`); the default
loadtest.toml spells them out. Pure: parsing, validation and placeholder filling, no I/O
beyond resolving paths.
"""

from __future__ import annotations

import re
import shlex
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness._errors import ConfigError
from harness.analysis.sizing import SizeTable, parse_size_table
from harness.config.probe_recipe import ProbeRecipe, parse_probe, reference_recipe

# Placeholders each command may use; the harness fills them in.
START_PLACEHOLDERS = frozenset({"python", "host", "port", "data_dir", "upstream_url", "workers"})
SEED_PLACEHOLDERS = frozenset({"python", "data_dir", "users", "whales", "whale_history", "seed"})
TARGET_KEYS = frozenset(
    {
        "name",
        "command",
        "python_app",
        "health",
        "scenario",
        "seed",
        "stop_signal",
        "python_module",
        "probe_command",
        "probe",
        "chat_api",
        "needs_upstream",
        "cwd",
        "env",
        "capacity",
        "size",
    }
)
CAPACITY_KEYS = frozenset({"objectives_p95_ms", "default_p95_ms", "start_rps", "arrivals"})
ARRIVAL_KINDS = ("tasks", "recipe")  # [target.capacity] arrivals: what one arrival runs
DEFAULT_TARGET_P95_MS = 500.0  # an endpoint of a target's own scenario that no objective names
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGQUIT", "SIGHUP")
RESERVED_NAMES = frozenset({"ceiling", "latest", "figures"})  # run-directory names
SERVE_MODULE = "harness.serve"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class TargetCapacity:
    """`[target.capacity]`: what the capacity search of a target's own scenario must keep.

    `objectives_p95_ms` maps Locust request names (`GET /items/{id}`) to a p95 objective on
    the latency corrected for coordinated omission; every other endpoint gets
    `default_p95_ms`. `start_rps` (None: `[capacity] start_rps`) is the first offered rate.
    `arrivals`: what one arrival runs: "tasks" (one task of the target's locustfile, by its
    weights) or "recipe" (the next of the probe recipe's requests, in turn; never its setup).
    """

    objectives_p95_ms: Mapping[str, float] = field(default_factory=dict)
    default_p95_ms: float = DEFAULT_TARGET_P95_MS
    start_rps: float | None = None
    arrivals: str = "tasks"

    def to_json(self) -> dict[str, Any]:
        return {
            "objectives_p95_ms": dict(self.objectives_p95_ms),
            "default_p95_ms": self.default_p95_ms,
            "start_rps": self.start_rps,
            "arrivals": self.arrivals,
        }


@dataclass(frozen=True)
class TargetSpec:
    """One service the harness can start, load and sample (see the module docstring)."""

    name: str
    command: tuple[str, ...]
    health: str = "/healthz"  # a path on the target's {host}:{port} that answers 200 when up
    scenario: str | None = None  # a name in scenarios/ or a locustfile path; None: the profile's
    seed: tuple[str, ...] | None = None
    stop_signal: str = "SIGINT"
    python_module: str | None = None
    probe_command: tuple[str, ...] | None = None
    probe: ProbeRecipe | None = None
    chat_api: bool = False
    needs_upstream: bool = False
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    capacity: TargetCapacity = field(default_factory=TargetCapacity)
    size: SizeTable | None = None  # [target.size]: the container sizing's inputs (docs/sizing.md)
    source: str = "built-in"  # the file that described it

    # --- what applies --------------------------------------------------------------------
    @property
    def takes_workers(self) -> bool:
        return "{workers}" in " ".join(self.command)

    def not_applicable(self, phase: str) -> str:
        """Why `phase` does not apply to this target; '' when it does."""
        if phase == "profile" and self.python_module is None:
            return (
                f"not applicable to target {self.name}: memray can wrap only a Python command "
                "(set python_module, or python_app)"
            )
        if phase == "probe":
            if self.probe is None:
                return (
                    f"not applicable to target {self.name}: no probe recipes "
                    "([target.probe] with [[target.probe.request]] tables)"
                )
            if self.probe_command is None:
                return f"not applicable to target {self.name}: no probe_command"
        recipe = self.capacity.arrivals == "recipe"
        if phase == "capacity" and not self.chat_api and self.scenario is None and not recipe:
            return (
                f"not applicable to target {self.name}: no scenario to drive open-model "
                "(set scenario = a locustfile)"
            )
        if phase == "integrity" and not self.chat_api:
            return (
                f"not applicable to target {self.name}: the integrity check reads the reference "
                "chat API's histories (chat_api = false)"
            )
        return ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "command": list(self.command),
            "health": self.health,
            "scenario": self.scenario,
            "seed": list(self.seed) if self.seed is not None else None,
            "stop_signal": self.stop_signal,
            "python_module": self.python_module,
            "probe_command": list(self.probe_command) if self.probe_command else None,
            "probe": self.probe.to_json() if self.probe is not None else None,
            "chat_api": self.chat_api,
            "needs_upstream": self.needs_upstream,
            "cwd": self.cwd,
            "env": dict(self.env),
            "capacity": self.capacity.to_json(),
            "size": asdict(self.size) if self.size is not None else None,
            "source": self.source,
        }


# --- filling placeholders -------------------------------------------------------------------


def fill(argv: Sequence[str], values: Mapping[str, object]) -> list[str]:
    """argv with every `{name}` replaced by values[name] (str()); unknown names stay."""

    def one(arg: str) -> str:
        return _PLACEHOLDER.sub(
            lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), arg
        )

    return [one(arg) for arg in argv]


def fill_env(env: Mapping[str, str], values: Mapping[str, object]) -> dict[str, str]:
    """The target's env with its values' placeholders filled like the command's."""
    return dict(zip(env, fill(list(env.values()), values), strict=True))


def start_values(
    port: int, host: str, data_dir: Path, upstream_url: str, workers: int
) -> dict[str, object]:
    return {
        "python": sys.executable,
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "upstream_url": upstream_url,
        "workers": workers,
    }


def stop_signal_number(name: str) -> int:
    return int(getattr(signal, name))


# --- the reference designs, as targets ------------------------------------------------------


def reference_target(design: str) -> TargetSpec:
    """The reference app's `design` (naive or optimized), exactly as loadtest.toml spells it."""
    serve = (
        "{python}", "-m", "reference_app", "serve",
        "--design", design,
        "--host", "{host}",
        "--port", "{port}",
        "--data-dir", "{data_dir}",
        "--upstream", "{upstream_url}",
        "--workers", "{workers}",
    )  # fmt: skip
    seed = (
        "{python}", "-m", "reference_app", "seed",
        "--design", design,
        "--data-dir", "{data_dir}",
        "--users", "{users}",
        "--whales", "{whales}",
        "--whale-history", "{whale_history}",
        "--seed", "{seed}",
    )  # fmt: skip
    return TargetSpec(
        name=design,
        command=serve,
        health="/healthz",
        seed=seed,
        python_module="reference_app",
        probe_command=(*serve, "--probe"),
        probe=reference_recipe(),
        chat_api=True,
        needs_upstream=True,
    )


REFERENCE_TARGETS: tuple[TargetSpec, ...] = (
    reference_target("naive"),
    reference_target("optimized"),
)


def python_app_command(app: str) -> tuple[str, ...]:
    return (
        "{python}", "-m", SERVE_MODULE, app,
        "--host", "{host}", "--port", "{port}", "--workers", "{workers}",
    )  # fmt: skip


# --- parsing --------------------------------------------------------------------------------


def parse_targets(raw: object, path: Path, key: str = "target") -> tuple[TargetSpec, ...]:
    """The `[[target]]` array of tables of a TOML file; errors name the file and the key."""
    if not isinstance(raw, list) or not all(isinstance(t, Mapping) for t in raw):
        raise ConfigError(path, key, "must be an array of tables ([[target]])")
    specs: list[TargetSpec] = []
    for index, table in enumerate(raw):
        spec = parse_target(table, path, f"{key}[{index}]")
        if any(s.name == spec.name for s in specs):
            raise ConfigError(path, f"{key}[{index}].name", f"target {spec.name!r} is listed twice")
        specs.append(spec)
    return tuple(specs)


def parse_target(t: Mapping[str, Any], path: Path, where: str) -> TargetSpec:
    """One [[target]] table. `where` is e.g. "target[0]"; keys are named target.<name>.<key>."""
    name = t.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            path, f"{where}.name", f"must be a name of letters, digits, '_', '-', '.', got {name!r}"
        )
    prefix = f"target.{name}"
    for key in t:
        if key not in TARGET_KEYS:
            raise ConfigError(
                path, f"{prefix}.{key}", f"unknown key (allowed: {', '.join(sorted(TARGET_KEYS))})"
            )
    if name in RESERVED_NAMES:
        raise ConfigError(path, f"{prefix}.name", f"{name!r} is reserved by the harness")
    base = path.parent

    python_app = _opt_string(t, "python_app", prefix, path)
    if python_app is not None and ":" not in python_app:
        raise ConfigError(path, f"{prefix}.python_app", "must be 'module:attribute'")
    if "command" in t:
        if python_app is not None:
            raise ConfigError(path, f"{prefix}.command", "give command or python_app, not both")
        command = _argv(t["command"], f"{prefix}.command", path, START_PLACEHOLDERS)
    elif python_app is not None:
        command = python_app_command(python_app)
    else:
        raise ConfigError(path, f"{prefix}.command", "missing: a start command (or python_app)")
    if not any("{port}" in arg for arg in command):
        raise ConfigError(path, f"{prefix}.command", "needs a {port} placeholder")

    python_module = _opt_string(t, "python_module", prefix, path)
    if python_app is not None and python_module is None:
        python_module = SERVE_MODULE
    if python_module is not None and list(command[:3]) != ["{python}", "-m", python_module]:
        raise ConfigError(
            path,
            f"{prefix}.python_module",
            f"the command must start with {{python}} -m {python_module} for memray to wrap it",
        )

    if "probe_command" in t:
        probe_command: tuple[str, ...] | None = _argv(
            t["probe_command"], f"{prefix}.probe_command", path, START_PLACEHOLDERS
        )
    elif python_module == SERVE_MODULE:
        probe_command = (*command, "--probe")  # harness.serve wraps the probe itself
    else:
        probe_command = None

    seed = _argv(t["seed"], f"{prefix}.seed", path, SEED_PLACEHOLDERS) if "seed" in t else None
    for key in ("health", "cwd", "scenario", "python_app", "python_module"):
        if isinstance(t.get(key), str):
            _check_placeholders(t[key], f"{prefix}.{key}", path, frozenset())
    health = _opt_string(t, "health", prefix, path) or "/healthz"
    if not health.startswith("/"):
        raise ConfigError(
            path, f"{prefix}.health", "must be a path that answers 200 when up, e.g. /healthz"
        )

    scenario = _opt_string(t, "scenario", prefix, path)
    if scenario is not None and _is_path(scenario):
        located = (base / scenario).resolve()
        if not located.is_file():
            raise ConfigError(path, f"{prefix}.scenario", f"no locustfile at {located}")
        scenario = str(located)

    stop = _opt_string(t, "stop_signal", prefix, path) or "SIGINT"
    if stop not in STOP_SIGNALS:
        raise ConfigError(
            path, f"{prefix}.stop_signal", f"must be one of {', '.join(STOP_SIGNALS)}"
        )

    cwd_raw = _opt_string(t, "cwd", prefix, path)
    cwd = str((base / cwd_raw).resolve()) if cwd_raw is not None else str(base.resolve())
    env_raw = t.get("env", {})
    if not isinstance(env_raw, Mapping) or not all(isinstance(v, str) for v in env_raw.values()):
        raise ConfigError(path, f"{prefix}.env", "must be a table of strings")
    for env_key, env_value in env_raw.items():
        _check_placeholders(env_value, f"{prefix}.env.{env_key}", path, START_PLACEHOLDERS)

    probe = (
        parse_probe(t["probe"], path, f"{prefix}.probe", START_PLACEHOLDERS)
        if "probe" in t
        else None
    )

    capacity = (
        parse_capacity(t["capacity"], path, f"{prefix}.capacity")
        if "capacity" in t
        else TargetCapacity()
    )
    if capacity.arrivals == "recipe" and probe is None:
        raise ConfigError(
            path,
            f"{prefix}.capacity.arrivals",
            '"recipe" runs the probe recipe\'s requests: add [target.probe] with '
            '[[target.probe.request]] tables, or use arrivals = "tasks"',
        )
    size = parse_size_table(t["size"], path, f"{prefix}.size") if "size" in t else None
    needs_upstream = _boolean(t, "needs_upstream", prefix, path)
    if not needs_upstream:
        for key, args in (
            ("command", command),
            ("probe_command", probe_command or ()),
            ("env", tuple(env_raw.values())),
        ):
            if any("{upstream_url}" in a for a in args):
                raise ConfigError(
                    path, f"{prefix}.{key}", "uses {upstream_url}: set needs_upstream = true"
                )
    return TargetSpec(
        name=name,
        command=command,
        health=health,
        scenario=scenario,
        seed=seed,
        stop_signal=stop,
        python_module=python_module,
        probe_command=probe_command,
        probe=probe,
        chat_api=_boolean(t, "chat_api", prefix, path),
        needs_upstream=needs_upstream,
        cwd=cwd,
        env={str(k): str(v) for k, v in env_raw.items()},
        capacity=capacity,
        size=size,
        source=str(path),
    )


def parse_capacity(raw: object, path: Path, key: str) -> TargetCapacity:
    """`[target.capacity]`: objectives_p95_ms (a table of positive numbers), default_p95_ms,
    start_rps, arrivals ("tasks" or "recipe")."""
    if not isinstance(raw, Mapping):
        raise ConfigError(path, key, "must be a table ([target.capacity])")
    for name in raw:
        if name not in CAPACITY_KEYS:
            raise ConfigError(
                path, f"{key}.{name}", f"unknown key (allowed: {', '.join(sorted(CAPACITY_KEYS))})"
            )
    objectives_raw = raw.get("objectives_p95_ms", {})
    if not isinstance(objectives_raw, Mapping):
        raise ConfigError(path, f"{key}.objectives_p95_ms", "must be a table of endpoint = ms")
    objectives = {
        str(endpoint): _positive(value, f"{key}.objectives_p95_ms.{endpoint}", path)
        for endpoint, value in objectives_raw.items()
    }
    default = (
        _positive(raw["default_p95_ms"], f"{key}.default_p95_ms", path)
        if "default_p95_ms" in raw
        else DEFAULT_TARGET_P95_MS
    )
    start = _positive(raw["start_rps"], f"{key}.start_rps", path) if "start_rps" in raw else None
    arrivals = raw.get("arrivals", "tasks")
    if arrivals not in ARRIVAL_KINDS:
        raise ConfigError(
            path,
            f"{key}.arrivals",
            f"must be one of {', '.join(repr(k) for k in ARRIVAL_KINDS)}, got {arrivals!r}",
        )
    return TargetCapacity(objectives, default, start, str(arrivals))


def _positive(value: object, key: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(path, key, f"must be a positive number, got {value!r}")
    return float(value)


def _is_path(scenario: str) -> bool:
    return scenario.endswith(".py") or "/" in scenario


def _opt_string(t: Mapping[str, Any], key: str, prefix: str, path: Path) -> str | None:
    if key not in t:
        return None
    value = t[key]
    if not isinstance(value, str) or not value:
        raise ConfigError(path, f"{prefix}.{key}", f"must be a non-empty string, got {value!r}")
    return value


def _boolean(t: Mapping[str, Any], key: str, prefix: str, path: Path) -> bool:
    value = t.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(path, f"{prefix}.{key}", f"must be true or false, got {value!r}")
    return value


def _argv(value: object, key: str, path: Path, allowed: frozenset[str]) -> tuple[str, ...]:
    """A command as a string (split like a shell would) or a list of strings."""
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ConfigError(path, key, f"cannot split the command: {exc}") from None
    elif isinstance(value, list) and all(isinstance(a, str) for a in value):
        argv = list(value)
    else:
        raise ConfigError(path, key, f"must be a string or a list of strings, got {value!r}")
    if not argv or not argv[0]:
        raise ConfigError(path, key, "must not be empty")
    for arg in argv:
        _check_placeholders(arg, key, path, allowed)
    return tuple(argv)


def _check_placeholders(text: str, key: str, path: Path, allowed: frozenset[str]) -> None:
    for name in _PLACEHOLDER.findall(text):
        if name not in allowed:
            known = ", ".join("{" + n + "}" for n in sorted(allowed)) or "none: this key takes none"
            raise ConfigError(path, key, f"unknown placeholder {{{name}}} (known: {known})")
