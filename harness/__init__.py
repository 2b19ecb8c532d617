"""Load-testing and memory-profiling harness for Python web services."""

from harness._errors import ConfigError, HarnessError, PhaseFailed, UsageError
from harness.results import SCHEMA_VERSION, RunDir, SummaryRow

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "ConfigError",
    "HarnessError",
    "PhaseFailed",
    "RunDir",
    "SummaryRow",
    "UsageError",
    "__version__",
]
