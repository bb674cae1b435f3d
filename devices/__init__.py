"""What a device is and says: the MQTT protocol shared by controller and agent, and the drivers."""
