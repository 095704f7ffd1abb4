"""Threads and steps as context managers: started on entry, ended (and timed) on exit."""

from __future__ import annotations

import contextvars
import itertools
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from missioncontrol_sdk.client import new_id, now

if TYPE_CHECKING:
    from missioncontrol_sdk.client import MissionControl

StepType = Literal["directive", "script", "tool_call", "tool_result", "check_permission"]
StepStatus = Literal["pending", "running", "complete", "error"]
Role = Literal["user", "agent", "assistant", "tool", "directive", "system"]
Action = Literal["read", "write", "execute"]

_current: contextvars.ContextVar[ThreadContext | None] = contextvars.ContextVar(
    "missioncontrol_thread", default=None
)


def current_thread() -> ThreadContext | None:
    """The innermost thread entered in this context (thread or asyncio task), if any."""
    return _current.get()


class ThreadContext:
    """One thread of Mission Control; `with` it to start and end it."""

    def __init__(
        self,
        client: MissionControl,
        *,
        user_input: str = "",
        thread_id: str | None = None,
        parent_id: str | None = None,
        mcp_id: str | None = None,
        execution_context: dict[str, Any] | None = None,
    ) -> None:
        self.client = client
        self.id = thread_id or new_id("thread")
        self.parent_id = parent_id
        self.mcp_id = mcp_id
        self.user_input = user_input
        self.execution_context = execution_context or {}
        self.status: Literal["complete", "error", "cancelled"] | None = None  # set to force the final status
        self._sequence = itertools.count(1)
        self._token: contextvars.Token[ThreadContext | None] | None = None
        self.started = False

    def start(self) -> ThreadContext:
        self.client.emit(
            "thread.started",
            thread_id=self.id,
            parent_id=self.parent_id,
            mcp_id=self.mcp_id,
            user_input=self.user_input,
            execution_context=self.execution_context,
        )
        self.started = True
        return self

    def end(self, status: Literal["complete", "error", "cancelled"] = "complete") -> None:
        self.client.emit("thread.ended", thread_id=self.id, status=self.status or status)

    def __enter__(self) -> ThreadContext:
        self.start()
        self._token = _current.set(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        self.end("error" if kind is not None else "complete")

    def step(
        self,
        step_type: StepType = "tool_call",
        description: str = "",
        details: dict[str, Any] | None = None,
        *,
        status: StepStatus | None = None,
        duration_ms: float | None = None,
    ) -> Step:
        """Record a step. Given a final `status`, it is recorded as such at once; else it
        is recorded as running and `with` it (or `finish()`) records its end and duration."""
        return Step(self, next(self._sequence), step_type, description, details or {}, status, duration_ms)

    def llm(
        self,
        model: str,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        *,
        description: str = "",
        user: str | None = None,
        provider: str | None = None,
        details: dict[str, Any] | None = None,
        status: StepStatus | None = None,
        duration_ms: float | None = None,
    ) -> Step:
        """Record an LLM call and the tokens it used: what Mission Control's usage and cost
        are counted from (priced per model by its `usage.prices`).

        Given the token counts, the call is recorded complete at once; else `with` it and
        tell them with `step.usage(input_tokens, output_tokens)` before it ends. `user` is
        who the call ran for (default: the thread's `execution_context["user"]`).
        """
        info: dict[str, Any] = {"category": "llm", "model": model, **(details or {})}
        who = user if user is not None else self.execution_context.get("user")
        if who:
            info["user"] = str(who)
        if provider:
            info["provider"] = provider
        if input_tokens is not None or output_tokens is not None:
            info["usage"] = {"input_tokens": input_tokens or 0, "output_tokens": output_tokens or 0}
            status = status or "complete"
        return self.step(
            "script", description or f"chat {model}", info, status=status, duration_ms=duration_ms
        )

    def message(self, role: Role, content: str, metadata: dict[str, Any] | None = None) -> str:
        return self.client.emit(
            "thread.message", thread_id=self.id, role=role, content=content, metadata=metadata or {}
        )

    def permission(
        self,
        resource: str,
        action: Action,
        granted: bool,
        *,
        user_id: str = "",
        reason: str = "",
        rules_checked: list[Any] | None = None,
        inheritance_chain: list[str] | None = None,
        escalation_detected: bool = False,
    ) -> str:
        return self.client.emit(
            "permission.check",
            thread_id=self.id,
            user_id=user_id,
            resource=resource,
            action=action,
            granted=granted,
            reason=reason,
            rules_checked=rules_checked or [],
            inheritance_chain=inheritance_chain or [],
            escalation_detected=escalation_detected,
        )

    def child(self, user_input: str = "", **kwargs: Any) -> ThreadContext:
        """A child thread of this one (same server unless told otherwise)."""
        kwargs.setdefault("mcp_id", self.mcp_id)
        return ThreadContext(self.client, user_input=user_input, parent_id=self.id, **kwargs)

    def log(self, level: str, message: str, *, service: str, **kwargs: Any) -> str:
        return self.client.log(level, message, service=service, thread_id=self.id, **kwargs)


class Step:
    """One step of a thread; its sequence is fixed, its later reports update it."""

    def __init__(
        self,
        thread: ThreadContext,
        sequence: int,
        step_type: StepType,
        description: str,
        details: dict[str, Any],
        status: StepStatus | None,
        duration_ms: float | None,
    ) -> None:
        self.thread = thread
        self.sequence = sequence
        self.step_type = step_type
        self.description = description
        self.details = details
        self.timestamp = now()
        self.status: StepStatus = status or "running"
        self.duration_ms = duration_ms
        self._started = time.perf_counter()
        self.finished = status in ("complete", "error")
        self._report()

    def _report(self) -> None:
        self.thread.client.emit(
            "thread.step",
            timestamp=self.timestamp,
            thread_id=self.thread.id,
            sequence=self.sequence,
            step_type=self.step_type,
            description=self.description,
            details=dict(self.details),
            status=self.status,
            duration_ms=self.duration_ms,
        )

    def usage(self, input_tokens: int, output_tokens: int) -> None:
        """The tokens this step's LLM call used (see `ThreadContext.llm`); sent when it ends."""
        self.details["usage"] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        if self.finished:
            self._report()

    def finish(self, status: StepStatus = "complete", **details: Any) -> None:
        """Record the step's end: its status, its duration since it began, more details."""
        self.details.update(details)
        self.status = status
        self.duration_ms = (time.perf_counter() - self._started) * 1000
        self.finished = True
        self._report()

    def __enter__(self) -> Step:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:
            self.finish("error", error=f"{kind.__name__}: {exc}")
        else:
            self.finish(self.status if self.status in ("complete", "error") else "complete")
