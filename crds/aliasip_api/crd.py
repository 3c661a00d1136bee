"""The AliasIP CRD, read from the YAML this package ships: the single source of the schema.

Nothing about the schema is repeated in Python: validation, defaults, enums and bounds are
read from the CRD's ``openAPIV3Schema``. A test pins the Python enums (``Failback``,
``Phase``, ...) to the CRD's, so that an edit of the CRD that the code does not follow
fails a test instead of a cluster.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from aliasip_api.validation import OpenAPISchema, schema_at

# Inside the package a symlink to ../aliasip.yaml in the source tree, a copy in a wheel.
PACKAGED_CRD = "aliasip.yaml"


@dataclass(frozen=True, eq=False)
class AliasIPCRD:
    """One served version of the CRD: its names and its OpenAPI schema."""

    document: Mapping[str, Any]
    version: str

    @classmethod
    def from_document(cls, document: Mapping[str, Any], version: str | None = None) -> AliasIPCRD:
        """The CRD ``document`` at ``version`` (default: the storage version).

        Raises ``LookupError`` at once for a CEL rule without a Python counterpart, rather
        than enforcing less than a real API server would on the first object.
        """
        versions = document["spec"]["versions"]
        if version is None:
            version = next(v["name"] for v in versions if v.get("storage"))
        if not any(v["name"] == version and v.get("served") for v in versions):
            raise ValueError(f"the CRD does not serve version {version!r}")
        crd = cls(document=document, version=version)
        crd.schema  # noqa: B018 - builds the validator now, which checks the CEL rules
        return crd

    @property
    def group(self) -> str:
        return str(self.document["spec"]["group"])

    @property
    def names(self) -> Mapping[str, Any]:
        """``spec.names``: kind, listKind, plural, singular, shortNames, categories."""
        names: Mapping[str, Any] = self.document["spec"]["names"]
        return names

    @property
    def kind(self) -> str:
        return str(self.names["kind"])

    @property
    def plural(self) -> str:
        return str(self.names["plural"])

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def served(self) -> Mapping[str, Any]:
        """This version's entry of ``spec.versions`` (schema, printer columns, subresources)."""
        versions = self.document["spec"]["versions"]
        entry: Mapping[str, Any] = next(v for v in versions if v["name"] == self.version)
        return entry

    @cached_property
    def schema(self) -> OpenAPISchema:
        """The whole object's schema (strict: unknown fields are findings)."""
        return OpenAPISchema(self.served["schema"]["openAPIV3Schema"])

    @cached_property
    def spec_schema(self) -> OpenAPISchema:
        return self.schema.at("spec")

    @cached_property
    def status_schema(self) -> OpenAPISchema:
        return self.schema.at("status")

    def field(self, *fields: str) -> Mapping[str, Any]:
        """The raw schema of a nested field (see ``OpenAPISchema.at`` for the path syntax)."""
        return schema_at(self.schema.schema, *fields)

    def enum(self, *fields: str) -> tuple[str, ...]:
        """The enum of a nested field, e.g. ``enum("spec", "failback")``."""
        return tuple(str(v) for v in self.field(*fields)["enum"])


def load_crd(path: str | Path, version: str | None = None) -> AliasIPCRD:
    """The CRD in the YAML file at ``path``."""
    return AliasIPCRD.from_document(yaml.safe_load(Path(path).read_text()), version)


@functools.cache
def packaged_crd() -> AliasIPCRD:
    """The CRD this package ships (``crds/aliasip.yaml``), loaded once."""
    text = resources.files("aliasip_api").joinpath(PACKAGED_CRD).read_text(encoding="utf-8")
    return AliasIPCRD.from_document(yaml.safe_load(text))
