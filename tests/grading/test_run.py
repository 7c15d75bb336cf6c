"""A class run as an instructor uses it: resuming, forcing, Ctrl-C, exports, the CLI."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder.grading import exporters
from autograder.grading.databases import GradingDatabases
from autograder.grading.executor import Deadlines
from autograder.grading.run import EXPORTS_DIR, GradeOptions, GradeRun
from autograder.paths import project_root
from tests.grading.support import all_ended, sandboxed_with, stops_growing
from tests.support.submissions import submit

LESSON = "01_session_dependency"
AUTOGRADER = str(Path(sys.executable).parent / "autograder")


def _notebooks():
    solution = nbformat.read(project_root() / "solutions" / LESSON / f"{LESSON}.ipynb", as_version=4)
    release = nbformat.read(project_root() / "notebooks" / LESSON / f"{LESSON}.ipynb", as_version=4)
    return solution, release


def result(root: Path, student: str) -> dict:
    return json.loads((root / EXPORTS_DIR / LESSON / student / "result.json").read_text())


def databases_of_run(pid: int) -> list[str]:
    """The grading databases a run (by its grader's pid) left on the grading cluster."""

    async def names():
        dbs, cluster = GradingDatabases.open_for_run()
        await dbs.connect()
        try:
            return [n for n in await dbs.names() if n.startswith(f"grade_{pid}_")]
        finally:
            await dbs.close()
            if cluster is not None:
                cluster.release()

    return asyncio.run(names())


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    solution, release = _notebooks()
    submit(root, "ada", LESSON, solution)
    submit(root, "bob", LESSON, release)
    report = GradeRun(root, GradeOptions(workers=2)).run()
    return root, report


def test_a_class_run_grades_and_exports_everyone(course):
    root, report = course
    assert {(r.student, r.score, r.max_score) for r in report.results} == {("ada", 7.0, 7.0), ("bob", 0.0, 7.0)}
    rows = (root / EXPORTS_DIR / "scores.csv").read_text().splitlines()
    assert rows[0] == ",".join(exporters.CSV_FIELDS)
    assert {r.split(",")[0] for r in rows[1:]} == {"ada", "bob"}
    assert (root / "autograded" / "ada" / LESSON / f"{LESSON}.ipynb").exists()


def test_a_rerun_skips_what_is_already_graded_and_regrades_what_changed(course):
    root, _ = course
    again = GradeRun(root, GradeOptions(workers=2)).run()
    assert again.results == [] and {s.student for s in again.skipped} == {"ada", "bob"}
    solution, _ = _notebooks()
    submit(root, "bob", LESSON, solution)  # bob hands in a new version
    changed = GradeRun(root, GradeOptions(workers=2)).run()
    assert [(r.student, r.score) for r in changed.results] == [("bob", 7.0)]
    forced = GradeRun(root, GradeOptions(workers=2, force=True, students=["ada"])).run()
    assert [r.student for r in forced.results] == ["ada"]


# Published field lists (Gradescope "Autograder Specifications"; Exercism test runner interface v3):
# every field we write must be one of them, and the ones we rely on must be there.
GRADESCOPE_TOP_ALLOWED = {
    "score",
    "execution_time",
    "output",
    "output_format",
    "test_output_format",
    "test_name_format",
    "visibility",
    "stdout_visibility",
    "extra_data",
    "tests",
    "leaderboard",
}
GRADESCOPE_TOP = {"score", "execution_time", "output", "visibility", "stdout_visibility", "tests"}
GRADESCOPE_VISIBILITY = {"visible", "hidden", "after_due_date", "after_published"}
GRADESCOPE_TEST_ALLOWED = {
    "score",
    "max_score",
    "status",
    "name",
    "name_format",
    "number",
    "output",
    "output_format",
    "tags",
    "visibility",
    "extra_data",
}
GRADESCOPE_TEST = {"score", "max_score", "name", "number", "output", "visibility", "status"}
EXERCISM_TOP_ALLOWED = {"version", "status", "message", "tests"}
EXERCISM_TOP = {"version", "status", "tests"}
EXERCISM_TEST_ALLOWED = {"name", "test_code", "status", "message", "output", "task_id"}
EXERCISM_TEST = {"name", "status", "test_code"}


def check_gradescope(data: dict) -> None:
    assert GRADESCOPE_TOP <= set(data) <= GRADESCOPE_TOP_ALLOWED, set(data) - GRADESCOPE_TOP_ALLOWED
    assert data["visibility"] in GRADESCOPE_VISIBILITY
    assert isinstance(data["score"], float) and isinstance(data["execution_time"], float)
    for test in data["tests"]:
        assert GRADESCOPE_TEST <= set(test) <= GRADESCOPE_TEST_ALLOWED, test
        assert test["status"] in {"passed", "failed"} and test["visibility"] in GRADESCOPE_VISIBILITY
        assert 0 <= test["score"] <= test["max_score"]


def check_exercism(data: dict) -> None:
    assert EXERCISM_TOP <= set(data) <= EXERCISM_TOP_ALLOWED, set(data) - EXERCISM_TOP_ALLOWED
    assert data["version"] == 3 and data["status"] in {"pass", "fail", "error"}
    if data["status"] == "error":
        assert data["message"]
    for test in data["tests"]:
        assert EXERCISM_TEST <= set(test) <= EXERCISM_TEST_ALLOWED, test
        assert test["status"] in {"pass", "fail", "error"}
        if test["status"] != "pass":
            assert test["message"]
        assert len(test.get("output", "")) <= 500


def test_exports_follow_the_published_formats(course, tmp_path):
    root, _ = course
    for student in ("ada", "bob"):
        folder = root / EXPORTS_DIR / LESSON / student
        gradescope = json.loads((folder / "results.gradescope.json").read_text())
        exercism = json.loads((folder / "results.exercism.json").read_text())
        check_gradescope(gradescope)
        check_exercism(exercism)
        assert gradescope["score"] == result(root, student)["score"]
    failing = json.loads((root / EXPORTS_DIR / LESSON / "ada" / "results.exercism.json").read_text())
    assert failing["status"] == "pass"
    # a file that is not a notebook: Exercism's "error" (nothing could run), with a message
    broken = tmp_path / "broken"
    submit(broken, "eve", LESSON, "{")
    [r] = GradeRun(broken, GradeOptions(workers=1)).run().results
    check_exercism(exporters.exercism(r))
    check_gradescope(exporters.gradescope(r))
    assert exporters.exercism(r)["status"] == "error" and r.max_score == 7.0


def test_feedback_is_written_with_verdicts_and_no_hidden_code(tmp_path):
    solution, release = _notebooks()
    submit(tmp_path, "cy", LESSON, release)
    GradeRun(tmp_path, GradeOptions(workers=1, feedback=True)).run()
    html = (tmp_path / "feedback" / "cy" / LESSON / f"{LESSON}.html").read_text()
    assert "FAILED" in html and "BEGIN HIDDEN TESTS" not in html


def test_ctrl_c_leaves_complete_results_only_and_no_databases(tmp_path):
    solution, release = _notebooks()
    slow = nbformat.from_dict(json.loads(nbformat.writes(release)))
    slow.cells.insert(2, nbformat.v4.new_code_cell("import time\ntime.sleep(30)"))
    submit(tmp_path, "fast", LESSON, solution)
    for student in ("slow1", "slow2", "slow3"):
        submit(tmp_path, student, LESSON, slow)
    proc = subprocess.Popen(
        [AUTOGRADER, "grade", "--course", str(tmp_path), "-j", "1", "--cell-timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        # wait until the run is well under way: one result written, the next notebook sleeping
        while not list((tmp_path / EXPORTS_DIR).glob("*/*/result.json")) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "Interrupted" in err
    results = sorted(p.parent.name for p in (tmp_path / EXPORTS_DIR).glob("*/*/result.json"))
    assert "fast" in results and len(results) < 4
    for path in (tmp_path / EXPORTS_DIR).rglob("*"):
        assert not path.name.startswith("."), f"a half-written file was left: {path}"
        if path.suffix == ".json":
            json.loads(path.read_text())
    graded = sorted(p.name for p in (tmp_path / "autograded").iterdir())
    assert graded == results, "only completely graded submissions are in autograded/"
    assert not (tmp_path / ".course" / "grading-staging" / str(proc.pid)).exists()

    assert databases_of_run(proc.pid) == []
    # the same command continues where it stopped
    report = GradeRun(tmp_path, GradeOptions(workers=2, deadlines=Deadlines(cell=60))).run()
    assert "fast" in {s.student for s in report.skipped}
    assert {r.student for r in report.results} | {s.student for s in report.skipped} == {
        "fast",
        "slow1",
        "slow2",
        "slow3",
    }


def test_the_cli_prints_a_summary_and_grade_one_prints_json(tmp_path):
    solution, _ = _notebooks()
    path = tmp_path / "mine.ipynb"
    nbformat.write(solution, path)
    out = subprocess.run(
        [AUTOGRADER, "grade-one", str(path), "--lesson", LESSON, "--format", "gradescope"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout)
    check_gradescope(data)
    assert data["score"] == 7.0
    missing = subprocess.run([AUTOGRADER, "grade", "--course", str(tmp_path)], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.startswith("error: There is no submitted/ folder")
    assert "Traceback" not in missing.stderr


def test_a_second_run_on_the_same_course_is_refused_with_a_sentence(tmp_path):
    import fcntl

    solution, _ = _notebooks()
    submit(tmp_path, "ada", LESSON, solution)
    lock = tmp_path / ".course" / "grading.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as held:  # as a run in another process holds it
        held.write("4242\n")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        from autograder.errors import SetupError

        with pytest.raises(SetupError, match=r"Another `autograder grade` \(pid 4242\) is grading"):
            GradeRun(tmp_path, GradeOptions(workers=1)).run()
        cli = subprocess.run([AUTOGRADER, "grade", "--course", str(tmp_path)], capture_output=True, text=True)
        assert cli.returncode == 2 and cli.stderr.startswith("error: Another `autograder grade`"), cli.stderr
        assert not (tmp_path / EXPORTS_DIR).exists()  # nothing was touched
    [graded] = GradeRun(tmp_path, GradeOptions(workers=1)).run().results  # free again
    assert graded.score == 7.0


def test_a_grader_killed_outright_leaves_whole_results_and_the_next_run_clears_up_and_finishes(tmp_path):
    solution, release = _notebooks()
    # A submission that keeps writing while it runs: if it outlived its grader, the file would grow.
    busy = nbformat.from_dict(json.loads(nbformat.writes(release)))
    busy.cells.insert(
        2,
        nbformat.v4.new_code_cell(
            "import time\nfor _ in range(3000):\n    open('/tmp/alive' if __import__('os').getuid() else 'alive', 'a')"
            ".write('.')\n    time.sleep(0.01)"
        ),
    )
    submit(tmp_path, "fast", LESSON, solution)
    for student in ("slow1", "slow2"):
        submit(tmp_path, student, LESSON, busy)
    proc = subprocess.Popen(
        [AUTOGRADER, "grade", "--course", str(tmp_path), "-j", "1", "--cell-timeout", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    as_root = os.geteuid() == 0

    def busy_now():
        if as_root:  # its /tmp is a RAM disk of its own: found through its process's root
            return sandboxed_with("/tmp/alive")
        found = sorted((tmp_path / ".course" / "grading-staging").glob("*/work/*/alive"))
        return {0: found[-1]} if found else {}  # one worker slot in this run

    try:
        deadline = time.monotonic() + 120
        busy = {}
        while not busy and time.monotonic() < deadline:
            busy = busy_now()
            time.sleep(0.1)
        assert busy, "the busy submission never started"
        time.sleep(0.5)
    finally:
        proc.kill()  # SIGKILL: no handler, no clean-up of its own
        proc.wait()
    # the fork server notices, the kernel ends what it started
    if as_root:
        assert all_ended(busy), "a submission ran on after its grader was killed"
    else:
        assert stops_growing(next(iter(busy.values()))), "a submission ran on after its grader was killed"
    for path in (tmp_path / EXPORTS_DIR).glob("*/*/*.json"):
        json.loads(path.read_text())  # whatever was written is whole
    assert {p.parent.name for p in (tmp_path / EXPORTS_DIR).glob("*/*/result.json")} <= {"fast"}
    # A dot-file left as if killed mid-write, and a notebook caught mid-replacement: cleared up.
    (tmp_path / EXPORTS_DIR / LESSON / "fast").mkdir(parents=True, exist_ok=True)
    (tmp_path / EXPORTS_DIR / LESSON / "fast" / ".result.json.x1y2").write_text('{"half": ')
    killed_staging = tmp_path / ".course" / "grading-staging" / str(proc.pid)
    assert killed_staging.exists()

    report = GradeRun(tmp_path, GradeOptions(workers=2)).run()
    graded = {r.student for r in report.results} | {s.student for s in report.skipped}
    assert graded == {"fast", "slow1", "slow2"}
    assert not killed_staging.exists()
    assert not list((tmp_path / EXPORTS_DIR).rglob(".*"))

    assert databases_of_run(proc.pid) == []  # the next run swept the killed run's databases


def test_a_notebook_caught_mid_replacement_is_put_back(tmp_path):
    solution, _ = _notebooks()
    submit(tmp_path, "ada", LESSON, solution)
    GradeRun(tmp_path, GradeOptions(workers=1)).run()
    final = tmp_path / "autograded" / "ada" / LESSON
    final.rename(final.with_name(f".{LESSON}.old"))  # killed between moving the old one aside and the new in
    again = GradeRun(tmp_path, GradeOptions(workers=1)).run()
    assert [s.student for s in again.skipped] == ["ada"]  # its result stands ...
    assert (final / f"{LESSON}.ipynb").exists()  # ... and so does the notebook it was made from
    assert not final.with_name(f".{LESSON}.old").exists()


def test_a_grader_failure_on_one_submission_is_retried_never_recorded_as_a_grade(tmp_path, monkeypatch, caplog):
    # nbgrader's writer failing on one notebook (as it did on a lone surrogate), twice: that
    # submission is "not graded, the next run tries again", every other one is graded.
    from autograder.grading.autograde import SplitAutograde

    solution, release = _notebooks()
    for student in ("ada", "cy", "dee"):
        submit(tmp_path, student, LESSON, solution)
    real_finish = SplitAutograde.finish
    failures = {"cy": 2, "dee": 1}  # cy fails on both tries, dee only on the first

    def finish(self, sanitized, execution):
        student = Path(sanitized).parent.parent.name
        if failures.get(student):
            failures[student] -= 1
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return real_finish(self, sanitized, execution)

    monkeypatch.setattr(SplitAutograde, "finish", finish)
    with caplog.at_level(logging.INFO, logger="autograder"):
        report = GradeRun(tmp_path, GradeOptions(workers=2)).run()
    assert caplog.text.count("grading cy/01_session_dependency failed in stage score: UnicodeEncodeError") == 2
    assert "dee/01_session_dependency will be tried again at the end of this run" in caplog.text
    by_student = {r.student: r for r in report.results}
    assert by_student["ada"].status == "graded" and by_student["ada"].score == by_student["ada"].max_score > 0
    assert by_student["dee"].status == "graded" and by_student["dee"].score == by_student["dee"].max_score
    assert by_student["cy"].status == "error" and "the next run will try again" in by_student["cy"].verdict
    assert "UnicodeEncodeError" in by_student["cy"].verdict
    assert (tmp_path / EXPORTS_DIR / "scores.csv").read_text().count("\n") == 4  # header + 3
    assert databases_of_run(os.getpid()) == []
    # The next run grades what was not graded (no --force), and skips the others.
    report = GradeRun(tmp_path, GradeOptions(workers=2)).run()
    assert [r.student for r in report.results] == ["cy"] and report.results[0].status == "graded"
    assert sorted(s.student for s in report.skipped) == ["ada", "dee"]


def test_a_database_that_cannot_be_made_is_no_grade(tmp_path, monkeypatch, caplog):
    solution, _ = _notebooks()
    submit(tmp_path, "ada", LESSON, solution)
    real_create, real_drop_all = GradingDatabases.create, GradingDatabases.drop_all_of_this_run

    async def create(self, lesson):
        raise OSError("the grading server refused the connection")

    async def drop_all_of_this_run(self):
        raise OSError("the grading server went away")

    monkeypatch.setattr(GradingDatabases, "create", create)
    monkeypatch.setattr(GradingDatabases, "drop_all_of_this_run", drop_all_of_this_run)
    with caplog.at_level(logging.WARNING, logger="autograder"):
        report = GradeRun(tmp_path, GradeOptions(workers=1)).run()
    assert report.results[0].status == "error" and report.results[0].score == 0
    assert "refused the connection" in report.results[0].verdict
    # A clean-up that fails is said, not swallowed; the run still ends with its report.
    assert "could not drop this run's databases: the grading server went away" in caplog.text
    monkeypatch.setattr(GradingDatabases, "create", real_create)
    monkeypatch.setattr(GradingDatabases, "drop_all_of_this_run", real_drop_all)
    report = GradeRun(tmp_path, GradeOptions(workers=1)).run()
    assert report.results[0].status == "graded" and report.results[0].score == report.results[0].max_score
