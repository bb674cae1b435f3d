"""The schedule model: one-off and recurring items, priorities, quiet hours, conflicts; pure logic."""
