"""Service settings: built from the command line, carried to uvicorn workers by environment.

`uvicorn --workers N` imports the app by name in fresh processes, so whatever `serve` parsed
must travel through the environment (`to_env` / `from_env`). Of these variables only
REFAPP_CONTEXT_WINDOW is a documented knob (docs/internals.md); REFAPP_MAX_*_BYTES,
REFAPP_UPSTREAM_TIMEOUT_S and REFAPP_PLANT_* (reference_app.planted) exist for tests; the rest
are internal plumbing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reference_app import planted

DESIGNS = ("naive", "optimized")
DEFAULT_CONTEXT_WINDOW = 20
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024
DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_UPSTREAM_TIMEOUT_S = 30.0

ENV_DESIGN = "REFAPP_DESIGN"
ENV_DATA_DIR = "REFAPP_DATA_DIR"
ENV_UPSTREAM = "REFAPP_UPSTREAM"
ENV_PROBE = "REFAPP_PROBE"
ENV_CONTEXT_WINDOW = "REFAPP_CONTEXT_WINDOW"
ENV_MAX_MESSAGE_BYTES = "REFAPP_MAX_MESSAGE_BYTES"
ENV_MAX_BODY_BYTES = "REFAPP_MAX_BODY_BYTES"
ENV_UPSTREAM_TIMEOUT_S = "REFAPP_UPSTREAM_TIMEOUT_S"
ENV_PLANT_LEAK = "REFAPP_PLANT_LEAK"
ENV_PLANT_TRANSIENT = "REFAPP_PLANT_TRANSIENT"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    design: str
    data_dir: Path
    upstream_url: str
    probe: bool = False
    context_window: int = DEFAULT_CONTEXT_WINDOW
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    upstream_timeout_s: float = DEFAULT_UPSTREAM_TIMEOUT_S
    plant_leak: str = ""  # test-only: reference_app.planted
    plant_transient: str = ""

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise SettingsError(f"design must be one of {', '.join(DESIGNS)}, got {self.design!r}")
        for name in ("context_window", "max_message_bytes", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1")
        if self.upstream_timeout_s <= 0:
            raise SettingsError("upstream_timeout_s must be positive")
        try:
            planted.parse_plan(self.plant_leak, ENV_PLANT_LEAK)
            planted.parse_plan(self.plant_transient, ENV_PLANT_TRANSIENT)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    @property
    def leak_plan(self) -> dict[str, int]:
        return planted.parse_plan(self.plant_leak, ENV_PLANT_LEAK)

    @property
    def transient_plan(self) -> dict[str, int]:
        return planted.parse_plan(self.plant_transient, ENV_PLANT_TRANSIENT)

    def to_env(self) -> dict[str, str]:
        return {
            ENV_DESIGN: self.design,
            ENV_DATA_DIR: str(self.data_dir),
            ENV_UPSTREAM: self.upstream_url,
            ENV_PROBE: "1" if self.probe else "0",
            ENV_CONTEXT_WINDOW: str(self.context_window),
            ENV_MAX_MESSAGE_BYTES: str(self.max_message_bytes),
            ENV_MAX_BODY_BYTES: str(self.max_body_bytes),
            ENV_UPSTREAM_TIMEOUT_S: str(self.upstream_timeout_s),
            ENV_PLANT_LEAK: self.plant_leak,
            ENV_PLANT_TRANSIENT: self.plant_transient,
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = env.get(name)
            if not value:
                raise SettingsError(f"{name} is not set")
            return value

        return cls(
            design=required(ENV_DESIGN),
            data_dir=Path(required(ENV_DATA_DIR)),
            upstream_url=required(ENV_UPSTREAM),
            probe=env.get(ENV_PROBE, "0") == "1",
            context_window=_int(env, ENV_CONTEXT_WINDOW, DEFAULT_CONTEXT_WINDOW),
            max_message_bytes=_int(env, ENV_MAX_MESSAGE_BYTES, DEFAULT_MAX_MESSAGE_BYTES),
            max_body_bytes=_int(env, ENV_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES),
            upstream_timeout_s=_float(env, ENV_UPSTREAM_TIMEOUT_S, DEFAULT_UPSTREAM_TIMEOUT_S),
            plant_leak=env.get(ENV_PLANT_LEAK, ""),
            plant_transient=env.get(ENV_PLANT_TRANSIENT, ""),
        )

    @classmethod
    def for_serve(
        cls,
        design: str,
        data_dir: Path,
        upstream_url: str,
        probe: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        """Command-line values plus the knobs only the environment sets."""
        env = os.environ if env is None else env
        return cls(
            design=design,
            data_dir=data_dir,
            upstream_url=upstream_url,
            probe=probe,
            context_window=_int(env, ENV_CONTEXT_WINDOW, DEFAULT_CONTEXT_WINDOW),
            max_message_bytes=_int(env, ENV_MAX_MESSAGE_BYTES, DEFAULT_MAX_MESSAGE_BYTES),
            max_body_bytes=_int(env, ENV_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES),
            upstream_timeout_s=_float(env, ENV_UPSTREAM_TIMEOUT_S, DEFAULT_UPSTREAM_TIMEOUT_S),
            plant_leak=env.get(ENV_PLANT_LEAK, ""),
            plant_transient=env.get(ENV_PLANT_TRANSIENT, ""),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
