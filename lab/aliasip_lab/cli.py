"""``aliasip-lab``: a whole cluster on one host.

aliasip-lab demo                      up 3 nodes, an AliasIP, a switchover, a node lost, down
aliasip-lab up --nodes N              build the lab (state in $ALIASIP_LAB_DIR, /run/aliasip-lab)
aliasip-lab down | status [--json]    remove it / what runs, who holds what
aliasip-lab kubectl ARGS...           the real kubectl against the lab's API
aliasip-lab probe ADDRESS [--interval-ms 10] [--duration S] [--json]
                                      the bounded client prober (client namespace) and the
                                      wire observer (observer namespace), side by side
aliasip-lab chaos --seed N --minutes M [--nodes 3] [--aliasips 2] [--log FILE] [--replay FILE]
                                      random combined faults; invariants checked on the wire
aliasip-lab apiserver --listen ADDR:PORT [--kubeconfig PATH] [--state PATH]
                                      the embedded Kubernetes API server (until SIGTERM)
faults and admin actions:
{faults}
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from aliasip_lab import labcli


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip().format(faults=labcli.usage()))
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "demo":
        from aliasip_lab import demo

        return demo.main(rest)
    if command == "probe":
        return _probe(rest)
    if command == "chaos":
        from aliasip_lab import chaos

        return chaos.main(rest)
    if command == "apiserver":
        from aliasip_lab.apiserver import runner

        return runner.main(rest)
    if command in labcli.COMMANDS:
        return labcli.main(command, rest)
    print(f"aliasip-lab: unknown command {command!r} (try --help)", file=sys.stderr)
    return 2


def _probe(rest: list[str]) -> int:
    """In a lab: the client prober (client namespace) and the wire observer (observer
    namespace) side by side (``aliasip_lab.probeview``); without one, the prober alone,
    from the namespace this runs in."""
    from aliasip_lab import prober
    from aliasip_lab.cluster import Lab, LabError, default_state_dir

    try:
        lab = Lab.attach(default_state_dir())
    except LabError:
        return prober.main(rest)
    from aliasip_lab import probeview

    return probeview.main(lab, rest)


if __name__ == "__main__":
    sys.exit(main())
