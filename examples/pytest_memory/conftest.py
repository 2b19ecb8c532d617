"""The example services' directories on the import path, after anything PYTHONPATH puts first
(so a planted copy of a service can stand in for it: docs/pytest-plugin.md)."""

from __future__ import annotations

import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1]
for service in ("items_service", "flask_service"):
    path = str(EXAMPLES / service)
    if path not in sys.path:
        sys.path.append(path)
