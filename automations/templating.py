"""`{{ }}` in directives, through Jinja2's immutable sandbox.

A value that is exactly one `{{ expression }}` keeps the expression's type (a list stays
a list, `{{ inputs.limit }}` stays a number); any other string with `{{ }}` renders to a
string; mappings and lists are rendered item by item. The sandbox refuses underscore
attributes (`''.__class__`, `cycler.__init__.__globals__`) and mutation of the context,
and bounds what one evaluation may cost:

- MAX_SIZE: no string or list it builds, and no rendering, is longer than a million
  characters or items. The operations that grow a value from a small one (`*`, `%`,
  `~`, `+`, `center`, `indent`, `format`, `replace`, `join`, `string`, str methods
  such as `ljust` or `format`) are checked before they build it.
- MAX_RANGE: `range()` yields at most 10,000 items.
- MAX_ITERATIONS and MAX_SECONDS: loops (nested ones counted each time round) run at
  most 100,000 times, and one evaluation stops after 2 s.

Every refusal or mistake is a TemplateProblem naming the expression and the limit.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter, SecurityError
from markupsafe import Markup

MAX_RANGE = 10_000
MAX_SIZE = 1_000_000  # characters or items of any value built, and of a whole rendering
MAX_ITERATIONS = 100_000  # loop iterations of one evaluation, nested loops counted each time
MAX_SECONDS = 2.0  # one evaluation's time
WHOLE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)
# A printf conversion: its width and precision are what can make a small format huge.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_NUMBER = re.compile(r"\d+")


class TemplateProblem(ValueError):
    """An expression that cannot be evaluated: a mistake, or a refused escape attempt."""


@dataclass
class _Budget:
    deadline: float
    iterations: int = 0


_budget: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


@contextmanager
def _bounded() -> Iterator[None]:
    """One evaluation's time and loop budget; nested renders share the outer one."""
    if _budget.get() is not None:
        yield
        return
    token = _budget.set(_Budget(time.monotonic() + MAX_SECONDS))
    try:
        yield
    finally:
        _budget.reset(token)


def _tick(iterations: int = 0) -> None:
    budget = _budget.get()
    if budget is None:
        return
    budget.iterations += iterations
    if budget.iterations > MAX_ITERATIONS:
        raise SecurityError(f"loops ran more than {MAX_ITERATIONS:,} times, the template loop limit")
    if time.monotonic() > budget.deadline:
        raise SecurityError(f"it ran longer than {MAX_SECONDS:g} s, the template time limit")


def _too_big(size: int, what: str = "a value") -> SecurityError:
    limit = f"the template size limit, {MAX_SIZE:,}"
    return SecurityError(f"{what} of {size:,} characters or items is past {limit}")


def _check(size: int, what: str = "a value") -> None:
    if size > MAX_SIZE:
        raise _too_big(size, what)


def _weight(value: Any, limit: int = MAX_SIZE) -> int:
    """About how many characters `value` prints as; stops counting past `limit`."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        items: Iterable[Any] = (x for pair in value.items() for x in pair)
    elif isinstance(value, list | tuple | set | frozenset):
        items = value
    else:
        return 8
    total = 2
    for item in items:
        total += _weight(item, limit - total) + 2
        if total > limit:
            break
    return total


def _sized(value: Any, what: str = "a value") -> Any:
    """`value`, if not past MAX_SIZE."""
    if isinstance(value, str | list | tuple | dict):
        _check(len(value), what)
    return value


def _width(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _printf_size(template: str, args: Any) -> int:
    """The widest `template % args` can be: its length, its widths and precisions, its arguments."""
    size = len(template) + _weight(args)
    for match in _PERCENT_SPEC.finditer(template):
        if "*" in match.group(0):
            raise SecurityError("a `*` width or precision in a % format is not allowed")
        size += sum(int(n) for n in match.groups() if n)
    return size


def _str_method_size(method: str, text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """What a str method that can grow a string may make of `text`, before it runs."""
    first = args[0] if args else None
    if method in ("center", "ljust", "rjust", "zfill"):
        return max(len(text), _width(first if first is not None else kwargs.get("width")))
    if method == "expandtabs":
        tabsize = first if first is not None else kwargs.get("tabsize", 8)
        return len(text) * max(1, _width(tabsize))
    if method == "replace" and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        count = text.count(old) if old else len(text) + 1
        return len(text) + count * max(0, len(new) - len(old))
    if method == "join" and isinstance(first, list | tuple | str):
        return _weight(first) + len(text) * len(first)
    return len(text)


class _BoundedFormatter(SandboxedFormatter):
    """str.format in the sandbox, each field's width checked before it is padded."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        widest = max((int(n) for n in _NUMBER.findall(format_spec)), default=0)
        _check(widest + _weight(value), "a formatted field")
        return super().format_field(value, format_spec)


def _guarded_filter(name: str, function: Any) -> Any:
    """A filter whose growth is checked before it runs (the known ones) and after (all)."""

    @wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        _tick()
        # Filters marked pass_context/pass_environment get that first; the value follows.
        offset = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0
        value, rest = (args[offset], args[offset + 1 :]) if len(args) > offset else (None, ())
        first = rest[0] if rest else None
        if name == "center":
            _check(max(_weight(value), _width(first if first is not None else kwargs.get("width", 80))))
        elif name == "indent":
            width = first if first is not None else kwargs.get("width", 4)
            lines = str(value).count("\n") + 1 if value is not None else 1
            _check(_weight(value) + lines * (_width(width) if not isinstance(width, str) else len(width)))
        elif name == "format":
            _check(_printf_size(str(value), (rest, kwargs)), "a formatted string")
        elif name == "replace" and len(rest) >= 2:
            _check(_str_method_size("replace", str(value), rest, {}), "a replaced string")
        elif name in ("join", "string", "tojson", "pprint", "list"):
            _check(_weight(value) + (len(str(first)) * _weight(value) if name == "join" and first else 0))
        return _sized(function(*args, **kwargs), f"the result of |{name}")

    return checked


class Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(["*", "**", "%", "+"])

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Data first: `result.items` is the result's "items" key, not dict.items.
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None or isinstance(value.__self__, Markup):
            return wrapped
        template, formatter = value.__self__, _BoundedFormatter(self)

        @wraps(value)
        def bounded(*args: Any, **kwargs: Any) -> str:
            if value.__name__ == "format_map":
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                args, kwargs = (), args[0]
            return _sized(formatter.vformat(template, args, kwargs), "a formatted string")

        return bounded

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            _check(_str_method_size(getattr(__obj, "__name__", ""), owner, args, kwargs), "a string")
        return _sized(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "**":
            too_big = isinstance(right, int | float) and abs(right) > 100
            if too_big or (
                isinstance(left, int) and isinstance(right, int) and left.bit_length() * right > 10_000
            ):
                raise SecurityError(f"{left} ** {right} is too large")
            return left**right
        if operator == "%":
            if isinstance(left, str):
                _check(_printf_size(left, right), "a formatted string")
            return left % right
        if operator == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                _check(len(left) + len(right), "a sum")
            return left + right
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int) and not isinstance(times, bool):
                _check(len(seq) * times, "a product")
                _check(_weight(seq) * times, "a product")
        return left * right

    def loop_guard(self, iterable: Any) -> Iterator[Any]:
        """What every `{% for %}` iterates through: each turn counted against the budget."""
        for item in iterable:
            _tick(1)
            yield item

    def concat_guard(self, *parts: Any) -> str:
        """`a ~ b`, refused past MAX_SIZE (a macro calling itself doubles a string per call)."""
        _tick()
        texts = [str(part) for part in parts]
        _check(sum(len(t) for t in texts), "a joined string")
        return "".join(texts)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return _guard(super()._parse(source, name, filename))

    def compile(self, source: Any, *args: Any, **kwargs: Any) -> Any:
        # compile_expression hands over a tree of its own, not text to _parse.
        return super().compile(source if isinstance(source, str) else _guard(source), *args, **kwargs)


def _guard(tree: nodes.Template) -> nodes.Template:
    """`tree` with its loops and `~` routed through the Sandbox's guards."""
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Call(
            nodes.EnvironmentAttribute("loop_guard"), [loop.iter], [], None, None, lineno=loop.lineno
        )
    for concat in list(tree.find_all(nodes.Concat)):
        call = nodes.Call(
            nodes.EnvironmentAttribute("concat_guard"), concat.nodes, [], None, None, lineno=concat.lineno
        )
        _replace(tree, concat, call)
    return tree


def _replace(tree: nodes.Node, old: nodes.Node, new: nodes.Node) -> None:
    """Put `new` where `old` is in `tree`."""
    for parent in tree.find_all(nodes.Node):
        for field in parent.fields:
            value = getattr(parent, field, None)
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list) and any(item is old for item in value):
                setattr(parent, field, [new if item is old else item for item in value])
                return
    if isinstance(tree, nodes.Template) and old in tree.body:
        tree.body = [new if item is old else item for item in tree.body]


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise SecurityError(f"range of {len(r)} items is more than the {MAX_RANGE} allowed")
    return r


_env = Sandbox(undefined=StrictUndefined, autoescape=False)
# Only what a directive needs: no cycler, joiner, lipsum or namespace objects to poke at.
_env.globals = {"range": _range, "dict": dict}
_env.filters = {name: _guarded_filter(name, f) for name, f in _env.filters.items()}

_MISTAKES = (TemplateError, TypeError, ValueError, ArithmeticError, LookupError, RecursionError)


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """The value of a bare expression (`result.count > 3`, `active_threads`)."""
    try:
        with _bounded():
            value = _env.compile_expression(expression, undefined_to_none=False)(**context)
            if isinstance(value, Undefined):
                str(value)  # raises the undefined's own error: unknown name, or a refused attribute
            return value
    except SecurityError as exc:
        raise TemplateProblem(f"{{{{ {expression.strip()} }}}} is not allowed: {exc}") from None
    except _MISTAKES as exc:
        raise TemplateProblem(f"{{{{ {expression.strip()} }}}}: {exc}") from None


def _render_text(template: str, context: Mapping[str, Any]) -> str:
    """A rendering of `template`, refused once its output passes MAX_SIZE."""
    out: list[str] = []
    size = 0
    for chunk in _env.from_string(template).generate(**context):
        size += len(chunk)
        _check(size, "the rendering")
        _tick()
        out.append(chunk)
    return "".join(out)


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """`value` with every `{{ }}` in it evaluated against `context`."""
    with _bounded():
        if isinstance(value, str):
            if "{{" not in value and "{%" not in value:
                return value
            whole = WHOLE.match(value)
            if whole and "{{" not in whole["expr"] and "}}" not in whole["expr"]:
                return plain(evaluate(whole["expr"], context))
            try:
                return _render_text(value, context)
            except SecurityError as exc:
                raise TemplateProblem(f"{value!r} is not allowed: {exc}") from None
            except _MISTAKES as exc:
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
