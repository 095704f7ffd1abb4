"""A directive's typed inputs: defaults filled in, values coerced, mistakes named.

Values arrive as JSON (the API) or as strings (`run_directive --input k=v`, cron
automations' stored inputs): "30" is accepted for an integer, "true" for a boolean,
'["a"]' for an array. An input without a default is required.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from missioncontrol.jsontext import JSONDecodeError, loads


class InputError(ValueError):
    """{"inputs.<name>": [reason]}: each input that is missing, unknown or of the wrong type."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _coerce(kind: str, value: Any) -> Any:
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    elif kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
    elif kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                pass
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
    elif kind in ("array", "object"):
        if isinstance(value, str):
            try:
                value = loads(value)
            except JSONDecodeError:
                raise ValueError(f"expected {'an' if kind == 'array' else 'an'} {kind} (JSON)") from None
        if isinstance(value, list if kind == "array" else dict):
            return value
    raise ValueError(f"expected {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not {value!r}")


def coerce(spec: Mapping[str, Any], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's inputs: `given` checked against the directive's `inputs` spec."""
    given = dict(given or {})
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    for name in given:
        if name not in spec:
            known = ", ".join(sorted(spec)) or "none"
            errors[f"inputs.{name}"] = [f"unknown input (this directive takes: {known})"]
    for name, declared in spec.items():
        if name not in given or given[name] is None:
            if "default" in declared:
                out[name] = declared["default"]
            elif declared.get("required", True):
                errors[f"inputs.{name}"] = ["required"]
            else:
                out[name] = None
            continue
        try:
            value = _coerce(declared["type"], given[name])
        except ValueError as exc:
            errors[f"inputs.{name}"] = [str(exc)]
            continue
        if "enum" in declared and value not in declared["enum"]:
            errors[f"inputs.{name}"] = [f"expected one of {declared['enum']}, not {value!r}"]
            continue
        out[name] = value
    if errors:
        raise InputError(errors)
    return out


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def output_problem(spec: list[str] | Mapping[str, str] | None, result: Any) -> str | None:
    """Why a run's `result` does not hold what its directive's `output:` promises ("output.<key>:
    ..."); None when it does (or nothing is promised). A list names the keys the result
    must have; a mapping also gives each key's type (the input types)."""
    if not spec:
        return None
    if not isinstance(result, dict):
        kind = "nothing" if result is None else type(result).__name__
        return f"output: the run's result is {kind}, not an object with {', '.join(spec)}"
    for key in spec:
        if key not in result:
            has = ", ".join(sorted(map(str, result))) or "no key"
            return f"output.{key}: missing from the run's result (it has {has})"
        kind = spec[key] if isinstance(spec, Mapping) else None
        value = result[key]
        if kind is not None:
            wrong = not isinstance(value, _JSON_TYPES[kind]) or (
                kind in ("integer", "number") and isinstance(value, bool)
            )
            if wrong:
                article = "an" if kind[0] in "aeiou" else "a"
                return f"output.{key}: expected {article} {kind}, not {value!r:.80}"
    return None
