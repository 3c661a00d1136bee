"""The monitoring path's keys from a mounted Secret: one file per key id, ``signing``
naming the key that signs, reloaded when kubelet swaps the files (a rotation), and the
last good ring kept when the directory is half written."""

from __future__ import annotations

from pathlib import Path

import pytest

from aliasip_nodeagent.keyring import KeyFiles, UnusableKeys, load_ring

K1, K2 = b"1" * 32, b"2" * 32


def secret(directory: Path, keys: dict[str, bytes], signing: str | None = None) -> Path:
    """Lay the files out as kubelet does: the entries are links into ``..data``."""
    directory.mkdir(exist_ok=True)
    for entry in list(directory.iterdir()):
        if entry.is_symlink() or entry.is_file():
            entry.unlink()
    version = directory / f"..{len(list(directory.glob('..2*'))) + 2026}"
    version.mkdir()
    for key_id, key in keys.items():
        (version / key_id).write_bytes(key)
    if signing is not None:
        (version / "signing").write_text(signing + "\n")
    (directory / "..data").symlink_to(version.name)
    for name in [*keys, *(["signing"] if signing is not None else [])]:
        (directory / name).symlink_to(f"..data/{name}")
    return directory


def test_the_ring_is_every_key_and_the_named_signing_one(tmp_path: Path) -> None:
    ring = load_ring(secret(tmp_path / "s", {"k1": K1, "k2": K2}, signing="k1"))
    assert dict(ring.keys) == {"k1": K1, "k2": K2} and ring.signing == "k1"


def test_without_signing_the_greatest_id_signs(tmp_path: Path) -> None:
    assert load_ring(secret(tmp_path / "s", {"2026-11": K1, "2026-12": K2})).signing == "2026-12"


@pytest.mark.parametrize(
    ("keys", "signing", "says"),
    [
        ({}, None, "no heartbeat key"),
        ({"k1": b"short"}, None, "shorter than 16 bytes"),
        ({"k1": K1}, "k9", "'k9' is not in the ring"),
    ],
)
def test_an_unusable_directory_says_why(
    tmp_path: Path, keys: dict[str, bytes], signing: str | None, says: str
) -> None:
    with pytest.raises(UnusableKeys, match=says):
        load_ring(secret(tmp_path / "s", keys, signing))
    with pytest.raises(UnusableKeys, match="cannot read"):
        load_ring(tmp_path / "missing")


def test_a_rotation_is_followed_and_a_broken_update_keeps_the_last_good_ring(
    tmp_path: Path,
) -> None:
    directory = secret(tmp_path / "s", {"k1": K1}, signing="k1")
    files = KeyFiles(directory)
    first = files.refresh()
    assert first is not None and first.signing == "k1"
    assert files.refresh() is first  # unchanged: not read again
    secret(directory, {"k1": K1, "k2": K2}, signing="k1")  # step 1: both accepted
    both = files.refresh()
    assert both is not None and set(both.keys) == {"k1", "k2"} and both.signing == "k1"
    secret(directory, {"k1": K1, "k2": K2}, signing="k2")  # step 2: the new one signs
    assert (got := files.refresh()) is not None and got.signing == "k2"
    secret(directory, {"k2": K2}, signing="k9")  # a mistake: keep what worked
    kept = files.refresh()
    assert kept is not None and kept.signing == "k2" and set(kept.keys) == {"k1", "k2"}
    assert files.problem is not None and "k9" in files.problem
    secret(directory, {"k2": K2}, signing="k2")  # step 3, done right
    assert (last := files.refresh()) is not None and set(last.keys) == {"k2"}
    assert files.problem is None
