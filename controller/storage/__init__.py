"""Where the controller keeps its state: the database engine, the tables, migrations and the change feed
of rows (SQLite today; the schema is applied by Alembic at start)."""
