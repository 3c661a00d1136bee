"""aliasip lab: a LAN of network namespaces on one Linux host, for tests, demo and benchmarks.

Network rule: everything stays inside namespaces the lab made itself; nothing is attached
to the host namespace; no default routes; addresses from 198.18.0.0/15 (IPv4) and
2001:2::/48 (IPv6), the benchmarking ranges; every namespace is removed on exit.
"""
