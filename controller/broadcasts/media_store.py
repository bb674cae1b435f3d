"""Content-addressed media store: a file's name is its SHA-256, so a path can never leave the store."""

from __future__ import annotations

import os
from pathlib import Path

from devices.protocol import valid_sha256


class MediaStore:
    """Files at ``{root}/{sha[:2]}/{sha}``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Scratch space on the same file system, so finished files move in with a rename.
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path | None:
        """The stored file for a hash, or None for anything that is not a known, valid hash."""
        if not valid_sha256(sha256):
            return None
        path = self.root / sha256[:2] / sha256
        return path if path.is_file() else None

    def add(self, source: Path, sha256: str) -> Path:
        """Moves ``source`` (whose hash the caller computed) into the store; idempotent."""
        if not valid_sha256(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        target = self.root / sha256[:2] / sha256
        target.parent.mkdir(exist_ok=True)
        if target.exists():
            source.unlink(missing_ok=True)
        else:
            os.replace(source, target)
        return target
