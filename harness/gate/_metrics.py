"""The gate's vocabulary: which figures it gates, their noise companions, the verdicts."""

from __future__ import annotations

from typing import Literal

from harness._errors import EXIT_USAGE, HarnessError
from harness.analysis.seen import SEEN_METRICS as SEEN_METRICS  # the gate reads these rows

BASELINE_KIND = "memload-gate-baseline"
BASELINE_SCHEMA_VERSION = 3
PROBE_PHASE = "probe"

# The figures the gate compares, with the unit the probe reports them in (a verdict's unit is
# always its rows'). Their order is the
# order of the tables.
GATED_METRICS: dict[str, str] = {
    "alloc_peak_bytes": "bytes",
    "retained_bytes_per_request": "bytes/request",
    # bytes per the recipe's size_unit (message, note, row...): the rows carry the real unit
    "alloc_slope_bytes_per_unit": "bytes/<size_unit>",
}
# A gated metric's noise: the probe figure that says how much it moves by chance.
NOISE_METRICS: dict[str, str] = {
    "alloc_peak_bytes": "alloc_peak_spread_bytes",
    "retained_bytes_per_request": "retained_stderr_bytes",
}
DEFAULT_NOISE_K = 4.0
# Shown, never gated: the variation of a peak across reps, what one request left allocated (a
# single request's net figure swings with deferred frees; the leak run's slope is the leak
# figure), blocks retained per request (the bytes figure is gated), and the one-time growth of a
# leak run (a cache filling: kept once, not per request; shown beside the rate).
INFORMATIONAL_METRICS = (
    "alloc_cv",
    "alloc_net_bytes",
    "retained_blocks_per_request",
    "retained_step_bytes",
)
STEP_METRIC = "retained_step_bytes"
RATE_METRIC = "retained_bytes_per_request"
# A one-time growth below this is not worth a line (free lists, a first-use object).
STEP_SHOWN_BYTES = 1024.0
CV_METRIC = "alloc_cv"
CV_WARN_RATIO = 0.05
# Labels a selector may name. `design` is a field of a summary row, matched like a label.
KNOWN_LABELS = ("design", "endpoint", "history_len")

# What to run to refresh a baseline, for this project's own reference designs; for any other
# config the gate names the command with its --config (harness.gate._run.update_hint).
UPDATE_HINT = "make gate ARGS=--update-baseline"

Status = Literal["pass", "regression", "improved", "missing", "new", "off"]


class BaselineError(HarnessError):
    """The baseline cannot be used: absent, unreadable, another schema. Exit 2."""

    exit_code = EXIT_USAGE
