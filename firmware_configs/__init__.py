"""Board profiles and the templates that turn them into agent configs (arrives with provisioning)."""
