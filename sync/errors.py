"""The failures a client can cause in the sync core, each with a contract code (CONTRACT §2)."""

from __future__ import annotations

from typing import Any


class SyncError(Exception):
    """Base class: ``code`` is the contract error code, ``details`` goes to the client as is."""

    code = "invalid_request"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class ValidationFailed(SyncError):
    """Field-level problems: ``details["fields"]`` maps a field to its messages."""

    code = "validation_failed"

    def __init__(self, fields: dict[str, list[str]], message: str = "validation failed") -> None:
        super().__init__(message, {"fields": fields})
        self.fields = fields


class Forbidden(SyncError):
    code = "forbidden"


class NotFound(SyncError):
    code = "not_found"


class Conflict(SyncError):
    code = "conflict"


class InvalidCursor(SyncError):
    code = "invalid_cursor"


class DeviceRevoked(SyncError):
    code = "device_revoked"


class PayloadTooLarge(SyncError):
    code = "payload_too_large"
