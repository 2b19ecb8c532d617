"""Running a load test: every configured phase on every design, one run directory.

`Loadtest(cfg, console).execute()` is what `harness loadtest` runs, callable from tests and
from Python. Per design: seed a fresh store into `<run>/<design>/data`, then the profile's
phases in order; integrity always runs right after load, on the same data and the same server.
A phase that fails is recorded (partial results kept) and the run goes on with the next phase
or design; the exit status is then 1. Ctrl-C or SIGTERM stops every child process within
seconds and leaves run.json with status "interrupted" (exit 130).

Phases owned by other modules (profile, probe) and the report are imported lazily; when a
module is not there, the phase is recorded as skipped with the reason.

The profile phase's tail, reading the memray capture, measures nothing: it runs on a thread
(harness.phases._background) beside the phases that measure no time either (BESIDE_A_TAIL:
the probe, integrity) and is waited for before any other phase, the next design and the
report. Its recorded duration runs from its start to that wait.

Designs are targets (`[[target]]` tables, or `--target FILE`; the reference designs by
default): a phase that does not apply to a target (the probe without recipes, memray without a
Python command) is recorded as skipped, "not applicable". The ceiling phase, when the profile
lists it, runs once before the designs (design and phase "ceiling": the capacity search against
the health path); each design's capacity rows then carry `capacity_ceiling_fraction`, its load
rows `rps_ceiling_fraction`.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

from harness._clock import now_iso
from harness._errors import EXIT_FAILED, EXIT_OK, PhaseFailed
from harness.analysis.load import (
    CEILING,
    ceiling_fraction,
    ceiling_rps,
    comparison_frame,
    load_warnings,
)
from harness.analysis.scale import ceiling_line
from harness.config import Config
from harness.console import Console
from harness.phases import FailedWithResults, ProgressFn
from harness.phases._background import Background
from harness.phases.ceiling import run_ceiling
from harness.phases.integrity import run_integrity, run_integrity_standalone
from harness.phases.load import LoadSession, data_dir, load_session
from harness.results import RunDir, SummaryRow
from harness.stack.targets import read_manifest, seed_store

__all__ = ["EXIT_INTERRUPTED", "Loadtest", "Outcome", "interrupt_once", "phase_plan"]

EXIT_INTERRUPTED = 130
PhaseFn = Callable[[ProgressFn], list[SummaryRow]]


@dataclass
class Outcome:
    status: str  # passed | failed | skipped | interrupted
    rows: list[SummaryRow] = field(default_factory=list)
    detail: str = ""
    exit_code: int | None = None  # of the phase's main child, when it failed with one


# Phases that measure no time (bytes, counts): they may run while a tail (Background) is busy.
BESIDE_A_TAIL = frozenset({"probe", "integrity"})


@dataclass
class _Pending:
    design: str
    phase: str
    started_at: str
    t0: float
    tail: Background


def phase_plan(phases: Sequence[str]) -> list[str]:
    """The profile's per-design phases in order, with integrity moved right after load and
    size last (the ceiling runs once per run, not per design: it is not in the plan)."""
    plan = [
        p
        for p in dict.fromkeys(phases)
        if p != CEILING and not ("load" in phases and p == "integrity")
    ]
    if "load" in phases and "integrity" in phases:
        plan.insert(plan.index("load") + 1, "integrity")
    if "size" in plan:  # it reads the other phases' figures
        plan.append(plan.pop(plan.index("size")))
    return plan


@contextlib.contextmanager
def interrupt_once() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt once; later ones are ignored while the
    teardown they started runs (a second Ctrl-C must not cut the teardown short)."""
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Loadtest:
    """One `harness loadtest` run: owns the run directory and the console."""

    def __init__(self, cfg: Config, console: Console, command: str = "harness loadtest") -> None:
        self.cfg = cfg
        self.console = console
        self.command = command
        self.plan = phase_plan(cfg.profile.phases)
        self.failed = False
        self.recorded: set[tuple[str, str]] = set()
        self.run_dir: RunDir | None = None
        self.with_ceiling = CEILING in cfg.profile.phases and bool(cfg.ceiling_target)
        self.ceiling_rps: float | None = None
        self.pending: list[_Pending] = []  # tails on threads, recorded by settle()

    @property
    def run(self) -> RunDir:
        assert self.run_dir is not None, "the run directory is created by execute()"
        return self.run_dir

    # --- the whole run ---------------------------------------------------------------
    def execute(self) -> int:
        cfg = self.cfg
        self.run_dir = RunDir.create(Path(cfg.out))
        self.run.start_run(self.command, cfg.to_json())
        p = cfg.profile
        load_side = (
            f"a Locust master for {cfg.locust.expect_workers} remote worker(s)"
            if cfg.locust.master
            else f"{p.load_workers} Locust process(es)"
        )
        scenarios = sorted({Path(cfg.target(d).scenario or p.scenario).stem for d in cfg.designs})
        self.console.info(
            f"run {self.run.run_id}: designs {', '.join(cfg.designs)}; profile "
            f"{p.name} ({', '.join(([CEILING] if self.with_ceiling else []) + self.plan)}); "
            f"scenario {', '.join(scenarios)}, {p.users} users, {p.duration_s:g} s; "
            f"{p.app_workers} app worker(s) in the load phase (1 under memray and the probe), "
            f"{load_side}"
        )
        started = time.monotonic()
        interrupted = False
        with interrupt_once():
            try:
                if self.with_ceiling:
                    self.console.heading(CEILING)
                    self.ceiling()
                for design in cfg.designs:
                    self.console.heading(design)
                    self.design(design)
                self.settle()
            except KeyboardInterrupt:
                interrupted = True
                self.stop_pending()
                self.console.warn("interrupted: every child process has been stopped")
                self.skip_unrecorded("the run was interrupted before this phase")
            status = "interrupted" if interrupted else ("failed" if self.failed else "passed")
            self.run.finish_run(status)
            if not interrupted:
                self.render_report()
            self.run.point_latest()
            if not interrupted:
                frame, ratio_col = comparison_frame(self.run.read_summary(), cfg.designs)
                self.console.comparison(frame, cfg.designs, ratio_col)
            self.console.info(f"wall time {time.monotonic() - started:.0f} s")
            self.console.run_dir(self.run.root, status)
        if interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if self.failed else EXIT_OK

    # --- the ceiling -----------------------------------------------------------------
    def ceiling(self) -> None:
        target = self.cfg.ceiling_target
        outcome = self.step(
            CEILING,
            CEILING,
            lambda progress: run_ceiling(self.run, self.cfg, target=target, progress=progress),
            self.cfg.profile.ceiling_duration_s,
        )
        self.ceiling_rps = ceiling_rps(outcome.rows) if outcome.status == "passed" else None
        if self.ceiling_rps is not None:
            self.console.info(
                ceiling_line(
                    outcome.rows,
                    self.cfg.capacity.ceiling_objective_p95_ms,
                    self.cfg.target(target).health,
                    target,
                )
            )

    def design_config(self, design: str) -> Config:
        """The config a phase sees for `design`: the target's own scenario, if it has one."""
        scenario = self.cfg.target(design).scenario
        if scenario is None:
            return self.cfg
        return replace(self.cfg, profile=replace(self.cfg.profile, scenario=scenario))

    # --- one design ------------------------------------------------------------------
    def design(self, design: str) -> None:
        self.settle()
        data = data_dir(self.run, design)
        seeded = self.step(design, "seed", lambda progress: self.seed(design, data))
        if seeded.status != "passed":
            for phase in self.plan:
                self.skip(design, phase, "seeding failed")
            return
        target = self.cfg.target(design)
        for phase in self.plan:
            if phase not in BESIDE_A_TAIL:
                self.settle()
            reason = target.not_applicable(phase)
            if reason and not (phase == "integrity" and "load" in self.plan):
                self.skip(design, phase, reason)
                continue
            if phase == "load":
                self.load_and_integrity(
                    design,
                    data,
                    with_integrity="integrity" in self.plan,
                    integrity_skip=target.not_applicable("integrity"),
                )
            elif phase == "integrity":
                if "load" not in self.plan:
                    self.step(
                        design,
                        "integrity",
                        lambda p: run_integrity_standalone(
                            self.run, design, self.cfg, data=data, progress=p
                        ),
                    )
            elif phase == "profile":
                self.profile(design)
            elif phase == "capacity":
                self.external(
                    design,
                    "capacity",
                    "harness.phases.capacity",
                    "run_capacity",
                    {"ceiling_rps": self.ceiling_rps},
                    None,
                )
            elif phase == "size":
                self.external(design, "size", "harness.phases.size", "run_size", {}, None)
            elif phase == "probe":
                p = self.cfg.profile
                self.external(
                    design,
                    "probe",
                    "harness.phases.probe",
                    "run_probe",
                    {
                        "history_lens": p.probe_history_lens,
                        "reps": p.probe_reps,
                        "warmup": p.probe_warmup,
                    },
                    None,
                )

    def profile(self, design: str) -> None:
        """The profile phase: the capture now, its reading on a thread (`settle` records it)."""
        profile = self.phase_module(design, "profile", "harness.phases.profile")
        if profile is None:
            return
        cfg = self.design_config(design)
        started_at, t0 = now_iso(), time.monotonic()
        captured: list[Any] = []

        def capture(progress: ProgressFn) -> list[SummaryRow]:
            captured.append(profile.capture_profile(self.run, design, cfg, progress=progress))
            return []

        outcome = self.step(design, "profile", capture, cfg.profile.profile_duration_s, quiet=True)
        if outcome.status != "passed":
            return
        self.console.info(f"  profile · {design}: reading the memray capture beside the next phase")
        tail = Background(lambda on_readers: profile.read_profile(captured[0], on_readers))
        self.pending.append(_Pending(design, "profile", started_at, t0, tail))

    def settle(self) -> None:
        """Wait for the phases' tails on threads and record them (before a phase that times
        something, before the next design, before the report)."""
        while self.pending:
            pending = self.pending[0]  # still listed while it runs: Ctrl-C must stop it
            outcome = self._outcome(pending.design, pending.phase, pending.tail.join)
            self.pending.pop(0)
            self.record(pending.design, pending.phase, outcome, pending.started_at, pending.t0)

    def stop_pending(self) -> None:
        for pending in self.pending:
            pending.tail.stop()
            self.record(
                pending.design,
                pending.phase,
                Outcome("interrupted", [], "interrupted"),
                pending.started_at,
                pending.t0,
            )
        self.pending.clear()

    def seed(self, design: str, data: Path) -> list[SummaryRow]:
        manifest = seed_store(
            self.cfg.target(design), data, self.cfg.seed, self.run.design_dir(design) / "logs"
        )
        if self.cfg.target(design).seed is None:
            self.console.info(f"{design} has no seed command: nothing to seed")
            return []
        users = manifest.get("users", [])
        self.console.info(
            f"seeded {len(users)} users ({sum(1 for u in users if u.get('whale'))} whales, "
            f"{sum(int(u.get('history_len', 0)) for u in users):,} messages)"
        )
        return []

    def load_and_integrity(
        self, design: str, data: Path, with_integrity: bool, integrity_skip: str = ""
    ) -> None:
        """The load phase, then (same server, same data) the integrity phase; integrity_skip:
        why integrity does not apply to this design ('' when it does)."""
        with contextlib.ExitStack() as keep_up:
            sessions: list[LoadSession] = []

            def load(progress: ProgressFn) -> list[SummaryRow]:
                session = keep_up.enter_context(
                    load_session(self.run, design, self.cfg, data=data, progress=progress)
                )
                sessions.append(session)
                for text in session.warnings:
                    self.warn(text, design, "load")
                rows = [*session.rows, *ceiling_fraction(design, session.rows, self.ceiling_rps)]
                if session.failure:
                    raise FailedWithResults("load", session.failure, rows, session.locust.exit_code)
                return rows

            loaded = self.step(
                design,
                "load",
                load,
                self.cfg.profile.duration_s,
                exit_code_of=lambda: sessions[0].locust.exit_code if sessions else None,
            )
            if not with_integrity:
                return
            if integrity_skip:
                self.skip(design, "integrity", integrity_skip)
                return
            if loaded.status != "passed" or not sessions or not sessions[0].app_alive:
                self.skip(
                    design,
                    "integrity",
                    "the load phase failed, so its acknowledged writes cannot be checked",
                )
                return
            session = sessions[0]
            manifest = read_manifest(data)
            self.step(
                design,
                "integrity",
                lambda p: run_integrity(
                    self.run,
                    design,
                    self.cfg,
                    base_url=session.base_url,
                    manifest=manifest,
                    acks_path=session.acks_path,
                    progress=p,
                ),
            )

    def phase_module(self, design: str, phase: str, module: str) -> Any:
        """The module that implements `phase`, or None (the phase recorded as skipped, with
        the reason) when this checkout does not have it."""
        try:
            return importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            self.skip(design, phase, f"{module} is not available in this checkout")
            return None

    def external(
        self,
        design: str,
        phase: str,
        module: str,
        function: str,
        kwargs: dict[str, Any],
        total_s: float | None,
    ) -> None:
        """A phase implemented elsewhere: skipped, with the reason, when it is not there."""
        mod = self.phase_module(design, phase, module)
        if mod is None:
            return
        fn = getattr(mod, function, None)
        if fn is None:
            self.skip(design, phase, f"{module}.{function} is not available in this checkout")
            return

        cfg = self.design_config(design)

        def call(progress: ProgressFn) -> list[SummaryRow]:
            rows: list[SummaryRow] = fn(self.run, design, cfg, progress=progress, **kwargs)
            return rows

        self.step(design, phase, call, total_s)

    # --- recording -------------------------------------------------------------------
    def step(
        self,
        design: str,
        phase: str,
        fn: PhaseFn,
        total_s: float | None = None,
        exit_code_of: Callable[[], int | None] | None = None,
        *,
        quiet: bool = False,
    ) -> Outcome:
        """Run one phase: show it, record its rows and its status; never raise but Ctrl-C.

        exit_code_of() gives the exit status of the phase's main child (e.g. locust) after a
        pass, for run.json. quiet: a pass is not recorded (a tail on a thread goes on; the
        caller records it), a failure is.
        """
        started_at = now_iso()
        t0 = time.monotonic()
        exit_code: int | None = None

        def run() -> list[SummaryRow]:
            with self.console.phase(design, phase, total_s) as progress:
                return fn(progress)

        try:
            outcome = self._outcome(design, phase, run)
        except KeyboardInterrupt:
            self.record(design, phase, Outcome("interrupted", [], "interrupted"), started_at, t0)
            raise
        if outcome.status == "passed":
            if quiet:
                return outcome
            exit_code = exit_code_of() if exit_code_of is not None else None
        else:
            exit_code = outcome.exit_code
        self.record(design, phase, outcome, started_at, t0, exit_code)
        return outcome

    def _outcome(self, design: str, phase: str, fn: Callable[[], list[SummaryRow]]) -> Outcome:
        """fn's rows as an outcome: passed, or failed with the reason; Ctrl-C goes through."""
        try:
            return Outcome("passed", fn())
        except FailedWithResults as exc:
            return Outcome("failed", exc.rows, exc.reason, exc.child_exit_code)
        except PhaseFailed as exc:
            return Outcome("failed", [], exc.reason)
        except Exception as exc:  # a bug in a phase must not stop the other phases
            where = self.run.phase_dir(design, phase) / "traceback.txt"
            where.write_text(traceback.format_exc(), encoding="utf-8")
            return Outcome("failed", [], f"{type(exc).__name__}: {exc} (traceback: {where})")

    def record(
        self,
        design: str,
        phase: str,
        outcome: Outcome,
        started_at: str,
        t0: float,
        exit_code: int | None = None,
    ) -> None:
        duration = time.monotonic() - t0
        if outcome.rows:
            self.run.add_summary(outcome.rows)
        self.run.record_phase(
            design, phase, outcome.status, started_at, duration, outcome.detail, exit_code
        )
        self.recorded.add((design, phase))
        if outcome.status == "failed":
            self.failed = True
        self.console.phase_done(design, phase, outcome.status, duration, outcome.detail)
        for text in load_warnings(outcome.rows):
            self.warn(text, design, phase)

    def skip(self, design: str, phase: str, reason: str) -> None:
        self.record(design, phase, Outcome("skipped", [], reason), now_iso(), time.monotonic())

    def skip_unrecorded(self, reason: str) -> None:
        if self.with_ceiling and (CEILING, CEILING) not in self.recorded:
            self.skip(CEILING, CEILING, reason)
        for design in self.cfg.designs:
            for phase in ["seed", *self.plan]:
                if (design, phase) not in self.recorded:
                    self.skip(design, phase, reason)

    def warn(self, text: str, design: str = "", phase: str = "") -> None:
        self.console.warn(text)
        self.run.add_warning(text, design, phase)

    def render_report(self) -> None:
        try:
            report = importlib.import_module("harness.report")
            render: Callable[[Path], list[Path]] | None = getattr(report, "render_run", None)
        except ModuleNotFoundError as exc:
            if exc.name not in ("harness.report", "harness"):
                raise
            render = None
        if render is None:
            self.warn("report skipped: harness.report.render_run is not available")
            return
        try:
            files = render(self.run.root)
        except KeyboardInterrupt:  # every phase is recorded: only the report is left out
            self.warn("the report was interrupted; render it with `harness report`")
            return
        except Exception as exc:  # the figures are written; a broken report must not hide them
            self.warn(f"the report could not be rendered: {type(exc).__name__}: {exc}")
            return
        for path in files:
            if path.suffix in (".md", ".html"):
                self.console.info(f"report: {path}")
