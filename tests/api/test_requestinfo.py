"""Request attributes as kube-apiserver's RequestInfoFactory derives them (pure).

Source: k8s.io/apiserver/pkg/endpoints/request/requestinfo.go (NewRequestInfo) and its
tests (requestinfo_test.go): the verb from the method, list/watch/deletecollection for
collections, namespaces and subresources, the legacy /watch/ and /proxy/ prefixes,
non-resource paths, and the name taken from a metadata.name field selector.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from aliasip_lab.apiserver.requestinfo import (
    RequestInfo,
    RequestInfoError,
    attributes,
    request_info,
)
from aliasip_lab.apiserver.userinfo import UserInfo


def info(method: str, url: str) -> RequestInfo:
    split = urlsplit(url)
    return request_info(method, split.path, parse_qs(split.query, keep_blank_values=True))


def summary(method: str, url: str) -> tuple[str, str, str, str, str, str, str]:
    got = info(method, url)
    assert got.is_resource_request
    return (
        got.verb,
        got.api_group,
        got.api_version,
        got.namespace,
        got.resource,
        got.subresource,
        got.name,
    )


LEASES = "/apis/coordination.k8s.io/v1/namespaces/aliasip-system/leases"


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("GET", f"{LEASES}/aliasip-agent-node2", ("get", "coordination.k8s.io", "v1",
         "aliasip-system", "leases", "", "aliasip-agent-node2")),
        ("HEAD", f"{LEASES}/x", ("get", "coordination.k8s.io", "v1", "aliasip-system",
         "leases", "", "x")),
        ("GET", LEASES, ("list", "coordination.k8s.io", "v1", "aliasip-system", "leases",
         "", "")),
        ("GET", f"{LEASES}?watch=1", ("watch", "coordination.k8s.io", "v1", "aliasip-system",
         "leases", "", "")),
        ("GET", f"{LEASES}?watch=true", ("watch", "coordination.k8s.io", "v1",
         "aliasip-system", "leases", "", "")),
        ("GET", f"{LEASES}?watch=false", ("list", "coordination.k8s.io", "v1",
         "aliasip-system", "leases", "", "")),
        ("GET", f"{LEASES}?watch=0", ("list", "coordination.k8s.io", "v1", "aliasip-system",
         "leases", "", "")),
        ("GET", f"{LEASES}?watch=FALSE", ("list", "coordination.k8s.io", "v1",
         "aliasip-system", "leases", "", "")),
        # Convert_Slice_string_To_bool: anything but 0/false is true, even an empty value.
        ("GET", f"{LEASES}?watch=", ("watch", "coordination.k8s.io", "v1", "aliasip-system",
         "leases", "", "")),
        ("POST", LEASES, ("create", "coordination.k8s.io", "v1", "aliasip-system", "leases",
         "", "")),
        ("PUT", f"{LEASES}/l", ("update", "coordination.k8s.io", "v1", "aliasip-system",
         "leases", "", "l")),
        ("PATCH", f"{LEASES}/l", ("patch", "coordination.k8s.io", "v1", "aliasip-system",
         "leases", "", "l")),
        ("DELETE", f"{LEASES}/l", ("delete", "coordination.k8s.io", "v1", "aliasip-system",
         "leases", "", "l")),
        ("DELETE", LEASES, ("deletecollection", "coordination.k8s.io", "v1",
         "aliasip-system", "leases", "", "")),
        ("OPTIONS", f"{LEASES}/l", ("", "coordination.k8s.io", "v1", "aliasip-system",
         "leases", "", "l")),
        ("PATCH", "/apis/aliasip.io/v1alpha1/aliasips/web/status", ("patch", "aliasip.io",
         "v1alpha1", "", "aliasips", "status", "web")),
        ("GET", "/apis/aliasip.io/v1alpha1/aliasips", ("list", "aliasip.io", "v1alpha1", "",
         "aliasips", "", "")),
        ("GET", "/api/v1/nodes/node2", ("get", "", "v1", "", "nodes", "", "node2")),
        ("GET", "/api/v1/nodes", ("list", "", "v1", "", "nodes", "", "")),
        ("GET", "/api/v1/pods", ("list", "", "v1", "", "pods", "", "")),
        ("POST", "/api/v1/namespaces/default/events", ("create", "", "v1", "default",
         "events", "", "")),
        # The namespace object is in its own namespace; status/finalize are its subresources.
        ("GET", "/api/v1/namespaces/aliasip-system", ("get", "", "v1", "aliasip-system",
         "namespaces", "", "aliasip-system")),
        ("PUT", "/api/v1/namespaces/x/status", ("update", "", "v1", "x", "namespaces",
         "status", "x")),
        ("PUT", "/api/v1/namespaces/x/finalize", ("update", "", "v1", "x", "namespaces",
         "finalize", "x")),
        ("GET", "/api/v1/namespaces", ("list", "", "v1", "", "namespaces", "", "")),
        ("POST", "/api/v1/namespaces/aliasip-system/serviceaccounts/aliasip-agent/token",
         ("create", "", "v1", "aliasip-system", "serviceaccounts", "token", "aliasip-agent")),
        # Legacy prefixes.
        ("GET", "/api/v1/watch/namespaces/ns/pods", ("watch", "", "v1", "ns", "pods", "",
         "")),
        ("GET", "/api/v1/watch/namespaces/ns/pods/p", ("watch", "", "v1", "ns", "pods", "",
         "p")),
        ("GET", "/api/v1/proxy/namespaces/ns/pods/p/extra", ("proxy", "", "v1", "ns", "pods",
         "", "p")),
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", ("create",
         "authorization.k8s.io", "v1", "", "selfsubjectaccessreviews", "", "")),
    ],
)  # fmt: skip
def test_resource_requests(
    method: str, url: str, expected: tuple[str, str, str, str, str, str, str]
) -> None:
    assert summary(method, url) == expected


@pytest.mark.parametrize(
    ("method", "path", "verb"),
    [
        ("GET", "/", "get"),
        ("GET", "/api", "get"),
        ("GET", "/api/v1", "get"),
        ("GET", "/apis", "get"),
        ("GET", "/apis/coordination.k8s.io", "get"),
        ("GET", "/apis/coordination.k8s.io/v1", "get"),
        ("GET", "/version", "get"),
        ("GET", "/healthz", "get"),
        ("GET", "/openapi/v3/apis/aliasip.io/v1alpha1", "get"),
        ("HEAD", "/healthz", "head"),
        ("POST", "/api", "post"),
        ("DELETE", "/metrics", "delete"),
    ],
)
def test_non_resource_requests(method: str, path: str, verb: str) -> None:
    got = info(method, path)
    assert not got.is_resource_request
    assert (got.verb, got.path) == (verb, path)


def test_a_metadata_name_field_selector_names_a_list_or_a_watch() -> None:
    """client-go's single-object informers (and kopf's) watch with this selector, so a
    rule with resourceNames can allow them."""
    assert summary("GET", f"{LEASES}?fieldSelector=metadata.name%3Dx")[0::6] == ("list", "x")
    assert summary("GET", f"{LEASES}?fieldSelector=metadata.name%3D%3Dx&watch=1")[0::6] == (
        "watch",
        "x",
    )
    other_terms = "fieldSelector=metadata.namespace%3Dns,metadata.name%3Dx"
    assert summary("GET", f"{LEASES}?{other_terms}")[6] == "x"


@pytest.mark.parametrize(
    "query",
    [
        "fieldSelector=metadata.name!%3Dx",  # not an exact match
        "fieldSelector=metadata.namespace%3Dx",
        "fieldSelector=metadata.name%3D..",  # not a valid path segment
        "fieldSelector=metadata.name%3Da%25b",
        "fieldSelector=nonsense",  # does not parse: no name
        "fieldSelector=metadata.name%3Dx&limit=ten",  # the list options do not decode
        "fieldSelector=metadata.name%3Dx&timeoutSeconds=soon",
        "fieldSelector=",
    ],
)
def test_no_name_from_other_field_selectors(query: str) -> None:
    assert summary("GET", f"{LEASES}?{query}")[6] == ""


def test_escaped_field_selector_values_are_unescaped() -> None:
    assert summary("GET", f"{LEASES}?fieldSelector=metadata.name%3Da%5C,b")[6] == "a,b"


def test_the_first_of_two_names_in_sorted_order_wins() -> None:
    query = "fieldSelector=metadata.name%3Db,metadata.name%3Da"
    assert summary("GET", f"{LEASES}?{query}")[6] == "a"


def test_a_watch_prefix_without_a_resource_cannot_be_parsed() -> None:
    with pytest.raises(RequestInfoError):
        info("GET", "/api/v1/watch")


def test_attributes_carry_the_user_and_the_request() -> None:
    user = UserInfo("u", groups=("g",))
    got = attributes(user, info("PUT", f"{LEASES}/l"))
    assert (got.user, got.verb, got.resource_request, got.namespace, got.name) == (
        user,
        "update",
        True,
        "aliasip-system",
        "l",
    )
    plain = attributes(user, info("GET", "/version"))
    assert (plain.resource_request, plain.path, plain.resource) == (False, "/version", "")
