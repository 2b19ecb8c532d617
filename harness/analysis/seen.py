"""The names of a gated figure's range over fresh server processes: the lowest and highest value
the probe saw (a peak's reps over every process; each process's leak rate and slope). The probe's
analysis writes these rows and the gate reads them (a value the baseline saw is not a
regression), so both import the one table. No imports: the gate stays light."""

SEEN_METRICS: dict[str, tuple[str, str]] = {
    "alloc_peak_bytes": ("alloc_peak_low_bytes", "alloc_peak_high_bytes"),
    "retained_bytes_per_request": (
        "retained_low_bytes_per_request",
        "retained_high_bytes_per_request",
    ),
    "alloc_slope_bytes_per_unit": (
        "alloc_slope_low_bytes_per_unit",
        "alloc_slope_high_bytes_per_unit",
    ),
}
