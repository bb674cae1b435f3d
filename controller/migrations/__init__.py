"""Alembic migrations; applied at controller start by :func:`controller.migrate.upgrade`."""
