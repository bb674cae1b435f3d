"""ONVIF cameras, the part shared by controller and agent: WS-Discovery (pure protocol, no I/O)."""
