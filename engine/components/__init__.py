"""Built-in components.

To add one, create a package here whose ``__init__`` declares a
:class:`~engine.registry.Component` at top level and lists it in ``__all__``
(see ``psi``). The default registry imports every package in this directory
on first use and registers every component it declares: there is no list to
edit, so components written in parallel never conflict here.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.registry import Component, Registry


def builtin_components() -> list[Component]:
    """Import every package of ``engine.components`` and return the components they declare.

    A package that fails to import raises: a built-in component that silently
    disappeared from ``describe()`` would be worse than a loud error.
    """
    from engine.registry import Component

    found: list[Component] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name in getattr(module, "__all__", None) or dir(module):
            value = getattr(module, name, None)
            # Identity check: a package may re-export another package's component.
            if isinstance(value, Component) and not any(value is c for c in found):
                found.append(value)
    return found


def register_builtins(registry: Registry) -> None:
    """Register every built-in component in ``registry``."""
    for component in builtin_components():
        registry.register(component)
