"""The public API is what we say it is (httpx's practice)."""

import harness


def test_all_names_exist() -> None:
    for name in harness.__all__:
        assert hasattr(harness, name), name


def test_public_names() -> None:
    assert set(harness.__all__) == {
        "SCHEMA_VERSION",
        "ConfigError",
        "HarnessError",
        "PhaseFailed",
        "RunDir",
        "SummaryRow",
        "UsageError",
        "__version__",
    }
