"""Probe recipes: the requests a target's probe measures, and its data-size knob.

A `[target.probe]` table says which requests to measure one at a time under the tracemalloc
probe (`[[target.probe.request]]`), at which data sizes (`sizes`, the knob's values, in
`size_unit`s), and how to bring the service to size N before each point: an HTTP request
(`setup = {method, path, json | body}`) or a command (`setup_command`)::

    [target.probe]
    sizes = [0, 100, 1000]
    size_unit = "item"
    setup = { method = "PUT", path = "/__probe/size", json = { n = "{size}" } }

    [[target.probe.request]]
    name = "add"
    method = "POST"
    path = "/items"
    json = { name = "item {i}", size = "{size}" }
    reset_after = true
    expect_status = [201]

Placeholders: `{size}` (the point's size), `{i}` (the request counter), `{user}` (the probe
user id, `user`, default "probe-user") and those of the target's command (`{python}`,
`{host}`, `{port}`, `{data_dir}`, `{upstream_url}`, `{workers}`). A JSON value that is exactly
"{size}" or "{i}" becomes an integer. Values filled into a path are percent-encoded.

Pure: parsing, validation (errors name the file and the key) and rendering one request for
(size, i). The engine that sends the requests and reads the figures is harness.phases.probe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from harness._errors import ConfigError

__all__ = [
    "DEFAULT_USER",
    "HTTP_METHODS",
    "ProbeRecipe",
    "ProbeRequest",
    "ProbeSetup",
    "RenderedRequest",
    "RequestTemplate",
    "parse_probe",
    "reference_recipe",
    "render_request",
]

HTTP_METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DEFAULT_USER: Final = "probe-user"
DEFAULT_CONTENT_TYPE: Final = "text/plain; charset=utf-8"
# The knob's placeholders; the command's ({python}, {host}, ...) are added by the caller.
SETUP_PLACEHOLDERS: Final = frozenset({"size", "user"})
REQUEST_PLACEHOLDERS: Final = frozenset({"size", "i", "user"})
INTEGER_PLACEHOLDERS: Final = frozenset({"size", "i"})  # "{size}" alone in JSON: an int

PROBE_KEYS: Final = frozenset({"sizes", "size_unit", "user", "setup", "setup_command", "request"})
TEMPLATE_KEYS: Final = frozenset({"method", "path", "json", "body", "content_type", "headers"})
REQUEST_KEYS: Final = TEMPLATE_KEYS | {
    "name",
    "reset_after",
    "stream",
    "expect_status",
    "expect_body_contains",
}

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_UNIT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

JSONValue = Any  # what tomllib gives: str, int, float, bool, list, dict (no null)


@dataclass(frozen=True)
class RequestTemplate:
    """An HTTP request with placeholders; at most one of json and body."""

    method: str
    path: str  # starts with "/"
    headers: Mapping[str, str] = field(default_factory=dict)
    json: JSONValue | None = None  # a JSON body (TOML has no null: None means none)
    body: str | None = None  # a raw body, sent as UTF-8 with content_type
    content_type: str | None = None  # only with body; default text/plain; charset=utf-8


@dataclass(frozen=True)
class ProbeRequest:
    """One measured request of the probe (an endpoint in the figures)."""

    name: str  # the endpoint label in the figures
    template: RequestTemplate
    reset_after: bool = False  # the request changes the size: re-run the setup after it
    stream: bool = False  # read the body to its end as a stream
    expect_status: tuple[int, ...] = ()  # () means any 2xx
    expect_body_contains: str = ""  # "" means no check

    def accepts(self, status: int) -> bool:
        """Whether a response status counts as a success of this request."""
        if self.expect_status:
            return status in self.expect_status
        return 200 <= status < 300


@dataclass(frozen=True)
class ProbeSetup:
    """How to bring the service to size N: exactly one of request and command."""

    request: RequestTemplate | None = None  # sent to the running service (unmeasured)
    command: tuple[str, ...] | None = None  # run as a subprocess, placeholders filled


@dataclass(frozen=True)
class ProbeRecipe:
    """A target's `[target.probe]` table."""

    requests: tuple[ProbeRequest, ...]
    setup: ProbeSetup | None = None  # None only with a single size: there is no knob to turn
    sizes: tuple[int, ...] | None = None  # None: the profile's / [gate]'s history lengths
    size_unit: str = "item"  # slopes are in bytes per size_unit
    user: str = DEFAULT_USER  # fills {user}

    def values(self, size: int, i: int, base: Mapping[str, object]) -> dict[str, object]:
        """The placeholder values for request `i` at `size` (base: the command's values)."""
        return {**base, "size": size, "i": i, "user": self.user}

    def to_json(self) -> dict[str, Any]:
        return {
            "sizes": list(self.sizes) if self.sizes is not None else None,
            "size_unit": self.size_unit,
            "user": self.user,
            "setup": _setup_json(self.setup),
            "requests": [
                {
                    "name": r.name,
                    **_template_json(r.template),
                    "reset_after": r.reset_after,
                    "stream": r.stream,
                    "expect_status": list(r.expect_status),
                    "expect_body_contains": r.expect_body_contains,
                }
                for r in self.requests
            ],
        }


@dataclass(frozen=True)
class RenderedRequest:
    """A request ready for an HTTP client: at most one of json and content."""

    method: str
    path: str
    headers: dict[str, str]
    json: JSONValue | None = None
    content: bytes | None = None


# --- rendering ------------------------------------------------------------------------------


def render_request(template: RequestTemplate, values: Mapping[str, object]) -> RenderedRequest:
    """`template` with its placeholders filled from `values` (see ProbeRecipe.values).

    Raises KeyError for a placeholder without a value (parsing has checked the names)."""
    headers = {k: _fill(v, values) for k, v in template.headers.items()}
    path = _fill(template.path, values, quote_values=True)
    if template.json is not None:
        return RenderedRequest(
            template.method, path, headers, json=_fill_json(template.json, values)
        )
    if template.body is not None:
        if not any(k.lower() == "content-type" for k in headers):
            headers["content-type"] = template.content_type or DEFAULT_CONTENT_TYPE
        content = _fill(template.body, values).encode("utf-8")
        return RenderedRequest(template.method, path, headers, content=content)
    return RenderedRequest(template.method, path, headers)


def _fill(text: str, values: Mapping[str, object], quote_values: bool = False) -> str:
    def one(match: re.Match[str]) -> str:
        value = str(values[match.group(1)])
        return quote(value, safe="") if quote_values else value

    return _PLACEHOLDER.sub(one, text)


def _fill_json(value: JSONValue, values: Mapping[str, object]) -> JSONValue:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole is not None and whole.group(1) in INTEGER_PLACEHOLDERS:
            return int(str(values[whole.group(1)]))
        return _fill(value, values)
    if isinstance(value, Mapping):
        return {k: _fill_json(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_json(v, values) for v in value]
    return value


# --- parsing --------------------------------------------------------------------------------


def parse_probe(
    raw: object, path: Path, key: str, command_placeholders: frozenset[str]
) -> ProbeRecipe:
    """A `[target.probe]` table; `key` names it in errors (e.g. "target[2].probe")."""
    p = _Parser(path)
    table = p.table(raw, key, PROBE_KEYS)
    sizes: tuple[int, ...] | None = None
    if "sizes" in table:
        sizes = p.sizes(table["sizes"], f"{key}.sizes")
    size_unit = p.string(table, "size_unit", key, default="item")
    if not _UNIT.match(size_unit):
        raise ConfigError(
            path, f"{key}.size_unit", f"must be a word like 'item', got {size_unit!r}"
        )
    user = p.string(table, "user", key, default=DEFAULT_USER)
    p.placeholders(user, f"{key}.user", frozenset())

    setup_allowed = command_placeholders | SETUP_PLACEHOLDERS
    if "setup" in table and "setup_command" in table:
        raise ConfigError(path, f"{key}.setup_command", "give setup or setup_command, not both")
    setup: ProbeSetup | None = None
    if "setup" in table:
        setup = ProbeSetup(
            request=p.template(table["setup"], f"{key}.setup", TEMPLATE_KEYS, setup_allowed)
        )
    elif "setup_command" in table:
        setup = ProbeSetup(
            command=p.argv(table["setup_command"], f"{key}.setup_command", setup_allowed)
        )
    elif sizes is None or len(sizes) > 1:
        raise ConfigError(
            path,
            f"{key}.setup",
            "missing: how to bring the service to each size (setup = {method, path, json} "
            "or setup_command = [...]); without one, give a single size",
        )

    raw_requests = table.get("request")
    if not isinstance(raw_requests, list) or not raw_requests:
        raise ConfigError(
            path, f"{key}.request", "at least one [[...probe.request]] table is needed"
        )
    request_allowed = command_placeholders | REQUEST_PLACEHOLDERS
    requests: list[ProbeRequest] = []
    for index, item in enumerate(raw_requests):
        request = p.request(item, f"{key}.request[{index}]", request_allowed)
        if any(r.name == request.name for r in requests):
            raise ConfigError(
                path, f"{key}.request[{index}].name", f"{request.name!r} is listed twice"
            )
        requests.append(request)
    return ProbeRecipe(
        requests=tuple(requests), setup=setup, sizes=sizes, size_unit=size_unit, user=user
    )


class _Parser:
    """Validation helpers; every error names the file and the full key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.path, key, problem)

    def table(self, raw: object, key: str, allowed: frozenset[str]) -> Mapping[str, Any]:
        if not isinstance(raw, Mapping):
            raise self.fail(key, "must be a table")
        for name in raw:
            if name not in allowed:
                raise self.fail(
                    f"{key}.{name}", f"unknown key (allowed: {', '.join(sorted(allowed))})"
                )
        return raw

    def string(self, t: Mapping[str, Any], name: str, key: str, default: str | None = None) -> str:
        value = t.get(name, default)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{key}.{name}", f"must be a non-empty string, got {value!r}")
        return value

    def boolean(self, t: Mapping[str, Any], name: str, key: str) -> bool:
        value = t.get(name, False)
        if not isinstance(value, bool):
            raise self.fail(f"{key}.{name}", f"must be true or false, got {value!r}")
        return value

    def sizes(self, value: object, key: str) -> tuple[int, ...]:
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in value)
        ):
            raise self.fail(key, f"must be a non-empty list of integers, got {value!r}")
        if any(x < 0 for x in value):
            raise self.fail(key, "sizes must be >= 0")
        if len(set(value)) != len(value):
            raise self.fail(key, "a size is listed twice")
        return tuple(value)

    def placeholders(self, text: str, key: str, allowed: frozenset[str]) -> None:
        for name in _PLACEHOLDER.findall(text):
            if name not in allowed:
                known = ", ".join("{" + n + "}" for n in sorted(allowed)) or "none"
                raise self.fail(key, f"unknown placeholder {{{name}}} (known: {known})")

    def json_placeholders(self, value: JSONValue, key: str, allowed: frozenset[str]) -> None:
        if isinstance(value, str):
            self.placeholders(value, key, allowed)
        elif isinstance(value, Mapping):
            for k, v in value.items():
                self.json_placeholders(v, f"{key}.{k}", allowed)
        elif isinstance(value, list):
            for index, v in enumerate(value):
                self.json_placeholders(v, f"{key}[{index}]", allowed)

    def argv(self, value: object, key: str, allowed: frozenset[str]) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
            raise self.fail(key, f"must be a non-empty list of strings, got {value!r}")
        for arg in value:
            self.placeholders(arg, key, allowed)
        return tuple(value)

    def template(
        self, raw: object, key: str, keys: frozenset[str], allowed: frozenset[str]
    ) -> RequestTemplate:
        t = self.table(raw, key, keys)
        method = self.string(t, "method", key, default="GET").upper()
        if method not in HTTP_METHODS:
            raise self.fail(
                f"{key}.method",
                f"unknown HTTP method {method!r} (known: {', '.join(HTTP_METHODS)})",
            )
        path = self.string(t, "path", key)
        if not path.startswith("/"):
            raise self.fail(f"{key}.path", f"must start with '/', got {path!r}")
        self.placeholders(path, f"{key}.path", allowed)
        headers_raw = t.get("headers", {})
        if not isinstance(headers_raw, Mapping) or not all(
            isinstance(v, str) for v in headers_raw.values()
        ):
            raise self.fail(f"{key}.headers", "must be a table of strings")
        for name, value in headers_raw.items():
            self.placeholders(value, f"{key}.headers.{name}", allowed)
        if "json" in t and "body" in t:
            raise self.fail(f"{key}.body", "give json or body, not both")
        body: str | None = None
        if "body" in t:
            body = t["body"]
            if not isinstance(body, str):
                raise self.fail(f"{key}.body", f"must be a string, got {body!r}")
            self.placeholders(body, f"{key}.body", allowed)
        content_type: str | None = None
        if "content_type" in t:
            if body is None:
                raise self.fail(f"{key}.content_type", "only with body (json sets its own)")
            content_type = self.string(t, "content_type", key)
        json_value: JSONValue | None = t.get("json")
        if json_value is not None:
            self.json_placeholders(json_value, f"{key}.json", allowed)
        return RequestTemplate(
            method=method,
            path=path,
            headers={str(k): v for k, v in headers_raw.items()},
            json=json_value,
            body=body,
            content_type=content_type,
        )

    def request(self, raw: object, key: str, allowed: frozenset[str]) -> ProbeRequest:
        t = self.table(raw, key, REQUEST_KEYS)
        name = self.string(t, "name", key)
        if not _NAME.match(name):
            raise self.fail(f"{key}.name", f"must be letters, digits, '_', '-', '.', got {name!r}")
        template = self.template(
            {k: v for k, v in t.items() if k in TEMPLATE_KEYS}, key, TEMPLATE_KEYS, allowed
        )
        expect_raw = t.get("expect_status", [])
        if not isinstance(expect_raw, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in expect_raw
        ):
            raise self.fail(
                f"{key}.expect_status", f"must be a list of HTTP statuses, got {expect_raw!r}"
            )
        contains = t.get("expect_body_contains", "")
        if not isinstance(contains, str):
            raise self.fail(f"{key}.expect_body_contains", f"must be a string, got {contains!r}")
        return ProbeRequest(
            name=name,
            template=template,
            reset_after=self.boolean(t, "reset_after", key),
            stream=self.boolean(t, "stream", key),
            expect_status=tuple(expect_raw),
            expect_body_contains=contains,
        )


def _template_json(t: RequestTemplate) -> dict[str, Any]:
    return {
        "method": t.method,
        "path": t.path,
        "headers": dict(t.headers),
        "json": t.json,
        "body": t.body,
        "content_type": t.content_type,
    }


def _setup_json(setup: ProbeSetup | None) -> dict[str, Any] | None:
    if setup is None:
        return None
    if setup.request is not None:
        return {"request": _template_json(setup.request)}
    return {"command": list(setup.command or ())}


CHAT_MESSAGE: Final = "How much memory does one request of mine cost?"


def reference_recipe() -> ProbeRecipe:
    """The reference chat API's probe (both designs), exactly as loadtest.toml spells it."""
    chat = {"user_id": "{user}", "message": CHAT_MESSAGE}
    return ProbeRecipe(
        requests=(
            ProbeRequest(
                "chat",
                RequestTemplate("POST", "/chat", json={**chat, "stream": False}),
                reset_after=True,
            ),
            ProbeRequest(
                "chat_stream",
                RequestTemplate("POST", "/chat", json={**chat, "stream": True}),
                reset_after=True,
                stream=True,
                expect_body_contains="event: done",
            ),
            ProbeRequest(
                "history",
                RequestTemplate("GET", "/history/{user}"),
                expect_status=(200, 404),
            ),
        ),
        setup=ProbeSetup(
            request=RequestTemplate("PUT", "/__probe/history/{user}", json={"length": "{size}"})
        ),
        sizes=None,
        size_unit="message",
        user=DEFAULT_USER,
    )
