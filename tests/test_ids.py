"""Ids of what is created (sync/ids.py): UUID version 7, time first, unique by their random bits."""

from __future__ import annotations

import re
import time
import uuid

from sync.ids import MAX_MILLIS, new_id
from sync.records import UUID_PATTERN

V7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def millis_of(id_: str) -> int:
    return uuid.UUID(id_).int >> 80


def test_an_id_is_a_version_7_uuid_whose_first_48_bits_are_the_milliseconds():
    for millis in (0, 1, 1_796_362_741_520, MAX_MILLIS):
        id_ = new_id(millis)
        assert V7.match(id_) and UUID_PATTERN.match(id_)
        assert uuid.UUID(id_).version == 7 and uuid.UUID(id_).variant == uuid.RFC_4122
        assert millis_of(id_) == millis
    before = time.time_ns() // 1_000_000
    assert before <= millis_of(new_id()) <= time.time_ns() // 1_000_000


def test_a_time_outside_48_bits_is_clamped_not_wrapped():
    assert millis_of(new_id(-5)) == 0
    assert millis_of(new_id(2**60)) == MAX_MILLIS


def test_ids_of_later_milliseconds_sort_later_and_none_repeat():
    ids = [new_id(1_796_362_741_000 + i // 2) for i in range(4000)]
    assert [millis_of(i) for i in ids] == sorted(millis_of(i) for i in ids)
    assert ids[::2] == sorted(ids[::2])
    assert len(set(ids)) == len(ids)
