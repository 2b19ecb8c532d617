"""What the server said when requests failed: the exceptions in its log, grouped.

`parse_exceptions(text)` reads an app's log (uvicorn's "Exception in ASGI application",
Flask's "ERROR in app: Exception on /path", any logger that prints a Python traceback) and
groups its tracebacks by the exception that ended each one (its type and the first line of its
message): how many times each was logged, and the first traceback of each, with the log line
that introduced it. A chained traceback ("The above exception was the direct cause of...",
"During handling of the above exception...") counts once, under its last exception, and its
whole text is kept.

Pure: text in, values out; reading the files is harness.phases.server_errors's job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ServerException",
    "console_lines",
    "from_json",
    "parse_exceptions",
    "to_json",
]

TRACEBACK_START: Final = "Traceback (most recent call last):"
CHAIN_LINES: Final = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)
MAX_TRACEBACK_LINES: Final = 80  # a longer first traceback keeps its head and its end
_EXCEPTION_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")
# Log lines that look like "Type: message" but are a logger's level prefix (uvicorn's "INFO:").
_LOG_LEVELS: Final = frozenset({"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "TRACE"})


@dataclass(frozen=True)
class ServerException:
    """One kind of exception the server logged: `count` tracebacks ended with it."""

    type: str  # e.g. "sqlite3.OperationalError"
    message: str  # the first line of its message ("" when it had none)
    count: int
    first_traceback: str  # the first one logged, with the line that introduced it

    @property
    def title(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type

    def last_frame(self) -> str:
        """Where it was raised: the last `File "...", line N, in f` of the first traceback."""
        frames = [ln.strip() for ln in self.first_traceback.splitlines() if _is_frame(ln)]
        return frames[-1] if frames else ""


def parse_exceptions(text: str) -> list[ServerException]:
    """The exceptions of a log, grouped by (type, message), most frequent first (ties: the one
    logged first)."""
    groups: dict[tuple[str, str], list[Any]] = {}  # key -> [count, first traceback, order]
    for kind, message, block in _tracebacks(text.splitlines()):
        entry = groups.get((kind, message))
        if entry is None:
            groups[(kind, message)] = [1, _shorten(block), len(groups)]
        else:
            entry[0] += 1
    ordered = sorted(groups.items(), key=lambda item: (-item[1][0], item[1][2]))
    return [
        ServerException(kind, message, int(count), first)
        for (kind, message), (count, first, _) in ordered
    ]


def _tracebacks(lines: Sequence[str]) -> Iterable[tuple[str, str, list[str]]]:
    """(type, message, lines) of each traceback, chained ones as one."""
    i = 0
    while i < len(lines):
        if lines[i].strip() != TRACEBACK_START:
            i += 1
            continue
        intro = [lines[i - 1]] if i > 0 and lines[i - 1].strip() and not _ends(lines[i - 1]) else []
        block = [*intro]
        found: tuple[str, str] | None = None
        while i < len(lines) and lines[i].strip() == TRACEBACK_START:
            end = _exception_line(lines, i + 1)
            if end is None:  # a truncated traceback (the log ended): nothing to group
                return
            block += lines[i : end + 1]
            match = _EXCEPTION_LINE.match(lines[end])
            assert match is not None
            found = (match["type"], (match["message"] or "").strip())
            i = end + 1
            chained = _chain_continues(lines, i)
            if chained is None:
                break
            block += lines[i:chained]
            i = chained
        if found is not None:
            yield found[0], found[1], block


def _exception_line(lines: Sequence[str], start: int) -> int | None:
    """The index of the line that ends the traceback starting at `start` (its frames are
    indented; the exception line is the first that is not)."""
    for j in range(start, len(lines)):
        line = lines[j]
        if not line.strip() or line[0] in " \t":
            continue
        match = _EXCEPTION_LINE.match(line)
        return j if match is not None and match["type"] not in _LOG_LEVELS else None
    return None


def _chain_continues(lines: Sequence[str], i: int) -> int | None:
    """The index of the next chained traceback's first line, if a chain line follows."""
    j = i
    while j < len(lines) and not lines[j].strip():
        j += 1
    if j < len(lines) and lines[j].strip() in CHAIN_LINES:
        k = j + 1
        while k < len(lines) and not lines[k].strip():
            k += 1
        if k < len(lines) and lines[k].strip() == TRACEBACK_START:
            return k
    return None


def _ends(line: str) -> bool:
    return line.strip() in CHAIN_LINES


def _is_frame(line: str) -> bool:
    return line.lstrip().startswith('File "')


def _shorten(block: list[str]) -> str:
    if len(block) <= MAX_TRACEBACK_LINES:
        return "\n".join(block)
    head = MAX_TRACEBACK_LINES // 4
    tail = MAX_TRACEBACK_LINES - head - 1
    skipped = len(block) - head - tail
    return "\n".join([*block[:head], f"    ... ({skipped} lines)", *block[-tail:]])


# --- presenting -----------------------------------------------------------------------------


def console_lines(
    exceptions: Sequence[ServerException],
    *,
    requests: int,
    failures: int,
    log: str,
    limit: int = 5,
) -> list[str]:
    """What the console says: Locust's failure count, then each exception with its count
    and where it was raised (the full first traceback is in `log`'s phase directory)."""
    total = sum(e.count for e in exceptions)
    lines = [
        f"{failures:,} of {requests:,} requests failed; over the phase the server logged {total:,} "
        f"exception(s) of {len(exceptions)} kind(s) ({log}):"
    ]
    for exc in exceptions[:limit]:
        lines.append(f"  {exc.count:>6,} × {exc.title}")
        where = exc.last_frame()
        if where:
            lines.append(f"           at {where}")
    if len(exceptions) > limit:
        lines.append(f"  ... and {len(exceptions) - limit} more kind(s)")
    return lines


def to_json(exceptions: Sequence[ServerException]) -> list[dict[str, Any]]:
    return [
        {
            "type": e.type,
            "message": e.message,
            "count": e.count,
            "first_traceback": e.first_traceback,
        }
        for e in exceptions
    ]


def from_json(raw: Sequence[dict[str, Any]]) -> list[ServerException]:
    return [
        ServerException(
            str(r["type"]), str(r["message"]), int(r["count"]), str(r["first_traceback"])
        )
        for r in raw
    ]
