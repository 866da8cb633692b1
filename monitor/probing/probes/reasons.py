"""The words of a probe result: short reasons an on-call person reads at a glance.

Reasons never contain request header values or request bodies (they may hold secrets).
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from collections.abc import Iterable, Sequence
from typing import Any

import aiohttp

from monitor.durations import format_duration, short_duration

_MAX_REASON = 200
_ERRNO_IN_TEXT = re.compile(r"\[Errno (-?\d+)\]")
_OS_ERRORS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.EPIPE: "connection closed while sending",
}


def say_elapsed(seconds: float) -> str:
    """``12ms`` below a second, else ``2.4s``."""
    if seconds < 1:
        return short_duration(seconds)
    return short_duration(round(seconds, 1))


def too_slow(took: float, limit: float) -> str:
    """``took 2.4s, more than 2s``, with more digits when rounding would make the two read alike."""
    shown, limit_shown = say_elapsed(took), short_duration(limit)
    if shown == limit_shown:
        shown = f"{took:.3f}s" if took >= 1 else f"{took * 1000:.1f}ms"
    return f"took {shown}, more than {limit_shown}"


def timed_out(timeout: float) -> str:
    return f"timed out after {short_duration(timeout)}"


def unexpected_status(status: int, expected: Sequence[int]) -> str:
    """``status 503, expected 200`` or ``... expected 200, 201 or 204``."""
    names = [str(code) for code in expected]
    wanted = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return f"status {status}, expected {wanted}"


def certificate_expiry(remaining: float) -> str:
    if remaining <= 0:
        return f"certificate expired {format_duration(-remaining)} ago"
    return f"certificate expires in {format_duration(remaining)}"


def show_value(value: Any) -> str:
    """A JSON value as it reads in a reason: ``'down'``, ``3``, ``True``; long ones cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def os_error(exc: OSError, host: str | None = None) -> str:
    """What went wrong connecting, in words: ``connection refused``, ``cannot resolve host x``."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {host}" if host else "cannot resolve host"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS error: {exc.verify_message or exc.reason or exc}"
    if isinstance(exc, ssl.SSLError):
        return "TLS error: " + (exc.reason.lower().replace("_", " ") if exc.reason else str(exc))
    code = exc.errno
    if code is None:
        # asyncio joins the errors of every address it tried (e.g. ::1 and 127.0.0.1) into one
        # OSError without an errno; they agree more often than not.
        codes = {int(found) for found in _ERRNO_IN_TEXT.findall(str(exc))}
        code = codes.pop() if len(codes) == 1 else None
    if code in _OS_ERRORS:
        return _OS_ERRORS[code]
    return f"cannot connect: {exc.strerror or exc}"


def explain(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """A failure as a reason; ``secrets`` are blanked out should an error message quote them."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        error = exc.certificate_error
        if isinstance(error, ssl.SSLCertVerificationError):
            return os_error(error)
        return f"TLS error: {error}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve host {exc.host}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return os_error(exc.os_error, exc.host)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection before answering"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "response body broke off"
    if isinstance(exc, aiohttp.ClientResponseError):
        return _redact(f"bad HTTP answer: {exc.message}", secrets)
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid URL"
    if isinstance(exc, OSError):
        return os_error(exc)
    return _redact(f"probe failed: {type(exc).__name__}: {exc}", secrets)


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."
