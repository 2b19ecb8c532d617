"""harness.analysis.sites: stacks -> the service's own line, sums per site, growth (pure)."""

from __future__ import annotations

import pytest

from harness.analysis.sites import (
    TOP_SITES,
    Frame,
    Site,
    SiteChange,
    aggregate,
    attribute,
    display_path,
    growth,
    is_library,
)

LIB = ("/usr/lib/python3.11/", "/venv/site-packages/")
ROOT = "/srv/memload"
STORE = f"{ROOT}/reference_app/optimized/store.py"
API = f"{ROOT}/reference_app/api.py"
JSON = "/usr/lib/python3.11/json/decoder.py"
PROBE = f"{ROOT}/harness/sampling/tracemalloc_probe.py"


def test_attribute_picks_the_first_frame_of_own_code() -> None:
    frames: list[Frame] = [(JSON, 353, "raw_decode"), (STORE, 111, "recent"), (API, 40, "chat")]
    assert attribute(frames, LIB, ROOT) == (
        "reference_app/optimized/store.py:111",
        "recent",
        "/usr/lib/python3.11/json/decoder.py:353",
    )


def test_attribute_via_only_when_the_site_is_not_the_innermost_frame() -> None:
    frames: list[Frame] = [(STORE, 111, "recent"), (API, 40, "chat")]
    assert attribute(frames, LIB, ROOT) == ("reference_app/optimized/store.py:111", "recent", "")


def test_attribute_falls_back_to_the_innermost_frame() -> None:
    frames: list[Frame] = [(JSON, 353, "raw_decode"), ("/venv/site-packages/x.py", 9, "y")]
    assert attribute(frames, LIB, ROOT) == (f"{JSON}:353", "raw_decode", "")
    # "<frozen ...>" and other pseudo-files count as library code
    frozen: list[Frame] = [("<frozen importlib>", 1, "load"), (API, 2, "chat")]
    assert attribute(frozen, LIB, ROOT) == (
        "reference_app/api.py:2",
        "chat",
        "<frozen importlib>:1",
    )


def test_attribute_drops_the_harness_measuring_frames() -> None:
    frames: list[Frame] = [(PROBE, 50, "snapshot"), (JSON, 1, "d"), (STORE, 7, "recent")]
    location, _, via = attribute(frames, LIB, ROOT) or ("", "", "")
    assert (location, via) == ("reference_app/optimized/store.py:7", f"{JSON}:1")
    # the measuring frame is never the site, nor the via
    assert attribute([(PROBE, 50, "snapshot"), (STORE, 7, "recent")], LIB, ROOT) == (
        "reference_app/optimized/store.py:7",
        "recent",
        "",
    )
    assert attribute([(PROBE, 50, "snapshot")], LIB, ROOT) is None
    assert attribute([("/usr/lib/python3.11/tracemalloc.py", 5, "take")], LIB, ROOT) is None
    assert attribute([], LIB, ROOT) is None


def test_display_path() -> None:
    assert display_path(STORE, ROOT) == "reference_app/optimized/store.py"
    assert display_path(STORE, ROOT + "/") == "reference_app/optimized/store.py"
    assert display_path("/srv/memload2/x.py", ROOT) == "/srv/memload2/x.py"  # not inside
    assert display_path(STORE, "") == STORE


def stack(path: str, line: int, fn: str = "f", via: Frame | None = None) -> list[Frame]:
    return [via, (path, line, fn)] if via else [(path, line, fn)]


def test_aggregate_sums_per_site_and_divides_by_per() -> None:
    stacks = [
        (stack(STORE, 1, "a"), 1000.0, 2.0),
        (stack(STORE, 1, "a", via=(JSON, 5, "d")), 3000.0, 4.0),
        (stack(API, 2, "b"), 500.0, 1.0),
    ]
    sites = aggregate(stacks, LIB, ROOT, per=10)
    assert sites == [
        Site("reference_app/optimized/store.py:1", "a", 400.0, 0.6, f"{JSON}:5"),
        Site("reference_app/api.py:2", "b", 50.0, 0.1, ""),
    ]


def test_aggregate_via_comes_from_the_largest_stack() -> None:
    stacks = [
        (stack(STORE, 1, "a", via=(JSON, 5, "d")), 10.0, 1.0),
        (stack(STORE, 1, "a", via=(JSON, 9, "e")), 90.0, 1.0),
        (stack(STORE, 1, "a"), 20.0, 1.0),
    ]
    (site,) = aggregate(stacks, LIB, ROOT)
    assert (site.bytes, site.via) == (120.0, f"{JSON}:9")


def test_aggregate_positive_only_drops_freed_sites() -> None:
    stacks = [
        (stack(STORE, 1), 100.0, 1.0),
        (stack(STORE, 2), -100.0, -1.0),
        (stack(STORE, 3), 50.0, 1.0),
        (stack(STORE, 3), -50.0, -1.0),  # nets to 0: dropped too
    ]
    assert [s.location for s in aggregate(stacks, LIB, ROOT, positive_only=True)] == [
        "reference_app/optimized/store.py:1"
    ]
    assert len(aggregate(stacks, LIB, ROOT)) == 3


def test_aggregate_orders_by_bytes_then_location_and_keeps_the_top() -> None:
    stacks = [
        (stack(STORE, 3), 10.0, 1.0),
        (stack(STORE, 1), 10.0, 1.0),
        (stack(STORE, 2), 99.0, 1.0),
        (stack(API, 1), 10.0, 1.0),
    ]
    locations = [s.location for s in aggregate(stacks, LIB, ROOT)]
    assert locations == [
        "reference_app/optimized/store.py:2",
        "reference_app/api.py:1",
        "reference_app/optimized/store.py:1",
        "reference_app/optimized/store.py:3",
    ]
    assert [s.location for s in aggregate(reversed(stacks), LIB, ROOT)] == locations
    assert [s.location for s in aggregate(stacks, LIB, ROOT, top=2)] == locations[:2]


def test_aggregate_skips_measuring_stacks_and_rejects_bad_per() -> None:
    assert aggregate([([(PROBE, 1, "x")], 1e9, 1.0)], LIB, ROOT) == []
    with pytest.raises(ValueError, match="per"):
        aggregate([], LIB, ROOT, per=0)


def test_site_json_round_trip() -> None:
    site = Site("a.py:1", "f", 12.5, 0.5, "b.py:2")
    assert Site.from_json(site.to_json()) == site
    plain = Site("a.py:1", "f", 12.5, 0.5)
    assert "via" not in plain.to_json()
    assert Site.from_json({"location": "a.py:1", "bytes": 3}) == Site("a.py:1", "", 3.0, 0.0)


def test_growth_only_growths_largest_first() -> None:
    base = [Site("a.py:1", "f", 100, 1), Site("b.py:1", "f", 100, 1), Site("c.py:1", "f", 100, 1)]
    cur = [
        Site("a.py:1", "f", 50, 1),  # shrank
        Site("b.py:1", "f", 130, 1),  # +30
        Site("c.py:1", "f", 100, 1),  # same
        Site("d.py:1", "g", 20, 1, "lib.py:9"),  # new: +20
    ]
    assert growth(base, cur) == [
        SiteChange("b.py:1", "f", 100, 130),
        SiteChange("d.py:1", "g", 0, 20, "lib.py:9"),
    ]
    assert growth(base, cur, top=1) == [SiteChange("b.py:1", "f", 100, 130)]
    # a site gone from the current run shrank to 0: not a growth
    assert growth(base, []) == []


def test_growth_keys_on_location_and_function_with_deterministic_ties() -> None:
    base = [Site("a.py:1", "f", 10, 1)]
    cur = [Site("a.py:1", "g", 10, 1), Site("b.py:1", "f", 5, 1), Site("a.py:2", "f", 5, 1)]
    changes = growth(base, cur, top=5)
    assert [(c.location, c.function, c.change) for c in changes] == [
        ("a.py:1", "g", 10),
        ("a.py:2", "f", 5),
        ("b.py:1", "f", 5),
    ]


# --- edges: library paths, roots, ties and defaults -------------------------------------------


def test_an_empty_library_dir_is_no_library() -> None:
    assert is_library("/usr/lib/python3.11/json/decoder.py", ("", "/usr/lib/python3.11/"))
    assert not is_library(STORE, ("", "/usr/lib/python3.11/"))
    assert is_library("<string>", ())
    frames: list[Frame] = [(JSON, 353, "raw_decode"), (STORE, 111, "recent")]
    assert attribute(frames, ("",), ROOT) == (
        "/usr/lib/python3.11/json/decoder.py:353",
        "raw_decode",
        "",
    )


def test_display_path_takes_the_longest_of_several_roots() -> None:
    roots = ["", "/srv", ROOT, "/usr/lib/python3.11"]
    assert display_path(STORE, roots) == "reference_app/optimized/store.py"
    assert display_path(JSON, roots) == "json/decoder.py"
    assert display_path("/elsewhere/x.py", roots) == "/elsewhere/x.py"
    assert display_path(JSON, ("/usr/lib/python3.11/",)) == "json/decoder.py"


def test_aggregate_via_of_equal_stacks_is_the_first() -> None:
    stacks = [
        (stack(STORE, 1, "a", via=(JSON, 5, "d")), 50.0, 1.0),
        (stack(STORE, 1, "a", via=(JSON, 9, "e")), 50.0, 1.0),
    ]
    (site,) = aggregate(stacks, LIB, ROOT)
    assert site.via == f"{JSON}:5"
    freed = [(stack(STORE, 1, "a", via=(JSON, 5, "d")), -10.0, 1.0)]
    assert aggregate(freed, LIB, ROOT)[0].via == f"{JSON}:5"  # a negative size still has a via


def test_aggregate_ties_on_bytes_and_location_go_by_function() -> None:
    stacks = [(stack(STORE, 1, "b"), 10.0, 1.0), (stack(STORE, 1, "a"), 10.0, 1.0)]
    assert [s.function for s in aggregate(stacks, LIB, ROOT)] == ["a", "b"]


def test_aggregate_keeps_ten_sites_by_default() -> None:
    stacks = [(stack(STORE, i), float(i), 1.0) for i in range(1, 13)]
    sites = aggregate(stacks, LIB, ROOT)
    assert len(sites) == TOP_SITES == 10
    assert sites[0].location == "reference_app/optimized/store.py:12"


def test_growth_keeps_three_by_default_and_the_current_via() -> None:
    base = [Site(f"a.py:{i}", "f", 0.0, 1, "old.py:1") for i in range(5)]
    cur = [Site(f"a.py:{i}", "f", 10.0 * (i + 1), 1, "new.py:1") for i in range(5)]
    changes = growth(base, cur)
    assert [c.location for c in changes] == ["a.py:4", "a.py:3", "a.py:2"]
    assert {c.via for c in changes} == {"new.py:1"}
    assert changes[0].change == 50.0
    gone = growth([Site("a.py:1", "f", 10.0, 1, "old.py:1")], [Site("a.py:1", "f", 20.0, 1)])
    assert gone[0].via == ""  # the current site's via, even when empty


def test_site_to_json_has_every_figure() -> None:
    assert Site("a.py:1", "f", 12.5, 0.5, "b.py:2").to_json() == {
        "location": "a.py:1",
        "function": "f",
        "bytes": 12.5,
        "count": 0.5,
        "via": "b.py:2",
    }
    assert Site.from_json({"location": 1, "bytes": "3", "count": "2", "function": 7}) == Site(
        "1", "7", 3.0, 2.0
    )


def test_display_path_strips_only_slashes_from_a_root() -> None:
    assert display_path("/srv/appX/a.py", "/srv/appX") == "a.py"
    assert display_path("/srv/appX/a.py", "/srv/appX//") == "a.py"


def test_aggregate_goes_on_after_a_measuring_stack() -> None:
    stacks = [([(PROBE, 1, "x")], 1e9, 1.0), (stack(STORE, 1), 5.0, 1.0)]
    assert [s.location for s in aggregate(stacks, LIB, ROOT)] == [
        "reference_app/optimized/store.py:1"
    ]


def test_positive_only_keeps_a_site_of_one_byte_or_less() -> None:
    stacks = [(stack(STORE, 1), 1.0, 1.0), (stack(STORE, 2), 0.5, 1.0)]
    sites = aggregate(stacks, LIB, ROOT, positive_only=True)
    assert [s.bytes for s in sites] == [1.0, 0.5]


def test_growth_of_under_a_byte_counts_and_a_gone_site_does_not() -> None:
    base = [Site("a.py:1", "f", 0.5, 1), Site("b.py:1", "f", 2.0, 1)]
    cur = [Site("b.py:1", "f", 2.5, 1)]
    assert [(c.location, c.change) for c in growth(base, cur)] == [("b.py:1", 0.5)]


def test_the_step_site_is_the_line_that_grew_most_in_that_leak_run() -> None:
    from harness.analysis.sites import step_site

    records = [
        {"endpoint": "report", "history_len": 100, "location": "cache_app.py:46",
         "function": "render_report", "bytes": 824_100.0, "count": 100.0},
        {"endpoint": "report", "history_len": 100, "location": "cache_app.py:55",
         "function": "cached_report", "bytes": 9_000.0, "count": 3.0},
        {"endpoint": "rows", "history_len": 100, "location": "cache_app.py:70",
         "function": "rows", "bytes": 2e6, "count": 1.0},
        {"endpoint": "report", "history_len": 1000, "location": "cache_app.py:80",
         "function": "x", "bytes": 3e6, "count": 1.0},
    ]  # fmt: skip
    site = step_site(records, "report", 100)
    assert site is not None
    assert (site.location, site.bytes) == ("cache_app.py:46", 824_100.0)
    assert step_site(records, "rows", 100) is not None
    assert step_site(records, "report", 5000) is None
    shrunk = [{**records[0], "bytes": -5.0}, {"endpoint": "report", "history_len": 100}]
    assert step_site(shrunk, "report", 100) is None  # nothing grew; a record without a line
