"""The harness's small error hierarchy; each error maps to a process exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # a phase failed, or the gate found a regression
EXIT_USAGE = 2  # bad flag, bad config, missing baseline, schema mismatch


class HarnessError(Exception):
    """Base of every error the CLI turns into a one-line message and an exit code."""

    exit_code = EXIT_FAILED


class UsageError(HarnessError):
    exit_code = EXIT_USAGE


class ConfigError(HarnessError):
    """A configuration problem; the message names the file and the key."""

    exit_code = EXIT_USAGE

    def __init__(self, path: object, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        super().__init__(f"{self.path}: {key}: {problem}")


class PhaseFailed(HarnessError):
    """A phase of a run failed (server crashed, locust failed, data lost)."""

    exit_code = EXIT_FAILED

    def __init__(self, phase: str, reason: str) -> None:
        self.phase = phase
        self.reason = reason
        super().__init__(f"phase {phase} failed: {reason}")
