"""notebooks/ is generated from solutions/ and committed: it must never drift."""

from autograder import release
from autograder.course.layout import lessons
from autograder.paths import project_root


def test_committed_release_matches_a_fresh_release(tmp_path):
    fresh = release.build(tmp_path)
    problems = release.differences(fresh, project_root() / "notebooks")
    assert not problems, "notebooks/ drifted from solutions/; run `make release`:\n" + "\n".join(problems)


def test_every_lesson_is_released():
    released = sorted(p.name for p in (project_root() / "notebooks").iterdir() if p.is_dir())
    assert released == lessons()


def test_drift_is_detected(tmp_path):
    # The check must be able to fail: a hand edit of a released notebook is caught.
    fresh = release.build(tmp_path / "a")
    edited = tmp_path / "b"
    import shutil

    shutil.copytree(fresh, edited)
    lesson = lessons()[0]
    nb_path = edited / lesson / f"{lesson}.ipynb"
    nb_path.write_text(nb_path.read_text().replace("raise NotImplementedError()", "pass", 1))
    assert release.differences(fresh, edited) == [f"{lesson}/{lesson}.ipynb (differs)"]
