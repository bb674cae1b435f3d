"""Motion snapshots on disk, with retention by count per camera, age and total size."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.storage.models import CameraEvent, utcnow
from devices.protocol import valid_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retention:
    """How much is kept: per camera, by age, in all."""

    max_per_camera: int
    max_days: float
    max_bytes: int


class SnapshotStore:
    """JPEGs under ``{root}/{camera_id}/{event_id}.jpg``; the events table says which exist."""

    def __init__(self, root: Path, retention: Retention) -> None:
        self.root = root
        self.retention = retention
        root.mkdir(parents=True, exist_ok=True)

    def path(self, relative: str) -> Path:
        """The file for a stored relative path (never outside the store)."""
        path = (self.root / relative).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError("snapshot path outside the store")
        return path

    def save(self, camera_id: str, event_id: str, jpeg: bytes) -> str:
        """Writes a snapshot; returns its path relative to the store."""
        if not (valid_id(camera_id) and valid_id(event_id)):
            raise ValueError("bad camera or event id")
        folder = self.root / camera_id
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{event_id}.tmp"
        tmp.write_bytes(jpeg)
        tmp.replace(folder / f"{event_id}.jpg")
        return f"{camera_id}/{event_id}.jpg"

    def remove_camera(self, camera_id: str) -> None:
        """Deletes every snapshot of a camera that is gone."""
        if valid_id(camera_id):
            shutil.rmtree(self.root / camera_id, ignore_errors=True)

    def _drop(self, session: Session, rows: list[CameraEvent]) -> int:
        freed = 0
        for row in rows:
            if row.snapshot is None:
                continue
            try:
                path = self.path(row.snapshot)
                freed += path.stat().st_size
                path.unlink()
            except (OSError, ValueError):
                pass  # already gone: the row is corrected below all the same
            row.snapshot = None
        return freed

    def enforce(self, session: Session, camera_id: str) -> int:
        """Applies the limits (called after each new snapshot); returns how many were removed."""
        r = self.retention
        with_snap = select(CameraEvent).where(CameraEvent.snapshot.is_not(None))
        cutoff_ms = int((utcnow() - timedelta(days=r.max_days)).timestamp() * 1000)
        old = list(session.scalars(with_snap.where(CameraEvent.ts_ms < cutoff_ms)))
        over = list(session.scalars(with_snap.where(CameraEvent.camera_id == camera_id)
                                    .order_by(CameraEvent.ts_ms.desc()).offset(r.max_per_camera)))
        removed = old + [row for row in over if row not in old]
        self._drop(session, removed)
        total = sum(p.stat().st_size for p in self.root.rglob("*.jpg") if p.is_file())
        if total > r.max_bytes:
            for row in session.scalars(with_snap.order_by(CameraEvent.ts_ms)):
                if total <= r.max_bytes:
                    break
                total -= self._drop(session, [row])
                removed.append(row)
        if removed:
            log.info("snapshot retention removed %d snapshot(s)", len(removed))
        return len(removed)

    def prune_events(self, session: Session, max_days: float) -> int:
        """Deletes events older than ``max_days`` with their snapshots; returns how many went."""
        cutoff_ms = int((utcnow() - timedelta(days=max_days)).timestamp() * 1000)
        rows = list(session.scalars(select(CameraEvent).where(CameraEvent.ts_ms < cutoff_ms).limit(10_000)))
        self._drop(session, rows)
        for row in rows:
            session.delete(row)
        if rows:
            log.info("event retention removed %d camera event(s) older than %g days", len(rows), max_days)
        return len(rows)
