"""The examples' probe recipes drive their real apps: each app, served in probe mode through
`running_stack`, is brought to two sizes by its recipe's setup (a request for the items
service, a command for the Flask one) and answers every rendered request as the recipe
expects, and the probe records each one (GET /__probe/last).

This checks the recipes and render_request against real services; the probe phase that
measures them is harness.phases.probe.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from harness import config
from harness.config import UpstreamConfig
from harness.config.probe_recipe import ProbeRecipe, render_request
from harness.config.target_spec import TargetSpec, fill, start_values
from harness.stack.targets import running_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def set_size(
    client: httpx.Client, target: TargetSpec, recipe: ProbeRecipe, values: dict[str, object]
) -> None:
    assert recipe.setup is not None
    if recipe.setup.request is not None:
        setup = render_request(recipe.setup.request, values)
        response = client.request(
            setup.method, setup.path, headers=setup.headers, json=setup.json, content=setup.content
        )
        assert response.is_success, response.text
    else:
        assert recipe.setup.command is not None
        subprocess.run(fill(recipe.setup.command, values), cwd=target.cwd, check=True, timeout=60)


@pytest.mark.parametrize(
    ("example", "name"),
    [("items_service", "items"), ("flask_service", "notes"), ("cache_service", "cache")],
)
def test_each_recipe_request_is_answered_and_recorded(
    tmp_path: Path, example: str, name: str
) -> None:
    target = config.load(EXAMPLES / example / "loadtest.toml").target(name)
    recipe = target.probe
    assert recipe is not None and recipe.sizes is not None
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with (
        running_stack(target, data_dir, tmp_path / "logs", UpstreamConfig(), mode="probe") as stack,
        httpx.Client(base_url=stack.base_url, timeout=30) as client,
    ):
        port = int(stack.base_url.rsplit(":", 1)[1])
        base = start_values(port, "127.0.0.1", data_dir, "", 1)
        i = 0
        for size in recipe.sizes[:2]:
            set_size(client, target, recipe, recipe.values(size, i, base))
            for request in recipe.requests:
                i += 1
                rendered = render_request(request.template, recipe.values(size, i, base))
                response = client.request(
                    rendered.method,
                    rendered.path,
                    headers=rendered.headers,
                    json=rendered.json,
                    content=rendered.content,
                )
                assert request.accepts(response.status_code), (request.name, size, response.text)
                assert request.expect_body_contains in response.text
                record = client.get("/__probe/last").json()
                assert (record["method"], record["path"]) == (rendered.method, rendered.path)
                assert record["status"] == response.status_code
                if request.reset_after:
                    set_size(client, target, recipe, recipe.values(size, i, base))
            listing = next(r for r in recipe.requests if r.name in ("list", "rows"))
            listed = client.get(listing.template.path).json()
            assert listed["count"] == size  # the setup brought it to the size, and kept it there
