"""The process on each Raspberry Pi: MQTT link, local store, player."""
