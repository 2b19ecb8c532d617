"""Units for people: sizes in binary units with 3 significant figures, changes and limits."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.gate._verdicts import Verdict


def format_size(value: float) -> str:
    """Bytes in binary units with 3 significant figures: 0.25 B, 512 B, 16 KiB, 1.25 MiB."""
    magnitude = abs(value)
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if magnitude >= factor:
            return f"{_sig(value / factor)} {unit}"
    if magnitude < 100:  # fractional bytes: slopes in bytes per size unit
        return f"{_sig(value)} B"
    return f"{_trim(round(value, 1))} B"


_PER_ABBREVIATIONS = {"message": "msg", "request": "req"}


def format_value(value: float, unit: str) -> str:
    if unit == "bytes":
        return format_size(value)
    if unit.startswith("bytes/"):
        per = unit.removeprefix("bytes/")
        return f"{format_size(value)}/{_PER_ABBREVIATIONS.get(per, per)}"
    if unit == "ratio":
        return f"{value:.1%}"
    return f"{_sig(value)} {unit}".strip()


def format_change(verdict: Verdict) -> str:
    change = verdict.change
    if change is None:
        return "-"
    magnitude = format_value(abs(change), verdict.unit)
    sign = "-" if change < 0 and not magnitude.startswith("0 ") else "+"
    text = sign + magnitude
    ratio = verdict.change_ratio
    if ratio is not None:
        text += f" ({ratio:+.1%})"
    return text


def format_limit(verdict: Verdict) -> str:
    limit = verdict.limit
    if limit is None:
        return verdict.threshold.describe() if verdict.threshold else "-"
    return "+" + format_value(limit, verdict.unit)


def _sig(value: float) -> str:
    if value == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return _trim(round(value, digits))


def _trim(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
