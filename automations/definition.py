"""The directive YAML format: parsing, validation, and the walk over nested steps.

A directive is a mapping with a `name` (a slug) and a list of `steps`. A step is a
mapping; the kinds this module knows about are

- `script: detect_slow_threads` (a trailing `.py`, as the seed writes them, is dropped),
- `tool: server__tool`, or `server: git` with `tool: git_log`,
- `foreach: <expression>` with nested `steps`,
- `conditional: {if: ..., then: <step or steps>, else: <step or steps>}`,
- any step with nested `steps` (a group).

Other keys are left to the directive engine; this module only checks the shape it
needs to find every script and tool a directive refers to.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import yaml

from missioncontrol.jsontext import dumps, loads

NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
# Server ids never contain "__" (see mcps.models.MCPServer.clean), so the first one
# splits `server__tool`, exactly as the aggregated /mcp endpoint names tools.
TOOL_SEPARATOR = "__"


class ToolRef(NamedTuple):
    server: str
    tool: str


def parse(text: str) -> dict[str, Any]:
    """The definition in `text`, checked; ValueError saying what is wrong otherwise."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"invalid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"a directive must be a YAML mapping, not {_type(data)}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("a directive needs a 'name'")
    if not NAME.match(name):
        raise ValueError(f"name {name!r} must be a slug: letters, digits, '-' and '_' (at most 100)")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ValueError("a directive needs 'steps': a non-empty list of steps")
    _check_steps(steps, "steps")
    # Stored as JSON: YAML's dates and other non-JSON scalars become strings.
    return loads(dumps(data))


def walk(steps: list[Any]) -> Iterator[dict[str, Any]]:
    """Every step of `steps`, depth first, including those nested in foreach and conditional."""
    for step in steps:
        if not isinstance(step, dict):
            continue
        yield step
        yield from walk(_children(step))


def script_name(step: dict[str, Any]) -> str | None:
    value = step.get("script")
    if not isinstance(value, str) or not value:
        return None
    return value.removesuffix(".py")


def tool_ref(step: dict[str, Any]) -> ToolRef | None:
    tool = step.get("tool")
    if not isinstance(tool, str) or not tool:
        return None
    server = step.get("server")
    if isinstance(server, str) and server:
        return ToolRef(server, tool)
    server, sep, name = tool.partition(TOOL_SEPARATOR)
    return ToolRef(server, name) if sep and server and name else None


def _children(step: dict[str, Any]) -> list[Any]:
    children = list(step.get("steps") or [])
    conditional = step.get("conditional")
    if isinstance(conditional, dict):
        for branch in ("then", "else"):
            children += _as_steps(conditional.get(branch))
    return children


def _as_steps(branch: Any) -> list[Any]:
    """A conditional's branch is one step or a list of them."""
    if branch is None:
        return []
    return branch if isinstance(branch, list) else [branch]


def _check_steps(steps: Any, path: str) -> None:
    if not isinstance(steps, list):
        raise ValueError(f"{path}: expected a list of steps, not {_type(steps)}")
    for i, step in enumerate(steps):
        _check_step(step, f"{path}[{i}]")


def _check_step(step: Any, path: str) -> None:
    if not isinstance(step, dict):
        raise ValueError(f"{path}: a step must be a mapping, not {_type(step)}")
    if "script" in step and (not isinstance(step["script"], str) or not step["script"]):
        raise ValueError(f"{path}.script: expected the script's name")
    if "tool" in step:
        if not isinstance(step["tool"], str) or not step["tool"]:
            raise ValueError(f"{path}.tool: expected the tool's name")
        if "server" in step and (not isinstance(step["server"], str) or not step["server"]):
            raise ValueError(f"{path}.server: expected the server's id")
        ref = tool_ref(step)
        if ref is None:
            raise ValueError(
                f"{path}.tool: {step['tool']!r} does not say its server: "
                f"write 'server{TOOL_SEPARATOR}tool' or add 'server:'"
            )
        if not NAME.match(ref.server):
            raise ValueError(f"{path}: {ref.server!r} is not a server id (letters, digits, '-' and '_')")
    if "foreach" in step and "steps" not in step:
        raise ValueError(f"{path}: a foreach step needs nested 'steps'")
    if "steps" in step:
        _check_steps(step["steps"], f"{path}.steps")
    if "conditional" in step:
        conditional = step["conditional"]
        if not isinstance(conditional, dict):
            raise ValueError(f"{path}.conditional: expected a mapping with 'if' and 'then'")
        if "if" not in conditional or "then" not in conditional:
            raise ValueError(f"{path}.conditional: needs both 'if' and 'then'")
        for branch in ("then", "else"):
            if branch in conditional:
                _check_steps(_as_steps(conditional[branch]), f"{path}.conditional.{branch}")


YAML_TYPES = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
}


def _type(value: Any) -> str:
    return "nothing" if value is None else YAML_TYPES.get(type(value), f"a {type(value).__name__}")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem
