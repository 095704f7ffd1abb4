"""The first-run demo: a managed mcp-server-time and a small agent that uses it (see seed, agent)."""
