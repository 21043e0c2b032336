"""Dotted names of expressions, through the aliases a module's imports create.

``import inspect as i`` then ``i.stack()`` is ``inspect.stack``; ``from os import
_exit`` then ``_exit(0)`` is ``os._exit``; ``m = __import__("sys")`` makes ``m`` the
``sys`` module. ``getattr(m, "name")``, ``m.__dict__["name"]`` and ``vars(m)["name"]``
are ``m.name``; ``__builtins__.open`` is ``builtins.open``, and a call of a builtin
through the module (``builtins.open(...)``) has the builtin's own name (``open``). The
static checks match these names, so renaming or spelling a lookup differently does
not hide a call from them.
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


def _getattr_target(node: ast.Call) -> tuple[ast.expr, str] | None:
    """``getattr(obj, "name")`` (with or without a default) -> ``(obj, "name")``."""
    if (
        isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) in (2, 3)
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
        and node.args[1].value.isidentifier()
    ):
        return node.args[0], node.args[1].value
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
                module = _import_target(node.value)
                value = module or self.qualname(node.value)
                if value and (module or "." in value or value in self.aliases.values()):
                    self.aliases.setdefault(target, value)

    def qualname(self, node: ast.AST) -> str | None:
        """``a.b.c`` for a Name/Attribute chain (with import aliases resolved), else None."""
        name = self._qualname(node)
        if name is not None and name.startswith("__builtins__."):
            return "builtins." + name[len("__builtins__.") :]
        return name

    def _qualname(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value)
            return None if base is None else f"{base}.{node.attr}"
        if isinstance(node, ast.Call):
            attr = _getattr_target(node)
            if attr is not None:
                base = self.qualname(attr[0])
                return None if base is None else f"{base}.{attr[1]}"
            return _import_target(node)
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            # ``m.__dict__["name"]`` and ``vars(m)["name"]`` are ``m.name``.
            owner: ast.expr | None = None
            if isinstance(node.value, ast.Attribute) and node.value.attr == "__dict__":
                owner = node.value.value
            elif (
                isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "vars"
                and len(node.value.args) == 1
            ):
                owner = node.value.args[0]
            if owner is not None:
                base = self.qualname(owner)
                return None if base is None else f"{base}.{node.slice.value}"
        return None

    def call_name(self, call: ast.Call) -> str:
        """The dotted name of the called function, or ``""`` (builtins by their own name)."""
        name = self.qualname(call.func) or ""
        if name.startswith("builtins.") and name.count(".") == 1:
            return name[len("builtins.") :]
        return name


def last_part(name: str) -> str:
    return name.rsplit(".", 1)[-1]
