"""Servers' log files tailed into log entries (logs/tailing.py): exact counts across
appends, rotation by rename, copytruncate and restarts; the Kiwi, JSON Lines and text
formats; the gateway's loop and the live logs channel.

Every count is exact: a line lost or stored twice fails the test. "Restart" means a
new Tailer, which knows only what the database holds.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from logs import tailing
from logs.models import LogEntry, LogSource
from logs.tailing import Tailer, split_entries
from mcps.models import MCPServer
from mcps.registration import sync_config_servers
from missioncontrol.config import ConfigError, parse_config
from tests.conftest import Socket
from tests.mcp_servers import until

pytestmark = pytest.mark.django_db


def server(tmp_path: Path, fmt: str = "jsonl", name: str = "app.jsonl", server_id: str = "app") -> Path:
    path = tmp_path / name
    MCPServer.objects.update_or_create(
        id=server_id, defaults={"name": server_id, "log_files": [{"path": str(path), "format": fmt}]}
    )
    return path


def lines(path: Path, *messages: str, **fields: Any) -> None:
    with path.open("a") as f:
        for message in messages:
            f.write(
                json.dumps({"timestamp": "2026-01-02T03:04:05+00:00", "message": message, **fields}) + "\n"
            )


def messages(server_id: str = "app") -> list[str]:
    return sorted(LogEntry.objects.filter(mcp_id=server_id).values_list("message", flat=True))


def numbered(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:03d}" for i in range(count)]


def poll(tailer: Tailer | None = None) -> int:
    return (tailer or Tailer()).poll().stored


def test_appends_are_read_once_each(tmp_path: Path) -> None:
    path = server(tmp_path)
    lines(path, *numbered("a", 5))
    tailer = Tailer()
    assert poll(tailer) == 5
    assert poll(tailer) == 0
    lines(path, *numbered("b", 3))
    assert poll(tailer) == 3
    assert messages() == numbered("a", 5) + numbered("b", 3)
    source = LogSource.objects.get(mcp_id="app")
    assert source.offset == path.stat().st_size and source.entries == 8 and source.malformed == 0


@pytest.mark.parametrize("restart", [False, True], ids=["same-tailer", "restarted"])
def test_rotation_by_rename_finishes_the_old_file_then_reads_the_new(tmp_path: Path, restart: bool) -> None:
    path = server(tmp_path)
    lines(path, *numbered("a", 5))
    tailer = Tailer()
    assert poll(tailer) == 5
    lines(path, *numbered("b", 3))  # written, not yet read, when the file is rotated
    path.rename(tmp_path / "app.jsonl.1")
    lines(path, *numbered("c", 4))
    assert poll(Tailer() if restart else tailer) == 7
    assert messages() == numbered("a", 5) + numbered("b", 3) + numbered("c", 4)
    assert LogEntry.objects.filter(mcp_id="app").count() == 12
    source = LogSource.objects.get(mcp_id="app")
    assert source.rotations == 1 and source.generation == 2 and source.offset == path.stat().st_size


def test_the_renamed_file_is_finished_even_when_no_new_file_exists_yet(tmp_path: Path) -> None:
    path = server(tmp_path)
    lines(path, *numbered("a", 2))
    tailer = Tailer()
    poll(tailer)
    lines(path, *numbered("b", 2))
    path.rename(tmp_path / "app.jsonl.1")
    assert poll(tailer) == 2  # the old file, from the handle still open on it
    lines(path, *numbered("c", 1))
    assert poll(tailer) == 1
    assert messages() == numbered("a", 2) + numbered("b", 2) + numbered("c", 1)


def test_copytruncate_reads_the_rest_from_the_copy_then_the_truncated_file(tmp_path: Path) -> None:
    path = server(tmp_path)
    lines(path, *numbered("a", 5))
    assert poll() == 5
    lines(path, *numbered("b", 3))
    shutil.copyfile(path, tmp_path / "app.jsonl.1")  # logrotate's copytruncate
    with path.open("r+") as f:
        f.truncate(0)
    lines(path, *numbered("c", 2))
    assert poll() == 5
    assert messages() == numbered("a", 5) + numbered("b", 3) + numbered("c", 2)
    assert LogSource.objects.get(mcp_id="app").rotations == 1


def test_a_truncated_file_that_grew_past_the_offset_is_told_by_its_first_bytes(tmp_path: Path) -> None:
    path = server(tmp_path)
    lines(path, *numbered("a", 2))
    tailer = Tailer()
    assert poll(tailer) == 2
    with path.open("r+") as f:
        f.truncate(0)
    lines(path, *numbered("longer-than-before", 6))  # larger than the old offset
    assert poll(tailer) == 6
    assert messages() == numbered("a", 2) + numbered("longer-than-before", 6)


def test_a_restart_after_a_partial_read_leaves_no_gap_and_no_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = server(tmp_path)
    lines(path, *numbered("a", 40))
    monkeypatch.setattr(tailing, "MAX_CHUNK", 512)  # several chunks, one transaction each
    stored = []
    real_ingest = tailing.ingest

    def crash_on_third(events: list[dict[str, Any]], source: Any) -> Any:
        if len(stored) == 2:
            raise RuntimeError("killed mid-read")
        stored.append(len(events))
        return real_ingest(events, source)

    monkeypatch.setattr(tailing, "ingest", crash_on_third)
    Tailer().poll()  # the error is logged and recorded on the source
    partial = LogEntry.objects.filter(mcp_id="app").count()
    assert partial == sum(stored) and 0 < partial < 40
    source = LogSource.objects.get(mcp_id="app")
    assert "killed mid-read" in source.last_error and source.entries == partial

    monkeypatch.setattr(tailing, "ingest", real_ingest)
    lines(path, *numbered("b", 5))
    with path.open("a") as f:
        f.write('{"message": "half a li')  # a line still being written is left for later
    assert poll(Tailer()) == 40 - partial + 5
    with path.open("a") as f:
        f.write('ne"}\n')
    assert poll(Tailer()) == 1
    assert messages() == numbered("a", 40) + numbered("b", 5) + ["half a line"]
    assert LogEntry.objects.filter(mcp_id="app").count() == 46


def test_lines_read_again_are_stored_once(tmp_path: Path) -> None:
    path = server(tmp_path)
    lines(path, *numbered("a", 4))
    assert poll() == 4
    LogSource.objects.update(offset=0)  # as if the offset's write had been lost
    outcome = Tailer().poll()
    assert (outcome.read, outcome.stored) == (4, 0)
    assert LogEntry.objects.filter(mcp_id="app").count() == 4


def test_python_rotating_file_handler_rotations_lose_and_repeat_nothing(tmp_path: Path) -> None:
    # Kiwi writes kiwi-mcp.json through logging's RotatingFileHandler: rename .json -> .json.1.
    path = server(tmp_path, "kiwi", "kiwi-mcp.json")
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=1500, backupCount=20, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter('{"level": "%(levelname)s", "logger": "%(name)s", "message": "%(message)s"}')
    )
    log = logging.getLogger("kiwi_mcp.test_rotation")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    tailer = Tailer()
    try:
        for i in range(200):
            log.info("record %03d", i)
            if i % 17 == 0:
                poll(tailer)
            if i == 120:
                tailer = Tailer()  # a restart in the middle
    finally:
        log.removeHandler(handler)
        handler.close()
    poll(tailer)
    assert len(list(tmp_path.glob("kiwi-mcp.json.*"))) > 3
    assert messages() == [f"record {i:03d}" for i in range(200)]
    assert LogSource.objects.get(mcp_id="app").rotations >= 3


def test_kiwi_preset_maps_its_json_formatters_fields(tmp_path: Path) -> None:
    MCPServer.objects.create(
        id="kiwi", name="kiwi", env={"USER_SPACE": str(tmp_path / "space")}, log_files=[{"format": "kiwi"}]
    )
    path = tmp_path / "space" / "logs" / "kiwi-mcp.json"
    path.parent.mkdir(parents=True)
    stamp = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC).isoformat()
    records = [
        {
            "timestamp": stamp,
            "level": "INFO",
            "logger": "kiwi_mcp.server",
            "message": "Starting Kiwi MCP server",
        },
        {
            "timestamp": stamp,
            "level": "WARNING",
            "logger": "kiwi_mcp.handlers.directive",
            "message": "Directive not signed",
            "extra": {"directive": "deploy", "project_path": "/srv/app"},
        },
        {
            "timestamp": stamp,
            "level": "ERROR",
            "logger": "kiwi_mcp.tools.execute",
            "message": "Execution failed",
            "exception": 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: boom',
        },
        {"timestamp": stamp, "level": "CRITICAL", "logger": "kiwi_mcp", "message": "down"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert poll() == 4
    entries = {e.message: e for e in LogEntry.objects.filter(mcp_id="kiwi")}
    started = entries["Starting Kiwi MCP server"]
    assert (started.service, started.level, started.exception) == ("kiwi_mcp.server", "INFO", None)
    assert started.timestamp == datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    unsigned = entries["Directive not signed"]
    assert (unsigned.service, unsigned.level) == ("kiwi_mcp.handlers.directive", "WARN")
    assert unsigned.context == {
        "directive": "deploy",
        "project_path": "/srv/app",
        "mc/source": {"path": str(path), "offset": len(json.dumps(records[0])) + 1},
    }
    failed = entries["Execution failed"]
    assert failed.level == "ERROR" and failed.exception.endswith("ValueError: boom")
    assert entries["down"].level == "ERROR"
    assert LogSource.objects.get(mcp_id="kiwi").path == str(path)


def test_a_malformed_line_is_stored_with_its_raw_text_and_counted(tmp_path: Path) -> None:
    path = server(tmp_path)
    lines(path, "before")
    with path.open("a") as f:
        f.write("ERROR this is not json {\n")
        f.write("[1, 2, 3]\n")
        f.write("\n")  # blank lines are not entries
    lines(path, "after")
    assert poll() == 4
    bad = LogEntry.objects.get(mcp_id="app", message="ERROR this is not json {")
    assert bad.level == "ERROR" and bad.context["malformed"].startswith("not JSON")
    array = LogEntry.objects.get(mcp_id="app", message="[1, 2, 3]")
    assert array.context["malformed"] == "a JSON list, not an object"
    source = LogSource.objects.get(mcp_id="app")
    assert (source.entries, source.malformed) == (4, 2)


def test_json_lines_map_common_field_names(tmp_path: Path) -> None:
    path = server(tmp_path)
    with path.open("w") as f:
        f.write(
            json.dumps(
                {
                    "time": "2026-05-06T07:08:09Z",
                    "severity": "warning",
                    "msg": "disk almost full",
                    "component": "storage",
                    "thread_id": "T-7",
                    "free": 3,
                }
            )
            + "\n"
        )
    assert poll() == 1
    entry = LogEntry.objects.get(mcp_id="app")
    assert (entry.level, entry.service, entry.message, entry.thread_id) == (
        "WARN",
        "storage",
        "disk almost full",
        "T-7",
    )
    assert entry.timestamp == datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert entry.context["free"] == 3


TRACEBACK = (
    "2026-01-02 03:04:05,678 [ERROR] kiwi_mcp.executor: run failed\n"
    "Traceback (most recent call last):\n"
    '  File "/app/run.py", line 3, in <module>\n'
    "    main()\n"
    "ValueError: boom\n"
)


def test_text_lines_become_entries_with_guessed_levels_and_joined_tracebacks(tmp_path: Path) -> None:
    path = server(tmp_path, "text", "app.log")
    path.write_text(
        "plain start\n"
        + TRACEBACK
        + "2026-01-02 03:04:06,000 [WARNING] kiwi_mcp.server: slow\n"
        + "level=debug msg=tick\n"
        + "    an indented continuation\n"
    )
    assert poll() == 4
    entries = {e.message: e for e in LogEntry.objects.filter(mcp_id="app")}
    assert set(entries) == {
        "plain start",
        "2026-01-02 03:04:05,678 [ERROR] kiwi_mcp.executor: run failed",
        "2026-01-02 03:04:06,000 [WARNING] kiwi_mcp.server: slow",
        "level=debug msg=tick",
    }
    failed = entries["2026-01-02 03:04:05,678 [ERROR] kiwi_mcp.executor: run failed"]
    assert failed.level == "ERROR" and failed.service == "kiwi_mcp.executor"
    assert failed.exception.startswith("Traceback (most recent call last):")
    assert failed.exception.endswith("ValueError: boom")
    assert failed.timestamp == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert entries["2026-01-02 03:04:06,000 [WARNING] kiwi_mcp.server: slow"].level == "WARN"
    assert entries["plain start"].level == "INFO" and entries["plain start"].service == "app"
    tick = entries["level=debug msg=tick"]
    assert tick.level == "DEBUG" and tick.exception == "    an indented continuation"


def test_a_traceback_still_being_written_waits_for_its_end(tmp_path: Path) -> None:
    path = server(tmp_path, "text", "app.log")
    head, rest = TRACEBACK.split("ValueError")
    path.write_text("first\n" + head)  # whole lines, the traceback not finished
    tailer = Tailer()
    assert poll(tailer) == 1  # "first"; the open traceback is held back
    with path.open("a") as f:
        f.write("ValueError" + rest + "next\n")
    assert poll(tailer) == 2
    failed = LogEntry.objects.get(mcp_id="app", level="ERROR")
    assert failed.exception.endswith("ValueError: boom")
    # One that stops growing is stored after a poll that found nothing new.
    with path.open("a") as f:
        f.write('oops\nTraceback (most recent call last):\n  File "a.py", line 1\n')
    assert poll(tailer) == 0
    assert poll(tailer) == 1
    oops = LogEntry.objects.get(mcp_id="app", message="oops")
    assert oops.level == "ERROR" and oops.exception.endswith('File "a.py", line 1')
    assert LogEntry.objects.filter(mcp_id="app").count() == 4


def test_split_entries_holds_partial_lines_until_final() -> None:
    data = b'{"a": 1}\n{"b": 2}\n{"c"'
    entries, used = split_entries(data, "jsonl", final=False, flush_open=False)
    assert [e for _, e in entries] == [b'{"a": 1}', b'{"b": 2}'] and used == 18
    entries, used = split_entries(data, "jsonl", final=True, flush_open=False)
    assert len(entries) == 3 and used == len(data)


def test_config_file_servers_carry_log_files_and_default_arguments(tmp_path: Path) -> None:
    config = parse_config(
        {
            "mcps": {
                "log_poll_interval": 0.25,
                "servers": {
                    "kiwi": {
                        "command": "python",
                        "args": ["-m", "kiwi_mcp"],
                        "default_arguments": {"*": {"project_path": "/srv/app"}},
                        "log_files": [
                            {"format": "kiwi"},
                            {"path": str(tmp_path / "k.log"), "format": "text"},
                        ],
                    }
                },
            }
        }
    )
    assert config.mcps.log_poll_interval == 0.25
    assert parse_config({"mcps": {"log_poll_interval": "2s"}}).mcps.log_poll_interval == 2.0
    with pytest.raises(ConfigError, match="log_poll_interval"):
        parse_config({"mcps": {"log_poll_interval": "soon"}})
    result = sync_config_servers(config.mcps.servers)
    assert result.created == ["kiwi"] and not result.errors
    kiwi = MCPServer.objects.get(id="kiwi")
    assert kiwi.default_arguments == {"*": {"project_path": "/srv/app"}}
    assert kiwi.log_file_specs() == [
        (os.path.expanduser("~/.ai/logs/kiwi-mcp.json"), "kiwi"),
        (str(tmp_path / "k.log"), "text"),
    ]
    # A changed list of files is an update; a bad one is refused with its key.
    changed = {"kiwi": {**config.mcps.servers["kiwi"], "log_files": [{"path": "/x.log", "format": "text"}]}}
    assert sync_config_servers(changed).updated == ["kiwi"]
    bad = {"kiwi": {"command": "python", "log_files": [{"path": "/x.log", "format": "xml"}]}}
    assert (
        "log_files: [0].format: expected one of jsonl, text, kiwi" in sync_config_servers(bad).errors["kiwi"]
    )


def test_tail_logs_command_reads_once(tmp_path: Path) -> None:
    path = server(tmp_path)
    lines(path, *numbered("a", 3))
    from io import StringIO

    out = StringIO()
    call_command("tail_logs", "--once", stdout=out)
    assert "3 line(s) read, 3 new" in out.getvalue()
    call_command("tail_logs", "--once", "--server", "app", stdout=out)
    assert LogEntry.objects.filter(mcp_id="app").count() == 3


def test_no_duplicate_event_ids_across_generations(tmp_path: Path) -> None:
    # The same offset in the next file is another line, not a repeat.
    path = server(tmp_path)
    lines(path, "same-offset-1")
    poll()
    path.rename(tmp_path / "app.jsonl.1")
    lines(path, "same-offset-2")
    poll()
    ids = LogEntry.objects.filter(mcp_id="app").values_list("id", flat=True)
    assert len(ids) == 2 and len(Counter(ids)) == 2


@pytest.mark.django_db(transaction=True)
async def test_the_gateway_tails_a_configured_servers_log_file_live(tmp_path: Path) -> None:
    from mcps.gateway.connection import Backoff
    from mcps.gateway.service import Gateway

    path = await sync_to_async(server)(tmp_path, "kiwi", "kiwi-mcp.json", "kiwi")
    async with Socket() as ws:
        await ws.subscribe("logs:*")
        gateway = Gateway(Backoff(0.1, 0.5))
        gateway.log_poll_interval = 0.1
        await gateway.start()
        try:
            path.write_text(
                json.dumps({"level": "ERROR", "logger": "kiwi_mcp.server", "message": "live one"}) + "\n"
            )
            await until(lambda: LogEntry.objects.filter(mcp_id="kiwi").exists(), 20, "the tailed entry")
            live = await ws.events("logs:*")
            assert [(e["message"], e["service"], e["level"]) for e in live] == [
                ("live one", "kiwi_mcp.server", "ERROR")
            ]
        finally:
            await gateway.stop()


@pytest.mark.django_db(transaction=True)
async def test_a_follower_reads_which_servers_have_log_files_only_every_so_often(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(tailing.time, "monotonic", lambda: clock[0])
    reads = []
    sources = type(MCPServer.objects.all()).log_file_sources

    def counted(self: Any) -> Any:
        reads.append(clock[0])
        return sources(self)

    monkeypatch.setattr(type(MCPServer.objects.all()), "log_file_sources", counted)
    tailer = Tailer(sources_every=5.0)
    assert (await tailing.apoll(tailer)).stored == 0  # reads the servers: none has log files
    for _ in range(10):  # half a second apart, as the gateway polls: nothing to do
        clock[0] += 0.45
        assert tailer.idle
        assert (await tailing.apoll(tailer)).stored == 0
    assert len(reads) == 1
    path = await sync_to_async(server)(tmp_path)
    await sync_to_async(lines)(path, *numbered("a", 3))
    clock[0] += 0.6  # five seconds since the last read of the servers: the new file is found
    assert not tailer.idle
    assert (await tailing.apoll(tailer)).stored == 3
    assert len(reads) == 2


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_a_line_holding_a_nul_is_stored_escaped_and_its_chunk_is_not_lost(tmp_path: Path, fmt: str) -> None:
    """PostgreSQL refuses NUL (and lone surrogates, which a JSON line can spell): the chunk's
    transaction used to fail on every poll, so no line after it was ever stored."""
    path = server(tmp_path, fmt, f"app.{fmt}")
    if fmt == "text":
        path.write_bytes(b"INFO before\nINFO bin\x00ary\nINFO after\n")
    else:
        lines(path, "before")
        with path.open("a") as f:
            f.write('{"message": "bin\\u0000ary", "details": {"k\\u0000": "\\ud800"}}\n')
        lines(path, "after")
    assert poll() == 3
    stored = messages()
    assert (
        len(stored) == 3 and [m for m in stored if m.endswith(("before", "bin\\u0000ary", "after"))] == stored
    )
    if fmt == "jsonl":
        odd = LogEntry.objects.get(mcp_id="app", message="bin\\u0000ary")
        assert odd.context["details"] == {"k\\u0000": "\\ud800"}
    assert LogSource.objects.get(mcp_id="app").offset == path.stat().st_size
