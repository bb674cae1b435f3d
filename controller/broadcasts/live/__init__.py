"""Live broadcasting: sessions, their Icecast source and their records (see docs/live.md)."""
