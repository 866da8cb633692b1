"""Signed JSON webhooks.

Each request carries ``X-Monitor-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw request
body keyed with the shared secret, and ``X-Monitor-Timestamp`` (Unix seconds when it was sent).
Receivers check the signature with :func:`verify_signature` on the body bytes exactly as
received, before parsing them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import ClassVar, Literal
from urllib.parse import urlsplit

import aiohttp

from monitor.delivery.channels.errors import DeliveryError
from monitor.model import Clock, SystemClock
from monitor.store import OutboxItem

SIGNATURE_HEADER = "X-Monitor-Signature"
TIMESTAMP_HEADER = "X-Monitor-Timestamp"
_PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The ``X-Monitor-Signature`` value for ``body``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` under ``secret`` (constant-time)."""
    if not header or not header.startswith(_PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body).encode("ascii"), header.strip().encode())


class WebhookChannel:
    """POSTs a JSON payload to a person's webhook URL, signed with ``secret``.

    Redirects are not followed: a webhook answers where it was registered.
    """

    kind: ClassVar[Literal["webhook"]] = "webhook"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        secret: str,
        *,
        clock: Clock | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not secret:
            raise ValueError("a webhook secret is required")
        self._session = session
        self._secret = secret
        self._clock: Clock = clock or SystemClock()
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        return "WebhookChannel()"

    async def deliver(self, to: str, item: OutboxItem) -> None:
        """POST the outbox item to the URL ``to`` (see :meth:`send`)."""
        await self.send(
            to,
            {
                "id": item.key,
                "incident": item.incident_id,
                "person": item.person_id,
                "kind": item.kind,
                "reason": item.reason,
                "subject": item.subject,
                "text": item.text,
                "sms": item.sms,
            },
        )

    async def close(self) -> None:
        """Nothing to let go of: the aiohttp session is its owner's to close."""

    async def send(self, url: str, payload: Mapping[str, object]) -> None:
        """Return once the receiver answered 2xx.

        Raises DeliveryError: permanent on a 4xx other than 408 and 429 (and on a URL or
        payload that cannot be sent at all), transient on anything else (3xx, 408, 429, 5xx,
        timeouts, network errors).
        """
        if not url.startswith(("http://", "https://")):
            raise DeliveryError("webhook URL is not an http(s) URL", permanent=True)
        try:
            body = json.dumps(
                payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise DeliveryError(f"webhook payload is not JSON: {exc}", permanent=True) from exc
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            TIMESTAMP_HEADER: str(int(self._clock.now())),
        }
        try:
            async with self._session.post(
                url,
                data=body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                await response.read()
                status = response.status
        except aiohttp.InvalidURL as exc:
            raise DeliveryError("webhook URL is not a valid URL", permanent=True) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(
                f"webhook {_origin(url)}: unreachable: {type(exc).__name__}", permanent=False
            ) from exc
        if 200 <= status < 300:
            return
        raise DeliveryError(
            f"webhook {_origin(url)}: answered {status}",
            permanent=400 <= status < 500 and status not in (408, 429),
        )


def _origin(url: str) -> str:
    """Scheme, host and port only: webhook paths and queries often embed a token."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    return f"{parts.scheme}://{parts.hostname or ''}{port}"
