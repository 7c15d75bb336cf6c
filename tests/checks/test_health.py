from autograder.checks import Call, Probe
from autograder.checks.health import healthy_when_up, unhealthy_when_down, unreachable_url
from tests.apps.health import make_app

HEALTH = Call.get("/health")


async def verdicts_for(fresh_database, variant):
    url = fresh_database("hlt")
    async with Probe(make_app(url, variant)) as probe:
        up = await healthy_when_up(probe, HEALTH)
    async with Probe(make_app(unreachable_url(url), variant), db_url=url) as probe:
        down = await unhealthy_when_down(probe, HEALTH)
    return up, down


async def test_a_truthful_health_check_passes_both(fresh_database):
    up, down = await verdicts_for(fresh_database, "correct")
    assert up, str(up)
    assert down, str(down)
    assert "503" in down.actual and "unhealthy" in down.actual


async def test_the_reference_200_unhealthy_is_rejected(fresh_database):
    up, down = await verdicts_for(fresh_database, "reference_200")
    assert up, str(up)
    assert not down
    assert "GET /health -> 200" in down.actual and '"unhealthy"' in down.actual
    assert "read the status, not the JSON" in down.hint and "503" in down.hint


async def test_a_static_200_is_rejected_when_up_and_down(fresh_database):
    up, down = await verdicts_for(fresh_database, "static")
    assert not up
    assert "0 SQL statement(s) ran" in up.actual and "SELECT 1" in up.hint
    assert not down


async def test_an_unhandled_error_is_rejected(fresh_database):
    up, down = await verdicts_for(fresh_database, "unhandled")
    assert up, str(up)
    assert not down
    assert "GET /health -> 500" in down.actual
    assert "bare 500" in down.hint


def test_unreachable_url_keeps_credentials_and_database():
    url = unreachable_url("postgresql+asyncpg://u:pw@db:5432/lesson_x?host=/tmp")
    assert url.startswith("postgresql+asyncpg://u:pw@/lesson_x?host=")
    assert "nonexistent" in url
