"""Every section a config file may hold, and the dataclass that validates it.

One explicit table (STYLE.md: no registries by decorator). Config modules are light
(dataclasses only), so importing them here keeps ``selfalign --help`` instant.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from selfalign.config import check_sections

SECTIONS: dict[str, tuple[str, str]] = {
    "seeds": ("selfalign.seeds.config", "SeedsConfig"),
    "model": ("selfalign.llm.config", "ModelConfig"),
    "concepts": ("selfalign.generation.config", "ConceptsConfig"),
    "tasks": ("selfalign.generation.config", "TasksConfig"),
    "respond": ("selfalign.generation.config", "RespondConfig"),
    "sandbox": ("selfalign.sandbox.config", "SandboxConfig"),
    "execute": ("selfalign.curate.config", "ExecuteConfig"),
    "select": ("selfalign.curate.config", "SelectConfig"),
    "export": ("selfalign.curate.config", "ExportConfig"),
    "train": ("", ""),
    "eval": ("", ""),
}
"""Section name -> (module, class). Sections with no class are validated by their command."""


def section_class(name: str) -> type | None:
    module, cls = SECTIONS[name]
    if not module:
        return None
    return getattr(importlib.import_module(module), cls)


def check_known_sections(values: Mapping[str, Any]) -> None:
    """Fail at once on a section no command knows (a typo such as ``[sede]``)."""
    check_sections(values, SECTIONS)
