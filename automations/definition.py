"""The directive YAML format: parsing, validation, and the walk over nested steps.

A directive is a mapping with a `name` (a slug) and a list of `steps`. A step is a
mapping; the kinds this module knows about are

- `script: detect_slow_threads` (a trailing `.py`, as the seed writes them, is dropped),
- `tool: server__tool`, or `server: git` with `tool: git_log`,
- `foreach: <expression>` with nested `steps`,
- `conditional: {if: ..., then: <step or steps>, else: <step or steps>}`,
- any step with nested `steps` (a group).

plus `name` (its output is then reachable by later steps), `inputs` (a script's
keyword parameters), `arguments` (a tool's), `timeout_seconds` and `continue_on_error`.
The whole format is a JSON Schema (directive_schema.py); every error names the line
and column of the YAML it is about.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any, NamedTuple

import yaml

from automations.directive_schema import SCHEMA
from missioncontrol.jsontext import dumps, loads

NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
# Server ids never contain "__" (see mcps.models.MCPServer.clean), so the first one
# splits `server__tool`, exactly as the aggregated /mcp endpoint names tools.
TOOL_SEPARATOR = "__"


class ToolRef(NamedTuple):
    server: str
    tool: str


class DirectiveError(ValueError):
    """A directive that does not hold; the message says where (line, column) and why."""

    def __init__(
        self, reason: str, path: str = "", line: int | None = None, column: int | None = None
    ) -> None:
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(f"{where}{path + ': ' if path else ''}{reason}")
        self.reason, self.path, self.line, self.column = reason, path, line, column


@cache
def _validator() -> Any:
    # Imported on first use: jsonschema costs every process ~0.2 s at start-up otherwise.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(SCHEMA)


def parse(text: str) -> dict[str, Any]:
    """The definition in `text`, checked against the schema; DirectiveError saying where otherwise."""
    try:
        loader = yaml.SafeLoader(text)  # refuses control characters already
    except yaml.YAMLError as exc:
        raise DirectiveError(f"invalid YAML: {_yaml_problem(exc)}") from None
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        raise DirectiveError(f"invalid YAML: {_yaml_problem(exc)}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise DirectiveError(f"a directive must be a YAML mapping, not {_type(data)}")
    # Stored as JSON: YAML's dates and other non-JSON scalars become strings.
    data = loads(dumps(data))
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(data))
    if error is not None:
        path: list[str | int] = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
            extra = sorted(k for k in error.instance if k not in known)
            if extra:
                raise _located(root, [*path, extra[0]], f"unknown key {extra[0]!r}", key=True)
        raise _located(root, path, error.message)
    _check_steps(root, data["steps"], ["steps"])
    return data


def kind(step: dict[str, Any]) -> str:
    """What a (parsed, valid) step does: script, tool, foreach, conditional or steps (a group)."""
    for name in ("foreach", "script", "tool", "conditional"):
        if name in step:
            return name
    return "steps"


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


def _check_steps(root: yaml.Node, steps: list[Any], path: list[str | int]) -> None:
    for i, step in enumerate(steps):
        _check_step(root, step, [*path, i])


def _check_step(root: yaml.Node, step: dict[str, Any], here: list[str | int]) -> None:
    """What the schema cannot say: each step does one thing, and a tool names its server."""
    doing = [k for k in ("script", "tool", "foreach", "conditional") if k in step]
    if not doing and "steps" not in step:
        raise _located(root, here, "a step needs one of script, tool, foreach, conditional or steps")
    if len(doing) > 1 or (doing and doing[0] != "foreach" and "steps" in step):
        found = doing + (["steps"] if "steps" in step and "foreach" not in doing else [])
        raise _located(root, here, f"a step does one thing, this one has {' and '.join(found)}")
    if "tool" in step:
        ref = tool_ref(step)
        if ref is None:
            raise _located(
                root,
                [*here, "tool"],
                f"{step['tool']!r} does not say its server: "
                f"write 'server{TOOL_SEPARATOR}tool' or add 'server:'",
            )
        if not NAME.match(ref.server):
            raise _located(root, [*here, "tool"], f"{ref.server!r} is not a server id")
    if "steps" in step:
        _check_steps(root, step["steps"], [*here, "steps"])
    conditional = step.get("conditional") or {}
    for branch in ("then", "else"):
        value = conditional.get(branch)
        if isinstance(value, list):
            _check_steps(root, value, [*here, "conditional", branch])
        elif value is not None:
            _check_step(root, value, [*here, "conditional", branch])


def _node_at(root: yaml.Node, path: list[str | int], key: bool = False) -> yaml.Node:
    """The deepest YAML node along `path` (a mapping key, then a list index, ...).

    With `key`, the last part's key node rather than its value (for an unknown key).
    """
    node = root
    for i, part in enumerate(path):
        match = None
        if isinstance(node, yaml.MappingNode):
            last = key and i == len(path) - 1
            match = next((k if last else v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            match = node.value[part]
        if match is None:
            break
        node = match
    return node


def _located(root: yaml.Node, path: list[str | int], reason: str, key: bool = False) -> DirectiveError:
    mark = _node_at(root, path, key).start_mark
    return DirectiveError(reason, dotted(path), mark.line + 1, mark.column + 1)


def dotted(path: list[str | int]) -> str:
    """["steps", 0, "tool"] -> "steps[0].tool"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


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
