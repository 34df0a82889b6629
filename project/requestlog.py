"""Structured logs: a request id for every request, one JSON line per request, nothing secret in any line.

1. The request id is the ALB's X-Amzn-Trace-Id when present (so app lines join the ALB's access logs), else a
   fresh one; it is returned in X-Request-ID and stamped on every log line written during the request.
2. The request's line (logger `project.request`) is the one access line of the service: gunicorn's access log
   is off and nginx logs only what never reached the app (deploy/nginx.conf). It carries the method, the
   route pattern in `path` (`/my-data/<str:token>/`, never the URL: a signed link opens a person's data), the
   status, the duration and its app metrics as CloudWatch Embedded Metric Format (project/metrics.py). A URL
   that matches no route is logged as `<unmatched>`: its text is the visitor's (a mistyped token, an email).
3. Every other line written during a request is scrubbed of that request: its URL and the values captured
   from it (tokens) are replaced in the message and the traceback, and Django's error records
   (`django.request`) carry the route in their `request` field instead of the request object.
4. Every line is redacted: email addresses, key=value secrets, passwords inside URLs, signed link tokens.
5. The JSON is written by a small formatter of our own (json.dumps of one dict): the request line is written
   for every request, so it is kept cheap (bench/signup.py measures its share).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import time
import traceback
from contextvars import ContextVar

from project import metrics

logger = logging.getLogger("project.request")
# What no line of ours prints is not gathered for every record (the logging HOWTO's "Optimization"): the caller's
# frame, thread, process and task names. A formatter that wants %(pathname)s would need these back.
logging._srcfile = None
logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
logging.logAsyncioTasks = False
_request_id: ContextVar[str] = ContextVar("request_id", default="-")
_request: ContextVar[object | None] = ContextVar("request", default=None)

UNMATCHED = "<unmatched>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_SECRET = re.compile(
    r"(?i)\b(password|passwd|secret|token|api[_-]?key|authorization)(\s*[=:]\s*|\"\s*:\s*\")([^\s,;&\"']+)"
)
_URL_PASSWORD = re.compile(r"(\w+://[^:/\s]+:)[^@\s]+@")
# Signed links (users/tokens.py: payload:timestamp:signature) open a person's data: never logged whole,
# with their colons as typed or percent-encoded.
_SIGNED = re.compile(r"\b([A-Za-z0-9_-]{4})[A-Za-z0-9_-]*(?::|%3[Aa])[A-Za-z0-9]{4,}(?::|%3[Aa])[A-Za-z0-9_-]{40,}")
_OURS = re.compile(r"[A-Za-z0-9/._-]{1,200}")  # no ":" (signed tokens), "@", "%", "=" or "?"
_CAPTURED_MIN = 8  # URL values at least this long are masked wherever they appear (shorter ones: ids, codes)


def redact(text: str) -> str:
    """Mask email addresses (a***@domain), key=value secrets, passwords inside URLs and signed link tokens."""
    text = _EMAIL.sub(r"\1***@\2", text)
    text = _SECRET.sub(r"\1\2***", text)
    text = _SIGNED.sub(r"\1***", text)
    return _URL_PASSWORD.sub(r"\1***@", text)


def route(request, status: int | None = None) -> str:
    """Return the route pattern the request matched (`/my-data/<str:token>/`), or `<unmatched>`.

    A path no route matched that a middleware answered with 200/304 (/health, a static file WhiteNoise
    knows) is one of ours, and is returned as it is when it has no character a signed token would.
    """
    match = getattr(request, "resolver_match", None)
    if match is not None and match.route is not None:
        return f"/{match.route}"
    if status in {200, 304} and _OURS.fullmatch(request.path):
        return request.path
    return UNMATCHED


def scrub(text: str, request=None) -> str:
    """Replace the request's URL and the values captured from it in `text`, then redact what is left."""
    request = request if request is not None else _request.get()
    if request is not None:
        label = route(request)
        for raw in (request.get_full_path(), request.path, request.path_info):
            if raw in text and raw != label:
                text = text.replace(raw, label)
        match = getattr(request, "resolver_match", None)
        captured = [*match.args, *match.kwargs.values()] if match is not None else []
        for value in captured:
            if isinstance(value, str) and len(value) >= _CAPTURED_MIN:
                text = text.replace(value, "***")
    return redact(text)


class RequestContextFilter(logging.Filter):
    """Stamp the request id on each record and scrub its message before any handler (see the docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        if record.name == logger.name:  # the request line: written from the route, with nothing to mask
            return True
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "path"):  # django.request's records carry the request
            record.request = route(request)
        message = record.getMessage()
        scrubbed = scrub(message, request if hasattr(request, "path") else None)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


# Attributes every LogRecord has: the rest are the `extra` fields a call added, written as JSON fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}
_ENCODER = json.JSONEncoder(default=str)  # made once: json.dumps(default=...) builds an encoder per call


class JsonFormatter(logging.Formatter):
    """One JSON object per line: levelname, name, message, request_id, timestamp, then the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {"levelname": record.levelname, "name": record.name, "message": record.getMessage(),
               "request_id": getattr(record, "request_id", "-")}  # fmt: skip
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                doc[key] = route(value) if key == "request" and hasattr(value, "path") else value
        doc["timestamp"] = f"{_second(int(record.created))}.{int(record.msecs):03d}Z"
        if record.exc_info:
            doc["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc_info"] = scrub(record.exc_text)
        if record.stack_info:
            doc["stack_info"] = scrub(record.stack_info)
        return _ENCODER.encode(doc)

    def formatException(self, ei) -> str:
        return scrub("".join(traceback.format_exception(*ei)).rstrip("\n"))


@functools.lru_cache(maxsize=4)
def _second(epoch: int) -> str:
    """The UTC second of a record (formatted once per second, not per line)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = _clean(request.headers.get("X-Amzn-Trace-Id", "")) or os.urandom(16).hex()
        token, current = _request_id.set(request_id), _request.set(request)
        started = time.perf_counter()
        status = 500
        with metrics.collect() as counted:
            try:
                response = self.get_response(request)
                status = response.status_code
                response["X-Request-ID"] = request_id
                return response
            finally:
                _log(request, status, started, counted)
                _request.reset(current)
                _request_id.reset(token)


def _log(request, status: int, started: float, counted: dict) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    docs = metrics.documents(counted) if counted else [{}]
    method = request.method if request.method in _METHODS else "OTHER"
    path = route(request, status)
    logger.info(f"{method} {path} {status}", extra={"method": method, "path": path, "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1), **docs[0]})  # fmt: skip
    for doc in docs[1:]:  # the same metric with another dimension value: a line of its own
        logger.info("metrics", extra=doc)


def _clean(value: str) -> str:
    """Keep a client-supplied id printable and short (it goes into logs and a response header)."""
    return "".join(ch for ch in value if ch.isalnum() or ch in "=-;._")[:128]
