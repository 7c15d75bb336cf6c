"""Faults in a workshop: a learner's database quota, a killed server, a restarted hub, a connection flood.

First the quota watchdog (`autograder.hub.watchdog`) alone, polled by hand against the bundled PostgreSQL
with learners' roles as the hub makes them and a tiny quota. Then one real hub (`autograder hub`, as
`make hub` runs it, with a small quota checked every second) shared by the module's tests, in order: a
learner's server SIGKILLed mid-lesson comes back with their work and database; the hub stopped as Ctrl-C
stops it and started again keeps its users and their passwords; a learner opening 100 connections is
refused past their limit while another learner works; a learner filling their database past the quota is
blocked (the hub's log says so) while another writes, and writes again once they dropped the data.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import signal
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from autograder.db import admin
from autograder.hub import provision
from autograder.hub.client import Participant
from autograder.hub.watchdog import MiB, QuotaWatchdog
from tests.hub.support import PASSWORD, Hub, needs_root, provisioned, running_hub, server_pid, spawn_all, spawn_and_wait
from tests.hub.test_provision import connect, hub_admin_url, setup_lesson  # noqa: F401 (a fixture)

pytestmark = needs_root

FILLER_MB = 40  # what a learner writes to pass the quota
# ----------------------------------------------------------------------------------------------------------
# The watchdog alone. An empty lesson database takes ~7.5 MiB: two of them plus the filler pass 32 MiB.
UNIT_QUOTA = 32 * MiB


def fill(mb: int) -> str:
    """SQL that writes about `mb` MiB (rows of 900 characters: below TOAST's threshold, never compressed)."""
    return f"CREATE TABLE filler AS SELECT repeat('x', 900) AS pad FROM generate_series(1, {mb * 1100})"


@pytest.fixture
async def learners(hub_admin_url):  # noqa: F811
    async with provisioned(hub_admin_url, ("q", "r")) as made:
        yield made


async def backend_alive(admin_url, pid: int) -> bool:
    conn = await admin.connect(admin_url)
    try:
        for _ in range(50):  # (pg_terminate_backend signals: the backend leaves within moments)
            if not await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
                return False
            await asyncio.sleep(0.1)
        return True
    finally:
        await conn.close()


async def refuses_writes(url: str) -> bool:
    conn = await connect(url)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS probe (n int); INSERT INTO probe VALUES (1)")
        return False
    except asyncpg.ReadOnlySQLTransactionError:
        return True
    finally:
        await conn.close()


async def test_the_quota_blocks_only_the_learner_over_it_until_they_drop_data(learners, hub_admin_url, monkeypatch):  # noqa: F811
    _, (q, r) = learners
    said: list[str] = []
    dog = QuotaWatchdog(hub_admin_url, UNIT_QUOTA, say=said.append)
    try:
        db_q, db_r = setup_lesson(monkeypatch, q), setup_lesson(monkeypatch, r)
        await dog.check()
        assert said == [] and not dog.blocked

        held = await connect(db_q.url)  # a session of q's, open while they pass the quota
        held_pid = held.get_server_pid()
        await held.execute(fill(FILLER_MB))
        await dog.check()
        assert len(said) == 1 and f"{q.username} is over their quota" in said[0], said
        assert r.username not in said[0]
        held.terminate()
        assert not await backend_alive(hub_admin_url, held_pid)  # ended by the watchdog
        assert await refuses_writes(db_q.url)
        assert not await refuses_writes(db_r.url)  # the other learner is untouched
        reader = await connect(db_q.url)
        try:
            assert await reader.fetchval("SELECT count(*) FROM filler") > 0  # q still reads their work
        finally:
            await reader.close()
        await dog.check()
        assert len(said) == 1  # said once

        # Recovery: drop the table in a transaction that asks to write (a DELETE would free no disk).
        conn = await connect(db_q.url)
        try:
            await conn.execute("BEGIN READ WRITE; DROP TABLE filler; COMMIT")
        finally:
            await conn.close()
        await dog.check()
        assert len(said) == 2 and f"{q.username} is back under their quota" in said[1], said
        assert not await refuses_writes(db_q.url) and not dog.blocked
    finally:
        await dog.close()


async def test_a_learner_who_lifts_read_only_is_locked_then_recovers_by_resetting_the_lesson(
    learners,
    hub_admin_url,  # noqa: F811
    monkeypatch,
):
    _, (q, _) = learners
    said: list[str] = []
    dog = QuotaWatchdog(hub_admin_url, UNIT_QUOTA, say=said.append, slack=4 * MiB, lock_seconds=0.5)
    try:
        db_q = setup_lesson(monkeypatch, q)
        scratch = admin.urls.render(admin.recreate_database(make_url(q.url), f"{q.role}__scratch", private=True))
        conn = await connect(db_q.url)
        try:
            await conn.execute(fill(FILLER_MB))
        finally:
            await conn.close()
        await dog.check()
        assert await refuses_writes(db_q.url)

        conn = await connect(db_q.url)  # lifts the default and keeps writing
        try:
            await conn.execute("SET default_transaction_read_only = off")
            await conn.execute("CREATE TABLE more AS SELECT * FROM filler")
        finally:
            await conn.close()
        await dog.check()
        assert "kept writing while over their quota" in said[-1] and q.username in said[-1], said
        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):  # not permitted to log in
            await connect(db_q.url)
        await asyncio.sleep(0.6)
        await dog.check()
        assert "may sign in to the database again" in said[-1], said
        assert await refuses_writes(db_q.url)

        # The hub restarted (a new watchdog, nothing in memory) finds the block in the server; q resets the lesson
        # database (its notebook's first cell: dropped and created again, empty) and is let write again.
        await dog.close()
        dog = QuotaWatchdog(hub_admin_url, UNIT_QUOTA, say=said.append)
        await dog.check()
        assert f"{q.username} is over their quota" in said[-1] and await refuses_writes(scratch)
        setup_lesson(monkeypatch, q)
        await dog.check()
        assert f"{q.username} is back under their quota" in said[-1], said
        assert not await refuses_writes(db_q.url) and not await refuses_writes(scratch)
    finally:
        await dog.close()


# ----------------------------------------------------------------------------------------------------------
# One real hub for the tests below (in this order), its quota checked every second.
HUB_QUOTA_MB = 32
LESSON = "01_session_dependency"
MID_LESSON = f"""
import asyncpg
from autograder import lesson
from autograder.db import admin, url
name = lesson.setup({LESSON!r}).name
conn = await asyncpg.connect(**admin.asyncpg_params(url.configured_url().set(database=name)))
await conn.execute("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('mine')")
await conn.execute("BEGIN; INSERT INTO kept VALUES ('not committed')")  # a transaction open when it dies
print(name)
"""


@pytest.fixture(scope="module")
def hub():
    for running in running_hub(cull_idle=0, args=["--db-quota-mb", str(HUB_QUOTA_MB), "--db-quota-every", "1"]):
        results: dict[str, Any] = spawn_all(running, (running.a, running.b))
        for name in (running.a, running.b):
            status = results[name][1]
            assert status is not None and status.status_code == 200, running.log.read_text()[-3000:]
        yield running


def learner_url(name: str, database: str | None = None) -> str:
    """The learner's own credentials, as their terminal finds them (~/.course-database.env)."""
    env = Path(pwd.getpwnam(name).pw_dir) / ".course-database.env"
    found = dict(line.split("=", 1) for line in env.read_text().splitlines() if "=" in line)
    url = make_url(found["DATABASE_URL"])
    return admin.urls.render(url.set(database=database) if database else url)


def lesson_database(name: str) -> str:
    return f"{provision.role_name(name)}__lesson_{LESSON}"


async def notes(name: str) -> list[str]:
    conn = await connect(learner_url(name, lesson_database(name)))
    try:
        return list(await conn.fetchval("SELECT array_agg(note ORDER BY note) FROM kept"))
    finally:
        await conn.close()


def kernels_of(name: str) -> list[int]:
    uid = pwd.getpwnam(name).pw_uid
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and proc.stat().st_uid == uid and b"ipykernel" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (waited {timeout:g} s)")
        time.sleep(0.2)


def sign_in_status(hub: Hub, name: str, password: str) -> int:
    with Participant(hub.url, name, password) as participant:
        return participant.sign_in().status_code


def stop_my_server(client: httpx.Client, name: str) -> httpx.Response:
    """The hub home page's "Stop My Server" button: an API request with the page's XSRF token."""
    home = client.get("/hub/home")
    token = re.search(r'xsrf_token: "([^"]*)"', home.text)
    assert token is not None, home.text[:500]
    return client.delete(f"/hub/api/users/{name}/server", headers={"X-XSRFToken": token.group(1)})


def spawn_again(hub: Hub, name: str) -> float:
    results: dict[str, Any] = {}
    spawn_and_wait(hub, name, results)  # signs in (the password chosen at first sign-in), Start My Server
    signed, status, elapsed, _, _ = results[name]
    assert signed.status_code != 403, signed.text[:500]
    assert status is not None and status.status_code == 200, hub.log.read_text()[-3000:]
    return float(elapsed)


async def test_a_server_killed_mid_lesson_comes_back_with_the_work_and_the_database(hub):
    a = hub.a
    workspace = Path(pwd.getpwnam(a).pw_dir) / "workspace"
    with Participant(hub.url, a, PASSWORD) as learner:
        learner.sign_in()
        assert learner.server_answers()
        saved = learner.client.put(  # the lab saving a file
            f"/user/{a}/api/contents/notes.md",
            json={"type": "file", "format": "text", "content": "my notes\n"},
            headers=learner.server_xsrf(),
        )
        assert saved.status_code in (200, 201), saved.text[:500]
        try:
            kernel = learner.start_kernel()
        except RuntimeError:  # (its heartbeat missed on a loaded machine: "Kernel died before replying")
            kernel = learner.start_kernel()
        ran = await asyncio.to_thread(kernel.run, MID_LESSON, 120)
        assert ran.status == "ok", ran.error
        assert "".join(ran.outputs).strip() == lesson_database(a)
        orphans = kernels_of(a)
        assert orphans

        pid = server_pid(a)
        assert pid is not None
        os.killpg(os.getpgid(pid), signal.SIGKILL)  # the server's whole process group, as a crash or the OOM killer
        kernel.close()
        wait_for(lambda: server_pid(a) is None, 10, "the killed server is still there")
        # The hub notices by itself at its next poll of the server (Spawner.poll_interval); the learner sooner:
        # their lab answers "Your server appears to be down. Try restarting it from the hub", and they do.
        down = learner.client.get(f"/user/{a}/lab")
        assert down.status_code == 503 and "Your server appears to be down" in down.text
        stopped = stop_my_server(learner.client, a)
        assert stopped.status_code in (202, 204), stopped.text[:500]
    # The kernel (a session of its own) sees its server gone and ends: its open transaction is rolled back.
    wait_for(lambda: not set(orphans) & set(kernels_of(a)), 20, "the dead server's kernel lingers")

    elapsed = spawn_again(hub, a)
    print(f"{a}: respawned {elapsed:.1f} s after the kill")
    assert (workspace / "notes.md").read_text() == "my notes\n"
    assert await notes(a) == ["mine"]


async def test_the_hub_restarted_keeps_its_users_and_their_passwords(hub):
    a = hub.a
    hub.stop()  # as Ctrl-C
    assert hub.proc is not None and hub.proc.returncode == 0, hub.log.read_text()[-3000:]
    assert server_pid(a) is None
    started = time.monotonic()
    hub.start()  # the same state folder
    print(f"hub restarted in {time.monotonic() - started:.1f} s")
    # Their password is still theirs: another one is refused (a hub that forgot them would take it as a first).
    assert await asyncio.to_thread(sign_in_status, hub, a, "another-password") == 403
    spawn_again(hub, a)
    assert (Path(pwd.getpwnam(a).pw_dir) / "workspace" / "notes.md").read_text() == "my notes\n"
    assert await notes(a) == ["mine"]


async def test_100_connections_are_refused_past_the_limit_and_another_learner_still_works(hub):
    a, b = hub.a, hub.b
    params = admin.asyncpg_params(make_url(learner_url(a, lesson_database(a))))
    attempts = await asyncio.gather(*(asyncpg.connect(**params) for _ in range(100)), return_exceptions=True)
    opened = [c for c in attempts if isinstance(c, asyncpg.Connection)]
    refused = [e for e in attempts if not isinstance(e, asyncpg.Connection)]
    try:
        assert 0 < len(opened) <= provision.CONNECTION_LIMIT, (len(opened), refused[:3])
        assert all(isinstance(e, asyncpg.TooManyConnectionsError) for e in refused), {repr(e) for e in refused}
        assert "too many connections for role" in str(refused[0])
        other = await connect(learner_url(b))
        try:
            assert await other.fetchval("SELECT 41 + 1") == 42
            # The server has room for every participant (instructor, a, b) at their own limit at once.
            room = provision.max_connections_for(3)
            assert room == 3 * provision.CONNECTION_LIMIT + 20 or room == 100
            assert int(await other.fetchval("SHOW max_connections")) == room
        finally:
            await other.close()
        assert (await asyncio.to_thread(httpx.get, f"{hub.url}/hub/api", timeout=10)).status_code == 200
    finally:
        await asyncio.gather(*(c.close() for c in opened))


def said(hub: Hub, sentence: str) -> bool:
    return sentence in hub.log.read_text()


async def test_a_learner_past_the_quota_is_blocked_alone_and_writes_again_after_dropping_data(hub):
    a, b = hub.a, hub.b
    own = learner_url(a, lesson_database(a))
    conn = await connect(own)
    try:
        await conn.execute(fill(FILLER_MB))
    finally:
        await conn.close()
    await asyncio.to_thread(wait_for, lambda: said(hub, f"database quota: {a} is over their quota"), 15, "no block")
    assert not said(hub, f"database quota: {b}")
    assert await refuses_writes(own)

    # The other learner keeps working: resets a lesson database (as its first cell does) and writes in it.
    theirs = admin.urls.render(
        admin.recreate_database(
            make_url(learner_url(b)), f"{provision.role_name(b)}__lesson_00_foundations", private=True
        )
    )
    assert not await refuses_writes(theirs)

    conn = await connect(own)  # a drops the data: a transaction that asks to write
    try:
        await conn.execute("BEGIN READ WRITE; DROP TABLE filler; COMMIT")
    finally:
        await conn.close()
    await asyncio.to_thread(wait_for, lambda: said(hub, f"database quota: {a} is back under"), 15, "not lifted")
    assert not await refuses_writes(own)
    assert await notes(a) == ["mine"]
