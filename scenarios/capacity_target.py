"""The open-model capacity search on a target's own locustfile (docs/capacity.md, "Your own
service").

HARNESS_CAPACITY_LOCUSTFILE names the target's locustfile. Its user classes are loaded here
under another module name (so Locust does not see them), and each becomes an open-model
user: a subclass whose only task is `paced` (scenarios.capacity.OpenModelPacing). Every
arrival of the schedule runs ONE task of the class, picked by the class's own task weights
(`@task(3)` counts three times), on a user that ran the class's `on_start` as usual. The
class's `wait_time` is ignored: the schedule sets the pace.

The corrected-latency row of an arrival is named by the task's first request (`GET
/items/{id} @ step 03 (8 req/s)`), so per-endpoint objectives use Locust's request names;
a task that sends nothing is named by its function.

What cannot be driven this way, and says so when Locust loads this file (one line): a class
whose tasks are TaskSets (a TaskSet keeps its own state across tasks: one arrival is not one
of its tasks), or a locustfile with no user class. With workers on other machines
(`--locust-master`), the target's locustfile must be at the same path there, and
HARNESS_CAPACITY_LOCUSTFILE set.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import random
from pathlib import Path
from types import ModuleType
from typing import Any

from locust import User, constant

from scenarios.capacity import CapacityShape, OpenModelPacing
from scenarios.open_model import Plan

__all__ = ["CapacityShape"]

LOCUSTFILE_ENV = "HARNESS_CAPACITY_LOCUSTFILE"
MODULE_NAME = "harness_capacity_target_locustfile"


class NotDrivable(RuntimeError):
    """The target's locustfile cannot be driven open-model (the message says why)."""


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise NotDrivable(f"cannot load the locustfile {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def user_classes(module: ModuleType) -> list[type[User]]:
    """The classes Locust itself would run from `module`: non-abstract User subclasses."""
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, User)
        and value is not User
        and not getattr(value, "abstract", False)
    ]


def open_model_class(cls: type[User]) -> type[User]:
    """A subclass of `cls` whose only task runs one of cls's tasks per arrival."""
    tasks = list(cls.tasks)
    if not tasks:
        raise NotDrivable(f"{cls.__name__} has no task")
    for chosen in tasks:
        if not callable(chosen) or inspect.isclass(chosen):
            raise NotDrivable(
                f"{cls.__name__}'s task {getattr(chosen, '__name__', chosen)!r} is a TaskSet: "
                "one arrival cannot be one task of it"
            )

    def arrival_action(self: Any, plan: Plan) -> tuple[str, Any]:
        chosen = random.choice(tasks)  # weights: Locust repeats a @task(n) n times
        return "", lambda: chosen(self)

    subclass = type(
        f"OpenModel{cls.__name__}",
        (OpenModelPacing, cls),
        {
            "abstract": False,
            "wait_time": constant(0),
            "arrival_action": arrival_action,
            "__module__": __name__,
        },
    )
    subclass.tasks = [OpenModelPacing.paced]  # type: ignore[attr-defined]
    return subclass


def _target_classes() -> dict[str, type[User]]:
    raw = os.environ.get(LOCUSTFILE_ENV)
    if not raw:
        raise NotDrivable(f"{LOCUSTFILE_ENV} is not set: which locustfile to drive?")
    classes = user_classes(_load(Path(raw)))
    if not classes:
        raise NotDrivable(f"no user class in {raw}")
    wrapped = [open_model_class(cls) for cls in classes]
    return {cls.__name__: cls for cls in wrapped}


globals().update(_target_classes())  # Locust finds user classes among the module's globals
