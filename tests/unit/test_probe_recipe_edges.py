"""The probe recipe's edges that its main tests leave open, found by `make mutation`: the 2xx
bounds, the recipe as the run directory records it (to_json) in full, a body's own
Content-Type, values left unquoted outside the path, and malformed sizes and commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness._errors import ConfigError
from harness.config.probe_recipe import (
    ProbeRecipe,
    ProbeRequest,
    ProbeSetup,
    RequestTemplate,
    parse_probe,
    render_request,
)

FILE = Path("loadtest.toml")
KEY = "target.items.probe"
REQUEST = {"name": "get", "path": "/items"}


def test_any_2xx_is_a_success_by_default() -> None:
    request = ProbeRequest("get", RequestTemplate("GET", "/"))
    assert [s for s in (199, 200, 201, 299, 300, 301) if request.accepts(s)] == [200, 201, 299]


def test_the_recorded_recipe_in_full() -> None:
    template = RequestTemplate(
        "POST", "/notes/{user}", {"x-a": "1"}, body="n {i}", content_type="text/plain"
    )
    recipe = ProbeRecipe(
        requests=(
            ProbeRequest("note", template, True, True, (201,), "ok"),
            ProbeRequest("get", RequestTemplate("GET", "/n", json={"a": 1})),
        ),
        setup=ProbeSetup(request=RequestTemplate("PUT", "/size", json={"n": "{size}"})),
        sizes=(0, 10),
        size_unit="note",
        user="me",
    )
    setup = {"method": "PUT", "path": "/size", "headers": {}, "json": {"n": "{size}"},
             "body": None, "content_type": None}  # fmt: skip
    assert recipe.to_json() == {
        "sizes": [0, 10],
        "size_unit": "note",
        "user": "me",
        "setup": {"request": setup},
        "requests": [
            {
                "name": "note",
                "method": "POST",
                "path": "/notes/{user}",
                "headers": {"x-a": "1"},
                "json": None,
                "body": "n {i}",
                "content_type": "text/plain",
                "reset_after": True,
                "stream": True,
                "expect_status": [201],
                "expect_body_contains": "ok",
            },
            {
                "name": "get",
                "method": "GET",
                "path": "/n",
                "headers": {},
                "json": {"a": 1},
                "body": None,
                "content_type": None,
                "reset_after": False,
                "stream": False,
                "expect_status": [],
                "expect_body_contains": "",
            },
        ],
    }


def test_the_recorded_setup_command_and_no_setup() -> None:
    only = (ProbeRequest("get", RequestTemplate("GET", "/")),)
    command = ProbeRecipe(only, ProbeSetup(command=("seed", "{size}")))
    assert command.to_json()["setup"] == {"command": ["seed", "{size}"]}
    assert command.to_json()["sizes"] is None
    assert ProbeRecipe(only).to_json()["setup"] is None


def test_a_body_keeps_its_own_content_type_and_values_outside_the_path_are_not_quoted() -> None:
    template = RequestTemplate(
        "PUT", "/n/{user}", {"Content-Type": "application/x", "x-u": "{user}"}, body="{user}"
    )
    rendered = render_request(template, {"user": "a b/c"})
    assert rendered.method == "PUT" and rendered.path == "/n/a%20b%2Fc"
    assert rendered.headers == {"Content-Type": "application/x", "x-u": "a b/c"}
    assert rendered.content == b"a b/c"
    bare = render_request(RequestTemplate("DELETE", "/x", {"x-a": "1"}), {})
    assert (bare.method, bare.headers, bare.json, bare.content) == (
        "DELETE",
        {"x-a": "1"},
        None,
        None,
    )


def _error(probe: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_probe(probe, FILE, KEY, frozenset({"python"}))
    return str(info.value)


@pytest.mark.parametrize("sizes", [[], 5, [1, "a"], [1.5], [True]])
def test_sizes_must_be_a_non_empty_list_of_integers(sizes: object) -> None:
    message = _error({"sizes": sizes, "request": [REQUEST]})
    assert message.startswith(f"loadtest.toml: {KEY}.sizes: must be a non-empty list of integers")


@pytest.mark.parametrize("command", [[], "python seed.py", ["seed", 1]])
def test_a_setup_command_must_be_a_non_empty_list_of_strings(command: object) -> None:
    message = _error({"sizes": [0, 1], "setup_command": command, "request": [REQUEST]})
    assert message.startswith(f"loadtest.toml: {KEY}.setup_command: must be a non-empty list of")


def test_a_setup_command_s_unknown_placeholder_names_the_key() -> None:
    probe = {"sizes": [0, 1], "setup_command": ["{python}", "{nope}"], "request": [REQUEST]}
    assert _error(probe).startswith(
        f"loadtest.toml: {KEY}.setup_command: unknown placeholder {{nope}}"
    )
