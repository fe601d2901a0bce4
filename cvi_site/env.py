"""Reading configuration from the environment, with one-line errors that name the variable.

Settings are the only module that calls these; the rest of the code reads
``django.conf.settings``.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured


class ConfigError(ImproperlyConfigured):
    """A configuration variable is missing or malformed. ``str()`` is one line naming it."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.variable = name


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
    raise ConfigError(name, f"expected true/false, got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"expected an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {value}")
    return value


def env_int_list(name: str, default: list[int], *, minimum: int | None = None) -> list[int]:
    """A comma-separated list of integers (e.g. ``10,30,60``)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return list(default)
    try:
        values = [int(item) for item in raw.split(",") if item.strip()]
    except ValueError:
        raise ConfigError(name, f"expected comma-separated integers, got {raw!r}") from None
    if minimum is not None and any(v < minimum for v in values):
        raise ConfigError(name, f"every value must be at least {minimum}, got {raw!r}")
    return values


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, *, schemes: tuple[str, ...], default: str = "") -> str:
    """A URL whose scheme is one of ``schemes`` and which has a host (or a path for sqlite)."""
    raw = os.environ.get(name, default).strip()
    if not raw:
        return ""
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(name, f"malformed URL ({exc})") from None
    if parts.scheme not in schemes:
        raise ConfigError(
            name, f"scheme {parts.scheme or '(none)'!r} not supported; use one of {', '.join(schemes)}"
        )
    if parts.scheme.startswith("sqlite"):
        return raw
    if not parts.hostname and not parts.path.strip("/"):
        raise ConfigError(name, "malformed URL (no host)")
    return raw
