"""Human units: the report, the console and the chart axes say sizes and times the same way."""

import math

import pytest

from harness.report._units import (
    MISSING,
    byte_scale,
    format_bytes,
    format_count,
    format_ms,
    format_percent,
    format_ratio,
    format_value,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (2.5, "2.5 B"),
        (1023, "1023 B"),
        (1024, "1.00 KiB"),
        (1536, "1.50 KiB"),
        (10 * 1024 + 512, "10.5 KiB"),
        (200 * 1024, "200 KiB"),
        (3 * 1024**2, "3.00 MiB"),
        (1.25 * 1024**3, "1.25 GiB"),
    ],
)
def test_bytes_use_binary_units(value: float, text: str) -> None:
    assert format_bytes(value) == text


def test_bytes_signed_and_negative() -> None:
    assert format_bytes(2048, signed=True) == "+2.00 KiB"
    assert format_bytes(-2048, signed=True) == "-2.00 KiB"
    assert format_bytes(0, signed=True) == "0 B"


def test_byte_scale_picks_the_unit_that_fits() -> None:
    assert byte_scale(100) == (1.0, "B")
    assert byte_scale(5 * 1024**2) == (1024.0**2, "MiB")
    assert byte_scale(-5 * 1024) == (1024.0, "KiB")


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.42, "0.420 ms"), (12.5, "12.5 ms"), (850, "850 ms"), (2500, "2.50 s"), (32_000, "32.0 s")],
)
def test_ms(value: float, text: str) -> None:
    assert format_ms(value) == text


def test_missing_values_are_a_dash() -> None:
    for fmt in (format_bytes, format_ms, format_count, format_percent, format_ratio):
        assert fmt(None) == MISSING
        assert fmt(math.nan) == MISSING
    assert format_value(math.nan, "bytes") == MISSING


def test_counts_percent_ratio() -> None:
    assert format_count(12345) == "12,345"
    assert format_count(3, signed=True) == "+3"
    assert format_percent(12.345) == "12.3%"
    assert format_percent(-4.0, signed=True) == "-4.0%"
    assert format_percent(0.0) == "0%"
    assert format_percent(math.inf) == "n/a"
    assert format_ratio(4.1234) == "4.1×"
    assert format_ratio(0.0824) == "0.082×"
    assert format_ratio(250) == "250×"
    assert format_ratio(math.inf) == MISSING


def test_format_value_by_unit() -> None:
    assert format_value(410, "bytes/message") == "410 B/message"
    assert format_value(7, "req/s") == "7.00 req/s"
    assert format_value(0.0125, "ratio") == "1.2%"  # a failure ratio reads as a percentage
    assert format_value(93.5, "percent") == "93.5%"
    assert format_value(3, "count") == "3"
    assert format_value(1.5, "widgets") == "1.50 widgets"


# --- the edges (from mutation testing) --------------------------------------------------------


def test_a_positive_sign_only_when_asked_and_above_zero() -> None:
    assert format_count(0.5, signed=True) == "+0.500"
    assert format_count(1, signed=True) == "+1"
    assert format_count(0.5) == "0.500"
    assert format_count(-2.25, signed=True) == "-2.25"
    assert format_count(1234.5) == "1234"  # three significant digits, no separator


def test_non_finite_values() -> None:
    assert format_count(math.inf) == "inf"
    assert format_ms(-math.inf) == "-inf s"
    assert format_value(math.inf, "widgets") == "inf widgets"


def test_fractional_bytes_are_trimmed() -> None:
    assert format_bytes(2.50) == "2.5 B"
    assert format_bytes(3.0) == "3 B"
    assert format_bytes(0.125) == "0.125 B"
    assert format_bytes(10.0) == "10 B"


def test_the_largest_byte_unit_holds_anything_bigger() -> None:
    assert byte_scale(1024.0**4) == (1024.0**4, "TiB")
    assert byte_scale(5000 * 1024.0**4) == (1024.0**4, "TiB")
    assert format_bytes(2048 * 1024.0**4) == "2048 TiB"
    assert byte_scale(1023 * 1024.0**3) == (1024.0**3, "GiB")


def test_ms_at_one_second_and_signed() -> None:
    assert format_ms(1000) == "1.00 s"
    assert format_ms(999.5) == "1000 ms"
    assert format_ms(1500, signed=True) == "+1.50 s"
    assert format_ms(-1500, signed=True) == "-1.50 s"
    assert format_ms(2.5, signed=True) == "+2.50 ms"


def test_percent_small_values_and_signs() -> None:
    assert format_percent(0.1) == "0.1%"
    assert format_percent(0.05) == "0.050%"
    assert format_percent(0.0123) == "0.012%"
    assert format_percent(1.0) == "1.0%"
    assert format_percent(0.099) == "0.099%"
    assert format_percent(2.5, signed=True) == "+2.5%"


def test_ratio_edges() -> None:
    assert format_ratio(0) == "0×"
    assert format_ratio(1) == "1.0×"
    assert format_ratio(10) == "10×"
    assert format_ratio(9.96) == "10.0×"
    assert format_ratio(1234.4) == "1,234×"


def test_format_value_passes_the_sign_for_every_unit() -> None:
    assert format_value(2048, "bytes", signed=True) == "+2.00 KiB"
    assert format_value(2048, "bytes") == "2.00 KiB"
    assert format_value(410, "bytes/message", signed=True) == "+410 B/message"
    assert format_value(1500, "ms", signed=True) == "+1.50 s"
    assert format_value(12.5, "ms") == "12.5 ms"
    assert format_value(7, "req/s", signed=True) == "+7.00 req/s"
    assert format_value(2.5, "percent", signed=True) == "+2.5%"
    assert format_value(0.025, "ratio", signed=True) == "+2.5%"
    assert format_value(3, "count", signed=True) == "+3"
    assert format_value(1.5, "widgets", signed=True) == "+1.50 widgets"
    assert format_value(1.5, "") == "1.50"
    assert format_value(None, "bytes") == MISSING


def test_trimming_and_zero() -> None:
    assert format_bytes(100.5) == "100 B"  # no point: nothing to trim
    assert format_bytes(3.001) == "3 B"
    assert format_ms(0.0) == "0 ms"
