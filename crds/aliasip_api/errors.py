"""Findings and the one error type of the model.

A *finding* names a field (a Kubernetes-style field path such as
``spec.addresses[1]``, the same paths kube-apiserver prints) and says what is wrong with
it; its ``reason`` is CamelCase so that it can go straight into a condition or an Event.
Parsing raises ``InvalidAliasIP`` with every finding at once; semantic checks return
findings instead, so that callers report them in status rather than loop on exceptions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Reasons, shared by conditions and Events.
INVALID_SPEC = "InvalidSpec"
INVALID_STATUS = "InvalidStatus"
DUPLICATE_ADDRESS = "DuplicateAddress"
RESERVED_ADDRESS = "ReservedAddress"
STATIONARY_ADDRESS = "StationaryAddress"
ADDRESS_CONFLICT = "AddressConflict"


@dataclass(frozen=True)
class Finding:
    """One thing wrong with one field: where (``path``), what (``message``), and a reason."""

    path: str
    message: str
    reason: str = INVALID_SPEC

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidAliasIP(ValueError):
    """An object that does not satisfy the CRD's schema (or its CEL rules), with every finding."""

    def __init__(self, findings: Iterable[Finding]) -> None:
        self.findings = tuple(findings)
        if not self.findings:
            raise ValueError("InvalidAliasIP needs at least one finding")
        self.message = "; ".join(str(f) for f in self.findings)
        super().__init__(self.message)

    @property
    def reason(self) -> str:
        """The reason for a condition or an Event: the first finding's."""
        return self.findings[0].reason
