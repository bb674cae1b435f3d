"""The central controller: API, database, MQTT link, media store."""
