"""The schedule: items and their timed jobs, the zones they target, and the windows of upcoming plays each
agent is sent (agent_windows)."""
