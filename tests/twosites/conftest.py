"""Two real sites (processes) paired over gRPC with mutual TLS on loopback."""

import pytest

from .harness import start_pair


@pytest.fixture(scope="module")
def sites(tmp_path_factory):  # one pair per test module
    bank, telco = start_pair(tmp_path_factory.mktemp("sites"))
    yield bank, telco
    for site in (bank, telco):
        site.stop()
