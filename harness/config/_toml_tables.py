"""Typed reads of a parsed TOML table, each error naming the file and the dotted key: the one
validator the config file's tables share."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness._errors import ConfigError


class TableValidator:
    """Typed reads of one TOML table; every error is a ConfigError naming the file and the
    dotted key."""

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
