import pytest

from autograder.checks import Probe
from tests.apps.library import make_app


@pytest.fixture
def probe_for(fresh_database):
    """probe_for(variant, **make_app_kwargs) -> an unstarted Probe on a fresh database."""

    def make(variant: str = "correct", **kw) -> Probe:
        return Probe(make_app(fresh_database("chk"), variant=variant, **kw))

    return make
