"""A directive's declared permissions bound what its steps may do.

A script step needs every permission its script declares (automations.script_registry); a
tool step needs `execute:{server}/{tool}`. A declared permission covers a needed one
when it matches it as a glob (`read:*` covers `read:threads`, `execute:git/*` covers
`execute:git/git_log`). Checked when a directive is saved (`problems`) and again by
the engine before each step runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase
from typing import Any

from automations import definition, script_registry


class UnknownScript(LookupError):
    pass


def covering(declared: Iterable[str], needed: str) -> str | None:
    """The first declared permission that covers `needed`, or None."""
    return next((p for p in declared if fnmatchcase(needed, p)), None)


def needed_by(step: dict[str, Any]) -> list[str]:
    """The permissions a step needs to run; UnknownScript for a script nobody registered."""
    name = definition.script_name(step)
    if name is not None:
        script = script_registry.get(name)
        if script is None:
            raise UnknownScript(f"no script named {name!r} (see GET /api/internal/scripts)")
        return list(script.permissions)
    ref = definition.tool_ref(step)
    if ref is not None:
        return [f"execute:{ref.server}/{ref.tool}"]
    return []


def _walk(steps: list[Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for i, step in enumerate(steps):
        yield from _walk_one(step, f"{path}[{i}]")


def _walk_one(step: dict[str, Any], here: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield here, step
    yield from _walk(step.get("steps") or [], f"{here}.steps")
    conditional = step.get("conditional") or {}
    for branch in ("then", "else"):
        value = conditional.get(branch)
        if isinstance(value, list):
            yield from _walk(value, f"{here}.conditional.{branch}")
        elif isinstance(value, dict):
            yield from _walk_one(value, f"{here}.conditional.{branch}")


def problems(parsed: dict[str, Any]) -> dict[str, list[str]]:
    """{step path: [reason]} for each step its directive's permissions do not allow."""
    declared = parsed.get("permissions") or []
    out: dict[str, list[str]] = {}
    for path, step in _walk(parsed.get("steps") or [], "steps"):
        try:
            needed = needed_by(step)
        except UnknownScript as exc:
            out.setdefault(path, []).append(str(exc))
            continue
        for permission in needed:
            if covering(declared, permission) is None:
                what = f"script {definition.script_name(step)!r}" if "script" in step else "tool call"
                out.setdefault(path, []).append(
                    f"{what} needs {permission!r}, which the directive's permissions do not include"
                )
    return out
