"""Dotted names of expressions, through the aliases a module's imports create.

``import inspect as i`` then ``i.stack()`` is ``inspect.stack``; ``from os import
_exit`` then ``_exit(0)`` is ``os._exit``; ``m = __import__("sys")`` makes ``m`` the
``sys`` module. The static checks match these names, so renaming an import does not
hide a call from them.
"""

from __future__ import annotations

import ast

from selfalign.verify.parsing import walk


def _import_target(node: ast.expr) -> str | None:
    """``__import__("m")`` / ``importlib.import_module("m")`` -> ``"m"``."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    arg = node.args[0]
    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
        return None
    func = node.func
    if isinstance(func, ast.Name) and func.id == "__import__":
        return arg.value
    if isinstance(func, ast.Attribute) and func.attr == "import_module":
        return arg.value
    return None


class Names:
    """Resolves Name/Attribute chains to dotted names, following import aliases."""

    def __init__(self, tree: ast.AST, nodes: list[ast.AST] | None = None) -> None:
        self.aliases: dict[str, str] = {}
        assigns: list[ast.Assign] = []
        for node in walk(tree) if nodes is None else nodes:
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.aliases[a.asname] = a.name
                    else:
                        root = a.name.split(".")[0]
                        self.aliases[root] = root
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                assigns.append(node)
        # Plain assignments of a module or of a dotted name (``run = subprocess.run``),
        # followed once more so that an alias of an alias resolves too.
        for _ in range(2):
            for node in assigns:
                target = node.targets[0].id  # type: ignore[attr-defined]
                value = _import_target(node.value) or self.qualname(node.value)
                if value and ("." in value or value in self.aliases.values()):
                    self.aliases.setdefault(target, value)

    def qualname(self, node: ast.AST) -> str | None:
        """``a.b.c`` for a Name/Attribute chain (with import aliases resolved), else None."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value)
            return None if base is None else f"{base}.{node.attr}"
        if isinstance(node, ast.Call):
            return _import_target(node)
        return None

    def call_name(self, call: ast.Call) -> str:
        """The dotted name of the called function, or ``""``."""
        return self.qualname(call.func) or ""


def last_part(name: str) -> str:
    return name.rsplit(".", 1)[-1]
