"""The sizing as text people paste: from a design's sizing.json to the console's lines (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MIB = 2**20


def _mib(value: object) -> str:
    return f"{value / MIB:,.1f} MiB" if isinstance(value, int | float) else "-"


def proof_line(proof: Mapping[str, Any]) -> str:
    label = "at the limit" if proof.get("label") == "limit" else "at 60% of it"
    ratio = proof.get("failure_ratio")
    parts = [
        f"{proof.get('oom_kills', 0)} OOM kill(s)",
        f"{proof.get('failures', 0)} of {proof.get('requests', 0)} requests failed"
        + (f" ({ratio:.1%})" if isinstance(ratio, float) else ""),
    ]
    if isinstance(proof.get("p95_ms"), int | float):
        parts.append(f"p95 {proof['p95_ms']:,.0f} ms")
    if proof.get("app_exit") is not None:
        parts.append(f"app exited {proof['app_exit']}")
    if proof.get("problem"):
        parts.append(str(proof["problem"]))
    held = "held" if proof.get("held") else "did not hold"
    under = f" under {proof['runtime']}" if proof.get("runtime") else ""
    return f"  {label} ({_mib(proof.get('limit_bytes'))}{under}): {held}: " + ", ".join(parts)


def sizing_lines(data: Mapping[str, Any]) -> list[str]:
    """The recommendation, its terms (the dominant one named), the blocks, the proof."""
    lines = [
        f"{data.get('design', '?')}: request {_mib(data.get('request_bytes'))}, limit "
        f"{_mib(data.get('limit_bytes'))} ({float(data.get('headroom', 0)):.0%} headroom); "
        f"dominant term: {data.get('dominant', '?')}",
    ]
    for term in data.get("terms", []):
        lines.append(f"  {term['name']:<10} {_mib(term['bytes']):>12}  {term['formula']}")
    lines.append(f"  in flight: {data.get('in_flight_source', '')}")
    if data.get("rate_rps") is not None:
        lines.append(f"  rate: {data['rate_rps']:g} req/s ({data.get('rate_source', '')})")
    if data.get("data_note"):
        lines.append(f"  data: {data['data_note']}")
    if data.get("retained_note"):
        lines.append(f"  retained: {data['retained_note']}")
    lines += ["  " + line for line in str(data.get("kubernetes", "")).splitlines()]
    lines.append(f"  {data.get('docker', '')}")
    lines.append(f"  {data.get('worker_note', '')}")
    if data.get("not_proven"):
        lines.append(f"  not proven here: {data['not_proven']}")
    for proof in data.get("proofs", []):
        lines.append(proof_line(proof))
    return lines
