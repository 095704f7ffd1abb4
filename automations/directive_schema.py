"""The directive format as a JSON Schema (draft 2020-12), checked by definition.parse.

Shapes only; what a schema cannot say well (which kind a step is, how a tool names its
server) definition.py checks after it, with the same line-and-column errors.
"""

from __future__ import annotations

from typing import Any

SLUG = r"^[A-Za-z0-9_-]{1,100}$"
# `action:resource`, resource a glob: read:threads, write:logs, execute:git/*
PERMISSION = r"^(read|write|execute):[^\s]+$"
INPUT_TYPES = ["string", "integer", "number", "boolean", "array", "object"]
STEP_KINDS = ("script", "tool", "foreach", "conditional", "steps")

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Mission Control directive",
    "type": "object",
    "required": ["name", "steps"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": SLUG},
        "version": {"type": ["string", "number"]},
        "description": {"type": ["string", "null"]},
        "inputs": {
            "type": "object",
            "propertyNames": {"pattern": SLUG},
            "additionalProperties": {"$ref": "#/$defs/input"},
        },
        "permissions": {"type": "array", "items": {"type": "string", "pattern": PERMISSION}},
        "steps": {"$ref": "#/$defs/steps"},
        # What a completed run's result holds: its keys, or its keys with their types.
        "output": {
            "oneOf": [
                {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                {"type": "object", "minProperties": 1, "additionalProperties": {"enum": INPUT_TYPES}},
            ]
        },
    },
    "$defs": {
        "input": {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {
                "type": {"enum": INPUT_TYPES},
                "description": {"type": "string"},
                "default": {},
                "required": {"type": "boolean"},
                "enum": {"type": "array", "minItems": 1},
            },
        },
        "steps": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/step"}},
        # A branch is one step or a list of them; an empty list does nothing.
        "branch": {"anyOf": [{"$ref": "#/$defs/step"}, {"type": "array", "items": {"$ref": "#/$defs/step"}}]},
        "step": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": SLUG},
                "description": {"type": "string"},
                "script": {"type": "string", "minLength": 1},
                "tool": {"type": "string", "minLength": 1},
                "server": {"type": "string", "pattern": SLUG},
                "inputs": {"type": "object"},
                "arguments": {"type": "object"},
                "foreach": {"type": ["string", "array"]},
                "steps": {"$ref": "#/$defs/steps"},
                "conditional": {
                    "type": "object",
                    "required": ["if", "then"],
                    "additionalProperties": False,
                    "properties": {
                        "if": {"type": ["string", "boolean"]},
                        "then": {"$ref": "#/$defs/branch"},
                        "else": {"$ref": "#/$defs/branch"},
                    },
                },
                "timeout_seconds": {"type": "number", "exclusiveMinimum": 0},
                "continue_on_error": {"type": "boolean"},
                # The seed lets a step list what it produces; informative only.
                "output": {},
            },
            "dependentRequired": {"foreach": ["steps"], "server": ["tool"]},
        },
    },
}
