"""Effective time (CONTRACT §7): what the server trusts of a phone's clock.

Phone clocks are wrong — months off, reset to 1970, changed by hand. The server never rejects
for it. It ranks an op by its hlc clamped into what this device can honestly claim, and it
places a visit in time by the skew between the phone's clock and its own at push time.
It refuses only what no clock can explain: a visit recorded before it happened, or long after
(CONTRACT §10), both measured on the phone's own clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sync.hlc import clamp, format_hlc, parse_hlc

#: a phone clock closer than this to the server's is taken as right
SKEW_TOLERANCE = timedelta(minutes=10)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    if corrected is visited_at:  # the common case: a clock within the tolerance
        return visited_at, False
    corrected = corrected.astimezone(visited_at.tzinfo)
    return corrected, corrected != visited_at


def visit_time_problem(
    visited_at: datetime,
    op_hlc: str,
    device_time: datetime | None,
    received_at: datetime,
    backdate: timedelta,
) -> str | None:
    """What is wrong with a visit's time, or None: it may not be later than the moment the
    phone recorded it, nor more than ``backdate`` before (CONTRACT §10). VisitTimeBounds says
    how; a push builds one for all its visits."""
    return VisitTimeBounds(device_time, received_at, backdate).problem(visited_at, op_hlc)


class VisitTimeBounds:
    """The bounds of a visit's time for one push (CONTRACT §10).

    The moment a visit was recorded is its op's hlc, not the push: a phone offline for six
    days pushes visits recorded six days ago. Both are readings of the phone's own clock, so a
    wrong clock cancels out. But an hlc is the phone's clock or the latest hlc it saw,
    whichever is later — never behind its clock, sometimes ahead — so the future bound always
    holds for an honest phone, and the backdate bound needs care where the hlc ran ahead
    (docs/sync.md):

    - a phone behind the server (set to 1970) carries the server time it last saw: the visit
      is moved by the phone's lag, measured at push, and compared in the server's time;
    - an hlc ahead of the phone's clock at push was carried over from a clock once set ahead
      and put right since: it says nothing of when the visit was recorded, so only the future
      bound is checked.

    Times are whole microseconds since the epoch, exact as datetimes are, and what depends on
    the push alone is worked out once: a push of 500 visits asks 500 times. An integer does
    not overflow where a datetime would (an hlc past the year 9999)."""

    def __init__(
        self, device_time: datetime | None, received_at: datetime, backdate: timedelta
    ) -> None:
        #: the phone's clock at push, and how far it is behind the server's (negative: ahead);
        #: None when the push did not say the phone's time
        self.phone: tuple[int, int] | None = None
        if device_time is not None:
            device = _micros(device_time)
            self.phone = device, _micros(received_at) - device
        self.earliest = backdate // MICROSECOND + TOLERANCE  # before the recording, at most
        self.days = backdate.days

    def problem(self, visited_at: datetime, op_hlc: str) -> str | None:
        recorded = parse_hlc(op_hlc)[0] * 1000
        visited = _micros(visited_at)
        if visited > recorded + TOLERANCE:
            return "after the phone recorded the visit: a visit cannot be in the future"
        placed = visited
        if self.phone is not None:
            device, behind = self.phone
            if behind > TOLERANCE:
                placed = visited + behind
            elif recorded > device + TOLERANCE:
                return None
        if placed < recorded - self.earliest:
            return f"more than {self.days} days before the phone recorded the visit"
        return None


MICROSECOND = timedelta(microseconds=1)
TOLERANCE = SKEW_TOLERANCE // MICROSECOND


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch of a timezone-aware datetime, exactly."""
    return (moment - EPOCH) // MICROSECOND
