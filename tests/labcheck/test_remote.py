"""A lab that holds the release only, checked by the course's check server (remote.py, server.py).

The server runs in this process on a free port with a real CheckPool (the real worker, real
grading); the lab's side is RemoteChecks reading a notebook from a folder of its own. What a
hostile caller may try — no token, a wrong one, a huge body, a path that climbs out, a second
check while one runs — gets a refusal in one sentence; an answer is the same report the lab's
own checks give.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path, PurePosixPath

import httpx
import pytest
from tornado.httpserver import HTTPServer

from autograder.labcheck import remote, server
from autograder.labcheck.service import CheckService
from tests.cli_support import free_port
from tests.labcheck.test_service import LESSON, SHOWN, with_answer

TOKEN = "t" * 32
RIGHT = "async def get_db():\n    async with SessionLocal() as s:\n        yield s\n        await s.commit()\n"


async def serving(tmp_path: Path, port: int) -> tuple[server.CheckPool, HTTPServer]:
    spool = tmp_path / "spool"
    spool.mkdir()
    pool = server.CheckPool(1, spool)
    http_server = server.make_app(server.SharedToken(TOKEN), pool).listen(port, address="127.0.0.1")
    return pool, http_server


def lab_with(tmp_path: Path, source: str) -> Path:
    lab = tmp_path / "lab"
    (lab / LESSON).mkdir(parents=True)
    (lab / SHOWN).write_text(json.dumps(with_answer(source)))
    return lab


@pytest.mark.timeout(300)
def test_a_release_only_lab_gets_the_servers_verdicts_and_hostile_requests_are_refused(tmp_path):
    port = free_port()
    lab = lab_with(tmp_path, RIGHT)
    url = f"http://127.0.0.1:{port}/"

    async def scenario() -> dict:
        pool, http_server = await serving(tmp_path, port)
        results: dict = {}
        try:
            checks = remote.RemoteChecks(lab, url, TOKEN)
            results["right"] = await checks.check(SHOWN)
            results["wrong token"] = await remote.RemoteChecks(lab, url, "x" * 32).check(SHOWN)
            async with httpx.AsyncClient(timeout=60) as client:
                post = client.post
                auth = {"Authorization": f"token {TOKEN}"}
                results["no token"] = (await post(url + "check", json={"path": SHOWN, "notebook": "{}"})).status_code
                results["not json"] = (await post(url + "check", content=b"{", headers=auth)).status_code
                big = {"path": SHOWN, "notebook": "x" * (server.MAX_NOTEBOOK_BYTES + 1)}
                results["too big"] = (await post(url + "check", json=big, headers=auth)).status_code
                # While one check of this caller runs, a second is refused rather than queued.
                notebook = (lab / SHOWN).read_text()
                payload = {"path": SHOWN, "notebook": notebook}
                first = asyncio.ensure_future(post(url + "check", json=payload, headers=auth))
                await asyncio.sleep(0.5)
                second = await post(url + "check", json=payload, headers=auth)
                results["second at once"] = (second.status_code, second.json())
                results["first"] = (await first).json()
                climbing = {"path": "../../../etc/passwd.ipynb", "notebook": notebook}
                results["climbing"] = (await post(url + "check", json=climbing, headers=auth)).json()
            results["spool left"] = sorted(p.name for p in (tmp_path / "spool").iterdir())
        finally:
            http_server.stop()
            await pool.close()
        return results

    results = asyncio.run(scenario())
    right = results["right"]
    assert right["ok"], right
    exercises = {e["name"]: e for e in right["report"]["exercises"]}
    assert exercises["test_get_db"]["passed"] and exercises["test_get_db"]["points"] == 4
    assert "BEGIN HIDDEN TESTS" not in json.dumps(right)
    assert results["wrong token"] == {"ok": False, "error": "The checker did not accept this lab's credential."}
    assert results["no token"] == 403 and results["not json"] == 400
    assert results["too big"] in (400, 413)  # tornado's body limit, or ours
    assert results["second at once"][0] == 429 and "already running" in results["second at once"][1]["error"]
    assert results["first"]["ok"], results["first"]
    # Stays in the spool, named safely: no lesson is called "etc", so there is nothing to check.
    assert results["climbing"] == {
        "ok": False,
        "error": "etc/passwd.ipynb is not one of the course's lessons, so there are no checks for it; "
        "open the lesson's own notebook (e.g. 01_session_dependency/01_session_dependency.ipynb).",
    }
    assert results["spool left"] == [], "every check's folder is removed"


def test_names_from_callers_never_leave_the_spool():
    for shown, expected in {
        "01_x/01_x.ipynb": "01_x/01_x.ipynb",
        "a/b/01_x/01_x.ipynb": "01_x/01_x.ipynb",
        "../../etc/passwd.ipynb": "etc/passwd.ipynb",
        "../..": "_/notebook.ipynb",
        "/": "_/notebook.ipynb",
        "": "notebook.ipynb",
        "x/evil name;rm -rf.ipynb": "x/evil_name_rm_-rf.ipynb",
        "01_x/notes.txt": "01_x/notebook.ipynb",
    }.items():
        safe = server.safe_relative(shown)
        assert str(safe) == expected, (shown, safe)
        assert ".." not in PurePosixPath(safe).parts and not safe.is_absolute()


def test_an_unreachable_checker_is_one_sentence(tmp_path):
    lab = lab_with(tmp_path, RIGHT)
    reply = asyncio.run(remote.RemoteChecks(lab, f"http://127.0.0.1:{free_port()}/", TOKEN).check(SHOWN))
    assert reply["ok"] is False and "cannot be reached" in reply["error"], reply


def test_the_lab_chooses_the_checker_it_can_offer(tmp_path, monkeypatch):
    monkeypatch.delenv(remote.ENV_CHECK_URL, raising=False)
    assert type(remote.service_for(tmp_path)) is CheckService  # this checkout holds solutions/

    monkeypatch.setattr(remote, "project_root", lambda: tmp_path)  # an installation without solutions/
    unavailable = remote.service_for(tmp_path)
    lab = lab_with(tmp_path, RIGHT)
    reply = asyncio.run(unavailable.check(str((lab / SHOWN).relative_to(tmp_path))))
    assert reply["ok"] is False and "release only" in reply["error"], reply

    monkeypatch.setenv(remote.ENV_CHECK_URL, "http://checker:8890/")
    monkeypatch.setenv(remote.ENV_HUB_TOKEN, "hub-token")
    monkeypatch.delenv(remote.ENV_CHECK_TOKEN, raising=False)
    chosen = remote.service_for(tmp_path)
    assert isinstance(chosen, remote.RemoteChecks) and chosen.url == "http://checker:8890/check"
    assert chosen._token == "hub-token"  # a hub learner server sends its own API token


def test_the_server_refuses_to_start_without_a_real_secret(monkeypatch):
    for name in (server.ENV_HUB_API_URL, server.ENV_HUB_TOKEN):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(remote.ENV_CHECK_TOKEN, "short")
    with pytest.raises(Exception, match="at least 16 characters"):
        server.identify_from_environment()
    monkeypatch.setenv(remote.ENV_CHECK_TOKEN, TOKEN)
    assert isinstance(server.identify_from_environment(), server.SharedToken)
