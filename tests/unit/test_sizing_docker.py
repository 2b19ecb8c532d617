"""The Docker path of the sizing proof, its pure parts: is there a daemon, the `docker run`
prefix, reading `docker inspect` and `docker events`, and which limit the proof takes."""

from __future__ import annotations

import json
from pathlib import Path

from harness.sizing.cgroup import Controller
from harness.sizing.docker import (
    HOST_ROOT_IMAGE,
    Mount,
    count_oom_events,
    daemon_reason,
    host_mounts,
    parse_inspect,
    run_prefix,
)
from harness.sizing.proof import Limiter, choose_limiter

NO_SOCKET = (
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
    "Is the docker daemon running?\n"
)


def test_a_daemon_that_answers_gives_no_reason() -> None:
    assert daemon_reason("/usr/bin/docker", 0, "") == ""


def test_no_daemon_no_cli_or_no_answer_is_one_line() -> None:
    assert daemon_reason(None, None, "") == "no docker command on PATH"
    reason = daemon_reason("/usr/bin/docker", 1, "\n" + NO_SOCKET)
    assert reason.startswith("no Docker daemon answers: Cannot connect")
    assert "\n" not in reason
    assert "did not answer" in daemon_reason("/usr/bin/docker", None, "")
    assert (
        daemon_reason("/usr/bin/docker", 3, "") == "no Docker daemon answers: docker info exited 3"
    )


def test_the_host_folders_are_mounted_read_only_but_the_kernel_s_own() -> None:
    mounts = host_mounts(["usr", "proc", "lib64", "sys", "dev", "work"], [Path("/work/run")])
    assert mounts == [
        Mount("/lib64"),
        Mount("/usr"),
        Mount("/work"),
        Mount("/work/run", writable=True),
    ]
    assert mounts[-1].flag() == "/work/run:/work/run:rw"
    assert mounts[0].flag() == "/lib64:/lib64:ro"
    twice = host_mounts(["tmp", "usr"], [Path("/tmp"), Path("/tmp")])
    assert twice == [Mount("/usr"), Mount("/tmp", writable=True)]


def test_the_run_prefix_limits_memory_and_swap_and_ends_with_the_image(tmp_path: Path) -> None:
    argv = run_prefix(
        "harness-size-1-items-limit",
        100 * 2**20 + 1,
        [Mount("/usr"), Mount(str(tmp_path), writable=True)],
        ["ITEMS_INITIAL", "A", "A"],
        tmp_path,
    )
    assert argv[:4] == ["docker", "run", "--name", "harness-size-1-items-limit"]
    assert argv[argv.index("--memory") + 1] == "101m"  # rounded up: never below the limit
    assert argv[argv.index("--memory-swap") + 1] == "101m"  # no swapping past it
    assert argv[argv.index("--network") + 1] == "host"  # the load reaches it on the loopback
    assert argv[argv.index("/usr:/usr:ro") - 1 : argv.index("/usr:/usr:ro") + 1] == [
        "-v",
        "/usr:/usr:ro",
    ]
    env = [argv[i + 1] for i, a in enumerate(argv) if a == "-e"]
    assert env == ["A", "ITEMS_INITIAL"]  # by name: docker passes the harness's value
    assert argv[argv.index("-w") + 1] == str(tmp_path.resolve())
    assert argv[-1] == HOST_ROOT_IMAGE
    assert "--rm" not in argv  # inspected after it stops, removed by the harness


def inspect_text(**state: object) -> str:
    return json.dumps([{"Id": "abc", "State": state}])


def test_inspect_of_an_oom_killed_container() -> None:
    state = parse_inspect(
        inspect_text(Status="exited", Running=False, OOMKilled=True, ExitCode=137, Pid=0)
    )
    assert state is not None
    assert (state.oom_killed, state.running, state.exit_code, state.pid) == (True, False, 137, 0)


def test_inspect_of_a_running_container_and_of_none() -> None:
    state = parse_inspect(inspect_text(Running=True, OOMKilled=False, ExitCode=0, Pid=4242))
    assert state is not None
    assert (state.running, state.exit_code, state.pid) == (True, None, 4242)
    assert parse_inspect("[]") is None
    assert parse_inspect("Error: No such object: x") is None


def test_oom_events_are_counted() -> None:
    assert count_oom_events("oom\ndie\noom\n\nkill\n") == 2
    assert count_oom_events("") == 0


CGROUP = Controller(1, Path("/sys/fs/cgroup/memory"))


def test_docker_first_where_it_answers_else_the_cgroup() -> None:
    assert choose_limiter("auto", "", CGROUP) == Limiter("docker")
    assert choose_limiter("auto", "no Docker daemon answers: x", CGROUP) == Limiter(
        "cgroup", CGROUP
    )
    assert choose_limiter("cgroup", "", CGROUP) == Limiter("cgroup", CGROUP)


def test_neither_limit_is_one_reason() -> None:
    reason = choose_limiter("auto", "no Docker daemon answers: x", "no memory cgroup available: y")
    assert reason == "no memory cgroup available: y; no Docker daemon answers: x"
    assert choose_limiter("docker", "no docker command on PATH", CGROUP) == (
        "[size] runtime = docker, but no docker command on PATH"
    )
    assert choose_limiter("cgroup", "", "no memory cgroup available: y") == (
        "no memory cgroup available: y"
    )
