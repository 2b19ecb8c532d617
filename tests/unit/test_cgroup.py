"""Memory cgroups on fake directory trees: detection, limits, counters (no kernel needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.sizing.cgroup import Controller, MemoryCgroup, detect, join_argv, own_path

SELF_V1 = "4:memory:/jobs/abc\n3:cpu:/\n0::/\n"
SELF_V2 = "0::/user.slice/me\n"


def v1_tree(root: Path, own: str = "jobs/abc") -> Path:
    (root / "memory" / own).mkdir(parents=True)
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    return root / "memory" / own


def v2_tree(root: Path, controllers: str, own: str = "user.slice/me") -> Path:
    root.mkdir(exist_ok=True)
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / own).mkdir(parents=True)
    (root / own / "cgroup.subtree_control").write_text("memory\n")
    return root / own


def test_own_path_per_version() -> None:
    assert own_path(SELF_V1, 1) == "/jobs/abc"
    assert own_path(SELF_V1, 2) == "/"
    assert own_path(SELF_V2, 2) == "/user.slice/me"
    assert own_path("", 1) == "/"


def test_v2_with_the_memory_controller_is_chosen(tmp_path: Path) -> None:
    own = v2_tree(tmp_path, "cpu io memory pids")
    v1_tree(tmp_path)
    assert detect(tmp_path, SELF_V2) == Controller(2, own)


def test_v2_without_memory_falls_back_to_v1_under_our_own_cgroup(tmp_path: Path) -> None:
    v2_tree(tmp_path / "unified", "hugetlb")
    own = v1_tree(tmp_path)
    assert detect(tmp_path, SELF_V1) == Controller(1, own)


def test_an_unknown_own_path_falls_back_to_the_mount(tmp_path: Path) -> None:
    v1_tree(tmp_path)
    assert detect(tmp_path, "4:memory:/elsewhere\n") == Controller(1, tmp_path / "memory")


def test_no_controller_is_a_one_line_reason(tmp_path: Path) -> None:
    v2_tree(tmp_path / "unified", "hugetlb")
    reason = detect(tmp_path, SELF_V1)
    assert isinstance(reason, str)
    assert "\n" not in reason
    assert "no memory controller" in reason
    assert "no cgroup v1 memory controller" in reason


def test_v1_limit_and_counters(tmp_path: Path) -> None:
    parent = v1_tree(tmp_path)
    group = MemoryCgroup.create(Controller(1, parent), "child", 64 * 2**20)
    assert (group.path / "memory.limit_in_bytes").read_text() == str(64 * 2**20)
    assert group.oom_kills() == 0
    (group.path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    (group.path / "memory.failcnt").write_text("17\n")
    (group.path / "memory.max_usage_in_bytes").write_text("1234\n")
    (group.path / "cgroup.procs").write_text("11\n12\n")
    assert (group.oom_kills(), group.limit_hits(), group.peak_bytes()) == (3, 17, 1234)
    assert group.pids() == [11, 12]


def test_v2_limit_and_counters(tmp_path: Path) -> None:
    parent = v2_tree(tmp_path, "memory")
    group = MemoryCgroup.create(Controller(2, parent), "child", 2**20)
    assert (group.path / "memory.max").read_text() == str(2**20)
    (group.path / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n")
    (group.path / "memory.peak").write_text("4096\n")
    assert (group.oom_kills(), group.limit_hits(), group.peak_bytes()) == (2, 9, 4096)


def test_remove_of_a_gone_cgroup_is_quiet(tmp_path: Path) -> None:
    group = MemoryCgroup(tmp_path / "gone", 1)
    group.remove()
    empty = tmp_path / "empty"
    empty.mkdir()
    MemoryCgroup(empty, 2).remove()
    assert not empty.exists()


def test_join_argv_writes_the_pid_that_then_execs_the_command(tmp_path: Path) -> None:
    procs = tmp_path / "cgroup.procs"
    done = subprocess.run(
        [*join_argv(procs), "sh", "-c", "echo $$"], capture_output=True, text=True, check=True
    )
    assert procs.read_text().strip() == done.stdout.strip()
