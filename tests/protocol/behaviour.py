"""The agent's behaviour under faults, as switches of the protocol model (issue 10).

Each field is one rule of issue 10 that the node agent keeps or does not keep. ``TODAY``
is what ``nodeagent/aliasip_nodeagent/daemon.py`` does at the commit this model was
written against; ``INTENDED`` is the rule the issue asks for. The model (``world.py``)
consults these switches in small functions marked ``# PRODUCT BEHAVIOUR:``; everything
else in the model is the production code itself (``decide``, ``plan``, ``view_for``,
``watched_holder``, ``lease_lapsed``, ``report_due``), so once the agent keeps a rule, the
switch is the only thing to change here (and ``PRODUCT`` in test_model.py).

Why each rule exists (the trace that breaks it is in test_scenarios.py):

- ``delete_on_carrier_loss``: a held alias stays in the kernel of a node whose link went
  down until the next full pass (and while the agent is cut off from the API, until a
  wire probe hears another holder): when the carrier returns after a failover, two MACs
  answer (issue 10, failure 2);
- ``relist_after_cut_off`` / ``read_before_add``: an agent that was cut off, or whose
  watch lags, acts on a status read before the gap; its plan may even skip the wire probe
  because that old status says the previous holder released ("the old holder
  confirmed"): two holders (failure 2);
- ``watch_releasing``: no standby probes a node that is *releasing* (``activeNode`` None,
  a move waiting for it), so a releasing node that dies is never proven silent and the
  AliasIP waits without a holder forever (failure 1);
- ``sticky_refusals``: a node whose hold was refused (no stationary subnet covers the
  address, ...) reports ``standby`` again as soon as it is no longer named, so the
  operator names it again: the AliasIP hops between nodes forever (failure 3);
- ``announce_only_while_holding``: an announcement round still scheduled after its
  address was deleted tells the neighbours a MAC that no longer answers (failure 4);
- ``dead_man``: a node whose agent is dead or paused keeps its aliases in the kernel;
  cut off the LAN it is silent, the alias fails over, and when its link returns before
  its agent does, two MACs answer (the chaos runs of session 4). With the rule, the kernel
  drops an alias ``EXPIRY_WINDOW_S`` after the agent's last renewal, and a standby calls
  a holder silent only once the silence lasted that window (docs/design.md R9).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Behaviour:
    """Which of issue 10's agent rules the modelled agent keeps (True: keeps it)."""

    delete_on_carrier_loss: bool
    relist_after_cut_off: bool
    read_before_add: bool
    watch_releasing: bool
    sticky_refusals: bool
    announce_only_while_holding: bool
    dead_man: bool

    def __str__(self) -> str:
        kept = [name for name, value in vars(self).items() if value]
        return "rules kept: " + (", ".join(kept) or "none")


TODAY = Behaviour(
    delete_on_carrier_loss=False,
    relist_after_cut_off=False,
    read_before_add=False,
    watch_releasing=False,
    sticky_refusals=False,
    announce_only_while_holding=False,
    dead_man=False,
)

INTENDED = Behaviour(
    delete_on_carrier_loss=True,
    relist_after_cut_off=True,
    read_before_add=True,
    watch_releasing=True,
    sticky_refusals=True,
    announce_only_while_holding=True,
    dead_man=True,
)


def without(behaviour: Behaviour, names: str) -> Behaviour:
    """``behaviour`` with the rules ``names`` (comma-separated fields, or "all") not kept.

    Raises ValueError naming an unknown rule (a typo must not run the model unchanged).
    """
    known = [f.name for f in fields(Behaviour)]
    off = known if names.strip() == "all" else [n.strip() for n in names.split(",") if n.strip()]
    unknown = sorted(set(off) - set(known))
    if unknown:
        raise ValueError(f"unknown rules {unknown}; the rules are {known}")
    return replace(behaviour, **dict.fromkeys(off, False))


PRODUCT = without(INTENDED, "relist_after_cut_off")
"""What the shipped agent keeps (nodeagent/aliasip_nodeagent/daemon.py): every rule but the
relist on unfence. The agent reads each AliasIP afresh right before adding it
(``read_before_add``) instead: one GET per add rather than a relist of every object by every
agent after an API stall (the relist storm bench/scale.py saw at 50 x 1,000)."""
