"""Report periods: ISO weeks for weekly-policy households, calendar months for monthly ones."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from server.http.errors import ApiError

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def invalid(field: str, message: str) -> ApiError:
    return ApiError("validation_failed", f"{field}: {message}", {"fields": {field: [message]}})


@dataclass(frozen=True)
class Period:
    """An ISO week (weekly-policy households) or a calendar month (monthly ones), as local days."""

    label: str
    policy: str  # weekly | monthly
    first: date
    end: date  # the day after the last one

    @classmethod
    def parse(cls, text: str) -> Period:
        """``2026-W47`` or ``2026-11``; 422 for anything else, e.g. week 53 of a 52-week year."""
        week, month = _WEEK.match(text or ""), _MONTH.match(text or "")
        if week:
            year, number = int(week[1]), int(week[2])
            if not 1970 <= year <= 2100:
                raise invalid("period", "the year must be between 1970 and 2100")
            weeks = date(year, 12, 28).isocalendar().week
            if not 1 <= number <= weeks:
                raise invalid("period", f"{year} has ISO weeks 1 to {weeks}")
            return cls.containing(date.fromisocalendar(year, number, 1), "weekly")
        if month:
            year, number = int(month[1]), int(month[2])
            if not 1970 <= year <= 2100:
                raise invalid("period", "the year must be between 1970 and 2100")
            if not 1 <= number <= 12:
                raise invalid("period", "a month is 01 to 12")
            return cls.containing(date(year, number, 1), "monthly")
        raise invalid("period", "an ISO week like 2026-W47 or a month like 2026-11")

    @classmethod
    def containing(cls, day: date, policy: str) -> Period:
        if policy == "weekly":
            first = day - timedelta(days=day.isoweekday() - 1)
            return cls(week_label(day), policy, first, first + timedelta(days=7))
        first = day.replace(day=1)
        end = (first + timedelta(days=32)).replace(day=1)
        return cls(month_label(day), policy, first, end)

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)

    def previous(self) -> Period:
        return Period.containing(self.first - timedelta(days=1), self.policy)

    def following(self) -> Period:
        return Period.containing(self.end, self.policy)

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) as the naive UTC the visit columns hold."""
        return local_midnight(self.first, zone), local_midnight(self.end, zone)

    def title(self) -> str:
        """How a bulletin names the period: 2026年第47周 / 2026年11月."""
        if self.policy == "weekly":
            year, week, _ = self.first.isocalendar()
            return f"{year}年第{week}周"
        return f"{self.first.year}年{self.first.month}月"


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """The day in ``zone`` of a naive UTC moment."""
    return moment.replace(tzinfo=UTC).astimezone(zone).date()


def week_label(day: date) -> str:
    """The ISO week of ``day``: 2026-W47."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def month_label(day: date) -> str:
    """The month of ``day``: 2026-11."""
    return f"{day.year}-{day.month:02d}"


def periods_of(moment: datetime, zone: ZoneInfo) -> tuple[str, str]:
    """The labels of the week and the month a naive UTC moment falls in, in ``zone`` (what
    the visit summary files each visit under, without building a Period per visit)."""
    day = local_day(moment, zone)
    return week_label(day), month_label(day)
