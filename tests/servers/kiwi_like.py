"""A stdio MCP server shaped like Kiwi MCP (leolilley/kiwi-mcp), which is on no package registry.

The same five tools with Kiwi's arguments (`search`, `load`, `execute`, `sign`, `help`;
kiwi_mcp/tools/*.py), over the same `.ai/` folders: a project's (`project_path`) and
the user space (`$USER_SPACE`, else ~/.ai). `execute` of a directive with action `run`
finds its file and answers its XML for the agent to follow, as Kiwi does; a missing
item is an error result. Built on the `mcp` SDK's MCPServer, like Kiwi on its `Server`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer

server = MCPServer("kiwi-mcp", instructions="Directives, tools and knowledge in .ai/ folders.")

FOLDERS = {"directive": "directives", "script": "scripts", "tool": "tools", "knowledge": "knowledge"}


def _spaces(project_path: str | None) -> list[Path]:
    user = Path(os.environ.get("USER_SPACE") or Path.home() / ".ai").expanduser()
    return ([Path(project_path) / ".ai"] if project_path else []) + [user]


def _find(item_type: str, item_id: str, project_path: str | None) -> Path | None:
    folder = FOLDERS.get(item_type)
    if folder is None:
        raise ValueError(f"Unknown item_type: {item_type}")
    for space in _spaces(project_path):
        for path in sorted((space / folder).rglob(f"{item_id}.*")):
            return path
    return None


@server.tool()
def search(item_type: str, query: str, source: str = "local", project_path: str | None = None) -> str:
    """Find directives, scripts or knowledge by keywords."""
    words = query.lower().split()
    results = []
    for space in _spaces(project_path):
        for path in sorted((space / FOLDERS[item_type]).rglob("*")):
            if path.is_file() and all(w in path.read_text().lower() for w in words):
                results.append({"name": path.stem, "path": str(path)})
    return json.dumps({"query": query, "results": results, "total": len(results)})


@server.tool()
def load(
    item_type: str,
    item_id: str,
    source: str = "project",
    destination: str = "project",
    project_path: str | None = None,
) -> str:
    """Return an item's full content for inspection."""
    path = _find(item_type, item_id, project_path)
    if path is None:
        raise ValueError(f"{item_type} '{item_id}' not found")
    return json.dumps({"name": item_id, "path": str(path), "content": path.read_text()})


@server.tool()
def execute(
    item_type: str,
    action: str,
    item_id: str,
    parameters: dict[str, Any] | None = None,
    project_path: str | None = None,
) -> str:
    """Execute operations on directives, scripts, or knowledge (run, publish, delete, create, update)."""
    if action in ("run", "delete", "update") and not project_path:
        raise ValueError(f"project_path is REQUIRED for action='{action}'")
    path = _find(item_type, item_id, project_path)
    if path is None:
        raise ValueError(f"{item_type} '{item_id}' not found locally")
    content = path.read_text()
    if item_type == "directive":
        match = re.search(r"<directive[^>]*>.*</directive>", content, re.DOTALL)
        return json.dumps(
            {
                "status": "ready",
                "name": item_id,
                "directive": match.group(0) if match else "",
                "inputs": parameters or {},
                "instructions": "Follow the directive's process steps in order.",
            }
        )
    return json.dumps({"status": "ready", "name": item_id, "content": content})


@server.tool()
def sign(item_type: str, item_id: str, project_path: str | None = None) -> str:
    """Validate an item and record its content hash."""
    import hashlib

    path = _find(item_type, item_id, project_path)
    if path is None:
        raise ValueError(f"{item_type} '{item_id}' not found")
    return json.dumps({"status": "signed", "hash": hashlib.sha256(path.read_bytes()).hexdigest()[:12]})


@server.tool()
def help(action: str = "guidance", topic: str | None = None) -> str:  # noqa: A001 - Kiwi's own name
    """Guidance on using Kiwi; signal being stuck or wanting a human."""
    return json.dumps({"action": action, "topic": topic, "message": "search, load, execute, sign, help"})


if __name__ == "__main__":
    server.run("stdio")
