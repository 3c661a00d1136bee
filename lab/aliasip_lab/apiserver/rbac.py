"""The RBAC authorizer, over Roles, ClusterRoles and their bindings as stored (plain dicts).

A copy of ``k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac`` (``rbac.go``), its rule
resolver (``pkg/registry/rbac/validation/rule.go``) and matchers
(``pkg/apis/rbac/v1/evaluation_helpers.go``):

- Rules are visited from every ClusterRoleBinding whose subjects include the user, then,
  for a namespaced request, from every RoleBinding in that namespace; the first rule that
  allows the request allows it, with the reason
  ``RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to Group "g"``. A rule never
  denies: without an allowing rule RBAC has no opinion (and the server then forbids).
- A subject is a ``User`` (the user's name), a ``Group`` (one of its groups) or a
  ``ServiceAccount`` (``system:serviceaccount:<ns>:<name>``; a subject without a
  namespace takes the RoleBinding's, and never matches in a ClusterRoleBinding).
- A RoleBinding may reference a ClusterRole: its rules then apply in the binding's
  namespace only, because RoleBindings are read only for requests in their namespace.
- A binding whose role is missing contributes nothing but an error, reported as the
  reason of a denial: ``RBAC: clusterrole.rbac.authorization.k8s.io "x" not found``
  (several: ``RBAC: [e1, e2]``, duplicates once).
- A rule matches a resource request when its ``verbs`` contain the verb or ``*``, its
  ``apiGroups`` the group or ``*``, its ``resources`` the resource (``resource/sub`` for a
  subresource; ``*`` for all, ``*/sub`` for that subresource of any resource; a plain
  ``resource`` does not cover its subresources), and its ``resourceNames`` are empty or
  contain the request's name. A request without a name (create, list and watch without a
  ``metadata.name`` field selector, deletecollection) therefore never matches a rule with
  ``resourceNames``. A non-resource request matches ``nonResourceURLs`` exactly, by ``*``,
  or by a prefix ending in ``*``.

Aggregated ClusterRoles are evaluated from their stored ``rules``, as kube-apiserver does:
filling them is kube-controller-manager's job (``rbac_aggregation``).
Bindings are visited in name order (kube-apiserver's informer order is unspecified; only
the reason of an allowed request can depend on it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aliasip_lab.apiserver.requestinfo import Attributes
from aliasip_lab.apiserver.userinfo import UserInfo, matches_username

Json = dict[str, Any]
RBAC_GROUP = "rbac.authorization.k8s.io"


class PolicySource(Protocol):
    """Where RBAC objects come from: the server's store, or a fixed set (``StaticPolicy``)."""

    def get_role(self, namespace: str, name: str) -> Json | None: ...

    def get_cluster_role(self, name: str) -> Json | None: ...

    def role_bindings(self, namespace: str) -> Iterable[Json]: ...

    def cluster_role_bindings(self) -> Iterable[Json]: ...


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _namespace(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))


@dataclass
class StaticPolicy:
    """RBAC objects held in memory, e.g. the YAML documents of a manifest."""

    roles: dict[tuple[str, str], Json] = field(default_factory=dict)
    cluster_roles: dict[str, Json] = field(default_factory=dict)
    bindings: dict[tuple[str, str], Json] = field(default_factory=dict)
    cluster_bindings: dict[str, Json] = field(default_factory=dict)

    @staticmethod
    def of(objects: Iterable[Json | None]) -> StaticPolicy:
        """A policy from any mix of objects; kinds other than the four RBAC kinds (and
        ``None``, an empty YAML document) are skipped, a later object replaces an
        earlier one of the same kind and name."""
        policy = StaticPolicy()
        policy.add(objects)
        return policy

    def add(self, objects: Iterable[Json | None]) -> None:
        for obj in objects:
            if not obj:
                continue
            kind = obj.get("kind")
            if kind == "Role":
                self.roles[(_namespace(obj), _name(obj))] = obj
            elif kind == "ClusterRole":
                self.cluster_roles[_name(obj)] = obj
            elif kind == "RoleBinding":
                self.bindings[(_namespace(obj), _name(obj))] = obj
            elif kind == "ClusterRoleBinding":
                self.cluster_bindings[_name(obj)] = obj

    def get_role(self, namespace: str, name: str) -> Json | None:
        return self.roles.get((namespace, name))

    def get_cluster_role(self, name: str) -> Json | None:
        return self.cluster_roles.get(name)

    def role_bindings(self, namespace: str) -> Iterable[Json]:
        return [b for (ns, _), b in sorted(self.bindings.items()) if ns == namespace]

    def cluster_role_bindings(self) -> Iterable[Json]:
        return [b for _, b in sorted(self.cluster_bindings.items())]


# --------------------------------------------------------------------------- matching


def _strings(rule: Mapping[str, Any], key: str) -> list[str]:
    return [str(v) for v in rule.get(key) or ()]


def verb_matches(rule: Mapping[str, Any], verb: str) -> bool:
    return any(v in ("*", verb) for v in _strings(rule, "verbs"))


def api_group_matches(rule: Mapping[str, Any], group: str) -> bool:
    return any(g in ("*", group) for g in _strings(rule, "apiGroups"))


def resource_matches(rule: Mapping[str, Any], combined: str, subresource: str) -> bool:
    for resource in _strings(rule, "resources"):
        if resource in ("*", combined):
            return True
        if subresource and resource == f"*/{subresource}":
            return True
    return False


def resource_name_matches(rule: Mapping[str, Any], name: str) -> bool:
    names = _strings(rule, "resourceNames")
    return not names or name in names


def non_resource_url_matches(rule: Mapping[str, Any], path: str) -> bool:
    for url in _strings(rule, "nonResourceURLs"):
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(attrs: Attributes, rule: Mapping[str, Any]) -> bool:
    """``RuleAllows``."""
    if attrs.resource_request:
        combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        return (
            verb_matches(rule, attrs.verb)
            and api_group_matches(rule, attrs.api_group)
            and resource_matches(rule, combined, attrs.subresource)
            and resource_name_matches(rule, attrs.name)
        )
    return verb_matches(rule, attrs.verb) and non_resource_url_matches(rule, attrs.path)


# --------------------------------------------------------------------------- resolution


def applies_to_user(user: UserInfo, subject: Mapping[str, Any], namespace: str) -> bool:
    """``appliesToUser``."""
    kind, name = subject.get("kind"), str(subject.get("name", ""))
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_namespace = str(subject.get("namespace") or namespace)
        return bool(sa_namespace) and matches_username(sa_namespace, name, user.name)
    return False


def _describe_subject(subject: Mapping[str, Any], binding_namespace: str) -> str:
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return f"{kind} {go_quote(f'{name}/{namespace}')}"
    return f"{kind} {go_quote(str(name))}"


_GO_ESCAPES = {
    "\a": r"\a",
    "\b": r"\b",
    "\f": r"\f",
    "\n": r"\n",
    "\r": r"\r",
    "\t": r"\t",
    "\v": r"\v",
}


def go_quote(text: str) -> str:
    """Go's ``%q`` of a string (``strconv.Quote``) for the texts RBAC and errors print."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not char.isprintable() and char != " ":
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


@dataclass(frozen=True)
class Visit:
    """One applicable rule and where it comes from, or a resolution error."""

    source: str
    rule: Mapping[str, Any] | None
    error: str = ""


def _role_rules(
    policy: PolicySource, role_ref: Mapping[str, Any], namespace: str
) -> tuple[list[Json], str]:
    """``GetRoleReferenceRules``: the rules, or an error like the listers' NotFound."""
    kind, name = role_ref.get("kind"), str(role_ref.get("name", ""))
    if kind == "Role":
        role = policy.get_role(namespace, name) if namespace else None
        if role is None:
            return [], f'role.{RBAC_GROUP} "{name}" not found'
        return list(role.get("rules") or []), ""
    if kind == "ClusterRole":
        cluster_role = policy.get_cluster_role(name)
        if cluster_role is None:
            return [], f'clusterrole.{RBAC_GROUP} "{name}" not found'
        return list(cluster_role.get("rules") or []), ""
    return [], f'unsupported role reference kind: "{kind}"'


def visit_rules(user: UserInfo, namespace: str, policy: PolicySource) -> Iterator[Visit]:
    """``DefaultRuleResolver.VisitRulesFor``: every rule that applies to ``user`` in
    ``namespace`` (``""``: cluster-wide only), lazily, with resolution errors."""
    for binding in policy.cluster_role_bindings():
        subject = _first_applying(user, binding, "")
        if subject is None:
            continue
        ref = binding.get("roleRef") or {}
        rules, error = _role_rules(policy, ref, "")
        if error:
            yield Visit("", None, error)
            continue
        source = (
            f"ClusterRoleBinding {go_quote(_name(binding))} of {ref.get('kind', '')} "
            f"{go_quote(str(ref.get('name', '')))} to {_describe_subject(subject, '')}"
        )
        for rule in rules:
            yield Visit(source, rule)
    if not namespace:
        return
    for binding in policy.role_bindings(namespace):
        subject = _first_applying(user, binding, namespace)
        if subject is None:
            continue
        ref = binding.get("roleRef") or {}
        rules, error = _role_rules(policy, ref, namespace)
        if error:
            yield Visit("", None, error)
            continue
        source = (
            f"RoleBinding {go_quote(_name(binding) + '/' + _namespace(binding))} of "
            f"{ref.get('kind', '')} {go_quote(str(ref.get('name', '')))} to "
            f"{_describe_subject(subject, _namespace(binding))}"
        )
        for rule in rules:
            yield Visit(source, rule)


def _first_applying(user: UserInfo, binding: Json, namespace: str) -> Mapping[str, Any] | None:
    for subject in binding.get("subjects") or ():
        if applies_to_user(user, subject, namespace):
            return dict(subject)
    return None


def aggregate_errors(messages: list[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()``: one message as is, several bracketed and
    comma-separated, each distinct message once."""
    if not messages:
        return ""
    if len(messages) == 1:
        return messages[0]
    distinct = list(dict.fromkeys(messages))
    joined = ", ".join(distinct)
    return joined if len(distinct) == 1 else f"[{joined}]"


def authorize(attrs: Attributes, policy: PolicySource) -> tuple[bool, str]:
    """``RBACAuthorizer.Authorize``: (allowed, reason). Not allowed means no opinion."""
    found: list[str] = []
    for visit in visit_rules(attrs.user, attrs.namespace, policy):
        if visit.rule is not None and rule_allows(attrs, visit.rule):
            return True, f"RBAC: allowed by {visit.source}"
        if visit.error:
            found.append(visit.error)
    return False, f"RBAC: {aggregate_errors(found)}" if found else ""


def rules_for(user: UserInfo, namespace: str, policy: PolicySource) -> tuple[list[Json], str]:
    """``RulesFor``: every rule that applies, and the resolution errors (what
    SelfSubjectRulesReview and ``kubectl auth can-i --list`` show)."""
    rules, found = [], []
    for visit in visit_rules(user, namespace, policy):
        if visit.rule is not None:
            rules.append(dict(visit.rule))
        if visit.error:
            found.append(visit.error)
    return rules, aggregate_errors(found)
