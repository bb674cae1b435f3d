"""Persistent timed jobs (APScheduler with its SQLAlchemy job store, in the controller's own database).

APScheduler stores a job as a reference to a module-level function, so the functions here find the
running controller's parts through :func:`bind`. The jobs survive a restart: their next run time is
in the database, and a run missed while the controller was down runs once when it is back.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select

from controller.broadcasts.speech import SpeechService
from controller.schedule.agent_windows import WindowPublisher
from controller.settings import Settings
from controller.storage.engine import Database
from controller.storage.models import MediaFile, ScheduleItem

log = logging.getLogger(__name__)

REFRESH_JOB_ID = "schedule-windows"


@dataclass
class _Bound:
    db: Database
    speech: SpeechService
    publisher: WindowPublisher


_bound: _Bound | None = None


def bind(db: Database, speech: SpeechService, publisher: WindowPublisher) -> None:
    """Gives the job functions the running controller's parts."""
    global _bound
    _bound = _Bound(db, speech, publisher)


def _rerender_missing(parts: _Bound) -> int:
    """Renders again the speech of approved items whose audio left the media store (blocking)."""
    fixed = 0
    with parts.db.session() as session:
        for row in session.scalars(select(ScheduleItem).where(ScheduleItem.status == "approved")):
            changed = False
            segments = []
            for index, seg in enumerate(row.segments):
                part = row.content[index] if index < len(row.content) else {}
                if seg.get("kind") == "media" and part.get("kind") == "tts" and (
                        session.get(MediaFile, seg["sha256"]) is None
                        or parts.speech.media.path_for(seg["sha256"]) is None):
                    _speech, stored = parts.speech.render(part["text"])
                    seg = {**seg, "sha256": stored.sha256, "size": stored.size, "duration_ms": stored.duration_ms}
                    changed = True
                segments.append(seg)
            if changed:
                row.segments = segments
                fixed += 1
    return fixed


async def refresh_windows() -> None:
    """Rolls every agent's window forward, rendering ahead any speech that went missing."""
    parts = _bound
    if parts is None:
        log.warning("schedule refresh ran before the controller was bound; skipped")
        return
    try:
        fixed = await asyncio.to_thread(_rerender_missing, parts)
    except Exception:
        log.exception("rendering ahead failed; windows are rebuilt with what is stored")
        fixed = 0
    if fixed:
        log.info("rendered the speech of %d item(s) again", fixed)
    parts.publisher.request(None)


def start_scheduler(settings: Settings, db: Database) -> AsyncIOScheduler:
    """Starts APScheduler on the running loop with the window refresh job (kept in the database)."""
    scheduler = AsyncIOScheduler(jobstores={"default": SQLAlchemyJobStore(engine=db.engine,
                                                                           tablename="apscheduler_jobs")},
                                 timezone=settings.tz)
    scheduler.add_job(f"{__name__}:refresh_windows", "interval", minutes=settings.schedule_refresh_minutes,
                      id=REFRESH_JOB_ID, replace_existing=True, coalesce=True, max_instances=1,
                      misfire_grace_time=24 * 3600)
    scheduler.start()
    return scheduler
