"""Alembic migrations; applied at controller start by :func:`controller.storage.migrate.upgrade`."""
