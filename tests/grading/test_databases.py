"""Where the grading cluster lives, and that RAM it no longer needs is given back."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.grading import databases


def test_a_plain_folder_is_not_taken_for_ram(tmp_path):
    # Only a tmpfs *mount point* with room to spare counts; a folder inside one does not.
    assert databases._ram_backed(tmp_path) is False
    assert databases._ram_backed(tmp_path / "missing") is False


def test_the_cluster_lives_in_ram_only_when_ram_is_roomy(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(databases, "RAM_FOLDER", tmp_path / "shm")
    monkeypatch.setattr(databases, "_ram_backed", lambda folder: False)
    assert databases.grading_cluster().data_dir == tmp_path / "state" / "grading-pgdata"

    monkeypatch.setattr(databases, "_ram_backed", lambda folder: True)
    data_dir = databases.grading_cluster().data_dir
    assert data_dir.parent.parent == tmp_path / "shm"
    assert data_dir.name == "grading-pgdata"
    # it records whose it is, so an orphan can be recognised later
    assert (data_dir.parent / databases.OWNER_FILE).read_text() == str(tmp_path / "state")
    # the password stays with the course, not in RAM: a reboot keeps it
    assert databases.grading_cluster().password_file == tmp_path / "state" / "grading-pg.password"


def test_orphaned_ram_clusters_are_removed_and_nothing_else(monkeypatch, tmp_path):
    shm = tmp_path / "shm"
    monkeypatch.setattr(databases, "RAM_FOLDER", shm)
    alive_state = tmp_path / "checkout" / ".course"
    alive_state.mkdir(parents=True)

    def home(name: str, owner: Path | None) -> Path:
        folder = shm / name
        (folder / "grading-pgdata").mkdir(parents=True)
        if owner is not None:
            (folder / databases.OWNER_FILE).write_text(str(owner))
        return folder

    orphan = home("autograder-aaaa", tmp_path / "deleted-checkout" / ".course")
    kept = home("autograder-bbbb", alive_state)
    unknown = home("autograder-cccc", None)  # no owner file: not ours to judge
    other = shm / "someone-else"
    other.mkdir()

    assert databases.sweep_orphaned_ram_clusters() == [orphan]
    assert not orphan.exists()
    assert kept.exists() and unknown.exists() and other.exists()


def test_a_running_cluster_is_never_swept(monkeypatch, tmp_path):
    shm = tmp_path / "shm"
    monkeypatch.setattr(databases, "RAM_FOLDER", shm)
    folder = shm / "autograder-dddd"
    (folder / "grading-pgdata").mkdir(parents=True)
    (folder / databases.OWNER_FILE).write_text(str(tmp_path / "gone"))
    monkeypatch.setattr(databases.EmbeddedPostgres, "status", lambda self: object())
    assert databases.sweep_orphaned_ram_clusters() == []
    assert folder.exists()


@pytest.mark.parametrize("size, expected", [(64 * 1024**2, False), (4 * 1024**3, True)])
def test_a_small_tmpfs_is_not_used(monkeypatch, tmp_path, size, expected):
    """Docker gives containers a 64 MB /dev/shm: the cluster would not fit."""
    mounts = tmp_path / "mounts"
    mounts.write_text(f"tmpfs {tmp_path} tmpfs rw 0 0\n")
    real_open = open

    def fake_open(path, *args, **kwargs):
        return real_open(mounts if path == "/proc/self/mounts" else path, *args, **kwargs)

    class Stat:
        f_bavail = size // 4096
        f_frsize = 4096

    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(databases.os, "statvfs", lambda folder: Stat())
    assert databases._ram_backed(tmp_path) is expected
