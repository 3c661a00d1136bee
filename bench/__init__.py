"""Benchmarks of aliasip, run on a lab LAN of network namespaces (see bench/README.md)."""
