"""Mission Control as one MCP server for agents: every connected server's tools, recorded.

Served over Streamable HTTP at /mcp (http.py) and over stdio by `manage.py mcp_proxy`.
Both build the same server (server.py) over a router to the gateway (router.py) and
record each call as thread steps and a permission check (recorder.py).
"""
