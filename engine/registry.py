"""Components and the registry that lists them.

A *component* is one federated algorithm (PSI, a model trainer, an
evaluator): a name and version, the roles it runs as, typed parameters (a
pydantic model), named inputs and outputs, and one function per role. It is
declared once and registered; the runner, the job service and the UI all
work from the declaration::

    from pydantic import BaseModel, ConfigDict, Field
    from engine.registry import Component, Port

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        id_column: str = Field("id", min_length=1, description="Column holding the ids.")

    sample = Component(
        name="sample", version="1.0.0",
        description="Keep the rows whose ids both parties have.",
        roles=("guest", "host"),
        params=Params,
        inputs=[Port("data", "table", "Rows with an id column.")],
        outputs=[Port("data", "table", "The kept rows."), Port("metrics", "metrics")],
    )

    @sample.role("guest")
    def _guest(ctx, params, inputs):
        ...
        return {"data": table, "metrics": {"rows": n}}

    registry.register(sample)

``sample.run(ctx, "guest", {"id_column": "uid"}, {"data": df})`` validates the
parameters (unknown or invalid ones raise :class:`InvalidParameters` naming
the field) and the inputs, calls the guest function, checks its outputs and,
if anything fails, tells the other parties through ``ctx.abort`` before
re-raising. :meth:`Registry.describe` exports every declaration as JSON,
parameters as JSON Schema (titles, descriptions, bounds, defaults), so a UI
can render a form and a job service can validate a job spec without running
anything.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from engine.errors import (
    ComponentNotFound,
    DuplicateComponent,
    EngineError,
    InvalidInput,
    InvalidParameters,
    RegistryError,
    UnknownRole,
)

if TYPE_CHECKING:
    from engine.federation.context import Context

__all__ = [
    "ROLES",
    "PORT_TYPES",
    "Port",
    "Component",
    "Registry",
    "default_registry",
    "register",
    "get_component",
    "describe",
]

ROLES: dict[str, str] = {
    "guest": "Label holder: starts the job and receives the model's results.",
    "host": "Feature provider: contributes features for the same individuals.",
}
"""The roles a party can play, with the description shown to users."""

PORT_TYPES: dict[str, str] = {
    "table": "A table of rows: pandas.DataFrame or pyarrow.Table.",
    "model": "A trained model (a JSON-serialisable dict of parameters).",
    "metrics": "A JSON-serialisable dict of named figures.",
}
"""The types an input or output can have."""

_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")

RoleFunction = Callable[["Context", BaseModel, Mapping[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True)
class Port:
    """A named, typed input or output of a component.

    Attributes:
        name: e.g. ``"data"``; unique among a component's inputs (or outputs).
        type: one of :data:`PORT_TYPES` (``"table"``, ``"model"``, ``"metrics"``).
        description: shown to users.
        roles: the roles that have this port; ``None`` means every role.
        optional: an optional input may be omitted; an optional output may be
            missing from a role function's result.
    """

    name: str
    type: str
    description: str = ""
    roles: tuple[str, ...] | None = None
    optional: bool = False

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise RegistryError(f"port name {self.name!r} must match {_NAME.pattern}")
        if self.type not in PORT_TYPES:
            raise RegistryError(
                f"port {self.name!r} has unknown type {self.type!r} (types: {', '.join(PORT_TYPES)})"
            )
        if self.roles is not None:
            object.__setattr__(self, "roles", tuple(self.roles))

    def applies_to(self, role: str) -> bool:
        return self.roles is None or role in self.roles

    def describe(self, all_roles: Iterable[str]) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "roles": list(self.roles if self.roles is not None else all_roles),
            "optional": self.optional,
        }


def _is_table(value: Any) -> bool:
    # Imported lazily: describing components should not require loading pandas.
    import pandas as pd
    import pyarrow as pa

    return isinstance(value, (pd.DataFrame, pa.Table))


class Component:
    """A federated algorithm: declaration plus one function per role.

    Args:
        name: lowercase identifier, e.g. ``"psi"``.
        version: ``"MAJOR.MINOR.PATCH"``.
        description: what it does, for users.
        roles: the roles it runs as (keys of :data:`ROLES`).
        params: a pydantic model with ``extra="forbid"``; its JSON Schema is
            what :meth:`describe` exports.
        inputs / outputs: :class:`Port` declarations.
    """

    def __init__(
        self,
        *,
        name: str,
        version: str,
        description: str,
        roles: Iterable[str],
        params: type[BaseModel],
        inputs: Iterable[Port] = (),
        outputs: Iterable[Port] = (),
    ):
        if not _NAME.fullmatch(name):
            raise RegistryError(f"component name {name!r} must match {_NAME.pattern}")
        if not _VERSION.fullmatch(version):
            raise RegistryError(f"component {name!r}: version {version!r} must be MAJOR.MINOR.PATCH")
        self.name = name
        self.version = version
        self.description = description
        self.roles = tuple(roles)
        for role in self.roles:
            if role not in ROLES:
                raise RegistryError(
                    f"component {name!r}: unknown role {role!r} (roles: {', '.join(ROLES)})"
                )
        if not self.roles:
            raise RegistryError(f"component {name!r} declares no roles")
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise RegistryError(f"component {name!r}: params must be a pydantic model class")
        if params.model_config.get("extra") != "forbid":
            # Otherwise a typo in a job spec would be silently ignored.
            raise RegistryError(
                f"component {name!r}: params model must set model_config = ConfigDict(extra='forbid')"
            )
        self.params = params
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        for kind, ports in (("input", self.inputs), ("output", self.outputs)):
            names = [p.name for p in ports]
            if len(names) != len(set(names)):
                raise RegistryError(f"component {name!r} declares an {kind} name twice")
            for port in ports:
                for role in port.roles or ():
                    if role not in self.roles:
                        raise RegistryError(
                            f"component {name!r}: {kind} {port.name!r} names unknown role {role!r}"
                        )
        self._functions: dict[str, RoleFunction] = {}

    # ------------------------------------------------------------ declaration

    def role(self, *roles: str) -> Callable[[RoleFunction], RoleFunction]:
        """Decorator: register the function that runs the given role(s).

        The function is called as ``fn(ctx, params, inputs)`` with a
        :class:`~engine.federation.Context`, the validated params model and a
        dict of inputs, and returns a dict of outputs.
        """
        for role in roles:
            if role not in self.roles:
                raise UnknownRole(self.name, role, self.roles)

        def decorate(fn: RoleFunction) -> RoleFunction:
            for role in roles:
                if role in self._functions:
                    raise RegistryError(f"component {self.name!r}: role {role!r} already has a function")
                self._functions[role] = fn
            return fn

        return decorate

    def inputs_for(self, role: str) -> tuple[Port, ...]:
        return tuple(p for p in self.inputs if p.applies_to(role))

    def outputs_for(self, role: str) -> tuple[Port, ...]:
        return tuple(p for p in self.outputs if p.applies_to(role))

    # ------------------------------------------------------------- validation

    def validate_params(self, params: Mapping[str, Any] | BaseModel | None) -> BaseModel:
        """Validate raw parameters into the params model.

        Raises :class:`InvalidParameters` whose ``param`` names the first bad
        field: an unknown one (``extra="forbid"``) or one with an invalid value.
        """
        if isinstance(params, self.params):
            return params
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise InvalidParameters(
                f"parameters must be an object (a dict), got {type(params).__name__}",
                component=self.name,
            )
        try:
            return self.params.model_validate(dict(params))
        except ValidationError as exc:
            raise _invalid_parameters(self, exc) from None

    def validate_inputs(self, role: str, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
        """Check required inputs are present, none is unknown, tables are tables."""
        inputs = dict(inputs or {})
        ports = {p.name: p for p in self.inputs_for(role)}
        for name in inputs:
            if name not in ports:
                raise InvalidInput(
                    f"component {self.name!r} role {role!r} has no input {name!r} "
                    f"(inputs: {', '.join(ports) or 'none'})",
                    input=name,
                )
        for name, port in ports.items():
            if name not in inputs or inputs[name] is None:
                if port.optional:
                    continue
                raise InvalidInput(
                    f"component {self.name!r} role {role!r} needs input {name!r} ({port.type})",
                    input=name,
                )
            if port.type == "table" and not _is_table(inputs[name]):
                raise InvalidInput(
                    f"input {name!r} must be a pandas DataFrame or pyarrow Table, "
                    f"got {type(inputs[name]).__name__}",
                    input=name,
                )
        return inputs

    # -------------------------------------------------------------------- run

    def run(
        self,
        ctx: Context,
        role: str,
        params: Mapping[str, Any] | BaseModel | None,
        inputs: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """Run ``role`` of this component in ``ctx`` and return its outputs.

        Validates everything first, then calls the role's function. If
        anything fails, the other parties are told through ``ctx.abort`` (so
        they stop waiting) and the exception is re-raised.
        """
        try:
            if role not in self.roles:
                raise UnknownRole(self.name, role, self.roles)
            if ctx.role != role:
                raise EngineError(f"context is for role {ctx.role!r}, asked to run role {role!r}")
            fn = self._functions.get(role)
            if fn is None:
                raise RegistryError(f"component {self.name!r} has no function for role {role!r}")
            model = self.validate_params(params)
            checked_inputs = self.validate_inputs(role, inputs)
            outputs = fn(ctx, model, checked_inputs)
            return self._check_outputs(role, outputs)
        except BaseException as exc:
            try:
                ctx.abort(_abort_message(exc))
            except Exception:  # noqa: BLE001 - a failing abort must not hide the real error
                pass
            raise

    def _check_outputs(self, role: str, outputs: Any) -> dict[str, Any]:
        if not isinstance(outputs, Mapping):
            raise EngineError(
                f"component {self.name!r} role {role!r} returned {type(outputs).__name__}, not a dict"
            )
        ports = {p.name: p for p in self.outputs_for(role)}
        for name in outputs:
            if name not in ports:
                raise EngineError(f"component {self.name!r} role {role!r} returned undeclared output {name!r}")
        for name, port in ports.items():
            if name not in outputs and not port.optional:
                raise EngineError(f"component {self.name!r} role {role!r} did not return output {name!r}")
        return dict(outputs)

    # --------------------------------------------------------------- describe

    def describe(self) -> dict[str, Any]:
        """The declaration as a JSON-serialisable dict (see module docs)."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "roles": [{"name": r, "description": ROLES[r]} for r in self.roles],
            "inputs": [p.describe(self.roles) for p in self.inputs],
            "outputs": [p.describe(self.roles) for p in self.outputs],
            "parameters": self.params.model_json_schema(),
        }

    def __repr__(self) -> str:
        return f"Component({self.name!r}, version={self.version!r}, roles={self.roles})"


def _invalid_parameters(component: Component, exc: ValidationError) -> InvalidParameters:
    errors = []
    for err in exc.errors(include_url=False):
        param = ".".join(str(part) for part in err["loc"]) or None
        if err["type"] == "extra_forbidden":
            known = ", ".join(component.params.model_fields)
            message = f"unknown parameter {param!r} (parameters: {known})"
        else:
            message = f"invalid parameter {param!r}: {err['msg']}"
        errors.append({"param": param, "message": message})
    first = errors[0]
    return InvalidParameters(
        first["message"], param=first["param"], component=component.name, errors=errors
    )


def _abort_message(exc: BaseException) -> str:
    """What the other parties are told: type and message, bounded in size."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 1000 else text[:997] + "..."


class Registry:
    """Components by name and version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._components: dict[tuple[str, str], Component] = {}

    def register(self, component: Component) -> Component:
        """Add a component; raises :class:`DuplicateComponent` for a taken name/version."""
        if not isinstance(component, Component):
            raise RegistryError(f"can only register a Component, got {type(component).__name__}")
        key = (component.name, component.version)
        with self._lock:
            if key in self._components:
                raise DuplicateComponent(component.name, component.version)
            self._components[key] = component
        return component

    def get(self, name: str, version: str | None = None) -> Component:
        """The component ``name`` at ``version`` (default: its highest version)."""
        with self._lock:
            versions = [c for (n, _), c in self._components.items() if n == name]
            names = sorted({n for n, _ in self._components})
        if version is not None:
            versions = [c for c in versions if c.version == version]
        if not versions:
            raise ComponentNotFound(name, version, names)
        return max(versions, key=lambda c: tuple(int(x) for x in c.version.split(".")))

    def components(self) -> list[Component]:
        """Every registered component, sorted by name then version."""
        with self._lock:
            items = list(self._components.values())
        return sorted(items, key=lambda c: (c.name, tuple(int(x) for x in c.version.split("."))))

    def describe(self, name: str | None = None, version: str | None = None) -> Any:
        """One component's description (when ``name`` is given) or a list of all."""
        if name is not None:
            return self.get(name, version).describe()
        return [c.describe() for c in self.components()]


_default: Registry | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry, holding the built-in components."""
    global _default
    with _default_lock:
        if _default is None:
            # Imported here: the components import this module.
            from engine.components import register_builtins

            registry = Registry()
            register_builtins(registry)
            _default = registry
        return _default


def register(component: Component) -> Component:
    """Register ``component`` in the default registry."""
    return default_registry().register(component)


def get_component(name: str, version: str | None = None) -> Component:
    """Look ``name`` up in the default registry."""
    return default_registry().get(name, version)


def describe(name: str | None = None, version: str | None = None) -> Any:
    """Describe one component, or all, from the default registry."""
    return default_registry().describe(name, version)
