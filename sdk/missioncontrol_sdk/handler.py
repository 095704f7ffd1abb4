"""A logging.Handler that sends records to Mission Control as `log` events."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from missioncontrol_sdk.client import MissionControl
from missioncontrol_sdk.threads import current_thread

_FORMATTER = logging.Formatter()
_LEVELS = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN", logging.ERROR: "ERROR"}
# LogRecord attributes that are not `extra=` fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def level_name(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARN"
    return _LEVELS.get(levelno, "INFO" if levelno >= logging.INFO else "DEBUG")


class MissionControlHandler(logging.Handler):
    """Sends each record as a log of `service`, on the current thread (or `extra={"thread_id": ...}`)."""

    def __init__(self, client: MissionControl, service: str, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.client = client
        self.service = service

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("missioncontrol_sdk"):
            return  # the client's own complaints would loop back into it
        try:
            thread = current_thread()
            context: dict[str, Any] = {
                "logger": record.name,
                "module": record.module,
                "function": record.funcName,
                "line": record.lineno,
            }
            context.update({k: v for k, v in vars(record).items() if k not in _STANDARD and k != "thread_id"})
            exception = None
            if record.exc_info:
                exception = (self.formatter or _FORMATTER).formatException(record.exc_info)
            self.client.log(
                level_name(record.levelno),
                record.getMessage(),
                service=self.service,
                thread_id=getattr(record, "thread_id", None) or (thread.id if thread else None),
                context=context,
                exception=exception,
                timestamp=datetime.fromtimestamp(record.created, UTC).isoformat(),
            )
        except Exception:
            self.handleError(record)
