"""The probe's leak runs and a request's allocation sites, as the report draws and lists them.

Pure pandas, no I/O: moved out of `_frames` (the load phase's frames) so each module stays
small. `retained_curves` gives the lines of the retained-memory chart, `probe_site_rows` the
rows of the "where a request's memory goes" table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

import pandas as pd

from harness.analysis.probe import CHECKPOINT_COLUMNS, RESET, RESETS_AFTER, RESETS_COLUMN
from harness.report._frames import endpoints_sorted, pick_column

RETAINED_COLUMNS = ["endpoint", "history_len", "requests", "retained_bytes", "reset_subtracted"]


def _checkpoints(frame: pd.DataFrame) -> pd.DataFrame | None:
    """The leak runs' columns, numeric, or None when one is missing."""
    cols = {c: pick_column(frame, (c,)) for c in (*CHECKPOINT_COLUMNS, RESETS_COLUMN)}
    if any(cols[c] is None for c in ("endpoint", "history_len", "requests", "traced_bytes")):
        return None
    out = pd.DataFrame({"endpoint": frame[str(cols["endpoint"])].astype(str)})
    for name in ("history_len", "requests", "traced_bytes"):
        out[name] = pd.to_numeric(frame[str(cols[name])], errors="coerce")
    flag = cols[RESETS_COLUMN]
    if flag is not None:
        out["resets"] = pd.to_numeric(frame[flag], errors="coerce").fillna(0).astype(int) == 1
    else:
        out["resets"] = out["endpoint"].isin(RESETS_AFTER)
    return out.dropna(subset=["history_len", "requests", "traced_bytes"])


def retained_curves(checkpoints: pd.DataFrame | None) -> pd.DataFrame:
    """The leak runs as the chart draws them: one row per checkpoint, RETAINED_COLUMNS.

    retained_bytes: traced memory (after a collection) minus that of the run's first
    checkpoint. For an endpoint whose requests were each followed by the probe's reset, the
    reset run's own growth (same history length, same checkpoints) is subtracted, as the
    figure retained_bytes_per_request does (harness.analysis.probe.retention), so the line's
    slope after any step is that figure (which is a robust rate of the last run, after a warm-up
    until steady that the curve also shows). The reset run itself is not a curve.
    """
    empty = pd.DataFrame(
        {c: pd.Series(dtype=object if c == "endpoint" else float) for c in RETAINED_COLUMNS}
    )
    if checkpoints is None or checkpoints.empty:
        return empty
    frame = _checkpoints(checkpoints)
    if frame is None or frame.empty:
        return empty
    runs: dict[tuple[str, float], pd.DataFrame] = {}
    for key, group in frame.groupby(["endpoint", "history_len"], sort=False):
        endpoint, history_len = cast(tuple[str, float], key)
        group = group.sort_values("requests")
        grown = group["traced_bytes"] - float(group["traced_bytes"].iloc[0])
        runs[(str(endpoint), float(history_len))] = group.assign(grown=grown.to_numpy())
    rows: list[pd.DataFrame] = []
    for (endpoint, history_len), run in runs.items():
        if endpoint == RESET:
            continue
        reset = runs.get((RESET, history_len)) if bool(run["resets"].iloc[0]) else None
        retained = run["grown"].to_numpy(dtype=float)
        subtracted = False
        if reset is not None:
            # A leak run's last checkpoint is also the next run's first (the warm-up's end is
            # the run's start): one value a checkpoint, so each request count finds one.
            own = reset.drop_duplicates("requests", keep="last").set_index("requests")["grown"]
            if set(run["requests"]) <= set(own.index):
                retained = retained - own.reindex(run["requests"]).to_numpy(dtype=float)
                subtracted = True
        rows.append(
            pd.DataFrame(
                {
                    "endpoint": endpoint,
                    "history_len": history_len,
                    "requests": run["requests"].to_numpy(dtype=float),
                    "retained_bytes": retained,
                    "reset_subtracted": subtracted,
                }
            )
        )
    if not rows:
        return empty
    out = pd.concat(rows, ignore_index=True)
    order = {e: i for i, e in enumerate(endpoints_sorted([str(e) for e in out["endpoint"]]))}
    out = out.assign(_rank=out["endpoint"].map(order))
    out = out.sort_values(["_rank", "history_len", "requests"], kind="stable")
    return out[RETAINED_COLUMNS].reset_index(drop=True)


ONE_TIME = "one-time"  # the kind of a leak run's largest step site (probe_sites.json "step")
# The gate's STEP_SHOWN_BYTES: a smaller one-time growth is free lists or a first-use object.
ONE_TIME_SHOWN_BYTES = 1024.0
SITE_COLUMNS = ["endpoint", "history_len", "kind", "location", "function", "bytes", "count", "via"]


def probe_site_rows(sites: Mapping[str, Any] | None, n: int = 5) -> pd.DataFrame:
    """A request's allocation sites from probe_sites.json, SITE_COLUMNS, for the report's table.

    Per endpoint: the `n` largest peak sites at the largest history length probed (kind
    'peak', bytes held at the request's high-water mark), then the `n` largest retained sites
    (kind 'retained', bytes per request; present only where the leak run kept something), then
    the line where its one-time growth was allocated (kind 'one-time': the largest step site of
    its leak run, bytes in total, when at least ONE_TIME_SHOWN_BYTES: a cache filling).
    Rows that lack a location or a number are left out.
    """
    frames: list[pd.DataFrame] = []
    for key, kind, most in (
        ("peak", "peak", n),
        ("retained", "retained", n),
        ("step", ONE_TIME, 1),
    ):
        raw = sites.get(key) if isinstance(sites, Mapping) else None
        if not isinstance(raw, list):
            continue
        rows = [_site_row(r, kind) for r in raw if isinstance(r, Mapping)]
        frame = pd.DataFrame([r for r in rows if r is not None], columns=SITE_COLUMNS)
        if kind == ONE_TIME:
            frame = frame[frame["bytes"] >= ONE_TIME_SHOWN_BYTES]
        if frame.empty:
            continue
        largest = frame.groupby("endpoint")["history_len"].transform("max")
        frame = frame[frame["history_len"] == largest]
        frame = frame.sort_values("bytes", ascending=False, kind="stable")
        frames.append(frame.groupby("endpoint", sort=False).head(most))
    if not frames:
        return pd.DataFrame(columns=SITE_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    order = {e: i for i, e in enumerate(endpoints_sorted([str(e) for e in out["endpoint"]]))}
    kinds = {"peak": 0, "retained": 1, ONE_TIME: 2}
    out = out.assign(_rank=out["endpoint"].map(order), _kind=out["kind"].map(kinds))
    out = out.sort_values(["_rank", "_kind", "bytes"], ascending=[True, True, False])
    return out[SITE_COLUMNS].reset_index(drop=True)


def _site_row(raw: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    location = str(raw.get("location") or "").strip()
    size = pd.to_numeric(pd.Series([raw.get("bytes")]), errors="coerce").iloc[0]
    history = pd.to_numeric(pd.Series([raw.get("history_len")]), errors="coerce").iloc[0]
    if not location or pd.isna(size) or pd.isna(history):
        return None
    count = pd.to_numeric(pd.Series([raw.get("count")]), errors="coerce").iloc[0]
    return {
        "endpoint": str(raw.get("endpoint") or "?"),
        "history_len": float(history),
        "kind": kind,
        "location": short_location(location),
        "function": str(raw.get("function") or ""),  # tracemalloc's sites have none
        "bytes": float(size),
        "count": float(count),
        "via": short_location(str(raw.get("via") or "")),
    }


_PACKAGES_ROOT = re.compile(r"^.*/(?:site|dist)-packages/")
_STDLIB_ROOT = re.compile(r"^.*?/lib/python\d+\.\d+/")


def short_location(location: str) -> str:
    """A library's file:line from its package down ('json/decoder.py:353', 'httpx/_client.py:9'):
    the interpreter's and the virtualenv's directories say nothing to a reader. The service's
    own paths (relative to its root already) are kept whole."""
    text = location.strip().replace("\\", "/")
    shorter = _PACKAGES_ROOT.sub("", text)
    return shorter if shorter != text else _STDLIB_ROOT.sub("", text)
