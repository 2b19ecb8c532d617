"""The report's "Container sizing" section: the terms of each design's limit, its proof, and a
chart of RSS against requests in flight.

Reads `<run>/<design>/size/sizing.json` (harness.phases.size) and the step tables of the
capacity search and of the proof runs (`capacity/capacity_steps.csv`,
`size/proof-*/capacity_steps.csv`): each step is a point, requests in flight (Little's law:
achieved rate x corrected median latency) against the largest RSS of the server's tree during
the step. The chart draws those points, their least-squares fit, the model's line (idle +
data + in flight x peak per request) and the recommended limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from harness.report._figures import Chart, design_colour
from harness.report._plot import _figure, _png, _style
from harness.report._units import format_bytes
from harness.results import read_json

if TYPE_CHECKING:
    from harness.report._model import RunData

SIZING_CHART = "sizing"
SIZING_TITLE = "Container sizing: a memory limit from the measurements, proven under a kernel limit"
SIZING_NOTES = [
    "The request is the sum of the terms: workers x (idle RSS + data growth at the largest "
    "data size), plus requests in flight x the probe's peak per request at that size; the limit "
    "adds the headroom. The proof runs the open-model load at the stated rate under the limit, "
    "then under 60% of it, in a memory cgroup: OOM kills are the kernel's count "
    "(docs/sizing.md).",
]
STEP_FILES = ("capacity/capacity_steps.csv", "size/proof-limit/capacity_steps.csv")
MIB = 2**20


def sizing_of(root: Path, design: str) -> dict[str, Any] | None:
    path = root / design / "size" / "sizing.json"
    if not path.exists():
        return None
    data: dict[str, Any] = read_json(path)
    return data


def points(root: Path, design: str) -> pd.DataFrame:
    """(in_flight, rss_bytes) per measured step: the capacity search's and the proof's."""
    frames = []
    for name in STEP_FILES:
        try:
            steps = pd.read_csv(root / design / name)
        except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError):
            continue
        if not {"achieved_rps", "p50_ms", "rss_max_bytes"} <= set(steps.columns):
            continue
        rate = pd.to_numeric(steps["achieved_rps"], errors="coerce")
        p50 = pd.to_numeric(steps["p50_ms"], errors="coerce")
        rss = pd.to_numeric(steps["rss_max_bytes"], errors="coerce")
        frames.append(pd.DataFrame({"in_flight": rate * p50 / 1000.0, "rss_bytes": rss}))
    if not frames:
        return pd.DataFrame(columns=["in_flight", "rss_bytes"])
    return pd.concat(frames, ignore_index=True).dropna()


def model_rss(sizing: Mapping[str, Any], in_flight: Any) -> Any:
    """The model's RSS at `in_flight` requests (a number or an array): every term but the
    in-flight one, plus in flight x the peak per request (no headroom)."""
    base = sum(float(t["bytes"]) for t in sizing["terms"] if t["name"] != "in_flight")
    return base + in_flight * float(sizing["peak_bytes"])


def model_gap(sizing: Mapping[str, Any], steps: pd.DataFrame) -> tuple[float, float] | None:
    """The model's error at the measured steps, (model - measured) / measured: its lowest
    and highest; None without a step."""
    if steps.empty:
        return None
    gap = (model_rss(sizing, steps["in_flight"]) - steps["rss_bytes"]) / steps["rss_bytes"]
    return float(gap.min()), float(gap.max())


def _proof_cell(proof: Mapping[str, Any] | None) -> str:
    if proof is None:
        return "not run"
    parts = [f"{proof.get('oom_kills', 0)} OOM kill(s)"]
    parts.append(f"{proof.get('failures', 0)}/{proof.get('requests', 0)} failed")
    if proof.get("app_exit") is not None:
        parts.append(f"app exited {proof['app_exit']}")
    if proof.get("runtime"):
        parts.append(f"under {proof['runtime']}")
    return ", ".join(parts)


def sizing_table(data: RunData) -> dict[str, Any] | None:
    rows = []
    for design in data.designs:
        sizing = sizing_of(data.root, design)
        if sizing is None:
            continue
        dominant = sizing.get("dominant")
        for term in sizing.get("terms", []):
            mood = "bad" if term["name"] == dominant else ""
            rows.append(_row(design, term["name"], term["bytes"], term["formula"], mood))
        rows.append(_row(design, "headroom", sizing["headroom_bytes"], f"{sizing['headroom']:.0%}"))
        rows.append(_row(design, "request", sizing["request_bytes"], "the sum, whole MiB"))
        rows.append(_row(design, "limit", sizing["limit_bytes"], "with headroom, whole MiB"))
        proofs = {p.get("label"): p for p in sizing.get("proofs", [])}
        for label, text in (("limit", "proof at the limit"), ("60pct", "proof at 60%")):
            proof = proofs.get(label)
            how = _proof_cell(proof) if proofs else f"not proven here: {sizing.get('not_proven')}"
            size = proof.get("limit_bytes") if proof else math.nan
            mood = "" if proof is None or proof.get("held") == (label == "limit") else "bad"
            rows.append(_row(design, text, size, how, mood))
    if not rows:
        return None
    return {
        "title": "The terms of each limit",
        "label": "term",
        "columns": ["bytes", "how"],
        "rows": rows,
        "note": "The dominant term is in bold. A proof at the limit must show no OOM kill and "
        "at most 1% failures; at 60% the limit is expected to bind.",
    }


def _row(design: str, label: str, value: object, how: str, mood: str = "") -> dict[str, Any]:
    number = float(value) if isinstance(value, int | float) else math.nan
    return {
        "design": design,
        "label": label,
        "cells": [{"text": format_bytes(number), "mood": mood}, {"text": how, "mood": ""}],
    }


def sizing_notes(data: RunData) -> list[str]:
    """Per design: the limit, the dominant term, what to paste; then the limits' ratio."""
    notes = []
    limits: dict[str, float] = {}
    for design in data.designs:
        sizing = sizing_of(data.root, design)
        if sizing is None:
            continue
        limits[design] = float(sizing["limit_bytes"])
        kube = " ".join(str(sizing.get("kubernetes", "")).split())
        notes.append(
            f"{design}: limit {format_bytes(limits[design])}, request "
            f"{format_bytes(float(sizing['request_bytes']))}; the dominant term is "
            f"{sizing.get('dominant')} ({_term_formula(sizing)}). Kubernetes: `{kube}`; "
            f"Docker: `{sizing.get('docker')}`; {sizing.get('worker_note')}."
        )
        steps = points(data.root, design)
        gap = model_gap(sizing, steps)
        if gap is not None:
            notes.append(
                f"{design}: the model (no headroom) is {gap[0]:+.0%} to {gap[1]:+.0%} of the "
                f"RSS measured at {len(steps)} step(s) of the capacity search and the proof."
            )
    if limits.get("optimized") and "naive" in limits:
        notes.append(f"naive / optimized limit: {limits['naive'] / limits['optimized']:.2f}.")
    return notes


def _term_formula(sizing: Mapping[str, Any]) -> str:
    for term in sizing.get("terms", []):
        if term["name"] == sizing.get("dominant"):
            return str(term["formula"])
    return ""


@dataclass(frozen=True)
class Panel:
    design: str
    sizing: Mapping[str, Any]
    points: pd.DataFrame


def sizing_charts(data: RunData) -> list[Chart]:
    panels = []
    for design in data.designs:
        sizing = sizing_of(data.root, design)
        if sizing is not None:
            panels.append(Panel(design, sizing, points(data.root, design)))
    if not panels:
        return []
    return [
        Chart(
            name=SIZING_CHART,
            title="RSS against requests in flight, and the recommended limit",
            phase="size",
            caption=(
                "Points: each step of the capacity search and of the proof at the limit, "
                "requests in flight (achieved rate x corrected median latency) against the "
                "largest RSS of the server's tree in the step. Dashed: their least-squares fit. "
                "Solid: the model (workers x (idle + data) + in flight x peak per request). "
                "Red: the recommended limit; dotted: the request."
            ),
            png=_draw(panels),
        )
    ]


def _draw(panels: Sequence[Panel]) -> bytes:
    with _style():
        fig = _figure(5.5 * len(panels), 4.2)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, panel in zip(axes, panels, strict=True):
            s, colour = panel.sizing, design_colour(panel.design)
            top = max(float(s["in_flight"]), float(panel.points["in_flight"].max() or 0), 1.0)
            x = np.linspace(0.0, top * 1.1, 50)
            ax.plot(x, model_rss(s, x) / MIB, "-", color=colour, label="model")
            if not panel.points.empty:
                px, py = panel.points["in_flight"], panel.points["rss_bytes"] / MIB
                ax.plot(px, py, "o", color=colour, label="measured steps")
                if px.nunique() >= 2:
                    slope, intercept = np.polyfit(px, py, 1)
                    ax.plot(x, slope * x + intercept, "--", color=colour, label="fit")
            ax.axhline(float(s["limit_bytes"]) / MIB, color="#C0392B", label="limit")
            ax.axhline(float(s["request_bytes"]) / MIB, color="#C0392B", linestyle=":")
            ax.axvline(float(s["in_flight"]), color="black", linewidth=0.8, linestyle=":")
            ax.set_ylim(bottom=0)
            ax.set_xlabel("requests in flight")
            ax.set_ylabel("RSS (MiB)")
            ax.set_title(f"{panel.design}: limit {float(s['limit_bytes']) / MIB:.0f} MiB")
            ax.legend(loc="best")
        return _png(fig)
