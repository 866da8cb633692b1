"""The limits on asking for a subscription, counted in the store so every replica shares them:
confirmation mails per address per day, subscribe requests per client IP per hour. An address
is counted by a hash of it, never kept as it is: the claims are about people who may never
have asked."""

from __future__ import annotations

import hashlib

from monitor.config.schema import Subscriptions

DAY, HOUR = 86400.0, 3600.0


def address_key(email: str) -> str:
    """The claims' key of an address (lower case), and the id part of its subscriber:
    ``sub-`` and this."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:24]


def claims(
    email: str, client: str, settings: Subscriptions
) -> tuple[list[str], list[tuple[float, int]]]:
    """The keys one request is counted under, and each one's (window, limit)."""
    return (
        [f"address:{address_key(email)}", f"ip:{client}"],
        [(DAY, settings.mails_per_address_per_day), (HOUR, settings.requests_per_ip_per_hour)],
    )
