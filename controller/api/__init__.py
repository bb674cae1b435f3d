"""HTTP API routers: thin, each delegating to a service."""
