"""`harness probe --config F` and `harness gate --config F` where F has a `[[target]]` of its own.

Targets resolve once, from the config file of the command (no registry that only
`harness loadtest` fills): a target named "mine" that serves the reference chat API (the
optimized design, spelled out) is probed and gated by name. Small on purpose: history lengths
0 and 10, one measured request per point.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

MINE = """
[run]
designs = ["mine"]
out = "{root}/reports"
profile = "small"

[profiles.small]
phases = ["probe"]
probe_history_lens = [0, 10]
probe_reps = 1
probe_warmup = 0

[seed]
users = 3
whales = 0
whale_history = 10

[gate]
baseline = "{root}/baseline.json"
history_lens = [0, 10]
reps = 1
warmup = 0

[[target]]
name = "mine"
command = ["{{python}}", "-m", "reference_app", "serve", "--design", "optimized",
           "--host", "{{host}}", "--port", "{{port}}", "--data-dir", "{{data_dir}}",
           "--upstream", "{{upstream_url}}"]
probe_command = ["{{python}}", "-m", "reference_app", "serve", "--design", "optimized",
                 "--host", "{{host}}", "--port", "{{port}}", "--data-dir", "{{data_dir}}",
                 "--upstream", "{{upstream_url}}", "--probe"]
seed = ["{{python}}", "-m", "reference_app", "seed", "--design", "optimized",
        "--data-dir", "{{data_dir}}", "--users", "{{users}}", "--whales", "{{whales}}",
        "--whale-history", "{{whale_history}}", "--seed", "{{seed}}"]
chat_api = true
needs_upstream = true

[target.probe]
size_unit = "message"
setup = {{ method = "PUT", path = "/__probe/history/{{user}}", json = {{ length = "{{size}}" }} }}

[[target.probe.request]]
name = "history"
path = "/history/{{user}}"
expect_status = [200, 404]
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(MINE.format(root=tmp_path), encoding="utf-8")
    return path


def runs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "reports").iterdir() if p.is_dir() and not p.is_symlink())


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_probe_and_gate_serve_the_config_files_own_target(config_file: Path) -> None:
    root = config_file.parent
    assert main(["probe", "--config", str(config_file)]) == 0
    (probe_run,) = runs(root)
    phases = read(probe_run / "run.json")["phases"]
    assert [(p["design"], p["phase"], p["status"]) for p in phases] == [("mine", "probe", "passed")]
    rows = read(probe_run / "summary.json")
    assert {r["design"] for r in rows} == {"mine"}
    assert {r["labels"].get("history_len") for r in rows} >= {"0", "10"}

    assert main(["gate", "--config", str(config_file), "--update-baseline"]) == 0
    baseline = read(root / "baseline.json")
    assert {row["design"] for row in baseline["rows"]} == {"mine"}
