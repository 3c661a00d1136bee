"""Health answers in kube-apiserver's ``/livez`` / ``/readyz`` format, for the agent's and
the operator's probes alike (one format an admin already reads, one place that writes it).

A probe is a list of named checks. The answer is ``ok`` (200) when all pass; otherwise,
or with ``?verbose``, one ``[+]name ok: detail`` / ``[-]name failed: detail`` line per
check and ``<endpoint> check passed|failed`` (200 or 503), as kube-apiserver prints them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One named check's outcome and why, in words."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        mark, verdict = ("+", "ok") if self.ok else ("-", "failed")
        return f"[{mark}]{self.name} {verdict}: {self.detail}"


def render(endpoint: str, checks: list[Check], verbose: bool) -> tuple[int, str]:
    """The status and the body: ``ok``, or every check and the verdict when one failed
    or ``verbose`` asked for them."""
    ok = all(c.ok for c in checks)
    if ok and not verbose:
        return 200, "ok\n"
    lines = [c.line() for c in checks]
    lines.append(f"{endpoint} check {'passed' if ok else 'failed'}")
    return (200 if ok else 503), "\n".join(lines) + "\n"
