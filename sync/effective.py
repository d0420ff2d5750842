"""Effective time (CONTRACT §7): what the server trusts of a phone's clock.

Phone clocks are wrong — months off, reset to 1970, changed by hand. The server never rejects
for it. It ranks an op by its hlc clamped into what this device can honestly claim, and it
places a visit in time by the skew between the phone's clock and its own at push time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sync.hlc import clamp, format_hlc

#: a phone clock closer than this to the server's is taken as right
SKEW_TOLERANCE = timedelta(minutes=10)


def effective_hlc(op_hlc: str, device_floor: str, previous: str, server_now: str) -> str:
    """The op's hlc, no earlier than the device's registration and its own previous op, and no
    later than the server's clock at receipt (a phone set to 2035 cannot win every merge).

    The lower bound depends only on the device's own op sequence, never on how its outbox
    was cut into batches or when other devices pushed, so merges stay order-independent.
    """
    return clamp(op_hlc, max(device_floor, previous), server_now)


def hlc_of(moment: datetime) -> str:
    return format_hlc(int(moment.timestamp() * 1000))


def effective_visit_time(
    visited_at: datetime, device_time: datetime | None, received_at: datetime
) -> tuple[datetime, bool]:
    """(the corrected visit time, whether it was corrected).

    The phone's clock error at push time is the best estimate of its error when it recorded
    the visit: a phone at 1970 or 2035 still lands its visits in the right week. A visit is
    never placed after the server received it. All three times lie between the years
    sync.records.MIN_YEAR and MAX_YEAR (parse_offset_datetime refuses others; the server's
    clock is one), so the shift cannot overflow a datetime.
    """
    corrected = visited_at
    if device_time is not None:
        skew = received_at - device_time
        if abs(skew) > SKEW_TOLERANCE:
            corrected = visited_at + skew
    if corrected > received_at:
        corrected = received_at
    corrected = corrected.astimezone(visited_at.tzinfo)
    return corrected, corrected != visited_at
