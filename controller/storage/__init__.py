"""Where the controller keeps its state: the database engine, the tables and migrations (SQLite today; the
schema is applied by Alembic at start), and the change counters the console's live pages follow."""
