"""Kiwi MCP's file formats, read the way Kiwi reads them (leolilley/kiwi-mcp).

- **Directives** (`.ai/directives/**/*.md`, docs/DIRECTIVE_AUTHORING.md): Markdown holding
  one XML `<directive name= version=>` block: `<metadata>` (description, category,
  author, and `<permissions>`, required even if empty), optional `<relationships>`
  (`requires`/`suggests`/`extends`/`related`, each naming a `directive`), optional
  `<context>` and `<inputs>`, `<process>` steps and `<outputs>`. As in Kiwi's
  `parse_directive_file`, a file without the block, with XML that does not parse, or
  without `<metadata>` or its `<permissions>` is rejected; `{CDATA_OPEN}` and
  `{CDATA_CLOSE}` are expanded after parsing.
- **Tools** (`.ai/tools/**`, and the older `.ai/scripts/**`): Python read by its AST
  (module docstring; `__version__`, `__tool_type__`, `__executor_id__`, `__category__`),
  YAML by its keys, anything else by its name alone. A Python file that does not
  compile, or YAML that does not load to a mapping, is rejected.
- **Knowledge** (`.ai/knowledge/**/*.md`, docs/KNOWLEDGE_SYSTEM_DESIGN.md): Markdown
  with YAML frontmatter (`zettel_id`, `title`, `entry_type`, `version`, `category`,
  `tags`, `references`). Its links are the frontmatter's `references` and the
  Zettelkasten `[[zettel_id]]` mentions of its body. Frontmatter that is never closed,
  does not load, or is not a mapping is rejected.

Every parser takes the file's bytes and answers a `Parsed` or raises `FormatError`
with the reason shown to the user.
"""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

import yaml

ItemKind = Literal["directive", "tool", "knowledge"]
RELATIONSHIP_KINDS = ("requires", "suggests", "extends", "related")
PERMISSION_TAGS = ("read", "write", "execute")
TEXT_CHARS = 4000  # a step's action or an output kept for display, at most

_DIRECTIVE_START = re.compile(r"<directive[^>]*>")
_DIRECTIVE_END = "</directive>"
_HEADING = re.compile(r"^#\s+(.+?)\s*$", re.MULTILINE)
WIKI_LINK = re.compile(r"\[\[\s*([^\[\]|]+?)\s*(?:\|[^\]]*)?\]\]")


class FormatError(ValueError):
    """The file is not in Kiwi's format; the message says why."""


@dataclass
class Link:
    """A relationship an item declares, by the target's name."""

    kind: str  # requires, suggests, extends, related, references
    target: str
    target_kind: str  # directive, knowledge, or "" (a reference: an entry, else a directive or tool)


@dataclass
class Parsed:
    name: str
    version: str = ""
    title: str = ""
    description: str = ""
    category: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)


def parse(kind: ItemKind, relative: PurePosixPath, raw: bytes) -> Parsed:
    """The item in `raw`, the bytes of the file at `relative` (below its kind's folder)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    if kind == "directive":
        return parse_directive(text, relative)
    if kind == "knowledge":
        return parse_knowledge(text, relative)
    return parse_tool(text, relative)


def _category_of(relative: PurePosixPath) -> str:
    """The folders between the kind's folder and the file: Kiwi's category path."""
    return "/".join(relative.parent.parts)


# -- directives ---------------------------------------------------------------------


def _text(element: ET.Element | None) -> str:
    if element is None:
        return ""
    return _expand("".join(element.itertext()).strip())


def _expand(text: str) -> str:
    return text.replace("{CDATA_OPEN}", "<![CDATA[").replace("{CDATA_CLOSE}", "]]>")


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "yes", "1")


def parse_directive(text: str, relative: PurePosixPath) -> Parsed:
    start = _DIRECTIVE_START.search(text)
    end = text.rfind(_DIRECTIVE_END)
    if start is None or end < start.start():
        raise FormatError("no <directive> XML block")
    try:
        root = ET.fromstring(text[start.start() : end + len(_DIRECTIVE_END)])
    except ET.ParseError as exc:
        raise FormatError(f"invalid directive XML: {exc}") from None
    metadata = root.find("metadata")
    if metadata is None:
        raise FormatError("the directive has no <metadata> section")
    permissions_element = metadata.find("permissions")
    if permissions_element is None:
        raise FormatError("<metadata> has no <permissions> section (required, even if empty)")
    permissions = [
        {"tag": p.tag, "resource": p.get("resource", ""), "attrs": dict(p.attrib)}
        for p in permissions_element
        if isinstance(p.tag, str)
    ]
    inputs = [
        {
            "name": i.get("name", ""),
            "type": i.get("type", "string"),
            "required": _bool(i.get("required")),
            "default": i.get("default"),
            "description": _text(i),
        }
        for i in root.iterfind("inputs/input")
    ]
    steps = [
        {
            "name": s.get("name", ""),
            "description": _text(s.find("description")),
            "action": _text(s.find("action"))[:TEXT_CHARS],
        }
        for s in root.iterfind("process/step")
    ]
    outputs_element = root.find("outputs")
    outputs = (
        {o.tag: _text(o)[:TEXT_CHARS] for o in outputs_element if isinstance(o.tag, str)}
        if outputs_element is not None
        else {}
    )
    context_element = root.find("context")
    context = (
        {c.tag: _text(c) for c in context_element if isinstance(c.tag, str)}
        if context_element is not None
        else {}
    )
    links = [
        Link(r.tag, r.get("directive", "").strip(), "directive")
        for r in root.iterfind("relationships/*")
        if r.tag in RELATIONSHIP_KINDS and r.get("directive", "").strip()
    ]
    name = root.get("name") or relative.stem
    heading = _HEADING.search(text[: start.start()])
    return Parsed(
        name=name,
        version=root.get("version", ""),
        title=heading.group(1) if heading else "",
        description=_text(metadata.find("description")),
        category=_text(metadata.find("category")) or _category_of(relative),
        data={
            "author": _text(metadata.find("author")),
            "permissions": permissions,
            "context": context,
            "inputs": inputs,
            "steps": steps,
            "outputs": outputs,
            "relationships": [{"kind": link.kind, "directive": link.target} for link in links],
        },
        links=links,
    )


# -- tools --------------------------------------------------------------------------

_TOOL_VARS = {
    "__version__": "version",
    "__tool_type__": "tool_type",
    "__executor_id__": "executor_id",
    "__executor__": "executor_id",
    "__category__": "category",
}


def parse_tool(text: str, relative: PurePosixPath) -> Parsed:
    suffix = relative.suffix.lower()
    if suffix == ".py":
        return _python_tool(text, relative)
    if suffix in (".yaml", ".yml"):
        return _yaml_tool(text, relative)
    return Parsed(
        name=relative.stem,
        category=_category_of(relative),
        data={"language": suffix.lstrip(".") or "text"},
    )


def _python_tool(text: str, relative: PurePosixPath) -> Parsed:
    try:
        tree = ast.parse(text, filename=str(relative))
    except SyntaxError as exc:
        raise FormatError(f"invalid Python: {exc.msg} (line {exc.lineno})") from None
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            key = _TOOL_VARS.get(node.targets[0].id)
            if key is not None:
                try:
                    found.setdefault(key, ast.literal_eval(node.value))
                except (ValueError, TypeError, SyntaxError):
                    continue
    docstring = ast.get_docstring(tree) or ""
    description = " ".join(docstring.split("\n\n", 1)[0].split())
    return Parsed(
        name=relative.stem,
        version=str(found.get("version", "")),
        description=description,
        category=str(found.get("category") or _category_of(relative)),
        data={
            "language": "python",
            "tool_type": str(found.get("tool_type", "")),
            "executor_id": str(found.get("executor_id", "")),
        },
    )


def _yaml_tool(text: str, relative: PurePosixPath) -> Parsed:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FormatError(f"invalid YAML: {_yaml_reason(exc)}") from None
    if not isinstance(data, dict):
        raise FormatError(f"expected a YAML mapping, got {type(data).__name__}")
    return Parsed(
        name=str(data.get("name") or relative.stem),
        version=str(data.get("version") or ""),
        description=str(data.get("description") or ""),
        category=str(data.get("category") or _category_of(relative)),
        data={
            "language": "yaml",
            "tool_type": str(data.get("tool_type") or ""),
            "executor_id": str(data.get("executor_id") or data.get("executor") or ""),
        },
    )


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{problem} (line {mark.line + 1})" if mark is not None else str(problem)


# -- knowledge ----------------------------------------------------------------------


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [str(value)]


def parse_knowledge(text: str, relative: PurePosixPath) -> Parsed:
    front: dict[str, Any] = {}
    body = text
    if text.startswith("---"):
        end = re.search(r"^---\s*$", text[3:], re.MULTILINE)
        if end is None:
            raise FormatError("the YAML frontmatter is never closed (no second ---)")
        try:
            loaded = yaml.safe_load(text[3 : 3 + end.start()])
        except yaml.YAMLError as exc:
            raise FormatError(f"invalid YAML frontmatter: {_yaml_reason(exc)}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise FormatError(f"the frontmatter is not a mapping but {type(loaded).__name__}")
        front = loaded or {}
        body = text[3 + end.end() :].strip()
    zettel_id = str(front.get("zettel_id") or relative.stem)
    references = _names(front.get("references"))
    mentioned = [m for m in WIKI_LINK.findall(body) if m]
    links = [Link("references", t, "") for t in dict.fromkeys(references + mentioned) if t != zettel_id]
    return Parsed(
        name=zettel_id,
        version=str(front.get("version") or ""),
        title=str(front.get("title") or zettel_id),
        description=body,
        category=str(front.get("category") or _category_of(relative)),
        data={
            "entry_type": str(front.get("entry_type") or "learning"),
            "author": str(front.get("author") or ""),
            "tags": _names(front.get("tags")),
            "references": references,
            "mentions": list(dict.fromkeys(mentioned)),
        },
        links=links,
    )
