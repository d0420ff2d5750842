"""Ids of what is created, on a phone or on the server: UUID version 7 (RFC 9562).

Any UUID is a valid id (CONTRACT §4: ids are client-generated UUIDs), and phones of older
releases send random ones (version 4). A version 7 id starts with the milliseconds of its
clock, then 74 random bits: ids made close in time sort close together. The indexes on record
and op ids then take a push's new entries on a few pages at their end, where random ids put
each on a page of its own, and every page a commit touched is written out again: into a store
of 300,000 visits, a push of 500 took 45 ms instead of 63 (bench/README.md). A wrong clock
costs only that locality: uniqueness rests on the random bits. pwa_static/js/ids.js is the
phone's copy of ``new_id``.
"""

from __future__ import annotations

import os
import time
import uuid

#: the largest milliseconds a version 7 id holds (48 bits: the year 10889)
MAX_MILLIS = 2**48 - 1


def new_id(millis: int | None = None) -> str:
    """A fresh version 7 UUID for ``millis`` since the epoch (now when not given; a time
    outside 0 … MAX_MILLIS is clamped into it)."""
    if millis is None:
        millis = time.time_ns() // 1_000_000
    millis = min(max(millis, 0), MAX_MILLIS)
    value = millis << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # the version, 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # the variant of RFC 9562
    return str(uuid.UUID(int=value))
