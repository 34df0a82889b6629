"""Read configuration from the environment; a malformed value raises ImproperlyConfigured naming it."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name}={value} is outside {minimum}..{maximum}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if value < minimum or value != value:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_datetime(name: str) -> datetime | None:
    """An ISO 8601 time with its offset (2025-03-01T00:00:00+00:00), or None when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise ImproperlyConfigured(f"{name}={raw!r} needs a UTC offset (e.g. +00:00)")
    return value


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_languages(name: str, default: list[str]) -> list[tuple[str, str]]:
    """Parse language codes ("en,de") into LANGUAGES pairs, each named in its own language (Django's LANG_INFO)."""
    from django.conf.locale import LANG_INFO  # a plain dict: safe before settings are configured

    codes = env_list(name, default)
    unknown = [code for code in codes if code.lower() not in LANG_INFO]
    if not codes or unknown:
        raise ImproperlyConfigured(f"{name}: unknown language code(s) {unknown or codes!r}, e.g. en,de,fr,es")
    return [(code.lower(), LANG_INFO[code.lower()]["name_local"]) for code in codes]


def env_rate(name: str, default: str) -> tuple[int, int]:
    """Parse "N/SECONDS" (e.g. "20/600": 20 per 10 minutes) into (N, SECONDS)."""
    raw = os.environ.get(name, default).strip()
    count, _, seconds = raw.partition("/")
    try:
        parsed = int(count), int(seconds)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} must look like 20/600 (requests/seconds)") from None
    if parsed[0] < 1 or parsed[1] < 1:
        raise ImproperlyConfigured(f"{name}={raw!r}: both numbers must be positive")
    return parsed


def env_weights(name: str, count: int) -> list[int]:
    """Parse "3,1" into one positive whole-number weight per item (default: all 1)."""
    items = env_list(name)
    if not items:
        return [1] * count
    try:
        weights = [int(item) for item in items]
    except ValueError:
        raise ImproperlyConfigured(f"{name}={os.environ[name]!r} must be whole numbers, one per replica") from None
    if len(weights) != count:
        raise ImproperlyConfigured(f"{name} has {len(weights)} weight(s) for {count} replica(s)")
    if min(weights) < 1:
        raise ImproperlyConfigured(f"{name}={os.environ[name]!r}: every weight must be at least 1")
    return weights


def env_secret(name: str, default: str = "") -> str:
    """Return NAME, or the contents of the file named by NAME_FILE (container secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc.strerror}") from None
    return os.environ.get(name, default).strip()


SSLMODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}


def database_config(name: str, url: str, *, conn_max_age: int, connect_timeout: int, tls: dict | None = None,
                    secret_arn: str = "", iam_auth: bool = False, bounds: dict | None = None) -> dict:  # fmt: skip
    """Parse a postgres:// or sqlite:// URL into a Django DATABASES entry (TLS, socket bounds, credentials).

    `bounds` holds keepalives_idle/_interval/_count (seconds), tcp_user_timeout (ms) and statement_timeout /
    lock_timeout (ms, sent as startup options: the fallback when the role does not set them; 0 = not sent).
    """
    scheme = urlsplit(url).scheme
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ImproperlyConfigured(f"{name}: unsupported scheme {scheme!r} (use postgres:// or sqlite://)")
    try:
        config = dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is malformed: {exc}") from None
    if config["ENGINE"].endswith("postgresql"):
        if not config.get("NAME") or not config.get("HOST"):
            raise ImproperlyConfigured(f"{name} must name a host and a database (postgres://user@host:5432/db)")
        config["ENGINE"] = "project.db.postgresql"  # Django's, plus Secrets Manager / IAM credentials
        options = config.setdefault("OPTIONS", {})
        options.setdefault("connect_timeout", connect_timeout)
        options.setdefault("application_name", "signup-app")
        for key, value in (tls or {}).items():
            if value:
                options[key] = value
        _add_bounds(options, bounds or {})
        config["SECRET_ARN"], config["IAM_AUTH"] = secret_arn, iam_auth
    return config


def _add_bounds(options: dict, bounds: dict) -> None:
    """Add libpq keepalives and tcp_user_timeout (a vanished host) and server-side timeouts to OPTIONS."""
    if any(bounds.get(key) for key in ("keepalives_idle", "keepalives_interval", "keepalives_count")):
        options.setdefault("keepalives", 1)
    for key in ("keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout"):
        if bounds.get(key):
            options.setdefault(key, bounds[key])
    server = [f"-c {key}={bounds[key]}" for key in ("statement_timeout", "lock_timeout") if bounds.get(key)]
    if server and "options" not in options:
        options["options"] = " ".join(server)


def admin_url(raw: str) -> str:
    """Normalise ADMIN_URL to 'segment/' form ("admin/", "staff/desk/")."""
    value = raw.strip().strip("/")
    if not value or any(not part or not all(c.isalnum() or c in "-_" for c in part) for part in value.split("/")):
        raise ImproperlyConfigured(f"ADMIN_URL={raw!r} must be path segments of letters, digits, - or _")
    return value + "/"
