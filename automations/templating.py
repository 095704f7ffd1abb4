"""`{{ }}` in directives, through Jinja2's immutable sandbox.

A value that is exactly one `{{ expression }}` keeps the expression's type (a list stays
a list, `{{ inputs.limit }}` stays a number); any other string with `{{ }}` renders to a
string; mappings and lists are rendered item by item. The sandbox refuses underscore
attributes (`''.__class__`, `cycler.__init__.__globals__`), mutation of the context,
ranges past MAX_RANGE and string or list products past MAX_SIZE; every refusal or
mistake is a TemplateProblem saying which expression and why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MAX_RANGE = 10_000
MAX_SIZE = 1_000_000  # items or characters a `*` or `**` may produce
WHOLE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)


class TemplateProblem(ValueError):
    """An expression that cannot be evaluated: a mistake, or a refused escape attempt."""


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise SecurityError(f"range of {len(r)} items is more than the {MAX_RANGE} allowed")
    return r


class Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(["*", "**"])

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Data first: `result.items` is the result's "items" key, not dict.items.
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            too_big = isinstance(right, int | float) and abs(right) > 100
            if too_big or (
                isinstance(left, int) and isinstance(right, int) and left.bit_length() * right > 10_000
            ):
                raise SecurityError(f"{left} ** {right} is too large")
            return left**right
        for seq, times in ((left, right), (right, left)):
            sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
            if sized and len(seq) * times > MAX_SIZE:
                raise SecurityError(f"a product of {len(seq) * times} items is too large")
        return left * right


_env = Sandbox(undefined=StrictUndefined, autoescape=False)
# Only what a directive needs: no cycler, joiner, lipsum or namespace objects to poke at.
_env.globals = {"range": _range, "dict": dict}


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """The value of a bare expression (`result.count > 3`, `active_threads`)."""
    try:
        value = _env.compile_expression(expression, undefined_to_none=False)(**context)
        if isinstance(value, Undefined):
            str(value)  # raises the undefined's own error: unknown name, or a refused attribute
        return value
    except SecurityError as exc:
        raise TemplateProblem(f"{{{{ {expression.strip()} }}}} is not allowed: {exc}") from None
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateProblem(f"{{{{ {expression.strip()} }}}}: {exc}") from None


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """`value` with every `{{ }}` in it evaluated against `context`."""
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        whole = WHOLE.match(value)
        if whole and "{{" not in whole["expr"] and "}}" not in whole["expr"]:
            return plain(evaluate(whole["expr"], context))
        try:
            return _env.from_string(value).render(**context)
        except SecurityError as exc:
            raise TemplateProblem(f"{value!r} is not allowed: {exc}") from None
        except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise TemplateProblem(f"{value!r}: {exc}") from None
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    return value


def truthy(condition: Any, context: Mapping[str, Any]) -> bool:
    """A conditional's `if`: a boolean, `{{ expression }}` or a bare expression."""
    if isinstance(condition, bool):
        return condition
    text = str(condition)
    whole = WHOLE.match(text)
    return bool(evaluate(whole["expr"] if whole else text, context))


def plain(value: Any) -> Any:
    """Results of expressions made plain data again (tuples, ranges and the like become lists)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | range | set | frozenset):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TemplateProblem(f"an expression gave a {type(value).__name__}, not data")
