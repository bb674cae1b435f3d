"""Controller pieces that need no network: migrations, the signing key, the media store, settings."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from controller.broadcasts.media_store import MediaStore
from controller.messaging.keys import KEY_FILE, load_or_create_signing_key
from controller.storage import migrate
from controller.storage.engine import Database
from controller.storage.models import Base
from devices.protocol import public_key_to_text


def test_migrations_build_exactly_the_models(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    migrate.upgrade(db.engine)
    migrate.upgrade(db.engine)  # idempotent
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_signing_key_is_created_once_and_private(tmp_path: Path) -> None:
    first = load_or_create_signing_key(tmp_path)
    mode = stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode)
    assert mode == 0o600
    again = load_or_create_signing_key(tmp_path)
    assert public_key_to_text(first.public_key()) == public_key_to_text(again.public_key())
    (tmp_path / KEY_FILE).chmod(0o644)
    with pytest.raises(PermissionError):
        load_or_create_signing_key(tmp_path)


def test_media_store_paths_never_leave_the_store(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    src = tmp_path / "a.ogg"
    src.write_bytes(b"x")
    sha = "ab" * 32
    path = store.add(src, sha)
    assert path.is_relative_to(store.root) and store.path_for(sha) == path
    for bad in ("../a.ogg", "AB" * 32, "ab" * 31, "", "/etc/passwd", "ab" * 32 + "/.."):
        assert store.path_for(bad) is None
    with pytest.raises(ValueError):
        store.add(src, "../../x")
