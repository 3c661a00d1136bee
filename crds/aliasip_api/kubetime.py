"""Kubernetes timestamps: RFC 3339 in UTC, as ``metav1.Time`` and ``metav1.MicroTime``.

``metav1.Time`` (conditions' ``lastTransitionTime``, ``creationTimestamp``) has whole
seconds; ``metav1.MicroTime`` keeps microseconds, which the agents' timings need. Naive
datetimes are refused: a time without a zone is a bug waiting for a server in another zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})",
    re.IGNORECASE,
)


def parse_time(text: str) -> datetime:
    """An RFC 3339 date-time as an aware UTC datetime; ``ValueError`` (not naming ``text``)
    if it is not one."""
    if not _RFC3339.fullmatch(text):
        raise ValueError("not an RFC 3339 date-time (like 2006-01-02T15:04:05Z)")
    try:
        return datetime.fromisoformat(text.upper()).astimezone(UTC)
    except ValueError:
        raise ValueError("not a valid date (or time) of the calendar") from None


def format_time(when: datetime) -> str:
    """``when`` as ``metav1.Time`` writes it: UTC, whole seconds, ``Z``."""
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(when: datetime) -> str:
    """``when`` as ``metav1.MicroTime`` writes it: UTC, six fractional digits, ``Z``."""
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def truncate_to_seconds(when: datetime) -> datetime:
    """``when`` as it reads back after a round trip through ``metav1.Time``."""
    return _utc(when).replace(microsecond=0)


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{when!r} has no time zone; pass an aware datetime")
    return when.astimezone(UTC)
