"""Broadcasts: announcements and their speech, the media library and who may fetch it, proof of play, and
live sessions (live/, with the Icecast server they stream through)."""
