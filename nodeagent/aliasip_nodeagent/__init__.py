"""aliasip node agent: makes the kernel and the wire agree with where an alias should live.

Module map (one owner per side effect):

- ``placement``  pure decisions: may this host take this alias, on which interface, prefix?
- ``hoststate``  plain data describing the host's interfaces and addresses (no I/O)
- ``netlink``    the only module that imports pyroute2 (reads and changes addresses)
- ``announce``   the only module that imports scapy (gratuitous ARP / NA, duplicate probe)
- ``dataplane``  the apply/release/list steps, shared by the CLI and the daemon
- ``reconcile``  pure: which aliases to hold, adopt or release for the AliasIPs' status
- ``report``     pure: which ``status.nodes.<node>`` view to report, and when to write it
- ``kube``       the only module that talks to the Kubernetes API (list/watch, patch, Lease)
- ``daemon``     ``aliasip-agent run``: the asyncio loop (Lease, fencing, watch, reconcile)
- ``service``    wiring of the daemon (real owners, signals); ``cli`` the command
"""
