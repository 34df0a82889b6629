"""Structured logs: a request id for every request, one JSON line per request, nothing secret in any line.

The request id is the ALB's X-Amzn-Trace-Id when present (so app lines join the ALB's access logs), else a
fresh one; it is returned in X-Request-ID and stamped on every log line written during the request.
The request's line also carries its app metrics as CloudWatch Embedded Metric Format (project/metrics.py).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from project import metrics

logger = logging.getLogger("project.request")
_request_id: ContextVar[str] = ContextVar("request_id", default="-")

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_SECRET = re.compile(
    r"(?i)\b(password|passwd|secret|token|api[_-]?key|authorization)(\s*[=:]\s*|\"\s*:\s*\")([^\s,;&\"']+)"
)
_URL_PASSWORD = re.compile(r"(\w+://[^:/\s]+:)[^@\s]+@")
# Signed links (users/tokens.py: payload:timestamp:signature) open a person's data: never logged whole.
_SIGNED = re.compile(r"\b([A-Za-z0-9_-]{4})[A-Za-z0-9_-]*:[A-Za-z0-9]{4,}:[A-Za-z0-9_-]{40,}")


def redact(text: str) -> str:
    """Mask email addresses (a***@domain), key=value secrets, passwords inside URLs and signed link tokens."""
    text = _EMAIL.sub(r"\1***@\2", text)
    text = _SECRET.sub(r"\1\2***", text)
    text = _SIGNED.sub(r"\1***", text)
    return _URL_PASSWORD.sub(r"\1***@", text)


class RequestContextFilter(logging.Filter):
    """Stamp the request id on each record and redact its message (and traceback) before any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(_JsonFormatter):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("timestamp", True)
        super().__init__("%(levelname)s %(name)s %(message)s %(request_id)s", *args, **kwargs)

    def add_fields(self, log_record, record, message_dict) -> None:
        super().add_fields(log_record, record, message_dict)
        if hasattr(record, "_aws"):  # the EMF metadata: python-json-logger leaves out "_" names by default
            log_record["_aws"] = record._aws

    def formatException(self, ei) -> str:
        return redact(super().formatException(ei))


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = _clean(request.headers.get("X-Amzn-Trace-Id", "")) or uuid.uuid4().hex
        token = _request_id.set(request_id)
        started = time.perf_counter()
        status = 500
        with metrics.collect() as counted:
            try:
                response = self.get_response(request)
                status = response.status_code
                response["X-Request-ID"] = request_id
                return response
            finally:
                docs = metrics.documents(counted) if counted else [{}]
                logger.info(
                    "%s %s %s", request.method, request.path, status,
                    extra={"method": request.method, "path": request.path, "status": status,
                           "duration_ms": round((time.perf_counter() - started) * 1000, 1), **docs[0]},
                )  # fmt: skip
                for doc in docs[1:]:  # the same metric with another dimension value: a line of its own
                    logger.info("metrics", extra=doc)
                _request_id.reset(token)


def _clean(value: str) -> str:
    """Keep a client-supplied id printable and short (it goes into logs and a response header)."""
    return "".join(ch for ch in value if ch.isalnum() or ch in "=-;._")[:128]
