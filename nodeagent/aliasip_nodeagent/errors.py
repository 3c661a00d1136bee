"""Errors the data path reports to a human or to the operator.

Every refusal has a stable ``code`` (used in JSON output, and later in status conditions)
and an ``exit_code`` for the CLI. A refusal is always raised *before* any change is made,
so callers never have to undo anything on a refusal.
"""

from __future__ import annotations


class AliasError(Exception):
    """Base class: a request that the data path refuses or could not carry out."""

    code = "Error"
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(AliasError):
    """The request itself is malformed or names an address that can never be an alias."""

    code = "InvalidAddress"
    exit_code = 2


class ReservedAddress(InvalidInput):
    """Network, broadcast, multicast, loopback, link-local or unspecified address."""

    code = "ReservedAddress"


class PrefixMismatch(InvalidInput):
    """The requested prefix differs from the stationary subnet's prefix."""

    code = "PrefixMismatch"


class StationaryAddress(InvalidInput):
    """The alias equals an address this host already has that aliasip did not add."""

    code = "StationaryAddress"


class PlacementRefused(AliasError):
    """The host cannot carry this alias as it is configured now."""

    code = "PlacementRefused"
    exit_code = 3


class NoCoveringInterface(PlacementRefused):
    code = "NoCoveringInterface"


class UnknownInterface(PlacementRefused):
    code = "UnknownInterface"


class InterfaceNotCovering(PlacementRefused):
    code = "InterfaceNotCovering"


class AmbiguousInterface(PlacementRefused):
    code = "AmbiguousInterface"


class InterfaceDown(PlacementRefused):
    code = "InterfaceDown"


class HeldElsewhere(PlacementRefused):
    code = "HeldElsewhere"


class NotOwned(PlacementRefused):
    """Release asked for an address that is present but was not added by aliasip."""

    code = "NotOwned"


class AddressInUse(AliasError):
    """The duplicate-address probe heard another host answer for the alias."""

    code = "AddressInUse"
    exit_code = 4


class KernelError(AliasError):
    """The kernel refused a change (permissions, races, missing features)."""

    code = "KernelError"
    exit_code = 1
