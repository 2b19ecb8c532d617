"""The integrity phase: writes the client saw acknowledged against what the store holds.

Run right after the load phase, on the same data and through the same running server:
per seeded user, `GET /history/{user_id}?limit=1` gives the stored history_len, which must
be at least the seeded length plus two messages per acknowledged exchange (see
harness.analysis.integrity). Writes `<run>/<design>/integrity.json`; any lost message fails
the phase.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from harness._errors import PhaseFailed
from harness.analysis.integrity import EXAMPLES, integrity_counts, integrity_rows
from harness.config import Config
from harness.load import acks
from harness.phases import FailedWithResults, ProgressFn, no_progress
from harness.results import SCHEMA_VERSION, RunDir, SummaryRow, write_json_atomic
from harness.stack.targets import read_manifest, running_stack

PHASE = "integrity"
REQUEST_TIMEOUT_S = 30.0
TOTAL_TIMEOUT_S = 300.0


def seeded_lengths(manifest: Mapping[str, Any]) -> dict[str, int]:
    return {str(u["user_id"]): int(u["history_len"]) for u in manifest.get("users", [])}


def read_acks(path: Path) -> dict[str, int]:
    """The acknowledged exchanges per user that the locustfile wrote at test stop; with
    several Locust processes, the sum over their files (see harness.load.acks)."""
    return acks.read_acks(path)


def stored_lengths(
    base_url: str,
    user_ids: Sequence[str],
    progress: ProgressFn = no_progress,
    timeout_s: float = TOTAL_TIMEOUT_S,
) -> tuple[dict[str, int], dict[str, str]]:
    """history_len per user as the server reports it; and the users it could not tell."""
    stored: dict[str, int] = {}
    errors: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        for i, user in enumerate(user_ids):
            if time.monotonic() > deadline:
                errors.update({u: "not checked: time limit" for u in user_ids[i:]})
                break
            try:
                resp = client.get(f"/history/{quote(user, safe='')}", params={"limit": 1})
            except httpx.HTTPError as exc:
                errors[user] = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 404:
                    stored[user] = 0  # the store does not know this user: it holds nothing
                elif resp.status_code != 200:
                    errors[user] = f"HTTP {resp.status_code}"
                else:
                    try:
                        stored[user] = int(resp.json()["history_len"])
                    except (ValueError, KeyError, TypeError) as exc:
                        errors[user] = f"bad response: {exc!r}"
            if i % 10 == 0 or i == len(user_ids) - 1:
                progress(i + 1, len(user_ids), "users checked")
    return stored, errors


def run_integrity(
    run: RunDir,
    design: str,
    cfg: Config,
    *,
    base_url: str,
    manifest: Mapping[str, Any],
    acks_path: Path | None,
    progress: ProgressFn | None = None,
) -> list[SummaryRow]:
    """Compare acknowledged writes with the store behind base_url; write integrity.json.

    acks_path None: no load ran, so nothing was acknowledged (the seed alone is checked).
    Raises FailedWithResults when messages were lost or histories could not be read.
    """
    seeded = seeded_lengths(manifest)
    acknowledged: dict[str, int] = {}
    if acks_path is not None:
        if not acks.acks_exist(acks_path):
            raise PhaseFailed(
                PHASE, f"no acknowledged-writes file at {acks_path}: locust did not write it"
            )
        acknowledged = read_acks(acks_path)
    users = sorted(set(seeded) | set(acknowledged))
    stored, errors = stored_lengths(base_url, users, progress or no_progress)
    # Users whose history could not be read are left out of the counts (reported apart).
    counts = integrity_counts(
        {u: n for u, n in seeded.items() if u not in errors},
        {u: n for u, n in acknowledged.items() if u not in errors},
        stored,
    )
    rows = integrity_rows(design, counts)
    write_json_atomic(
        run.integrity_json(design),
        {
            "schema_version": SCHEMA_VERSION,
            "design": design,
            "method": "GET /history/{user_id}?limit=1 -> history_len, per seeded user",
            "expected_rule": "seeded history_len + 2 x acknowledged exchanges",
            "acks_file": str(acks_path) if acks_path is not None else None,
            **counts.to_json(),
            "unexpected_note": (
                "messages stored beyond the acknowledged writes: requests still in flight when "
                "Locust stopped its users, which the server completed unseen; not a failure"
            ),
            "unreadable_users": len(errors),
            "unreadable_examples": dict(list(errors.items())[:EXAMPLES]),
            "passed": not errors and counts.lost == 0,
        },
    )
    if errors:
        first = next(iter(errors.items()))
        raise FailedWithResults(
            PHASE,
            f"could not read the history of {len(errors)} of {len(users)} users "
            f"(e.g. {first[0]}: {first[1]})",
            rows,
        )
    if counts.lost:
        raise FailedWithResults(
            PHASE,
            f"{counts.lost} acknowledged messages lost across {len(counts.lost_users)}"
            f"{'+' if len(counts.lost_users) == EXAMPLES else ''} users "
            f"(see {run.integrity_json(design).name})",
            rows,
        )
    return rows


def run_integrity_standalone(
    run: RunDir,
    design: str,
    cfg: Config,
    *,
    data: Path,
    progress: ProgressFn | None = None,
) -> list[SummaryRow]:
    """Without a load phase: start the app on the seeded store and check it holds the seed."""
    manifest = read_manifest(data)
    log_dir = run.design_dir(design) / "integrity-logs"
    with running_stack(
        cfg.target(design), data, log_dir, cfg.upstream, mode="plain", phase=PHASE
    ) as stack:
        return run_integrity(
            run,
            design,
            cfg,
            base_url=stack.base_url,
            manifest=manifest,
            acks_path=None,
            progress=progress,
        )
