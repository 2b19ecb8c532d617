"""Where a regression came from: the allocation sites that grew the most, and the sites file
stored beside a baseline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.analysis.sites import Site, SiteChange, growth
from harness.gate._format import format_size
from harness.gate._metrics import UPDATE_HINT, BaselineError
from harness.gate._verdicts import GateResult, SeriesKey

SITES_KIND = "memload-gate-sites"
SITES_SCHEMA_VERSION = 1
# design -> {"peak": [site rows], "retained": [site rows]}; a site row is a Site's JSON plus the
# endpoint and history_len of the request it was measured on (harness.phases.probe.SITES_JSON).
DesignSites = Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]


@dataclass(frozen=True)
class Explanation:
    """The allocation sites that grew the most in one regressed series."""

    key: SeriesKey
    kind: Literal["peak", "retained"]
    changes: tuple[SiteChange, ...]

    def lines(self) -> list[str]:
        unit = "/req" if self.kind == "retained" else ""
        out = []
        for c in self.changes:
            via = f" (via {c.via})" if c.via else ""
            name = f" in {c.function}" if c.function else ""
            out.append(f"+{format_size(c.change)}{unit} at {c.location}{name}{via}")
        return out

    def summary(self) -> str:
        """'+13.9 KiB at reference_app/optimized/store.py:88', the largest growth."""
        return self.lines()[0] if self.changes else "no allocation site grew"


def _sites_for(
    sites: DesignSites, design: str, kind: str, endpoint: str, history_len: str | None
) -> list[Site]:
    rows = (sites.get(design) or {}).get(kind) or []
    return [
        Site.from_json(r)
        for r in rows
        if str(r.get("endpoint")) == endpoint
        and (history_len is None or str(r.get("history_len")) == history_len)
    ]


def _nearest_history_len(
    sites: DesignSites, design: str, endpoint: str, wanted: str | None
) -> str | None:
    """The history length with peak sites nearest to `wanted` (None: the largest)."""
    lens = {
        int(r["history_len"])
        for r in (sites.get(design) or {}).get("peak") or []
        if str(r.get("endpoint")) == endpoint and str(r.get("history_len", "")).isdigit()
    }
    if not lens:
        return None
    if wanted is None or not wanted.isdigit():
        return str(max(lens))
    return str(min(lens, key=lambda n: (abs(n - int(wanted)), -n)))


def explain(
    result: GateResult, baseline_sites: DesignSites, current_sites: DesignSites, top: int = 3
) -> dict[SeriesKey, Explanation]:
    """For each regressed series, the sites that grew the most between the baseline and now.

    A peak is explained by the peak sites (what the request held at its high-water mark) at the
    nearest history length that has them; a slope by those at the largest; retained memory by
    the retained sites (per request).
    """
    out: dict[SeriesKey, Explanation] = {}
    for v in result.regressions:
        labels = dict(v.key.labels)
        endpoint = labels.get("endpoint", "")
        kind: Literal["peak", "retained"] = (
            "retained" if v.key.metric == "retained_bytes_per_request" else "peak"
        )
        history_len: str | None = None
        if kind == "peak":
            history_len = _nearest_history_len(
                current_sites, v.key.design, endpoint, labels.get("history_len")
            )
        before = _sites_for(baseline_sites, v.key.design, kind, endpoint, history_len)
        after = _sites_for(current_sites, v.key.design, kind, endpoint, history_len)
        if after:
            out[v.key] = Explanation(v.key, kind, tuple(growth(before, after, top)))
    return out


def build_sites(sites: DesignSites, *, created_at: str, git_sha: str) -> dict[str, Any]:
    """The JSON payload stored beside a baseline: every design's probe sites."""
    return {
        "schema_version": SITES_SCHEMA_VERSION,
        "kind": SITES_KIND,
        "created_at": created_at,
        "git_sha": git_sha,
        "designs": {d: dict(s) for d, s in sites.items()},
    }


def parse_sites(raw: Any, where: object, hint: str = UPDATE_HINT) -> DesignSites:
    """The designs' sites of a sites file; BaselineError when it cannot be used."""
    if not isinstance(raw, Mapping) or raw.get("kind") != SITES_KIND:
        raise BaselineError(f"{where}: not a gate sites file")
    if raw.get("schema_version") != SITES_SCHEMA_VERSION:
        raise BaselineError(
            f"{where}: sites schema_version {raw.get('schema_version')!r} is not "
            f"{SITES_SCHEMA_VERSION}; re-create it with `{hint}`"
        )
    designs = raw.get("designs")
    if not isinstance(designs, Mapping):
        raise BaselineError(f"{where}: malformed designs section")
    return designs
