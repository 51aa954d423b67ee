"""Built-in components.

To add one: write a package here that declares a
:class:`~engine.registry.Component` (see ``psi`` for an example) and list it
in :data:`BUILTINS`. The default registry registers them on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.registry import Component, Registry

BUILTINS = ("engine.components.psi:psi",)
"""``module:attribute`` of every built-in component, imported lazily."""


def builtin_components() -> list[Component]:
    """Import and return the built-in components."""
    import importlib

    components = []
    for spec in BUILTINS:
        module_name, attribute = spec.split(":")
        components.append(getattr(importlib.import_module(module_name), attribute))
    return components


def register_builtins(registry: Registry) -> None:
    """Register every built-in component in ``registry``."""
    for component in builtin_components():
        registry.register(component)
