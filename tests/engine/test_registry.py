"""engine.registry: declaring, registering, validating and describing components."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pydantic import BaseModel, ConfigDict, Field

from engine.errors import (
    ComponentNotFound,
    DuplicateComponent,
    EngineError,
    InvalidInput,
    InvalidParameters,
    PeerFailed,
    RegistryError,
    UnknownRole,
)
from engine.federation import InMemoryTransport
from engine.federation.context import Context
from engine.registry import Component, Port, Registry, default_registry, describe, get_component

REPO = Path(__file__).resolve().parents[2]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rounds: int = Field(3, ge=1, le=100, title="Rounds", description="How many rounds.")
    label: str = Field("y", min_length=1)


def make_component(name="demo", version="1.0.0", **overrides):
    options = dict(
        name=name, version=version, description="A demo.", roles=("guest", "host"), params=Params,
        inputs=[Port("data", "table", "Rows."), Port("model", "model", "Warm start.", roles=("guest",), optional=True)],
        outputs=[Port("metrics", "metrics", "Figures.")],
    )
    options.update(overrides)
    return Component(**options)


def context(role="guest"):
    return Context(session_id="s", party_id=role, role=role, parties={"guest": "guest", "host": "host"},
                   transport=InMemoryTransport(), default_timeout=1)


# ------------------------------------------------------------------- registry


def test_registering_the_same_name_and_version_twice_raises_naming_both():
    registry = Registry()
    registry.register(make_component())
    with pytest.raises(DuplicateComponent, match="'demo' version '1.0.0'"):
        registry.register(make_component())
    registry.register(make_component(version="1.1.0"))  # another version is fine


def test_getting_a_component_returns_its_highest_version_unless_one_is_asked_for():
    registry = Registry()
    for version in ("1.2.0", "1.10.0", "1.9.3"):
        registry.register(make_component(version=version))
    assert registry.get("demo").version == "1.10.0"
    assert registry.get("demo", "1.2.0").version == "1.2.0"


def test_an_unknown_component_raises_component_not_found_naming_it_and_listing_the_known_ones():
    registry = Registry()
    registry.register(make_component())
    with pytest.raises(ComponentNotFound, match="unknown component 'nope'.*available: demo") as info:
        registry.get("nope")
    assert info.value.name == "nope"
    with pytest.raises(ComponentNotFound, match="'demo' version '9.9.9'"):
        registry.get("demo", "9.9.9")


def test_the_default_registry_holds_the_builtin_psi_component():
    assert get_component("psi") is default_registry().get("psi")
    assert "psi" in [c.name for c in default_registry().components()]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"name": "Bad-Name"}, "component name"),
        ({"version": "1.0"}, "MAJOR.MINOR.PATCH"),
        ({"roles": ("guest", "arbiter")}, "unknown role 'arbiter'"),
        ({"roles": ()}, "no roles"),
        ({"params": dict}, "pydantic model"),
        ({"outputs": [Port("m", "metrics"), Port("m", "metrics")]}, "output name twice"),
        ({"inputs": [Port("d", "table", roles=("arbiter",))]}, "unknown role 'arbiter'"),
    ],
)
def test_a_malformed_declaration_is_refused_at_declaration_time(overrides, message):
    with pytest.raises(RegistryError, match=message):
        make_component(**overrides)


def test_a_params_model_that_allows_extra_fields_is_refused():
    class Loose(BaseModel):
        x: int = 1

    with pytest.raises(RegistryError, match="extra='forbid'"):
        make_component(params=Loose)


def test_ports_refuse_unknown_types():
    with pytest.raises(RegistryError, match="unknown type 'image'"):
        Port("data", "image")


# ----------------------------------------------------------------- parameters


def test_an_unknown_parameter_raises_invalid_parameters_naming_it():
    with pytest.raises(InvalidParameters, match="unknown parameter 'round'") as info:
        make_component().validate_params({"round": 3})
    assert info.value.param == "round"
    assert info.value.component == "demo"


def test_an_invalid_parameter_value_raises_invalid_parameters_naming_the_field():
    with pytest.raises(InvalidParameters, match="'rounds'") as info:
        make_component().validate_params({"rounds": 0})
    assert info.value.param == "rounds"
    assert [e["param"] for e in make_component_errors({"rounds": "x", "label": ""})] == ["rounds", "label"]


def make_component_errors(params):
    try:
        make_component().validate_params(params)
    except InvalidParameters as exc:
        return exc.errors
    raise AssertionError("expected InvalidParameters")


def test_parameters_that_are_not_an_object_are_refused():
    with pytest.raises(InvalidParameters, match="must be an object") as info:
        make_component().validate_params([1, 2])
    assert info.value.param is None


def test_valid_parameters_get_their_defaults():
    params = make_component().validate_params({"rounds": 5})
    assert (params.rounds, params.label) == (5, "y")


# ------------------------------------------------------------------------ run


def test_run_dispatches_to_the_function_of_the_role():
    component = make_component()
    component.role("guest")(lambda ctx, params, inputs: {"metrics": {"role": "guest", "rounds": params.rounds}})
    component.role("host")(lambda ctx, params, inputs: {"metrics": {"role": "host"}})
    out = component.run(context("guest"), "guest", {"rounds": 2}, {"data": pd.DataFrame({"a": [1]})})
    assert out == {"metrics": {"role": "guest", "rounds": 2}}


def test_run_refuses_an_unknown_role_missing_inputs_unknown_inputs_and_non_tables():
    component = make_component()
    component.role("guest", "host")(lambda ctx, params, inputs: {"metrics": {}})
    table = pd.DataFrame({"a": [1]})
    with pytest.raises(UnknownRole, match="no role 'arbiter'"):
        component.run(context(), "arbiter", {}, {})
    with pytest.raises(InvalidInput, match="needs input 'data'") as info:
        component.run(context(), "guest", {}, {})
    assert info.value.input == "data"
    with pytest.raises(InvalidInput, match="no input 'extra'"):
        component.run(context(), "guest", {}, {"data": table, "extra": table})
    with pytest.raises(InvalidInput, match="has no input 'model'"):
        component.run(context("host"), "host", {}, {"data": table, "model": {}})  # guest-only port
    with pytest.raises(InvalidInput, match="DataFrame or pyarrow Table"):
        component.run(context(), "guest", {}, {"data": [1, 2]})


def test_run_refuses_outputs_that_were_not_declared_or_are_missing():
    component = make_component()
    component.role("guest")(lambda ctx, params, inputs: {"metrics": {}, "surprise": 1})
    component.role("host")(lambda ctx, params, inputs: {})
    table = pd.DataFrame({"a": [1]})
    with pytest.raises(EngineError, match="undeclared output 'surprise'"):
        component.run(context("guest"), "guest", {}, {"data": table})
    with pytest.raises(EngineError, match="did not return output 'metrics'"):
        component.run(context("host"), "host", {}, {"data": table})


def test_a_failure_inside_run_is_announced_to_the_peers_before_it_propagates():
    component = make_component()
    component.role("guest", "host")(lambda ctx, params, inputs: {"metrics": {}})
    transport = InMemoryTransport()
    guest = Context(session_id="s", party_id="guest", role="guest",
                    parties={"guest": "guest", "host": "host"}, transport=transport, default_timeout=1)
    with pytest.raises(InvalidParameters):
        component.run(guest, "guest", {"rounds": -1}, {"data": pd.DataFrame()})
    with pytest.raises(PeerFailed, match="InvalidParameters: component 'demo'"):
        transport.pull("s", "host", "guest", "anything", deadline=0)


def test_a_role_cannot_be_given_two_functions():
    component = make_component()
    component.role("guest")(lambda *a: {})
    with pytest.raises(RegistryError, match="already has a function"):
        component.role("guest")(lambda *a: {})


# ------------------------------------------------------------------- describe


def test_describe_exports_every_component_as_json_that_round_trips():
    everything = describe()
    assert json.loads(json.dumps(everything)) == everything
    psi = next(c for c in everything if c["name"] == "psi")
    assert psi == describe("psi")
    assert [r["name"] for r in psi["roles"]] == ["guest", "host"]
    assert {p["name"]: p["type"] for p in psi["inputs"]} == {"data": "table"}
    assert {p["name"]: p["type"] for p in psi["outputs"]} == {"data": "table", "metrics": "metrics"}


def test_describe_gives_a_json_schema_a_form_can_be_rendered_from():
    schema = make_component().describe()["parameters"]
    rounds = schema["properties"]["rounds"]
    assert (rounds["title"], rounds["description"], rounds["minimum"], rounds["maximum"], rounds["default"]) == (
        "Rounds", "How many rounds.", 1, 100, 3)
    assert schema["additionalProperties"] is False
    psi_params = describe("psi")["parameters"]["properties"]
    assert psi_params["reveal"]["enum"] == ["both", "guest", "cardinality"]
    assert psi_params["min_overlap"]["minimum"] == 0


def test_describe_marks_role_specific_and_optional_ports():
    inputs = {p["name"]: p for p in make_component().describe()["inputs"]}
    assert inputs["data"]["roles"] == ["guest", "host"] and not inputs["data"]["optional"]
    assert inputs["model"]["roles"] == ["guest"] and inputs["model"]["optional"]


def test_the_engine_never_imports_django():
    code = (
        "import sys, engine, engine.registry, engine.federation, engine.wire, engine.io, "
        "engine.crypto.ecc, engine.components.psi, engine.__main__\n"
        "engine.registry.describe()\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django'], 'django imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
