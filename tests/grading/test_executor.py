"""The forked, sandboxed cell runner: outputs, deadlines, crashes, limits, isolation."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.db.url import project_root
from autograder.grading import sandbox
from autograder.grading.executor import Deadlines, Executor, JobSpec
from tests.grading.support import grows, stops_growing

ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def executor():
    Executor.warm_up()
    return Executor()


def run(executor, tmp_path, cells, *, cell=5.0, notebook=30.0, output_limit=1_000_000, slot=0):
    workdir = tmp_path / f"job{slot}"
    sandbox.prepare_workdir(workdir, slot)
    spec = sandbox.SandboxSpec(
        workdir=workdir, slot=slot,
        hide=[project_root(), Path("/root")],
        keep=[project_root() / ".venv", project_root() / "autograder", Path("/root/.pyenv")],
    )
    job = JobSpec(env={"COURSE_TEST_MARK": "42"}, sandbox=spec, output_limit=output_limit,
                  deadlines=Deadlines(cell=cell, notebook=notebook, grace=1.0))
    return executor.execute(list(enumerate(cells)), job)


def texts(result, index):
    return "".join(o.get("text", "") for o in result.cells[index]["outputs"] if o["output_type"] == "stream")


def errors(result, index):
    return [o for o in result.cells[index]["outputs"] if o["output_type"] == "error"]


def test_cells_share_state_and_await_works(executor, tmp_path):
    r = run(executor, tmp_path, [
        "import asyncio, os\nasync def f():\n    return asyncio.get_running_loop()\nloop = await f()",
        "(await f()) is loop", "print(os.environ['COURSE_TEST_MARK'])", "1/0", "print('after an error')",
    ])
    assert r.ended == "completed"
    assert r.cells[1]["outputs"][0]["data"]["text/plain"] == "True"  # one loop across cells, like a kernel
    assert texts(r, 2) == "42\n"
    assert errors(r, 3)[0]["ename"] == "ZeroDivisionError"
    assert texts(r, 4) == "after an error\n"


def test_an_endless_cell_is_stopped_and_later_cells_still_run(executor, tmp_path):
    r = run(executor, tmp_path, ["while True:\n    pass", "print('next')"], cell=1.0)
    assert errors(r, 0)[0]["ename"] == "CellTimeout"
    assert texts(r, 1) == "next\n"


def test_a_cell_that_swallows_the_timeout_is_killed_and_the_rest_marked_not_run(executor, tmp_path):
    code = "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass"
    r = run(executor, tmp_path, [code, "print('never')"], cell=1.0)
    assert r.ended == "cell-timeout"
    assert errors(r, 0)[0]["ename"] == "Timeout"
    assert errors(r, 1)[0]["ename"] == "NotRun"


def test_the_notebook_deadline_stops_a_slow_notebook(executor, tmp_path):
    r = run(executor, tmp_path, ["import time; time.sleep(0.8)"] * 5, cell=5.0, notebook=2.0)
    assert r.ended == "notebook-timeout"
    assert any(errors(r, i) and errors(r, i)[0]["ename"] == "NotRun" for i in range(5))


@pytest.mark.parametrize("code, words", [
    ("import os; os._exit(3)", "exited with status 3"),
    ("import ctypes; ctypes.string_at(0)", "SIGSEGV"),
])
def test_a_process_that_dies_is_reported_on_its_cell(executor, tmp_path, code, words):
    r = run(executor, tmp_path, [code, "print('never')"])
    assert r.ended == "crashed"
    assert words in errors(r, 0)[0]["evalue"]
    assert errors(r, 1)[0]["ename"] == "NotRun"


def test_output_is_cut_at_the_budget(executor, tmp_path):
    r = run(executor, tmp_path, ["print('x' * 5_000_000)", "print('more')"], output_limit=10_000)
    total = sum(len(o.get("text", "")) for c in r.cells.values() for o in c["outputs"])
    assert total < 11_000
    assert "output truncated" in texts(r, 0)


def test_hidden_course_files_and_network_are_out_of_reach(executor, tmp_path):
    if not ROOT:
        pytest.skip("isolation needs root on Linux; the summary reports it as off")
    r = run(executor, tmp_path, [
        f"open({str(project_root() / 'README.md')!r})",
        "import socket; socket.create_connection(('127.0.0.1', 22), timeout=1)",
        "import os; print(os.getuid(), os.getcwd())",
        f"open({str(project_root() / 'escape.txt')!r}, 'w')",
    ])
    assert set(r.protections.on) == {"network", "filesystem", "processes", "user", "limits"}
    assert errors(r, 0)[0]["ename"] == "FileNotFoundError"
    assert errors(r, 1), "no network: even loopback is unreachable in a fresh namespace"
    assert texts(r, 2) == f"{sandbox.SANDBOX_UID_BASE} /tmp\n"
    assert errors(r, 3) and not (project_root() / "escape.txt").exists()


def test_writes_land_in_the_submission_folder_only(executor, tmp_path):
    if not ROOT:
        pytest.skip("isolation needs root on Linux")
    r = run(executor, tmp_path, ["open('/tmp/mine.txt', 'w').write('ok')", "open('/var/tmp/x', 'w').write('ok')"])
    assert not errors(r, 0) and not errors(r, 1)
    assert (tmp_path / "job0" / "mine.txt").read_text() == "ok"  # /tmp *is* its own folder
    assert not Path("/tmp/mine.txt").exists()


def test_a_fork_bomb_stops_at_the_process_limit(executor, tmp_path):
    if not ROOT:
        pytest.skip("the process limit needs a uid of its own (root)")
    code = ("import os\nkids = []\ntry:\n    for _ in range(500):\n        pid = os.fork()\n"
            "        if pid == 0:\n            import time; time.sleep(5); os._exit(0)\n        kids.append(pid)\n"
            "except OSError as exc:\n    print('stopped after', len(kids), type(exc).__name__)\n")
    r = run(executor, tmp_path, [code], cell=10.0)
    out = texts(r, 0)
    assert out.startswith("stopped after") and int(out.split()[2]) < 100


def test_a_test_whose_process_dies_right_after_it_is_not_trusted(executor, tmp_path):
    # A reply for a test cell counts only once the process answers again: code running
    # inside a test could forge a "passed" reply and end the process before the real one.
    workdir = tmp_path / "job"
    sandbox.prepare_workdir(workdir, 0)
    job = JobSpec(env={}, sandbox=sandbox.SandboxSpec(workdir=workdir, isolate=False),
                  graded_cells=frozenset({0, 2}))
    r = executor.execute([(0, "print('test 1 ran')"), (1, "print('fine')"), (2, "print('test 2 ran')"),
                          (3, "import os; os._exit(1)")], job)
    assert r.ended == "crashed"
    assert texts(r, 0) == "test 1 ran\n"  # confirmed by the next cell's answer
    assert errors(r, 2)[0]["ename"] == "Unconfirmed"  # the process died right after it


def test_each_submission_starts_from_the_servers_pristine_shell(executor, tmp_path):
    # The shell is made once in the fork server: what one submission leaves in it (a
    # variable, a changed setting, a registered hook) must not reach the next one.
    first = run(executor, tmp_path, [
        "left_behind = 41",
        "get_ipython().ast_node_interactivity = 'none'",
        "get_ipython().events.register('pre_run_cell', lambda *a: print('hook of the first'))",
        "left_behind + 1",
    ])
    # its own changes took effect in its own process: the hook ran, the value was not shown
    assert first.cells[3]["outputs"] == [{"output_type": "stream", "name": "stdout", "text": "hook of the first\n"}]
    second = run(executor, tmp_path, [
        "'left_behind' in dir()", "import os\nprint(get_ipython().user_ns['_dh'] == [os.getcwd()])", "6 * 7",
    ], slot=1)
    assert second.cells[0]["outputs"][0]["data"]["text/plain"] == "False"
    assert texts(second, 1) == "True\n"  # the shell knows this process's folder, not the server's
    assert second.cells[2]["outputs"] == [{"output_type": "execute_result", "data": {"text/plain": "42"},
                                           "metadata": {}, "execution_count": 3}]


TOUCHER = """\
import os, time
if os.fork() == 0:
    os.setsid()  # out of the process group and the session the grader kills
    if os.fork() == 0:
        while True:
            with open('/tmp/alive', 'a') as f:
                f.write('.')
            time.sleep(0.02)
    os._exit(0)
time.sleep(0.3)
"""


def test_a_process_that_left_the_session_ends_with_the_submission(executor, tmp_path):
    if not ROOT:
        pytest.skip("a PID namespace needs root on Linux")
    r = run(executor, tmp_path, [TOUCHER, "print('done')"])
    assert texts(r, 1) == "done\n" and "processes" in r.protections.on
    marker = tmp_path / "job0" / "alive"
    assert marker.exists(), "the daemon ran while the submission did"
    assert stops_growing(marker), "a daemon outlived its submission"


def test_the_submission_sees_and_signals_only_its_own_processes(executor, tmp_path):
    if not ROOT:
        pytest.skip("a PID namespace needs root on Linux")
    r = run(executor, tmp_path, [
        "import os\nprint(os.getpid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))",
        f"os.kill({os.getpid()}, 0)",  # the grader's pid, as the grader knows it
    ])
    assert texts(r, 0) == "1 [1]\n"
    assert errors(r, 1)[0]["ename"] == "ProcessLookupError"


def test_a_grader_killed_outright_takes_its_submissions_with_it(tmp_path):
    # kill -9 of the grader: nothing calls Executor._kill, yet no submission may run on.
    workdir = tmp_path / "job"
    sandbox.prepare_workdir(workdir, 0)
    script = tmp_path / "grader.py"
    script.write_text(f"""
import sys
sys.path.insert(0, {str(project_root())!r})
from pathlib import Path
from autograder.grading import sandbox
from autograder.grading.executor import Deadlines, Executor, JobSpec
spec = sandbox.SandboxSpec(workdir=Path({str(workdir)!r}), isolate={ROOT!r},
                           hide=[Path({str(project_root())!r}), Path('/root')],
                           keep=[Path({str(project_root() / '.venv')!r}), Path({str(project_root() / 'autograder')!r}),
                                 Path('/root/.pyenv')])
job = JobSpec(env={{}}, sandbox=spec, deadlines=Deadlines(cell=600, notebook=600))
here = '/tmp' if {ROOT!r} else {str(workdir)!r}
Executor().execute([(0, "import time\\nwhile True:\\n    open(here + '/alive', 'a').write('.'); time.sleep(0.02)"
                        .replace('here', repr(here)))], job)
""")
    grader = subprocess.Popen([sys.executable, str(script)])
    marker = workdir / "alive"
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the submission never started"
        assert grows(marker)
    finally:
        grader.kill()
        grader.wait()
    # the fork server notices, then the kernel ends what it started
    assert stops_growing(marker), "the submission ran on after its grader was killed"


def test_a_world_writable_folder_anywhere_is_read_only_to_the_submission(executor, tmp_path):
    if not ROOT:
        pytest.skip("isolation needs root on Linux")
    # A machine may have world-writable folders we do not know of (a spool, a cache, a mail drop).
    folder = Path("/var/lib") / f"autograder-test-{os.getpid()}"
    folder.mkdir()
    try:
        folder.chmod(0o1777)
        r = run(executor, tmp_path, [f"open({str(folder / 'dropped')!r}, 'w').write('x')",
                                     "open('/tmp/mine', 'w').write('ok')"])
        assert errors(r, 0) and "Read-only file system" in errors(r, 0)[0]["evalue"]
        assert not (folder / "dropped").exists()
        assert not errors(r, 1) and (tmp_path / "job0" / "mine").read_text() == "ok"  # its own folder still is
    finally:
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()


def test_ipc_is_the_submissions_own(executor, tmp_path):
    if not ROOT:
        pytest.skip("an IPC namespace needs root on Linux")
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    # A System V segment on the host, readable by anyone: without an IPC namespace of its own
    # the submission would see it (and could attach to it).
    segment = libc.shmget(0, 4096, 0o1000 | 0o666)  # IPC_PRIVATE, IPC_CREAT | rw for all
    assert segment >= 0, os.strerror(ctypes.get_errno())
    try:
        assert str(segment) in open("/proc/sysvipc/shm").read()
        r = run(executor, tmp_path, ["print(open('/proc/sysvipc/shm').read().count('\\n'))"])
    finally:
        libc.shmctl(segment, 0, None)  # IPC_RMID
    assert texts(r, 0) == "1\n"  # the header only: not the host's segment, nor another submission's


def test_the_fork_server_writes_nothing_of_ipythons_and_runs_no_thread(tmp_path):
    # The shell is made in the server: with a history database it would record a session in the
    # grader's ~/.ipython and start a writer thread there, which every fork would inherit half of.
    ipython_dir = tmp_path / "ipython"
    probe = subprocess.run(
        [sys.executable, "-c", "import threading, autograder.grading.preload\n"
                               "print(threading.active_count())"],
        capture_output=True, text=True, env={**os.environ, "IPYTHONDIR": str(ipython_dir)}, cwd=project_root())
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.strip() == "1"
    assert not ipython_dir.exists()


def test_the_submissions_ipython_profile_is_in_its_own_folder(executor, tmp_path):
    r = run(executor, tmp_path, ["ip = get_ipython()\n"
                                 "print(ip.profile_dir.location.startswith(ip.ipython_dir), ip.history_manager.enabled)",
                                 "import os\nprint(os.path.isdir(get_ipython().profile_dir.location))"])
    assert texts(r, 0) == "True False\n" and texts(r, 1) == "True\n"
    assert (tmp_path / "job0" / ".ipython" / "profile_default").is_dir()
