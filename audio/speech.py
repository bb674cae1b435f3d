"""What every part of the speech path shares: its base error and content hashing."""

from __future__ import annotations

import hashlib
from pathlib import Path

#: espeak-ng voices that read Vietnamese (Northern, Central, Southern).
VIETNAMESE_VOICES = ("vi", "vi-vn-x-central", "vi-vn-x-south")


class SpeechError(RuntimeError):
    """Speech could not be rendered; the message says which step failed and why."""


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
