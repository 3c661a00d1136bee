"""Property tests: whatever the host looks like, a placement is safe or refused."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from aliasip_nodeagent import errors
from aliasip_nodeagent.hoststate import (
    OWN_PROTO,
    SCOPE_HOST,
    SCOPE_LINK,
    SCOPE_UNIVERSE,
    HostAddress,
    HostState,
    InterfaceState,
)
from aliasip_nodeagent.placement import AliasRequest, decide_placement, select_release

# Small pools so that random hosts and requests collide often.
V4_BASE = int(ipaddress.IPv4Address("198.18.0.0"))
V6_BASE = int(ipaddress.IPv6Address("2001:2::"))
NAMES = ["lo", "eth1", "eth2", "eth3"]

v4_ips = st.integers(0, 63).map(lambda n: ipaddress.IPv4Address(V4_BASE + n))
v6_ips = st.integers(0, 63).map(lambda n: ipaddress.IPv6Address(V6_BASE + n))
mostly_true = st.sampled_from([True, True, True, False])


@st.composite
def host_addresses(draw: st.DrawFn) -> HostAddress:
    if draw(st.booleans()):
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = draw(v4_ips)
        prefixlen = draw(st.sampled_from([26, 27, 28, 28, 29, 30, 31, 32]))
    else:
        ip = draw(v6_ips)
        prefixlen = draw(st.sampled_from([122, 123, 124, 124, 125, 126, 127, 128]))
    return HostAddress(
        interface=ipaddress.ip_interface(f"{ip}/{prefixlen}"),
        scope=draw(st.sampled_from([SCOPE_UNIVERSE] * 4 + [SCOPE_LINK, SCOPE_HOST])),
        proto=draw(st.sampled_from([None, None, None, 2, OWN_PROTO, OWN_PROTO])),
    )


@st.composite
def hosts(draw: st.DrawFn) -> HostState:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    interfaces = [
        InterfaceState(
            index=i + 1,
            name=name,
            mac=f"02:00:00:00:02:{i + 1:02x}",
            admin_up=draw(mostly_true),
            carrier=draw(mostly_true),
            loopback=name == "lo",
            addresses=tuple(draw(st.lists(host_addresses(), min_size=1, max_size=4))),
        )
        for i, name in enumerate(names)
    ]
    return HostState(interfaces=tuple(interfaces))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[HostState, AliasRequest]:
    """A host and a request; the request often reuses one of the host's own addresses."""
    hoststate = draw(hosts())
    present = [a for i in hoststate.interfaces for a in i.addresses]
    covering = [
        a for i in hoststate.interfaces if not i.loopback for a in i.addresses if a.stationary
    ]
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = draw(st.one_of(v4_ips, v6_ips))
    source = draw(st.sampled_from(["pool", "same-address", "same-subnet", "same-subnet"]))
    if present and source == "same-address":
        ip = draw(st.sampled_from(present)).ip
    if covering and source == "same-subnet":
        network = draw(st.sampled_from(covering)).interface.network
        ip = network.network_address + draw(st.integers(0, network.num_addresses - 1))
    low = 26 if ip.version == 4 else 122
    prefixlen = draw(st.one_of(st.none(), st.none(), st.integers(low, ip.max_prefixlen)))
    names = [i.name for i in hoststate.interfaces]
    interface = draw(st.one_of(st.none(), st.sampled_from([*names, "eth9"])))
    return hoststate, AliasRequest(ip=ip, prefixlen=prefixlen, interface=interface)


@settings(max_examples=300, deadline=None, database=None)
@given(scenario=scenarios())
def test_placement_is_safe_or_refused(scenario: tuple[HostState, AliasRequest]) -> None:
    hoststate, request = scenario
    try:
        placement = decide_placement(request, hoststate)
    except errors.AliasError:
        return
    chosen = hoststate.by_name(placement.interface)
    assert chosen is not None
    assert (placement.index, placement.mac) == (chosen.index, chosen.mac)
    assert chosen.admin_up
    assert chosen.carrier
    assert not chosen.loopback
    if request.interface is not None:
        assert placement.interface == request.interface
    if request.prefixlen is not None:
        assert placement.address.network.prefixlen == request.prefixlen
    assert placement.address.ip == request.ip
    # Inside a stationary (foreign, global) subnet of the chosen interface, same prefix.
    assert any(
        not a.owned
        and a.scope == SCOPE_UNIVERSE
        and a.ip.version == request.ip.version
        and a.interface.network == placement.address.network
        for a in chosen.addresses
    )
    # Never a foreign address of any interface, never a network or v4 broadcast address.
    assert all(
        a.ip != placement.address.ip or a.owned for i in hoststate.interfaces for a in i.addresses
    )
    network = placement.address.network
    if network.prefixlen < network.max_prefixlen - 1:
        assert placement.address.ip != network.network_address
        if network.version == 4:
            assert placement.address.ip != network.broadcast_address
    # Held by us: only here and with the same prefix, and then already_held is set.
    ours = [
        (i.name, a.interface)
        for i in hoststate.interfaces
        for a in i.addresses
        if a.owned and a.ip == request.ip
    ]
    assert all(entry == (placement.interface, placement.address) for entry in ours)
    assert placement.already_held == bool(ours)


@settings(max_examples=200, deadline=None, database=None)
@given(hoststate=hosts(), ip=st.one_of(v4_ips, v6_ips))
def test_select_release_never_returns_a_foreign_address(
    hoststate: HostState, ip: ipaddress.IPv4Address | ipaddress.IPv6Address
) -> None:
    ours = {
        (i.name, a.interface)
        for i in hoststate.interfaces
        for a in i.addresses
        if a.owned and a.ip == ip
    }
    foreign = [a for i in hoststate.interfaces for a in i.addresses if a.ip == ip and not a.owned]
    try:
        held = select_release(ip, hoststate)
    except errors.NotOwned:
        assert not ours
        assert foreign
        return
    assert {(h.interface, h.address) for h in held} == ours
    for h in held:
        carrier = hoststate.by_name(h.interface)
        assert carrier is not None
        match = [a for a in carrier.addresses if a.interface == h.address and a.owned]
        assert match, f"{h} is not an owned address of {h.interface}"


@st.composite
def placeable(draw: st.DrawFn) -> tuple[HostState, AliasRequest, str]:
    """A host where eth1 can carry the alias; returns where it is held already, if anywhere."""
    if draw(st.booleans()):
        network: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.ip_network(
            f"198.18.1.0/{draw(st.sampled_from([24, 26, 28, 30, 31]))}"
        )
        elsewhere = "198.18.2.1/24"
    else:
        network = ipaddress.ip_network(f"2001:2:0:1::/{draw(st.sampled_from([64, 120, 126, 127]))}")
        elsewhere = "2001:2:0:2::1/64"
    small = network.prefixlen >= network.max_prefixlen - 1
    first = 0 if small else 1
    last = network.num_addresses - (1 if small or network.version == 6 else 2)
    offsets = draw(st.lists(st.integers(first, last), min_size=2, max_size=2, unique=True))
    station, alias = (network.network_address + o for o in offsets)
    held = draw(st.sampled_from(["nowhere", "nowhere", "here", "here-other-prefix", "eth2"]))
    ours = [HostAddress(ipaddress.ip_interface(f"{alias}/{network.prefixlen}"), proto=OWN_PROTO)]
    ours_host_route = [HostAddress(ipaddress.ip_interface(alias), proto=OWN_PROTO)]
    eth1 = InterfaceState(
        index=2,
        name="eth1",
        mac="02:00:00:00:03:01",
        admin_up=True,
        carrier=True,
        addresses=(
            HostAddress(ipaddress.ip_interface(f"{station}/{network.prefixlen}")),
            # Noise from the 198.18.0.0/26 and 2001:2::/122 pools, disjoint from `network`.
            *draw(st.lists(host_addresses(), max_size=2)),
            *(ours if held == "here" else []),
            *(ours_host_route if held == "here-other-prefix" else []),
        ),
    )
    eth2 = InterfaceState(
        index=3,
        name="eth2",
        mac="02:00:00:00:03:02",
        admin_up=draw(st.booleans()),
        carrier=draw(st.booleans()),
        addresses=(
            HostAddress(ipaddress.ip_interface(elsewhere)),
            *(ours if held == "eth2" else []),
        ),
    )
    request = AliasRequest(
        ip=alias,
        prefixlen=draw(st.sampled_from([None, network.prefixlen])),
        interface=draw(st.sampled_from([None, "eth1"])),
    )
    return HostState(interfaces=(eth1, eth2)), request, held


@settings(max_examples=200, deadline=None, database=None)
@given(scenario=placeable())
def test_placeable_alias_is_placed_on_the_covering_interface(
    scenario: tuple[HostState, AliasRequest, str],
) -> None:
    hoststate, request, held = scenario
    if held in ("eth2", "here-other-prefix"):
        try:
            decide_placement(request, hoststate)
        except errors.HeldElsewhere:
            return
        raise AssertionError(f"an alias held ({held}) was placed on eth1 as well")
    placement = decide_placement(request, hoststate)
    eth1 = hoststate.interfaces[0]
    stationary_net = eth1.addresses[0].interface.network
    assert placement.interface == "eth1"
    assert (placement.index, placement.mac) == (2, "02:00:00:00:03:01")
    assert placement.address.ip == request.ip
    assert placement.address.network == stationary_net
    assert placement.already_held == (held == "here")
