"""Cameras in the controller: the registry, the live-view gateway, motion detection and health."""
