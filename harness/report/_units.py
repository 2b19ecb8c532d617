"""Human units for the report: binary byte sizes (KiB, MiB), milliseconds, counts, ratios.

Pure functions, no matplotlib and no pandas, so the Markdown, the HTML and the chart
axes all say the same thing the same way. A missing value (None or NaN) is an en dash.
"""

from __future__ import annotations

import math

MISSING = "–"

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _sign(value: float, signed: bool) -> str:
    if signed and value > 0:
        return "+"
    return ""


def _significant(value: float, digits: int = 3) -> str:
    """`value` with about `digits` significant digits, without an exponent."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:.{decimals}f}"


def _trim(text: str) -> str:
    """'2.50' -> '2.5', '3.00' -> '3'."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def byte_scale(value: float) -> tuple[float, str]:
    """(divisor, unit) that shows `value` bytes with 1-3 digits before the point."""
    size = abs(value)
    divisor = 1.0
    for unit in _BYTE_UNITS:
        if size < 1024 * divisor or unit == _BYTE_UNITS[-1]:
            return divisor, unit
        divisor *= 1024
    return divisor, _BYTE_UNITS[-1]  # pragma: no cover - the loop always returns


def format_bytes(value: float | None, signed: bool = False) -> str:
    """1536 -> '1.50 KiB'; 0 -> '0 B'; whole bytes below 1 KiB."""
    if value is None or _missing(float(value)):
        return MISSING
    divisor, unit = byte_scale(value)
    if unit == "B":
        text = f"{value:.0f}" if float(value).is_integer() else _trim(_significant(value))
    else:
        text = _significant(value / divisor)
    return f"{_sign(value, signed)}{text} {unit}"


def format_ms(value: float | None, signed: bool = False) -> str:
    """Milliseconds: '850 ms', '12.5 ms', '0.420 ms'; seconds from 1 s up: '3.20 s'."""
    if value is None or _missing(float(value)):
        return MISSING
    if abs(value) >= 1000:
        return f"{_sign(value, signed)}{_significant(value / 1000)} s"
    return f"{_sign(value, signed)}{_significant(value)} ms"


def format_count(value: float | None, signed: bool = False) -> str:
    """Whole counts with thousands separators; fractions keep three significant digits."""
    if value is None or _missing(float(value)):
        return MISSING
    if float(value).is_integer():
        return f"{_sign(value, signed)}{int(value):,}"
    return f"{_sign(value, signed)}{_significant(value)}"


def format_percent(value: float | None, signed: bool = False) -> str:
    """A value already in percent: 12.345 -> '12.3%'."""
    if value is None or _missing(float(value)):
        return MISSING
    if not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0%"
    text = _significant(value, 2) if abs(value) < 0.1 else f"{value:.1f}"
    return f"{_sign(value, signed)}{text}%"


def format_ratio(value: float | None) -> str:
    """A ratio of two designs: 0.4213 -> '0.42×', 12.0 -> '12.0×'."""
    if value is None or _missing(float(value)) or not math.isfinite(value):
        return MISSING
    if value == 0:
        return "0×"
    return f"{_significant(value, 2)}×" if abs(value) < 10 else f"{value:,.0f}×"


def format_value(value: float | None, unit: str, signed: bool = False) -> str:
    """Format a summary value by its unit (see docs/internals.md for the unit names)."""
    if value is None or _missing(float(value)):
        return MISSING
    if unit == "bytes":
        return format_bytes(value, signed)
    if unit.startswith("bytes/"):
        return f"{format_bytes(value, signed)}/{unit.removeprefix('bytes/')}"
    if unit == "ms":
        return format_ms(value, signed)
    if unit == "req/s":
        return f"{_sign(value, signed)}{_significant(value)} req/s"
    if unit == "percent":
        return format_percent(value, signed)
    if unit == "ratio":
        # a failure ratio or a coefficient of variation: show it as a percentage
        return format_percent(value * 100, signed)
    if unit == "count":
        return format_count(value, signed)
    return f"{_sign(value, signed)}{_significant(value)} {unit}".rstrip()
