"""Scripted error answers of the fake Metrica API, in the documented error body:
``{"errors": [{"error_type", "message", "location"}], "code", "message"}``."""

from __future__ import annotations

import json
from dataclasses import dataclass

#: error_type → (HTTP status, Metrica's message), as the API documents them
ERRORS: dict[str, tuple[int, str]] = {
    "quota_requests_by_uid": (
        429,
        "Превышен лимит количества запросов к API в сутки для пользователя",
    ),
    "quota_requests_by_ip": (
        429,
        "Превышен лимит количества запросов к API в секунду для IP адреса",
    ),
    "quota_parallel_requests": (429, "Превышен лимит количества параллельных запросов к API"),
    "quota_requests_by_counter_id": (
        429,
        "Превышен лимит количества запросов к API в сутки для счетчика",
    ),
    "invalid_token": (403, "Invalid oauth_token"),
    "access_denied": (403, "Access is denied"),
    "unauthorized": (401, "Unauthorized"),
    "invalid_uploading": (400, "Check your request"),
    "invalid_parameter": (400, "Invalid parameter"),
    "missing_parameter": (400, "Missing parameter"),
    "backend_error": (503, "Backend error"),
    "timeout": (504, "Query execution time exceeded"),
    "not_found": (404, "Entity not found"),
}


@dataclass(frozen=True)
class Fault:
    """The answer to the next request of ``endpoint`` (``upload``, ``uploading``,
    ``uploadings`` or ``any``)."""

    status: int
    error_type: str | None = None
    message: str = ""
    endpoint: str = "upload"
    retry_after: str | None = None
    #: store the upload first, then answer the error (a gateway that timed out after the
    #: file went in)
    store: bool = False
    #: a raw body instead of the JSON error (a proxy's HTML page)
    raw: bytes | None = None
    #: matching requests answered normally before this one
    after: int = 0

    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(error_body(self.status, self.error_type, self.message)).encode()

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "text/html" if self.raw is not None else "application/json"}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        return headers


def error_body(status: int, error_type: str | None, message: str) -> dict[str, object]:
    errors = [{"error_type": error_type, "message": message}] if error_type else []
    return {"errors": errors, "code": status, "message": message}


def error(
    error_type: str,
    *,
    endpoint: str = "upload",
    retry_after: str | None = None,
    message: str | None = None,
    store: bool = False,
    after: int = 0,
) -> Fault:
    """The documented answer of ``error_type`` (its status and usual message)."""
    status, usual = ERRORS[error_type]
    return Fault(
        status,
        error_type,
        message if message is not None else usual,
        endpoint=endpoint,
        retry_after=retry_after,
        store=store,
        after=after,
    )


def http(status: int, *, endpoint: str = "upload", store: bool = False) -> Fault:
    """A bare status with an HTML body, as a proxy in front of the API answers."""
    page = f"<html><body><h1>{status}</h1></body></html>".encode()
    return Fault(status, endpoint=endpoint, store=store, raw=page)
