"""The server's clock, in one place so that tests can set it."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, has_app_context


def now() -> datetime:
    """Timezone-aware UTC now, or the app's fake clock in tests (``config["CLOCK"]``)."""
    if has_app_context():
        clock = current_app.config.get("CLOCK")
        if clock is not None:
            return clock()  # type: ignore[no-any-return]
    return datetime.now(UTC)


def utc_iso(value: datetime | None) -> str | None:
    """A naive UTC column value as ISO 8601 with its offset, to the second."""
    return value.replace(tzinfo=UTC).isoformat(timespec="seconds") if value else None


def utcnow() -> datetime:
    """Naive UTC now, as the DateTime columns hold it."""
    return now().replace(tzinfo=None)
