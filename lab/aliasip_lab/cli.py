"""``aliasip-lab``: the one-host lab.

aliasip-lab demo                      move an alias between two namespace nodes, show it
aliasip-lab probe ADDRESS [options]   the bounded 10 ms prober (run it in a client netns)
aliasip-lab apiserver --listen ADDR:PORT [--kubeconfig PATH]
                                      the embedded Kubernetes API server (until SIGTERM)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "demo":
        from aliasip_lab import demo

        return demo.main(rest)
    if command == "probe":
        from aliasip_lab import prober

        return prober.main(rest)
    if command == "apiserver":
        from aliasip_lab.apiserver import runner

        return runner.main(rest)
    print(f"aliasip-lab: unknown command {command!r} (try --help)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
