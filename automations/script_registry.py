"""The registry of scripts a directive's `script:` step can name.

A script is a Python callable registered with `@script(name, description, permissions)`.
It takes keyword parameters (each with a default) and returns a JSON-able dict. The
registry reads no database: a directive's declared permissions are checked against
its scripts' (automations.bounds) without importing the scripts' own modules
(automations.scripts, which register Mission Control's scripts on import).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

ScriptFunc = Callable[..., dict[str, Any]]
F = TypeVar("F", bound=ScriptFunc)


@dataclass(frozen=True)
class Script:
    name: str
    description: str
    permissions: tuple[str, ...]
    func: ScriptFunc
    per_team: bool = False

    def parameters(self) -> dict[str, Any]:
        """Parameter name -> default value."""
        return {
            p.name: None if p.default is inspect.Parameter.empty else p.default
            for p in inspect.signature(self.func).parameters.values()
        }

    def run(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        params = dict(params or {})
        try:
            inspect.signature(self.func).bind(**params)
        except TypeError as exc:
            raise ValueError(f"script {self.name!r}: {exc}") from None
        return self.func(**params)


_registry: dict[str, Script] = {}


def script(
    name: str, description: str, permissions: list[str] | tuple[str, ...] = (), *, per_team: bool = False
) -> Callable[[F], F]:
    """Register the decorated function as script `name`; the function itself is unchanged."""

    def register(func: F) -> F:
        existing = _registry.get(name)
        if existing is not None and existing.func.__qualname__ != func.__qualname__:
            raise ValueError(f"script {name!r} is already registered by {existing.func.__qualname__}")
        _registry[name] = Script(name, description, tuple(permissions), func, per_team)
        return func

    return register


def registry() -> dict[str, Script]:
    """Every registered script, by name."""
    return dict(sorted(_registry.items()))


def get(name: str) -> Script | None:
    return _registry.get(name)
