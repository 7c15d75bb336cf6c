import pytest

from autograder.checks import Probe
from tests.apps.library import make_app


@pytest.fixture
def probes(fresh_database):
    """probes(make_app, prefix, **defaults) -> make(variant="correct", **kw): an unstarted Probe on
    `make_app(url, variant=variant, **defaults, **kw)`, each on a fresh database named after `prefix`."""

    def factory(make_app, prefix: str, **defaults):
        def make(variant: str = "correct", **kw) -> Probe:
            return Probe(make_app(fresh_database(prefix), variant=variant, **{**defaults, **kw}))

        return make

    return factory


@pytest.fixture
def probe_for(probes):
    """probe_for(variant, **make_app_kwargs) -> an unstarted Probe of the library app on a fresh database."""
    return probes(make_app, "chk")
