"""Brings the database to the newest schema at start (Alembic, in-process)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class ForeignKeysBroken(RuntimeError):
    """A migration left rows pointing at rows that do not exist; nothing of it was kept."""


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Applies every migration not yet applied (up to ``revision``), in one transaction."""
    _migrate(engine, lambda cfg: command.upgrade(cfg, revision))


def downgrade(engine: Engine, revision: str) -> None:
    """Takes the schema back to ``revision`` (for tests of an upgrade, and a site rolling a release back)."""
    _migrate(engine, lambda cfg: command.downgrade(cfg, revision))


def _migrate(engine: Engine, step: Callable[[Config], None]) -> None:
    """Runs ``step`` in one transaction with the packaged migrations.

    On SQLite a batch migration rebuilds a table (copy, drop the old one, rename). With foreign keys on,
    dropping the old copy deletes every row that refers to it through ``ON DELETE CASCADE`` — a device's plays
    and events, an announcement's deliveries — so they are off while migrating (SQLite only changes them
    outside a transaction) and the result is checked with ``PRAGMA foreign_key_check`` before it commits.
    """
    cfg = alembic_config(str(engine.url))
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                step(cfg)
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise ForeignKeysBroken(f"the migration left {len(broken)} rows pointing at nothing, "
                                                f"first {tuple(broken[0])}; the database is unchanged")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()
