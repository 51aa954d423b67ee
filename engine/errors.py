"""The engine's exception hierarchy.

Every error the engine raises on purpose is an :class:`EngineError`, so a caller
(the runner CLI, the job service) can tell "the job failed for a reason we can
explain to the user" from "the engine has a bug" with a single ``except``.

Messages are written for the person who configured the job: they name the
component, parameter, input, column or message involved.

Privacy note: when a role fails, its error message (``"Type: message"``) is sent
to the other parties so that they fail with :class:`PeerFailed` instead of
waiting for a timeout. Never put data values (ids, features, labels) in an
error message; counts and column names are fine.

::

    EngineError
    ├── RegistryError
    │   ├── ComponentNotFound
    │   ├── DuplicateComponent
    │   └── UnknownRole
    ├── InvalidParameters          (.param names the offending field)
    ├── InvalidInput               (.input names the offending input)
    │   ├── MissingColumn          (.column names the column, as below)
    │   ├── NotNumeric
    │   ├── MissingValues
    │   │   └── AllMissingColumn
    │   ├── ConstantColumn
    │   └── SingleClass
    ├── WireError                  (malformed or unencodable wire data)
    ├── CryptoError                (invalid group element, ...)
    ├── ProtocolError              (a peer sent something it should not have)
    ├── PolicyViolation            (a reveal policy refused to release a result)
    └── FederationError
        ├── FederationTimeout      (.key names the message)
        ├── PeerFailed             (.peer, .peer_message)
        └── DuplicateMessage
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class EngineError(Exception):
    """Base class of every error the engine raises deliberately."""


# --------------------------------------------------------------------- registry


class RegistryError(EngineError):
    """A problem looking up or declaring a component."""


class ComponentNotFound(RegistryError):
    """No component is registered under that name (and version)."""

    def __init__(self, name: str, version: str | None = None, available: Sequence[str] = ()):
        self.name = name
        self.version = version
        self.available = tuple(available)
        what = f"{name!r}" if version is None else f"{name!r} version {version!r}"
        hint = f" (available: {', '.join(self.available)})" if self.available else ""
        super().__init__(f"unknown component {what}{hint}")


class DuplicateComponent(RegistryError):
    """A component with the same name and version is already registered."""

    def __init__(self, name: str, version: str):
        self.name = name
        self.version = version
        super().__init__(f"component {name!r} version {version!r} is already registered")


class UnknownRole(RegistryError):
    """A component was asked to run as a role it does not declare."""

    def __init__(self, component: str, role: str, roles: Sequence[str]):
        self.component = component
        self.role = role
        self.roles = tuple(roles)
        super().__init__(
            f"component {component!r} has no role {role!r} (roles: {', '.join(self.roles)})"
        )


# ------------------------------------------------------------ parameters/inputs


class InvalidParameters(EngineError):
    """Parameters failed validation.

    ``param`` is the dotted path of the first offending field (``"min_overlap"``,
    ``"model.layers.0"``) or ``None`` when the parameters as a whole are wrong
    (e.g. not a JSON object). ``errors`` lists every problem found, each as
    ``{"param": ..., "message": ...}``.
    """

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        component: str | None = None,
        errors: Sequence[dict[str, Any]] = (),
    ):
        self.param = param
        self.component = component
        self.errors = list(errors)
        prefix = f"component {component!r}: " if component else ""
        super().__init__(prefix + message)


class InvalidInput(EngineError):
    """An input is missing, of the wrong type, or lacks a required column."""

    def __init__(self, message: str, *, input: str | None = None, column: str | None = None):
        self.input = input
        self.column = column
        super().__init__(message)


# ----------------------------------------------------------------- input tables
#
# One class per way a column of an input table can be unusable, raised by every
# component that reads tables, so the same bad table gives the same error
# whichever component reads it. Each names the column and the input port, never
# a value; ``hint`` is the caller's advice, put after a colon.


def _advised(message: str, hint: str) -> str:
    return f"{message}: {hint}" if hint else message


class MissingColumn(InvalidInput):
    """A column the job names (or a model was fitted with) is not in the table."""

    def __init__(self, column: str, *, input: str = "data", hint: str = ""):
        super().__init__(_advised(f"input {input!r} has no column {column!r}", hint), input=input, column=column)


class NotNumeric(InvalidInput):
    """A column holds something other than what it must hold: numbers, finite numbers, 0/1 labels."""

    def __init__(self, column: str, expected: str = "numbers", *, input: str = "data", hint: str = ""):
        self.expected = expected
        super().__init__(
            _advised(f"column {column!r} of input {input!r} must hold {expected}", hint), input=input, column=column
        )


class MissingValues(InvalidInput):
    """A column that must be complete has missing (or infinite) values; ``count`` says how many."""

    def __init__(self, column: str, count: int | None = None, *, input: str = "data", hint: str = ""):
        self.count = count
        if count:
            problem = f"has {count} missing or infinite value{'' if count == 1 else 's'}"
        else:
            problem = "has missing values"
        super().__init__(_advised(f"column {column!r} of input {input!r} {problem}", hint), input=input, column=column)


class AllMissingColumn(MissingValues):
    """Every value of a column is missing, so nothing can be fitted on it.

    A kind of :class:`MissingValues`, so a caller refusing missing values
    catches this case too.
    """

    def __init__(self, column: str, *, input: str = "data", hint: str = ""):
        self.count = None
        # MissingValues would say "has missing values"; this says "only".
        InvalidInput.__init__(
            self, _advised(f"column {column!r} of input {input!r} has only missing values", hint), input=input,
            column=column,
        )


class ConstantColumn(InvalidInput):
    """A column holds one value only, so it cannot be scaled, binned or split on."""

    def __init__(self, column: str, *, input: str = "data", hint: str = ""):
        super().__init__(_advised(f"column {column!r} of input {input!r} is constant", hint), input=input,
                         column=column)


class SingleClass(InvalidInput):
    """The label column holds one class only: nothing can be learnt or measured."""

    def __init__(self, column: str, *, input: str = "data", hint: str = "two classes (0 and 1) are needed"):
        super().__init__(
            _advised(f"label column {column!r} of input {input!r} holds a single class", hint),
            input=input,
            column=column,
        )


# -------------------------------------------------------------- wire and crypto


class WireError(EngineError):
    """Data could not be encoded to, or decoded from, the wire format.

    The wire decoder raises only this exception, whatever bytes it is fed.
    """


class CryptoError(EngineError):
    """A cryptographic operation was given invalid input (e.g. not a group element)."""


class ProtocolError(EngineError):
    """A peer sent a well-formed message with unexpected content.

    Examples: parameters that differ between parties, a set size that does not
    match what was announced, a permutation that is not one.
    """


class PolicyViolation(EngineError):
    """A reveal policy (e.g. ``min_overlap``) refused to release a result."""


# ------------------------------------------------------------------ federation


class FederationError(EngineError):
    """A problem exchanging messages between parties."""


class FederationTimeout(FederationError):
    """A message did not arrive before its deadline.

    ``key`` is the full namespaced message name (e.g. ``"psi/blinded.3"``),
    ``src`` the party it was expected from, ``timeout`` the seconds waited.
    """

    def __init__(self, key: str, src: str, timeout: float | None):
        self.key = key
        self.src = src
        self.timeout = timeout
        waited = f" within {timeout:g} s" if timeout is not None else ""
        super().__init__(f"message {key!r} from party {src!r} did not arrive{waited}")


class PeerFailed(FederationError):
    """Another party of the session failed; carries its error message."""

    def __init__(self, peer: str, peer_message: str):
        self.peer = peer
        self.peer_message = peer_message
        super().__init__(f"party {peer!r} failed: {peer_message}")


class DuplicateMessage(FederationError):
    """The same message name was sent twice in one namespace.

    Message names must be unique per (session, sender, receiver); use
    ``ctx.sub(...)`` or ``ctx.range(...)`` to give repeated exchanges distinct names.
    """
