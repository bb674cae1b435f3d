"""Messaging inside the controller: the domain-event bus (events.py) and the way out to the broker."""
