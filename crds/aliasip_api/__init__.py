"""The AliasIP API's one Python model, shared by the operator, the node agent and the CLI.

The CRD (``crds/aliasip.yaml``, packaged here as ``aliasip.yaml``) is the single source of
the schema: this package validates objects against its openAPIV3Schema and applies its
defaults, then parses them into frozen dataclasses. One concern per module:

- ``addresses``: alias address rules (Go CIDR syntax, reserved kinds); stdlib only, so the
  node agent's start-up does not pay for jsonschema;
- ``crd``: loading the CRD and its names; ``validation``: evaluating an OpenAPI
  structural schema like kube-apiserver; ``cel``: the Python counterparts of the CRD's
  CEL rules;
- ``spec``, ``selector``, ``nodes``: typed spec, label selectors, Node objects;
- ``findings``: semantic checks the schema cannot express (pure, returning findings);
- ``status``, ``conditions``: typed status read/write; ``kubetime``: Kubernetes times.

Import from the modules (``from aliasip_api.spec import parse_aliasip``): this file stays
empty on purpose, so that importing ``aliasip_api.addresses`` stays cheap.
"""
