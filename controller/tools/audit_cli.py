"""``loaphuong audit verify``: checks the audit log's hash chain and names the first broken row."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from controller.accounts import audit_chain
from controller.settings import Settings
from controller.storage.engine import Database
from controller.storage.models import AuditEvent


def main(argv: list[str]) -> int:
    """Exit code 0 when the chain holds, 1 when a row is edited, deleted or out of order, 2 on other errors."""
    parser = argparse.ArgumentParser(prog="loaphuong audit", description="Check the audit log.")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="verify the audit log's hash chain")
    verify.add_argument("--data-dir", type=Path, help="the controller's data directory (LP_DATA_DIR)")
    verify.add_argument("--database-url", help="SQLAlchemy URL, if not SQLite in the data directory")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in {"data_dir": args.data_dir, "database_url": args.database_url}.items()
                 if v is not None}
    settings = Settings(**overrides)
    url = settings.resolved_database_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        print(f"no database at {url.removeprefix('sqlite:///')}", file=sys.stderr)
        return 2
    db = Database(url)
    try:
        with db.session() as session:
            count, broken = audit_chain.verify(session)
            last = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    except SQLAlchemyError as exc:
        print(f"cannot read the audit log ({exc.__class__.__name__}: {exc}); has the controller run since "
              "the upgrade?", file=sys.stderr)
        return 2
    finally:
        db.engine.dispose()
    if broken is None:
        # the last hash, kept elsewhere, shows later whether rows were cut off the end
        print(f"audit log intact: {count} rows, chain verified; last hash {last or '-'}")
        return 0
    print(f"audit log BROKEN at row {broken.row_id}: {broken.reason} ({count - 1} rows before it verified)")
    return 1
