"""Probe recipes ([target.probe]): parsing, validation (errors name the file and key), rendering."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from harness._errors import ConfigError
from harness.config.probe_recipe import (
    ProbeRecipe,
    RequestTemplate,
    parse_probe,
    reference_recipe,
    render_request,
)
from harness.config.target_spec import START_PLACEHOLDERS, parse_targets

FILE = Path("loadtest.toml")

ITEMS = """
[[target]]
name = "items"
command = ["{python}", "-m", "harness.serve", "app:app", "--host", "{host}", "--port", "{port}"]
health = "/healthz"

[target.probe]
sizes = [0, 100, 1000]
size_unit = "item"
setup = { method = "PUT", path = "/__probe/size", json = { n = "{size}" } }

[[target.probe.request]]
name = "add"
method = "POST"
path = "/items"
json = { name = "item {i}", size = "{size}", tags = ["{user}", "{i}"] }
headers = { "x-user" = "probe {user}" }
reset_after = true
stream = false
expect_status = [201]
expect_body_contains = ""

[[target.probe.request]]
name = "note"
method = "post"
path = "/notes/{user}"
body = "note {i} at {size}"
content_type = "text/plain"
"""


def recipe_of(text: str) -> ProbeRecipe:
    (target,) = parse_targets(tomllib.loads(text)["target"], FILE)
    assert target.probe is not None
    return target.probe


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_targets(tomllib.loads(text)["target"], FILE)
    return str(info.value)


def test_the_agreed_shape_parses_into_typed_recipes() -> None:
    recipe = recipe_of(ITEMS)
    assert recipe.sizes == (0, 100, 1000)
    assert recipe.size_unit == "item"
    assert recipe.user == "probe-user"
    assert recipe.setup is not None and recipe.setup.command is None
    assert recipe.setup.request == RequestTemplate("PUT", "/__probe/size", json={"n": "{size}"})
    add, note = recipe.requests
    assert add.name == "add" and add.template.method == "POST" and add.template.path == "/items"
    assert add.reset_after and not add.stream
    assert add.expect_status == (201,) and add.expect_body_contains == ""
    assert add.accepts(201) and not add.accepts(200)
    assert note.template.method == "POST"  # methods are upper-cased
    assert note.accepts(204) and not note.accepts(404)  # default: any 2xx
    assert not note.reset_after


def test_rendering_fills_placeholders_and_makes_exact_counters_integers() -> None:
    recipe = recipe_of(ITEMS)
    values = recipe.values(size=100, i=7, base={"host": "127.0.0.1", "port": 9})
    add = render_request(recipe.requests[0].template, values)
    assert add.method == "POST" and add.path == "/items"
    assert add.json == {"name": "item 7", "size": 100, "tags": ["probe-user", 7]}
    assert add.headers == {"x-user": "probe probe-user"}
    assert add.content is None
    assert recipe.setup is not None and recipe.setup.request is not None
    assert render_request(recipe.setup.request, values).json == {"n": 100}


def test_rendering_a_raw_body_sets_its_content_type_and_quotes_path_values() -> None:
    recipe = recipe_of(ITEMS)
    note = recipe.requests[1].template
    rendered = render_request(note, {"size": 3, "i": 0, "user": "a b/c"})
    assert rendered.path == "/notes/a%20b%2Fc"
    assert rendered.content == b"note 0 at 3"
    assert rendered.json is None
    assert rendered.headers == {"content-type": "text/plain"}
    plain = render_request(RequestTemplate("POST", "/x", body="hi"), {})
    assert plain.headers == {"content-type": "text/plain; charset=utf-8"}


def test_a_setup_command_takes_size_and_the_command_placeholders() -> None:
    text = ITEMS.replace(
        'setup = { method = "PUT", path = "/__probe/size", json = { n = "{size}" } }',
        'setup_command = ["{python}", "seed.py", "--n", "{size}", "--into", "{data_dir}"]',
    )
    recipe = recipe_of(text)
    assert recipe.setup is not None and recipe.setup.request is None
    assert recipe.setup.command == ("{python}", "seed.py", "--n", "{size}", "--into", "{data_dir}")


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        ('method = "post"', 'method = "FETCH"', "probe.request[1].method", "unknown HTTP method"),
        (
            "reset_after = true",
            "reset_afterr = true",
            "probe.request[0].reset_afterr",
            "unknown key",
        ),
        ('name = "note"', 'name = "add"', "probe.request[1].name", "listed twice"),
        ('"item {i}"', '"item {n}"', "probe.request[0].json.name", "unknown placeholder {n}"),
        ('path = "/items"', 'path = "items"', "probe.request[0].path", "must start with '/'"),
        (
            "expect_status = [201]",
            "expect_status = [2010]",
            "probe.request[0].expect_status",
            "HTTP statuses",
        ),
        ("stream = false", 'stream = "no"', "probe.request[0].stream", "true or false"),
        (
            '"x-user" = "probe {user}"',
            '"x-user" = "{token}"',
            "probe.request[0].headers.x-user",
            "unknown placeholder",
        ),
        (
            'content_type = "text/plain"',
            'content_type = "text/plain"\njson = {a = 1}',
            "probe.request[1].body",
            "json or body",
        ),
        ("sizes = [0, 100, 1000]", "sizes = [0, -1]", "probe.sizes", ">= 0"),
        ("sizes = [0, 100, 1000]", "sizes = [0, 0]", "probe.sizes", "listed twice"),
        ('size_unit = "item"', 'size_unit = "an item"', "probe.size_unit", "a word"),
        (
            'json = { n = "{size}" }',
            'json = { n = "{i}" }',
            "probe.setup.json.n",
            "unknown placeholder {i}",
        ),
        ("sizes = [0, 100, 1000]", "sizez = [0]", "probe.sizez", "unknown key"),
    ],
)
def test_bad_recipes_name_the_file_and_the_key(old: str, new: str, key: str, problem: str) -> None:
    assert old in ITEMS
    message = error_of(ITEMS.replace(old, new, 1))
    assert message.startswith(f"loadtest.toml: target.items.{key}: "), message
    assert problem in message


def test_a_recipe_needs_requests_and_a_knob() -> None:
    head = ITEMS.split("[[target.probe.request]]")[0]
    assert "at least one" in error_of(head)
    no_setup = ITEMS.replace(
        'setup = { method = "PUT", path = "/__probe/size", json = { n = "{size}" } }\n', ""
    )
    assert "target.items.probe.setup: missing" in error_of(no_setup)
    one_size = no_setup.replace("sizes = [0, 100, 1000]", "sizes = [0]")
    assert recipe_of(one_size).setup is None  # a single size needs no knob
    both = ITEMS.replace(
        'size_unit = "item"', 'size_unit = "item"\nsetup_command = ["x", "{size}"]'
    )
    assert "setup or setup_command, not both" in error_of(both)


def test_the_reference_recipe_is_what_the_chat_probe_sends() -> None:
    recipe = reference_recipe()
    assert [r.name for r in recipe.requests] == ["chat", "chat_stream", "history"]
    assert recipe.sizes is None  # the profile's probe_history_lens / [gate] history_lens
    assert recipe.size_unit == "message"
    values = recipe.values(size=100, i=1, base={})
    assert recipe.setup is not None and recipe.setup.request is not None
    setup = render_request(recipe.setup.request, values)
    assert (setup.method, setup.path, setup.json) == (
        "PUT",
        "/__probe/history/probe-user",
        {"length": 100},
    )
    chat, stream, history = recipe.requests
    assert render_request(chat.template, values).json == {
        "user_id": "probe-user",
        "message": "How much memory does one request of mine cost?",
        "stream": False,
    }
    assert chat.reset_after and not chat.stream
    assert stream.stream and stream.reset_after and stream.expect_body_contains == "event: done"
    assert render_request(history.template, values).path == "/history/probe-user"
    assert history.accepts(404) and history.accepts(200) and not history.reset_after


def test_parse_probe_on_its_own_names_the_key_it_is_given() -> None:
    with pytest.raises(ConfigError, match=r"^f.toml: target\[2\].probe: must be a table$"):
        parse_probe("x", Path("f.toml"), "target[2].probe", START_PLACEHOLDERS)
