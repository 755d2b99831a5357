"""The gateway side of the Department sync: transport -> verify -> store -> service (see docs/sync.md)."""
