"""One error shape for every ``/api/`` answer (CONTRACT §2), mapped in one place.

``{"error": {"code", "message", "details"}}``; the message follows Accept-Language
(zh-CN by default, en on request). Nothing a client sends may produce an HTML page or a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from server.storage.blobstore import BlobStoreDown
from sync.errors import SyncError

log = logging.getLogger(__name__)

STATUS = {
    "invalid_request": 400,
    "invalid_cursor": 400,
    "unauthorized": 401,
    "device_revoked": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "payload_too_large": 413,
    "validation_failed": 422,
    "client_too_old": 426,
    "rate_limited": 429,
    "unavailable": 503,
    "internal_error": 500,
}

MESSAGES = {
    "invalid_request": ("请求格式不正确", "The request is malformed"),
    "invalid_cursor": (
        "同步游标无效，请重新完整同步",
        "The sync cursor is invalid; pull again from the start",
    ),
    "unauthorized": (
        "用户名或密码错误，或登录已失效",
        "Wrong username or password, or the session has expired",
    ),
    "device_revoked": (
        "此设备已被停用，请联系管理员",
        "This device has been revoked; contact your administrator",
    ),
    "forbidden": ("没有权限进行此操作", "You are not allowed to do this"),
    "not_found": ("找不到请求的内容", "Not found"),
    "method_not_allowed": ("不支持此请求方法", "Method not allowed"),
    "conflict": ("与已有数据冲突", "Conflicts with stored data"),
    "payload_too_large": (
        "一次上传的数据太多，请分批上传",
        "Too much data in one request; send smaller batches",
    ),
    "validation_failed": ("数据校验未通过", "Validation failed"),
    "client_too_old": ("应用版本过旧，请更新", "This app version is too old; please update"),
    "rate_limited": ("尝试次数过多，请稍后再试", "Too many attempts; try again later"),
    "unavailable": (
        "服务器暂时无法访问数据库，数据未丢失，请稍后重试",
        "The database is briefly unavailable; nothing was lost, try again shortly",
    ),
    "internal_error": (
        "服务器内部错误，数据未丢失，请稍后重试",
        "Internal server error; nothing was lost, try again later",
    ),
}


class ApiError(SyncError):
    """An error raised by the HTTP layer itself, with any contract code."""

    def __init__(
        self,
        code: str,
        message: str = "",
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or MESSAGES[code][1], details)
        self.code = code
        self.headers = headers or {}


def wants_english() -> bool:
    """English when the client prefers it over Chinese; Chinese otherwise."""
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"], default="zh-CN")
    return best == "en"


def localized(code: str) -> str:
    zh, en = MESSAGES.get(code, MESSAGES["invalid_request"])
    return en if wants_english() else zh


def error_response(
    code: str,
    details: dict[str, Any] | None = None,
    detail_message: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    message = localized(code)
    if detail_message and wants_english() and detail_message != MESSAGES.get(code, ("", ""))[1]:
        message = f"{message}: {detail_message}"
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = STATUS.get(code, 400)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(SyncError)
    def on_sync_error(exc: SyncError) -> Response:
        return error_response(exc.code, exc.details, exc.message, getattr(exc, "headers", None))

    @app.errorhandler(HTTPException)
    def on_http_error(exc: HTTPException) -> Any:
        if not request.path.startswith("/api/"):
            return exc
        code = {
            400: "invalid_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            429: "rate_limited",
        }.get(exc.code or 400, "invalid_request")
        details = None
        if code == "payload_too_large":
            details = {
                "max_bytes": request.max_content_length or app.config["MAX_PUSH_BYTES"],
                "max_ops": app.config["MAX_PUSH_OPS"],
            }
        response = error_response(code, details)
        if exc.code == 405 and isinstance(exc, HTTPException):
            allowed = exc.get_headers()
            for key, value in allowed:
                if key.lower() == "allow":
                    response.headers["Allow"] = value
        return response

    @app.errorhandler(OperationalError)
    def on_database_down(exc: OperationalError) -> Any:
        """The database went away (restart, failover): nothing was committed, retry later."""
        log.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
        if not request.path.startswith("/api/"):
            raise exc
        return error_response("unavailable", headers={"Retry-After": "5"})

    @app.errorhandler(BlobStoreDown)
    def on_photo_store_down(exc: BlobStoreDown) -> Any:
        """The photos' directory or bucket failed (server/storage/blobstore.py): the photo's
        row was not committed, the phone sends it again later."""
        log.error("photo store unavailable on %s %s: %s", request.method, request.path, exc)
        return error_response(
            "unavailable",
            {"store": "photos"},
            "the photo store is not answering",
            headers={"Retry-After": "30"},
        )

    @app.errorhandler(Exception)
    def on_unexpected(exc: Exception) -> Any:
        log.exception("unexpected error on %s %s", request.method, request.path)
        if not request.path.startswith("/api/"):
            raise exc
        return error_response("internal_error")
