"""Hybrid logical clocks (CONTRACT §7).

An HLC is a fixed-width string whose lexicographic order is its time order:
15 decimal digits of milliseconds since the Unix epoch, ``-``, 4 hex digits of counter.
Comparing two HLCs is therefore plain string comparison, in Python, SQL and JavaScript alike.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

HLC_PATTERN = re.compile(r"[0-9]{15}-[0-9a-f]{4}")
MAX_COUNTER = 0xFFFF
ZERO = "000000000000000-0000"


class HLCError(ValueError):
    """A string that is not an HLC."""


def format_hlc(millis: int, counter: int = 0) -> str:
    """The canonical string form of (millis, counter)."""
    if not 0 <= millis < 10**15 or not 0 <= counter <= MAX_COUNTER:
        raise HLCError(f"hlc out of range: {millis}, {counter}")
    return f"{millis:015d}-{counter:04x}"


def parse_hlc(value: str) -> tuple[int, int]:
    """(millis, counter) of an HLC string; raises HLCError for anything else."""
    if not isinstance(value, str) or not HLC_PATTERN.fullmatch(value):
        raise HLCError(f"not an hlc: {value!r}")
    millis, counter = value.split("-")
    return int(millis), int(counter, 16)


def is_hlc(value: object) -> bool:
    return isinstance(value, str) and HLC_PATTERN.fullmatch(value) is not None


def clamp(value: str, low: str, high: str) -> str:
    """``value`` moved into [low, high]; if the bounds cross, ``high`` (the server's) wins."""
    return min(max(value, low), high)


class Clock:
    """A monotonic HLC: ``now()`` for local events, ``observe()`` for remote timestamps.

    ``physical`` returns milliseconds since the epoch; tests hand in a fake.
    """

    def __init__(self, physical: Callable[[], int] | None = None, last: str = ZERO) -> None:
        self._physical = physical or (lambda: int(time.time() * 1000))
        self.last = last

    def now(self) -> str:
        return self.observe(ZERO)

    def observe(self, remote: str) -> str:
        """The next HLC after both our last one and ``remote``."""
        wall = self._physical()
        last_ms, last_count = parse_hlc(self.last)
        remote_ms, remote_count = parse_hlc(remote)
        millis = max(wall, last_ms, remote_ms)
        if millis == last_ms == remote_ms:
            counter = max(last_count, remote_count) + 1
        elif millis == last_ms:
            counter = last_count + 1
        elif millis == remote_ms:
            counter = remote_count + 1
        else:
            counter = 0
        if counter > MAX_COUNTER:
            millis, counter = millis + 1, 0
        self.last = format_hlc(millis, counter)
        return self.last
