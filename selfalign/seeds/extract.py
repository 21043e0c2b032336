"""Find functions with their docstrings, parameters, returns and needed imports (tree-sitter)."""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

# Statements that start a new scope: a ``return`` inside them is not the function's own.
_SCOPES = frozenset({"function_definition", "class_definition", "lambda"})
_PARAMETER_NODES = frozenset(
    {
        "identifier",
        "typed_parameter",
        "default_parameter",
        "typed_default_parameter",
        "list_splat_pattern",
        "dictionary_splat_pattern",
    }
)


@dataclass
class ModuleImport:
    """One name a module-level import binds, and the import line that binds only it."""

    name: str
    line: str
    module: str
    """The imported module's dotted name (``"."``-prefixed for relative imports)."""


@dataclass
class Function:
    """A function (or method) found in a module, with what the filters need to judge it."""

    name: str
    qualname: str
    line: int
    code: str
    docstring: str | None
    parameters: int
    returns_value: bool
    is_method: bool
    imports: list[str] = field(default_factory=list)
    import_modules: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def _parser() -> Any:
    import tree_sitter_python
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_python.language()))


def parse(data: bytes) -> Any:
    """The tree-sitter tree of a Python source (bytes)."""
    return _parser().parse(data)


def _text(node: Any) -> str:
    return node.text.decode("utf-8", errors="replace")


def absolute_module(module: str, package: str | None) -> str:
    """``module`` made absolute against ``package`` (``.x`` in ``a.b`` is ``a.b.x``), when possible.

    A function checked alone cannot use relative imports; rewriting them keeps
    the seeds of packages that are importable (the standard library's are).
    """
    if not module.startswith(".") or not package:
        return module
    dots = len(module) - len(module.lstrip("."))
    parts = package.split(".")
    if dots - 1 >= len(parts):
        return module
    base = parts[: len(parts) - (dots - 1)]
    rest = module[dots:]
    return ".".join(base + ([rest] if rest else []))


def module_imports(root: Any, package: str | None = None) -> dict[str, ModuleImport]:
    """Every name bound by a top-level ``import`` / ``from ... import`` (star imports excluded)."""
    bound: dict[str, ModuleImport] = {}
    for node in root.children:
        if node.type == "import_statement":
            for child in node.named_children:
                if child.type == "dotted_name":
                    dotted = _text(child)
                    top = dotted.split(".")[0]
                    bound.setdefault(top, ModuleImport(top, f"import {dotted}", dotted))
                elif child.type == "aliased_import":
                    target = child.child_by_field_name("name")
                    alias = child.child_by_field_name("alias")
                    if target is not None and alias is not None:
                        dotted = _text(target)
                        bound[_text(alias)] = ModuleImport(
                            _text(alias), f"import {dotted} as {_text(alias)}", dotted
                        )
        elif node.type == "import_from_statement":
            module_node = node.child_by_field_name("module_name")
            if module_node is None:
                continue
            module = absolute_module(_text(module_node), package)
            if module == "__future__":
                continue
            for child in node.children_by_field_name("name"):
                if child.type == "dotted_name":
                    name = _text(child)
                    bound[name] = ModuleImport(name, f"from {module} import {name}", module)
                elif child.type == "aliased_import":
                    target = child.child_by_field_name("name")
                    alias = child.child_by_field_name("alias")
                    if target is not None and alias is not None:
                        line = f"from {module} import {_text(target)} as {_text(alias)}"
                        bound[_text(alias)] = ModuleImport(_text(alias), line, module)
    return bound


@lru_cache(maxsize=1)
def _names_query() -> Any:
    import tree_sitter_python
    from tree_sitter import Language, Query

    # Every identifier, and the ones that cannot be module names: the ``b`` of
    # ``a.b`` and the ``k`` of ``f(k=v)``. One query walks the tree in C.
    return Query(
        Language(tree_sitter_python.language()),
        "(identifier) @id (attribute attribute: (identifier) @attr) "
        "(keyword_argument name: (identifier) @kw)",
    )


def _identifiers(node: Any, out: set[str]) -> None:
    from tree_sitter import QueryCursor

    captures = QueryCursor(_names_query()).captures(node)
    skip = {n.start_byte for key in ("attr", "kw") for n in captures.get(key, ())}
    out.update(_text(n) for n in captures.get("id", ()) if n.start_byte not in skip)


def _returns_value(body: Any) -> bool:
    stack = list(body.children)
    while stack:
        node = stack.pop()
        if node.type == "return_statement" and node.named_child_count > 0:
            return True
        if node.type == "yield":
            # A generator produces values too.
            return True
        if node.type in _SCOPES:
            continue
        stack.extend(node.children)
    return False


def _docstring(body: Any) -> str | None:
    first = body.named_children[0] if body.named_child_count else None
    if first is None or first.type != "expression_statement" or first.named_child_count != 1:
        return None
    string = first.named_children[0]
    if string.type != "string":
        return None
    try:
        value = ast.literal_eval(_text(string))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def _parameter_count(params: Any, is_method: bool, decorators: list[str]) -> int:
    names = [c for c in params.named_children if c.type in _PARAMETER_NODES]
    if is_method and "staticmethod" not in decorators and names:
        names = names[1:]  # self / cls
    return len(names)


def _function(
    node: Any, outer: Any, source: bytes, imports: dict[str, ModuleImport], class_name: str | None
) -> Function | None:
    name_node = node.child_by_field_name("name")
    params = node.child_by_field_name("parameters")
    body = node.child_by_field_name("body")
    if name_node is None or params is None or body is None:
        return None
    decorators = [_text(c).lstrip("@").strip() for c in outer.children if c.type == "decorator"]
    column = outer.start_point[1]
    code = source[outer.start_byte : outer.end_byte].decode("utf-8", errors="replace")
    if column:
        code = textwrap.dedent(" " * column + code)
    docstring = _docstring(body)
    used: set[str] = set()
    if docstring is not None:
        # Functions without a docstring are dropped first; their imports are never needed.
        _identifiers(outer, used)
    needed = [imports[n] for n in sorted(used) if n in imports]
    name = _text(name_node)
    return Function(
        name=name,
        qualname=f"{class_name}.{name}" if class_name else name,
        line=outer.start_point[0] + 1,
        code=code,
        docstring=docstring,
        parameters=_parameter_count(params, class_name is not None, decorators),
        returns_value=_returns_value(body),
        is_method=class_name is not None,
        imports=list(dict.fromkeys(i.line for i in needed)),
        import_modules=sorted({i.module for i in needed}),
    )


def _unwrap(node: Any) -> Any | None:
    if node.type == "function_definition":
        return node
    if node.type == "decorated_definition":
        definition = node.child_by_field_name("definition")
        if definition is not None and definition.type == "function_definition":
            return definition
    return None


def extract_functions(
    tree: Any, source: bytes, include_methods: bool = False, package: str | None = None
) -> list[Function]:
    """Top-level functions (with ``include_methods``, also methods of top-level classes)."""
    root = tree.root_node
    imports = module_imports(root, package)
    found: list[Function] = []
    for node in root.children:
        definition = _unwrap(node)
        if definition is not None:
            fn = _function(definition, node, source, imports, None)
            if fn is not None:
                found.append(fn)
        elif include_methods and node.type in ("class_definition", "decorated_definition"):
            cls = (
                node if node.type == "class_definition" else node.child_by_field_name("definition")
            )
            if cls is None or cls.type != "class_definition":
                continue
            cls_name = cls.child_by_field_name("name")
            body = cls.child_by_field_name("body")
            if cls_name is None or body is None:
                continue
            for member in body.children:
                method = _unwrap(member)
                if method is not None:
                    fn = _function(method, member, source, imports, _text(cls_name))
                    if fn is not None:
                        found.append(fn)
    return found
