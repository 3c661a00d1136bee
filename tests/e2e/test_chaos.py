"""A short chaos run in the suite: one seed, one minute of random combined faults on a
3-node lab with two AliasIPs (one with an IPv6 alias), every invariant checked by the
run's own witnesses -- the wire observer, kernel truth, the status poller
(``aliasip_lab.chaos``). A failure prints the seed, the violations and the fault log to
replay (``aliasip-lab chaos --replay FILE``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aliasip_lab.chaos import chaos, summary_lines

SEED = 2


def test_one_minute_of_combined_faults_keeps_every_invariant(tmp_path: Path) -> None:
    log = tmp_path / "faults.jsonl"
    summary = chaos(SEED, 1.0, nodes=3, aliasips=2, log=log)
    text = "\n".join(summary_lines(summary))
    print(text)
    print(log.read_text())  # the replayable fault log, shown when the test fails
    assert summary["observer_rounds"] > 0 and sum(summary["episodes"].values()) > 0, text
    assert summary["split_brain_rounds"] == 0, text
    assert summary["violations"] == [], text


def test_chaos_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "ALIASIP_LAB_DIR": str(tmp_path / "lab")}
    for args, message in [
        (["--minutes", "0"], "--minutes must be in (0, 240]"),
        (["--nodes", "1"], "--nodes must be 2 to 10"),
        (["--aliasips", "0"], "--aliasips must be 1 to 20"),
        (["--replay", str(tmp_path / "none.jsonl")], "no fault log"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "aliasip_lab.cli", "chaos", *args],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "lab").exists()
