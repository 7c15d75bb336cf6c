"""The lab's check service with its real worker (autograder/labcheck/service.py, worker.py).

Real grading throughout: the worker grades through grade_notebook, sandboxed, on the
course server. What a learner may do — check a broken notebook, click twice, name a file
outside the lab, have the checker die — gets an answer, never a hang.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import os
import signal
from pathlib import Path

import pytest

from autograder.labcheck.service import CheckService
from autograder.labcheck.worker import ENV_CELL_TIMEOUT
from tests.cli_support import REPO

LESSON = "01_session_dependency"
RELEASE = REPO / "notebooks" / LESSON / f"{LESSON}.ipynb"
SHOWN = f"{LESSON}/{LESSON}.ipynb"


def with_answer(source: str) -> dict:
    nb = json.loads(RELEASE.read_text())
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "ex_get_db":
            cell["source"] = source
    return nb


@pytest.fixture
def lab_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_CELL_TIMEOUT, "5")  # the worker inherits it: an endless loop ends in 5 s
    (tmp_path / LESSON).mkdir()
    return tmp_path


def write(folder: Path, nb: dict | str) -> Path:
    path = folder / SHOWN
    path.write_text(nb if isinstance(nb, str) else json.dumps(nb))
    return path


async def checked(service: CheckService, *paths: str) -> list[dict]:
    try:
        return list(await asyncio.gather(*(service.check(p) for p in paths)))
    finally:
        await service.close()


@pytest.mark.timeout(300)
def test_broken_notebooks_get_a_verdict_and_the_learners_file_is_not_changed(lab_folder):
    service = CheckService(lab_folder)
    cases = {
        "invalid JSON": ('{"cells": [', "not valid JSON"),
        "syntax error": (with_answer("async def get_db(:\n"), "get_db"),
        "endless loop": (with_answer("while True:\n    pass\n"), "5"),
    }

    async def run_all() -> dict[str, dict]:
        answers = {}
        try:
            for name, (nb, _) in cases.items():
                path = write(lab_folder, nb)
                before = hashlib.sha256(path.read_bytes()).hexdigest()
                answers[name] = await service.check(SHOWN)
                assert hashlib.sha256(path.read_bytes()).hexdigest() == before, f"{name}: the check wrote the file"
        finally:
            await service.close()
        return answers

    answers = asyncio.run(run_all())
    for name, (_, says) in cases.items():
        reply = answers[name]
        assert reply["ok"], (name, reply)
        report = reply["report"]
        assert report["score"] == 0 and report["max_score"] == 7, (name, report)
        text = report["verdict"] + " ".join(e["message"] for e in report["exercises"])
        assert says in text, (name, text)


@pytest.mark.timeout(300)
def test_a_second_click_joins_the_running_check_and_a_right_answer_earns_its_points(lab_folder):
    write(
        lab_folder,
        with_answer(
            "async def get_db():\n    async with SessionLocal() as s:\n        yield s\n        await s.commit()\n"
        ),
    )
    service = CheckService(lab_folder)
    first, second = asyncio.run(checked(service, SHOWN, SHOWN))
    assert first is second, "one check ran, both clicks got its answer"
    exercises = {e["name"]: e for e in first["report"]["exercises"]}
    assert exercises["test_get_db"]["passed"] and exercises["test_get_db"]["points"] == 4
    assert not exercises["test_tags_app"]["passed"]


def test_paths_outside_the_lab_or_not_notebooks_are_refused(lab_folder):
    service = CheckService(lab_folder)
    (lab_folder / "notes.txt").write_text("x")
    with pytest.raises(PermissionError, match="outside"):
        asyncio.run(service.check("../../etc/passwd"))
    with pytest.raises(ValueError, match="not a saved notebook"):
        asyncio.run(service.check("notes.txt"))
    with pytest.raises(ValueError, match="not a saved notebook"):
        asyncio.run(service.check("missing.ipynb"))


@pytest.mark.timeout(300)
def test_a_checker_that_dies_gives_one_sentence_and_the_next_check_works(lab_folder):
    write(lab_folder, RELEASE.read_text())
    service = CheckService(lab_folder)

    async def kill_during_then_again() -> tuple[dict, dict]:
        try:
            await service._ensure_worker()
            assert service._worker is not None
            task = asyncio.ensure_future(service.check(SHOWN))
            while service.status(SHOWN)["state"] != "running":  # noqa: ASYNC110 - polling what a browser polls
                await asyncio.sleep(0.05)
            os.kill(service._worker.pid, signal.SIGKILL)
            died = await task
            again = await service.check(SHOWN)
            return died, again
        finally:
            await service.close()

    died, again = asyncio.run(kill_during_then_again())
    assert not died["ok"] and "press the button again" in died["error"], died
    assert again["ok"] and again["report"]["max_score"] == 7, again


@pytest.mark.timeout(120)
def test_a_check_that_hangs_is_stopped_at_the_timeout(lab_folder):
    write(lab_folder, RELEASE.read_text())
    service = CheckService(lab_folder, timeout=0.5)  # less than any check takes
    (reply,) = asyncio.run(checked(service, SHOWN))
    assert reply == {"ok": False, "error": "The check did not finish in 0.5 s and was stopped."}
    assert service._worker is None
