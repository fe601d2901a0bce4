from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError


def validate_origin(origin: str) -> None:
    """An origin is scheme://host[:port] and nothing else."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise ValidationError(f"{origin!r} is not an origin like https://example.com")


def scheme_names(schemes: tuple[str, ...]) -> str:
    """("http", "https", "ws", "wss") -> "http(s) or ws(s)"."""
    names = []
    for s in schemes:
        if s.endswith("s") and s[:-1] in schemes:
            continue
        names.append(f"{s}(s)" if s + "s" in schemes else s)
    return " or ".join(names)


def outbound_url_problem(url: str, *, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """Why the server must not connect to ``url`` on an account's behalf, or None.

    The scheme must be one of ``schemes``; with ``ALLOW_PRIVATE_URLS`` off, the host must not be
    (or resolve to) a private address. Checked when a URL is saved, and again by
    ``netguard`` when it is used (a name may resolve differently later)."""
    import httpx

    from cvi_site import netguard

    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        return f"must be an {scheme_names(schemes)} URL (not {parts.scheme or 'no scheme'}://…)"
    probe = url
    if parts.scheme in ("ws", "wss"):
        probe = ("https" if parts.scheme == "wss" else "http") + url[len(parts.scheme):]
    try:
        netguard.check_request(httpx.Request("GET", probe))
    except httpx.ConnectError as exc:
        return str(exc)
    return None
