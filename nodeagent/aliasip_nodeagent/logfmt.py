"""The agent's structured log lines (``event=... key=value``), shared by its modules."""

from __future__ import annotations


def kv(event: str, **fields: object) -> str:
    """A structured log line: ``event=... key=value ...`` (values with spaces quoted)."""
    parts = [f"event={event}"]
    for key, value in fields.items():
        if value is None:
            continue
        text = str(value)
        parts.append(f'{key}="{text}"' if (" " in text or not text) else f"{key}={text}")
    return " ".join(parts)
