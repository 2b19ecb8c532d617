"""The baseline file: what `--update-baseline` writes, what the gate reads back, and why a
baseline cannot be compared with a run (other settings, other environment)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.gate._metrics import BASELINE_KIND, BASELINE_SCHEMA_VERSION, UPDATE_HINT, BaselineError
from harness.gate._verdicts import SeriesKey, _sort_key, gated_rows, noise_rows, seen_rows
from harness.results import SummaryRow


@dataclass(frozen=True)
class Baseline:
    rows: tuple[SummaryRow, ...]
    provenance: Mapping[str, Any]
    probe: Mapping[str, Any]  # designs, history_lens, reps, warmup
    created_at: str = ""


def build_baseline(
    rows: Iterable[SummaryRow],
    *,
    created_at: str,
    environment: Mapping[str, Any],
    probe: Mapping[str, Any],
    source_run: str,
    git_dirty: bool | None = None,
) -> dict[str, Any]:
    """The JSON payload of a baseline: the gated rows with where and how they were measured."""
    rows = list(rows)
    kept = sorted(gated_rows(rows), key=lambda r: _sort_key(SeriesKey.of(r)))
    kept += sorted(
        noise_rows(rows) + seen_rows(rows), key=lambda r: (r.metric, _sort_key(SeriesKey.of(r)))
    )
    return {
        "schema_version": BASELINE_SCHEMA_VERSION,
        "kind": BASELINE_KIND,
        "created_at": created_at,
        "provenance": {
            "git_sha": environment.get("git_sha", "unknown"),
            "git_dirty": git_dirty,  # uncommitted changes when measured (None: not known)
            "python": environment.get("python", "unknown"),
            "python_implementation": environment.get("python_implementation", "unknown"),
            "platform": environment.get("platform", "unknown"),
            "cpu_model": environment.get("cpu_model", "unknown"),
            "packages": dict(environment.get("packages") or {}),
            "environment_fingerprint": environment_fingerprint(environment),
            "source_run": source_run,
        },
        "probe": dict(probe),
        "rows": [r.to_json() for r in kept],
    }


def parse_baseline(raw: Any, where: object, hint: str = UPDATE_HINT) -> Baseline:
    """Validate a parsed baseline file; BaselineError (exit 2) when it cannot be used."""
    if not isinstance(raw, Mapping):
        raise BaselineError(f"{where}: not a gate baseline (expected a JSON object)")
    if raw.get("kind") != BASELINE_KIND:
        raise BaselineError(f"{where}: not a gate baseline (kind {raw.get('kind')!r})")
    version = raw.get("schema_version")
    if version != BASELINE_SCHEMA_VERSION:
        raise BaselineError(
            f"{where}: baseline schema_version {version!r} is not {BASELINE_SCHEMA_VERSION}; "
            f"re-create it with `{hint}`"
        )
    try:
        rows = tuple(SummaryRow.from_json(r) for r in raw["rows"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BaselineError(f"{where}: malformed rows: {exc!r}") from None
    provenance = raw.get("provenance") or {}
    probe = raw.get("probe") or {}
    if not isinstance(provenance, Mapping) or not isinstance(probe, Mapping):
        raise BaselineError(f"{where}: malformed provenance/probe sections")
    return Baseline(rows, provenance, probe, str(raw.get("created_at") or ""))


def settings_mismatch(
    baseline: Baseline, designs: Sequence[str], history_lens: Sequence[int]
) -> str:
    """Why a probe run with these settings cannot be compared with the baseline ('' if it can).

    Only the designs and history lengths matter for which series exist; a design the baseline
    lacks is allowed (its series are reported as new).
    """
    problems: list[str] = []
    base_lens = baseline.probe.get("history_lens")
    if base_lens is not None and sorted(int(x) for x in base_lens) != sorted(history_lens):
        problems.append(f"history_lens {list(base_lens)} in the baseline, {list(history_lens)} now")
    base_designs = baseline.probe.get("designs")
    if base_designs is not None:
        gone = [d for d in base_designs if d not in designs]
        if gone:
            problems.append(f"design(s) {', '.join(gone)} in the baseline but not gated now")
    return "; ".join(problems)


def environment_fingerprint(environment: Mapping[str, Any]) -> str:
    """A short hash of what moves allocation figures: the Python version and implementation
    and every tracked package's version. Equal fingerprints: the same environment."""
    packages = environment.get("packages") or {}
    text = "\n".join(
        [
            f"python={environment.get('python', 'unknown')}",
            f"implementation={environment.get('python_implementation', 'unknown')}",
            *(f"{name}=={packages[name]}" for name in sorted(packages)),
        ]
    )
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def environment_warnings(
    baseline_provenance: Mapping[str, Any], current_env: Mapping[str, Any]
) -> list[str]:
    """Python minor version or package versions that differ from the baseline's (warnings), with
    the lock file that pins them (requirements/lock.txt, docs/gate.md "Pin your CI")."""
    out: list[str] = []
    b_py, c_py = str(baseline_provenance.get("python", "")), str(current_env.get("python", ""))
    if _minor(b_py) != _minor(c_py):
        out.append(f"Python {c_py} here, the baseline was made with Python {b_py}")
    b_pkgs = baseline_provenance.get("packages") or {}
    c_pkgs = current_env.get("packages") or {}
    changed = [
        f"{name} {b_pkgs[name]} -> {c_pkgs.get(name, 'absent')}"
        for name in sorted(b_pkgs)
        if b_pkgs[name] != c_pkgs.get(name, "absent")
    ]
    if changed:
        out.append(
            "package versions differ from the baseline's: "
            + ", ".join(changed)
            + " (install from the lock file, or refresh the baseline)"
        )
    return out


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])
