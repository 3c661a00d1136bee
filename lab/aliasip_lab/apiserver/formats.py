"""String formats of OpenAPI schemas, checked as kube-apiserver checks them.

kube-apiserver validates a CRD's ``format`` with ``k8s.io/kube-openapi``'s strfmt registry,
which for ``cidr`` calls Go's ``net.ParseCIDR`` (via govalidator.IsCIDR), for ``ipv4`` and
``ipv6`` ``net.ParseIP`` plus a check for '.' or ':'. Go's parser is stricter than a
casual one: no leading zeros in IPv4 octets (since Go 1.17), no IPv6 zone ("%eth0"), a
decimal prefix length (leading zeros allowed) not above the address's bit length. Formats
the registry does not know are not checked, as there.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import re

_DIGITS = re.compile(r"^[0-9]+$")
_IPV4 = re.compile(r"^(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}$")
_UUID = re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
_MAC = re.compile(
    r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$"
    r"|^([0-9A-Fa-f]{2}[:-]){7}[0-9A-Fa-f]{2}$"
    r"|^([0-9A-Fa-f]{2}[:-]){19}[0-9A-Fa-f]{2}$"
    r"|^([0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}$"
)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def go_parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Go's ``netip.ParseAddr`` without zones (what ``net.ParseIP`` accepts), or None."""
    if "%" in text or not text.isascii():
        return None
    if ":" not in text:
        if not _IPV4.match(text) or any(int(p) > 255 for p in text.split(".")):
            return None
        return ipaddress.IPv4Address(text)
    tail = text.rsplit(":", 1)[1]
    if "." in tail and go_parse_ip(tail) is None:
        return None  # an embedded IPv4 follows the same rules
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        return None


def go_parse_cidr(text: str) -> bool:
    """Go's ``net.ParseCIDR`` accepts ``text``."""
    address, slash, mask = text.partition("/")
    if not slash:
        return False
    ip = go_parse_ip(address)
    if ip is None or not _DIGITS.match(mask):
        return False
    bits = 32 if isinstance(ip, ipaddress.IPv4Address) else 128
    return int(mask) <= bits


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _is_date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text))


def _is_datetime(text: str) -> bool:
    if not _DATETIME.match(text):
        return False
    try:
        datetime.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


CHECKS = {
    "cidr": go_parse_cidr,
    "ipv4": lambda s: go_parse_ip(s) is not None and "." in s,
    "ipv6": lambda s: go_parse_ip(s) is not None and ":" in s,
    "uuid": lambda s: bool(_UUID.match(s)),
    "mac": lambda s: bool(_MAC.match(s)),
    "byte": _is_base64,
    "date": _is_date,
    "date-time": _is_datetime,
    "datetime": _is_datetime,
}


def check(format_name: str, value: str) -> bool:
    """True when ``value`` is valid for ``format_name`` (unknown formats always are)."""
    checker = CHECKS.get(format_name)
    return True if checker is None else bool(checker(value))
