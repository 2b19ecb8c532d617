"""The report header's description of what ran: the profile's settings and each target.

Pure: run.json's config and phase records in, (key, text) rows out. A setting is shown only
where it applied: the probe's history lengths only when a probe phase ran, the memray
duration only when a profile phase ran, the reference dataset only for targets whose seed
command takes it. Every target shows its command and its scenario file.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from harness.config.target_spec import SEED_PLACEHOLDERS, reference_target

RAN = ("passed", "failed", "interrupted")  # a phase with one of these statuses did run
DATASET_PLACEHOLDERS = tuple(f"{{{p}}}" for p in sorted(SEED_PLACEHOLDERS - {"python", "data_dir"}))


def phases_that_ran(phases: Sequence[Mapping[str, Any]]) -> set[str]:
    """Phase names with at least one record (any design, the ceiling too) that ran."""
    return {str(p.get("phase")) for p in phases if p.get("status") in RAN}


def profile_text(cfg: Mapping[str, Any], ran: set[str]) -> str:
    """'quick; 20 users at 10.0/s; load 60.0 s; ...': the settings that applied."""
    profile = cfg.get("profile")
    if not isinstance(profile, Mapping):
        return str(profile or "?")
    parts = [str(profile.get("name", "?"))]  # the scenario is on each target's row
    if "users" in profile:
        parts.append(f"{profile['users']} users at {profile.get('spawn_rate', '?')}/s")
    if "duration_s" in profile:
        parts.append(f"load {profile['duration_s']} s")
    for key, what in (("load_workers", "Locust processes"), ("app_workers", "app workers")):
        if isinstance(profile.get(key), int) and profile[key] > 1:
            parts.append(f"{profile[key]} {what}")
    if "ceiling" in ran and "ceiling_duration_s" in profile:
        parts.append(f"ceiling {profile['ceiling_duration_s']} s")
    if "profile" in ran and "profile_duration_s" in profile:
        parts.append(f"memray profile {profile['profile_duration_s']} s")
    if "probe" in ran and "probe_history_lens" in profile:
        lens = ", ".join(str(x) for x in profile["probe_history_lens"])
        parts.append(f"probe history {lens} x {profile.get('probe_reps', '?')} reps")
    return "; ".join(parts)


def target_specs(cfg: Mapping[str, Any], designs: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    """Each design's target as run.json recorded it; older runs: the built-in reference one."""
    recorded = {str(t.get("name")): t for t in cfg.get("targets") or [] if isinstance(t, Mapping)}
    out: dict[str, Mapping[str, Any]] = {}
    for design in designs:
        if design in recorded:
            out[design] = recorded[design]
        elif "targets" not in cfg and design in ("naive", "optimized"):
            out[design] = reference_target(design).to_json()
    return out


def scenario_file(scenario: str) -> str:
    from harness.load.locust_runner import is_locustfile_path

    return scenario if is_locustfile_path(scenario) else f"scenarios/{scenario}.py"


def _argv_text(argv: object) -> str:
    """The command as one line; an argument is quoted only when it holds a space or a quote
    (shlex.join would also quote every {placeholder})."""
    if isinstance(argv, list | tuple):
        return " ".join(
            shlex.quote(str(a)) if any(c.isspace() or c in "'\"" for c in str(a)) else str(a)
            for a in argv
        )
    return str(argv)


def takes_dataset(target: Mapping[str, Any]) -> bool:
    """Its seed command is given the [seed] table's settings (users, whales, ...)."""
    seed = target.get("seed")
    return bool(seed) and any(p in _argv_text(seed) for p in DATASET_PLACEHOLDERS)


def dataset_text(cfg: Mapping[str, Any]) -> str:
    seed = cfg.get("seed")
    if not isinstance(seed, Mapping):
        return ""
    return (
        f"seed {seed.get('seed', '?')}: {seed.get('users', '?')} users, "
        f"{seed.get('whales', '?')} whales of {seed.get('whale_history', '?')} messages"
    )


def target_rows(cfg: Mapping[str, Any], designs: Sequence[str]) -> list[tuple[str, str]]:
    """One row per target (command, scenario file, seed command), then the dataset row."""
    profile = cfg.get("profile")
    default_scenario = str(profile.get("scenario", "")) if isinstance(profile, Mapping) else ""
    specs = target_specs(cfg, designs)
    rows: list[tuple[str, str]] = []
    for design in designs:
        spec = specs.get(design)
        if spec is None:
            rows.append((f"Target {design}", "not recorded in run.json"))
            continue
        scenario = str(spec.get("scenario") or default_scenario)
        parts = [f"command: {_argv_text(spec.get('command'))}"]
        if scenario:
            parts.append(f"scenario: {scenario_file(scenario)}")
        if spec.get("seed"):
            parts.append(f"seed: {_argv_text(spec['seed'])}")
        rows.append((f"Target {design}", "; ".join(parts)))
    seeded = [d for d in designs if d in specs and takes_dataset(specs[d])]
    dataset = dataset_text(cfg)
    if seeded and dataset:
        rows.append(("Dataset", f"{dataset} (seeded for {', '.join(seeded)})"))
    return rows
