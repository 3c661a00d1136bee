"""Pure checks of two request formats kubectl uses: protobuf bodies and aggregated discovery.

The protobuf bytes are built here field by field from the numbers in k8s.io/api's
``generated.proto`` (independently of the decoder), the way client-go's protobuf
serializer writes a Secret: ``k8s\\x00`` + runtime.Unknown{typeMeta, raw}.
"""

from __future__ import annotations

import base64

import pytest

from aliasip_lab.apiserver import discovery, protobuf
from aliasip_lab.apiserver.errors import ApiError


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def entry(key: str, value: bytes) -> bytes:
    return field(1, key.encode()) + field(2, value)


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version.encode()) + field(2, kind.encode())
    return protobuf.MAGIC + field(1, type_meta) + field(2, raw)


def test_a_secret_in_protobuf_decodes_to_its_json_form() -> None:
    meta = (
        field(1, b"aliasip-heartbeat")
        + field(2, b"")  # Go writes empty strings of non-pointer fields: left out
        + field(3, b"aliasip-system")
        + field(11, entry("app", b"aliasip"))
        + field(8, b"")  # a zero creationTimestamp: left out
    )
    raw = field(1, meta) + field(2, entry("k1", b"\x00\x01secret")) + field(3, b"Opaque")
    decoded = protobuf.decode(envelope("v1", "Secret", raw))
    assert decoded == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "aliasip-heartbeat",
            "namespace": "aliasip-system",
            "labels": {"app": "aliasip"},
        },
        "data": {"k1": base64.b64encode(b"\x00\x01secret").decode()},
        "type": "Opaque",
    }


def test_a_kind_without_a_protobuf_decoder_is_415_and_garbage_is_400() -> None:
    with pytest.raises(ApiError) as unsupported:
        protobuf.decode(envelope("apps/v1", "Deployment", b""))
    assert unsupported.value.code == 415
    with pytest.raises(ApiError) as garbage:
        protobuf.decode(b"not protobuf")
    assert garbage.value.code == 400


@pytest.mark.parametrize(
    ("accept", "aggregated"),
    [
        (
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
            "application/json",
            True,
        ),
        ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,*/*", False),
        ("application/json", False),
        ("", False),
        (None, False),
    ],
)
def test_aggregated_discovery_only_for_clients_that_put_v2_first(
    accept: str | None, aggregated: bool
) -> None:
    assert discovery.wants_aggregated(accept) is aggregated
