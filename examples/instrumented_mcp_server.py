"""An MCP server (mcp SDK 2.x) whose every tool call is reported to Mission Control.

Each call becomes a thread with a check_permission, a tool_call and a tool_result step;
the server's own permission decision (deleting a note needs NOTES_ALLOW_DELETE=1) is
reported as a permission check; its log lines land on the call's thread.

    pip install ./sdk
    export MC_URL=http://127.0.0.1:8000
    export MC_INGEST_KEY=$(python manage.py create_ingest_key notes --mcp notes | tail -1)
    python examples/instrumented_mcp_server.py          # an MCP server on stdio

Register it as a managed server, or point any MCP host at it.
"""

from __future__ import annotations

import logging
import os

from mcp.server.mcpserver import MCPServer
from missioncontrol_sdk import MissionControl, MissionControlHandler
from missioncontrol_sdk.mcp_server import Decision, instrument

server = MCPServer("notes")
notes: dict[str, str] = {}
log = logging.getLogger("notes")


@server.tool()
def add_note(title: str, text: str) -> str:
    """Keep a note under a title."""
    notes[title] = text
    log.info("note %r saved (%d characters)", title, len(text))
    return f"saved {title!r}"


@server.tool()
def read_note(title: str) -> str:
    """Read the note with this title."""
    if title not in notes:
        log.warning("no note %r", title)
        raise ValueError(f"no note titled {title!r}")
    return notes[title]


@server.tool()
def delete_note(title: str) -> str:
    """Delete the note with this title."""
    notes.pop(title, None)
    return f"deleted {title!r}"


def policy(tool: str, arguments: object) -> Decision:
    """The server's own rule: deleting needs NOTES_ALLOW_DELETE=1; everything else is allowed."""
    if tool == "delete_note" and os.environ.get("NOTES_ALLOW_DELETE") != "1":
        return Decision(
            False, "deleting notes is disabled (NOTES_ALLOW_DELETE)", rules_checked=("no-delete",)
        )
    return Decision(True, "allowed", rules_checked=("no-delete",))


def main() -> None:
    mc = MissionControl(os.environ["MC_URL"], os.environ["MC_INGEST_KEY"], mcp_id="notes")
    log.addHandler(MissionControlHandler(mc, service="notes"))
    log.setLevel(logging.INFO)
    instrument(server, mc, permission=policy)
    server.run()  # stdio; what is buffered is sent when the process exits


if __name__ == "__main__":
    main()
