"""The learner's workspace (autograder/workspace.py): copied once, synced, never overwritten or deleted."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from autograder import workspace
from autograder.errors import SetupError
from tests.cli_support import REPO, assert_one_sentence_error, cli_env, free_port, run_cli

TODAY = dt.date(2026, 12, 6)


def notebook(*sources: str, outputs: list | None = None) -> bytes:
    cells: list[dict] = [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": f"c{i}",
            "metadata": {},
            "outputs": outputs or [],
            "source": src,
        }
        for i, src in enumerate(sources)
    ]
    cells.insert(0, {"cell_type": "markdown", "id": "title", "metadata": {}, "source": "# Lesson — a title\n"})
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1).encode()


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def release(tmp_path) -> Path:
    root = tmp_path / "notebooks"
    write(root / "01_a" / "01_a.ipynb", notebook("x = 1  # YOUR CODE HERE"))
    write(root / "02_b" / "02_b.ipynb", notebook("y = 2"))
    write(root / "02_b" / "data.csv", b"id,name\n1,a\n")
    write(root / "02_b" / ".ipynb_checkpoints" / "02_b-checkpoint.ipynb", b"{}")  # never copied
    return root


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def sync(release: Path, ws: Path) -> workspace.WorkspaceReport:
    return workspace.sync_workspace(release, ws, today=TODAY)


def test_first_start_copies_the_release_data_files_and_the_start_page(release, tmp_path):
    ws = tmp_path / "ws"
    report = sync(release, ws)
    assert report.first_start
    assert sorted(report.copied) == ["01_a/01_a.ipynb", "02_b/02_b.ipynb", "02_b/data.csv", workspace.START_PAGE]
    for rel in ("01_a/01_a.ipynb", "02_b/02_b.ipynb", "02_b/data.csv"):
        assert (ws / rel).read_bytes() == (release / rel).read_bytes()
    assert not (ws / "02_b" / ".ipynb_checkpoints").exists()
    start = json.loads((ws / workspace.START_PAGE).read_text())
    text = start["cells"][0]["source"]
    assert "[Lesson — a title](01_a/01_a.ipynb)" in text and "`02_b`" in text
    assert "Check my work" in text and "workspace reset" in text
    assert {c["cell_type"] for c in start["cells"]} == {"markdown"}
    assert json.loads((ws / workspace.MANIFEST).read_text())["files"].keys() == set(report.copied)
    assert "created" in report.notes()[0]


def test_second_start_keeps_an_edited_notebook_byte_identical_and_says_nothing(release, tmp_path):
    ws = tmp_path / "ws"
    sync(release, ws)
    mine = notebook("x = 42  # my answer")
    (ws / "01_a" / "01_a.ipynb").write_bytes(mine)
    before = snapshot(ws)
    report = sync(release, ws)
    assert snapshot(ws) == before
    assert (ws / "01_a" / "01_a.ipynb").read_bytes() == mine
    assert not (report.copied or report.new or report.updated or report.offered or report.notes())


def test_a_new_lesson_in_the_release_appears_and_edited_ones_stay(release, tmp_path):
    ws = tmp_path / "ws"
    sync(release, ws)
    mine = notebook("x = 42")
    (ws / "01_a" / "01_a.ipynb").write_bytes(mine)
    write(release / "03_c" / "03_c.ipynb", notebook("z = 3"))
    write(release / "03_c" / "schema.sql", b"CREATE TABLE t (id int);\n")
    report = sync(release, ws)
    assert report.new == ["03_c/03_c.ipynb", "03_c/schema.sql"] and not report.copied
    assert (ws / "03_c" / "03_c.ipynb").read_bytes() == (release / "03_c" / "03_c.ipynb").read_bytes()
    assert (ws / "01_a" / "01_a.ipynb").read_bytes() == mine
    assert report.updated == [workspace.START_PAGE]  # its lesson list grew; the learner never edited it
    assert "03_c/03_c.ipynb" in (ws / workspace.START_PAGE).read_text()
    assert any("new in the release" in line and "03_c" in line for line in report.notes())


def test_a_file_the_learner_deleted_is_copied_again(release, tmp_path):
    ws = tmp_path / "ws"
    sync(release, ws)
    (ws / "02_b" / "data.csv").unlink()
    report = sync(release, ws)
    assert report.copied == ["02_b/data.csv"] and not report.new
    assert (ws / "02_b" / "data.csv").read_bytes() == b"id,name\n1,a\n"


def test_a_changed_release_updates_an_unedited_file_but_offers_it_beside_an_edited_one(release, tmp_path):
    ws = tmp_path / "ws"
    sync(release, ws)
    # The learner ran lesson 02 (outputs, no edits) and edited lesson 01.
    ran = notebook("y = 2", outputs=[{"output_type": "stream", "name": "stdout", "text": "2\n"}])
    (ws / "02_b" / "02_b.ipynb").write_bytes(ran)
    mine = notebook("x = 42  # my answer")
    (ws / "01_a" / "01_a.ipynb").write_bytes(mine)
    # A new release fixes a typo in both lessons.
    fixed_a, fixed_b = notebook("x = 1  # YOUR CODE HERE (fixed typo)"), notebook("y = 2  # fixed")
    write(release / "01_a" / "01_a.ipynb", fixed_a)
    write(release / "02_b" / "02_b.ipynb", fixed_b)

    report = sync(release, ws)
    assert report.updated == ["02_b/02_b.ipynb"]
    assert (ws / "02_b" / "02_b.ipynb").read_bytes() == fixed_b
    assert (ws / "01_a" / "01_a.ipynb").read_bytes() == mine
    offered = ws / "01_a" / "01_a.release-2026-12-06.ipynb"
    assert report.offered == {"01_a/01_a.ipynb": offered.relative_to(ws).as_posix()}
    assert offered.read_bytes() == fixed_a
    notes = report.notes()
    assert any("01_a/01_a.ipynb" in n and "01_a.release-2026-12-06.ipynb" in n for n in notes), notes

    # Offered once: the next start neither writes it again nor says it again.
    again = sync(release, ws)
    assert not again.offered and not again.notes()
    assert sorted(p.name for p in (ws / "01_a").iterdir()) == ["01_a.ipynb", "01_a.release-2026-12-06.ipynb"]

    # A second change the same day gets a name of its own; nothing is overwritten.
    write(release / "01_a" / "01_a.ipynb", notebook("x = 1  # fixed twice"))
    third = sync(release, ws)
    assert third.offered == {"01_a/01_a.ipynb": "01_a/01_a.release-2026-12-06-2.ipynb"}
    assert offered.read_bytes() == fixed_a
    assert (ws / "01_a" / "01_a.ipynb").read_bytes() == mine


def test_a_release_that_changes_only_nbgrader_metadata_updates_an_unedited_notebook(release, tmp_path):
    ws = tmp_path / "ws"
    sync(release, ws)
    path = ws / "01_a" / "01_a.ipynb"
    path.chmod(0o640)
    changed = json.loads((release / "01_a" / "01_a.ipynb").read_text())
    changed["cells"][1]["metadata"]["nbgrader"] = {"grade": True, "grade_id": "ex1", "points": 3}
    write(release / "01_a" / "01_a.ipynb", json.dumps(changed).encode())
    assert sync(release, ws).updated == ["01_a/01_a.ipynb"]
    assert json.loads(path.read_text())["cells"][1]["metadata"]["nbgrader"]["points"] == 3
    assert path.stat().st_mode & 0o777 == 0o640  # the replaced file keeps its permissions


def test_a_lost_manifest_keeps_every_differing_file(release, tmp_path):
    ws = tmp_path / "ws"
    sync(release, ws)
    (ws / "01_a" / "01_a.ipynb").write_bytes(notebook("x = 42"))
    (ws / workspace.MANIFEST).write_text("{not json")
    write(release / "01_a" / "01_a.ipynb", notebook("x = 1  # new"))
    report = sync(release, ws)
    assert report.manifest_unreadable and not report.updated
    assert (ws / "01_a" / "01_a.ipynb").read_bytes() == notebook("x = 42")
    assert "01_a/01_a.ipynb" in report.offered
    assert json.loads((ws / workspace.MANIFEST).read_text())["files"]  # rewritten, readable again


def test_reset_moves_the_lesson_aside_and_copies_a_fresh_one(release, tmp_path):
    ws = tmp_path / "ws"
    sync(release, ws)
    mine = notebook("y = 'my work'")
    (ws / "02_b" / "02_b.ipynb").write_bytes(mine)
    (ws / "02_b" / "notes.txt").write_text("my notes")
    now = dt.datetime(2026, 12, 6, 23, 10, 5)

    result = workspace.reset_lesson(release, ws, "02_b", now=now)
    assert result.backup == ws / "backups" / "02_b-20261206-231005"
    assert (result.backup / "02_b.ipynb").read_bytes() == mine
    assert (result.backup / "notes.txt").read_text() == "my notes"
    assert (ws / "02_b" / "02_b.ipynb").read_bytes() == (release / "02_b" / "02_b.ipynb").read_bytes()
    assert (ws / "02_b" / "data.csv").exists() and not (ws / "02_b" / "notes.txt").exists()

    # A second reset in the same second never replaces the first backup.
    second = workspace.reset_lesson(release, ws, "02_b", now=now)
    assert second.backup == ws / "backups" / "02_b-20261206-231005-2"
    assert (result.backup / "02_b.ipynb").read_bytes() == mine

    # The fresh copy is in the manifest: a later release change updates it (it is unedited).
    write(release / "02_b" / "02_b.ipynb", notebook("y = 3"))
    assert sync(release, ws).updated == ["02_b/02_b.ipynb"]


def test_reset_of_an_unknown_lesson_names_the_lessons(release, tmp_path):
    with pytest.raises(SetupError, match=r"no lesson '99_x'.*01_a, 02_b"):
        workspace.reset_lesson(release, tmp_path / "ws", "99_x")


def test_a_workspace_that_is_a_file_or_inside_the_release_is_one_sentence(release, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for ws in (blocker, blocker / "ws"):
        with pytest.raises(SetupError) as info:
            sync(release, ws)
        assert "cannot be used" in info.value.message and "COURSE_WORKSPACE" in info.value.message
        assert info.value.message.count(". ") == 0 and info.value.message.endswith(".")
    with pytest.raises(SetupError, match="overlaps the course release"):
        sync(release, release / "mine")
    assert not (release / "mine").exists()


def test_an_unwritable_file_in_the_workspace_is_one_sentence(release, tmp_path):
    ws = tmp_path / "ws"
    sync(release, ws)
    (ws / "03_c").write_text("a file where the new lesson's folder goes")
    write(release / "03_c" / "03_c.ipynb", notebook("z = 3"))
    with pytest.raises(SetupError, match=r"cannot be used \(File exists: .*/ws/03_c\)"):
        sync(release, ws)
    assert (ws / "03_c").read_text() == "a file where the new lesson's folder goes"


def test_workspace_dir_option_then_env_then_default(monkeypatch, tmp_path):
    monkeypatch.delenv(workspace.ENV_WORKSPACE, raising=False)
    assert workspace.workspace_dir() == REPO / "workspace"
    monkeypatch.setenv(workspace.ENV_WORKSPACE, str(tmp_path / "env"))
    assert workspace.workspace_dir() == tmp_path / "env"
    assert workspace.workspace_dir(tmp_path / "opt") == tmp_path / "opt"


def test_the_default_workspace_is_git_ignored():
    import subprocess

    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "workspace/01_session_dependency/01_session_dependency.ipynb"], cwd=REPO
    )
    assert ignored.returncode == 0, "workspace/ must be in .gitignore"
    assert "workspace" in (REPO / ".dockerignore").read_text().split()


def test_cli_sync_and_reset_on_the_real_release(tmp_path):
    env = cli_env(COURSE_WORKSPACE=str(tmp_path / "ws"))
    first = run_cli("workspace", "sync", env=env)
    assert first.returncode == 0, first.stderr
    assert "was created" in first.stdout
    lessons = sorted(p.name for p in (REPO / "notebooks").iterdir() if p.is_dir())
    assert sorted(p.name for p in (tmp_path / "ws").iterdir() if p.is_dir()) == lessons
    lesson = lessons[1]
    reset = run_cli("workspace", "reset", lesson, env=env)
    assert reset.returncode == 0, reset.stderr
    assert "moved to" in reset.stdout and len(list((tmp_path / "ws" / "backups").iterdir())) == 1
    again = run_cli("workspace", "sync", env=env)
    assert "up to date" in again.stdout, again.stdout


def test_cli_unusable_workspace_is_one_sentence(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli("workspace", "sync", env=cli_env(COURSE_WORKSPACE=str(blocker)))
    assert_one_sentence_error(result, "cannot be used", str(blocker), "COURSE_WORKSPACE")
    # `autograder lab` says the same before it starts the database or JupyterLab.
    state = tmp_path / "state"
    lab = run_cli("lab", "--no-browser", "--port", str(free_port()), "--workspace", str(blocker), env=cli_env(state))
    assert_one_sentence_error(lab, "cannot be used", str(blocker))
    assert not (state / "pgdata").exists()
