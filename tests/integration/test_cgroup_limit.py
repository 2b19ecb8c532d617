"""A real kernel memory limit: a process that allocates past it is OOM-killed, the kill is
counted, and the cgroup is gone afterwards, Ctrl-C included (harness.sizing.cgroup); the same
in a `docker run --memory` container where a Docker daemon answers (harness.sizing.docker)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.sizing.cgroup import Controller, detect, join_argv, removed_on_exit
from harness.sizing.docker import container_on_exit, detect_daemon
from harness.stack.processes import ProcessGroup

pytestmark = pytest.mark.integration

LIMIT = 64 * 2**20
HOG = (
    "import time\n"
    "blocks = []\n"
    "for _ in range(40):\n"  # 40 x 8 MiB = 320 MiB, touched, well past 64 MiB
    "    blocks.append(bytearray(8 * 2**20))\n"
    "    time.sleep(0.01)\n"
    "print('survived', flush=True)\n"
)


@pytest.fixture
def controller() -> Controller:
    found = detect()
    if isinstance(found, str):
        pytest.skip(found)
    return found


def test_a_process_over_the_limit_is_oom_killed_and_counted(
    controller: Controller, tmp_path: Path
) -> None:
    with removed_on_exit(controller, f"harness-test-{os.getpid()}", LIMIT) as group:
        path = group.path
        with ProcessGroup(tmp_path) as procs:
            hog = procs.start("hog", [*join_argv(group.procs_file), sys.executable, "-c", HOG])
            code = hog.wait(30.0)
        assert code is not None and code < 0, f"the hog was not killed (exit {code})"
        assert group.oom_kills() >= 1
        assert "survived" not in hog.stdout_path.read_text()
    assert not path.exists()


def test_ctrl_c_kills_what_runs_inside_and_removes_the_cgroup(controller: Controller) -> None:
    sleeper: subprocess.Popen[bytes] | None = None
    name = f"harness-test-int-{os.getpid()}"
    with pytest.raises(KeyboardInterrupt), removed_on_exit(controller, name, LIMIT) as group:
        path = group.path
        sleeper = subprocess.Popen([*join_argv(group.procs_file), "sleep", "60"])
        for _ in range(100):
            if group.pids():
                break
            subprocess.run(["sleep", "0.05"], check=True)
        assert group.pids() == [sleeper.pid]
        raise KeyboardInterrupt
    assert not path.exists()
    assert sleeper is not None and sleeper.wait(5) == -9


def test_a_container_over_its_limit_is_oom_killed_counted_and_removed(tmp_path: Path) -> None:
    reason = detect_daemon()
    if reason:
        pytest.skip(reason)
    name = f"harness-test-{os.getpid()}"
    with container_on_exit(name, LIMIT, [tmp_path], [], None) as box:
        with ProcessGroup(tmp_path) as procs:
            hog = procs.start("hog", [*box.argv_prefix, sys.executable, "-c", HOG])
            code = hog.wait(60.0)
        assert code == 137, f"the hog was not killed (exit {code})"
        assert box.oom_kills() >= 1
        assert "survived" not in hog.stdout_path.read_text()
    assert box.state() is None  # removed
