"""Helpers the config and target tests share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import config
from harness._errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path, overrides: dict[str, Any] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config.load(path, overrides)
    return info.value
