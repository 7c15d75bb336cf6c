"""The forked, sandboxed cell runner: outputs, deadlines, crashes, limits, isolation."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from autograder.grading import sandbox
from autograder.grading.executor import Deadlines, Executor, JobSpec
from autograder.paths import project_root
from tests.grading.support import grows, none_left, processes_of, stops_growing

ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def executor():
    Executor.warm_up()
    return Executor()


def run(executor, tmp_path, cells, *, cell=5.0, notebook=30.0, output_limit=1_000_000, slot=0):
    workdir = tmp_path / f"job{slot}"
    sandbox.prepare_workdir(workdir, slot)
    spec = sandbox.SandboxSpec(
        workdir=workdir,
        slot=slot,
        keep=[project_root() / ".venv", project_root() / "autograder", Path("/root/.pyenv")],
    )
    job = JobSpec(
        env={"COURSE_TEST_MARK": "42"},
        sandbox=spec,
        output_limit=output_limit,
        deadlines=Deadlines(cell=cell, notebook=notebook, grace=1.0),
    )
    return executor.execute(list(enumerate(cells)), job)


def texts(result, index):
    return "".join(o.get("text", "") for o in result.cells[index]["outputs"] if o["output_type"] == "stream")


def errors(result, index):
    return [o for o in result.cells[index]["outputs"] if o["output_type"] == "error"]


def test_cells_share_state_and_await_works(executor, tmp_path):
    r = run(
        executor,
        tmp_path,
        [
            "import asyncio, os\nasync def f():\n    return asyncio.get_running_loop()\nloop = await f()",
            "(await f()) is loop",
            "print(os.environ['COURSE_TEST_MARK'])",
            "1/0",
            "print('after an error')",
        ],
    )
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


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("import os; os._exit(3)", "exited with status 3"),
        ("import ctypes; ctypes.string_at(0)", "SIGSEGV"),
    ],
)
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
    r = run(
        executor,
        tmp_path,
        [
            f"open({str(project_root() / 'README.md')!r})",
            "import socket; socket.create_connection(('127.0.0.1', 22), timeout=1)",
            "import os; print(os.getuid(), os.getcwd())",
            f"open({str(project_root() / 'escape.txt')!r}, 'w')",
        ],
    )
    assert set(r.protections.on) == {"network", "filesystem", "processes", "user", "limits", "syscalls"}
    assert errors(r, 0)[0]["ename"] == "FileNotFoundError"
    assert errors(r, 1), "no network: even loopback is unreachable in a fresh namespace"
    assert texts(r, 2) == f"{sandbox.SANDBOX_UID_BASE} /tmp\n"
    assert errors(r, 3) and not (project_root() / "escape.txt").exists()


def test_writes_land_in_the_submission_s_own_ram_folder_only(executor, tmp_path):
    if not ROOT:
        pytest.skip("isolation needs root on Linux")
    mine = f"autograder-test-{uuid.uuid4().hex}.txt"  # a name no other process on the host uses
    r = run(
        executor,
        tmp_path,
        [
            f"open('/tmp/{mine}', 'w').write('ok')",
            "open('/var/tmp/x', 'w').write('ok')",
            "open('/dev/shm/y', 'w').write('ok')",
            "import os\nprint(sorted(n for n in os.listdir('/tmp') if not n.startswith('.')))",
        ],
    )
    assert not errors(r, 0) and not errors(r, 1) and not errors(r, 2)
    # /tmp, /var/tmp and /dev/shm are one folder (besides the way to a kept path in /tmp: a checkout there)
    leading = {kept.parts[2] for kept in KEPT if kept.parts[1] == "tmp"}
    assert set(eval(texts(r, 3))) - leading == {mine, "stdio.log", "x", "y"}
    assert not (Path("/tmp") / mine).exists()
    assert not list((tmp_path / "job0").iterdir()), "nothing lands on the course's disk"


def test_the_submission_s_folder_has_a_size_limit(executor, tmp_path):
    if not ROOT:
        pytest.skip("isolation needs root on Linux")
    # Files of 60 MiB each (under the per-file limit) until the folder is full.
    code = (
        "import errno\nwritten = 0\ntry:\n    for i in range(40):\n"
        "        with open(f'/tmp/f{i}', 'wb') as f:\n            f.write(b'0' * (60 * 1024**2))\n"
        "        written += 60\nexcept OSError as exc:\n    print('full after', written, errno.errorcode[exc.errno])"
    )
    r = run(executor, tmp_path, [code], cell=20.0)
    words = texts(r, 0).split()
    assert words[:2] == ["full", "after"] and words[3] == "ENOSPC", texts(r, 0) + str(errors(r, 0))
    assert int(words[2]) * 1024**2 <= sandbox.Limits().folder_size


KEPT = [project_root() / ".venv", project_root() / "autograder", Path("/root/.pyenv")]


def test_only_the_allow_listed_paths_exist(executor, tmp_path):
    if not ROOT:
        pytest.skip("isolation needs root on Linux")
    # Another checkout on the machine (world-readable): not in the submission's view.
    other = Path(f"/var/lib/autograder-other-checkout-{os.getpid()}")
    other.mkdir()
    (other / "answers.txt").write_text("another course's answers")
    stops = [*sandbox.SYSTEM_PATHS, *map(str, KEPT), "/proc", "/tmp", "/dev"]
    walk = (
        f"import os\nstops = {stops!r}\nfound = []\n"
        "def walk(folder):\n    for name in os.listdir(folder):\n        path = os.path.join(folder, name)\n"
        "        if path in stops:\n            continue\n        found.append(path)\n"
        "        if os.path.isdir(path) and not os.path.islink(path):\n            walk(path)\n"
        "walk('/')\nprint(sorted(found))"
    )
    try:
        r = run(
            executor,
            tmp_path,
            [
                walk,
                f"open({str(other / 'answers.txt')!r})",
                "import zoneinfo, sqlalchemy, fastapi\nprint(zoneinfo.ZoneInfo('Asia/Tokyo').key)",
            ],
        )
    finally:
        (other / "answers.txt").unlink()
        other.rmdir()
    found = eval(texts(r, 0))
    # Outside the allow-listed paths there is nothing but the folders that lead to them.
    leading = {str(parent) for kept in KEPT for parent in kept.parents if str(parent) != "/"} | {"/var"}
    assert set(found) <= leading | {"/var/tmp"}, sorted(set(found) - leading)
    assert errors(r, 1)[0]["ename"] == "FileNotFoundError"
    assert texts(r, 2) == "Asia/Tokyo\n"  # what the lessons need is there


def test_a_fork_bomb_stops_at_the_process_limit(executor, tmp_path):
    if not ROOT:
        pytest.skip("the process limit needs a uid of its own (root)")
    code = (
        "import os\nkids = []\ntry:\n    for _ in range(500):\n        pid = os.fork()\n"
        "        if pid == 0:\n            import time; time.sleep(5); os._exit(0)\n        kids.append(pid)\n"
        "except OSError as exc:\n    print('stopped after', len(kids), type(exc).__name__)\n"
    )
    r = run(executor, tmp_path, [code], cell=10.0)
    out = texts(r, 0)
    assert out.startswith("stopped after") and int(out.split()[2]) < 100


def test_a_test_whose_process_dies_right_after_it_is_not_trusted(executor, tmp_path):
    # A reply for a test cell counts only once the process answers again: code running
    # inside a test could forge a "passed" reply and end the process before the real one.
    workdir = tmp_path / "job"
    sandbox.prepare_workdir(workdir, 0)
    job = JobSpec(env={}, sandbox=sandbox.SandboxSpec(workdir=workdir, isolate=False), graded_cells=frozenset({0, 2}))
    r = executor.execute(
        [(0, "print('test 1 ran')"), (1, "print('fine')"), (2, "print('test 2 ran')"), (3, "import os; os._exit(1)")],
        job,
    )
    assert r.ended == "crashed"
    assert texts(r, 0) == "test 1 ran\n"  # confirmed by the next cell's answer
    assert errors(r, 2)[0]["ename"] == "Unconfirmed"  # the process died right after it


def test_each_submission_starts_from_the_servers_pristine_shell(executor, tmp_path):
    # The shell is made once in the fork server: what one submission leaves in it (a
    # variable, a changed setting, a registered hook) must not reach the next one.
    first = run(
        executor,
        tmp_path,
        [
            "left_behind = 41",
            "get_ipython().ast_node_interactivity = 'none'",
            "get_ipython().events.register('pre_run_cell', lambda *a: print('hook of the first'))",
            "left_behind + 1",
        ],
    )
    # its own changes took effect in its own process: the hook ran, the value was not shown
    assert first.cells[3]["outputs"] == [{"output_type": "stream", "name": "stdout", "text": "hook of the first\n"}]
    second = run(
        executor,
        tmp_path,
        [
            "'left_behind' in dir()",
            "import os\nprint(get_ipython().user_ns['_dh'] == [os.getcwd()])",
            "6 * 7",
        ],
        slot=1,
    )
    assert second.cells[0]["outputs"][0]["data"]["text/plain"] == "False"
    assert texts(second, 1) == "True\n"  # the shell knows this process's folder, not the server's
    assert second.cells[2]["outputs"] == [
        {"output_type": "execute_result", "data": {"text/plain": "42"}, "metadata": {}, "execution_count": 3}
    ]


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
    slot = 6  # a uid no other test's submissions run as
    r = run(
        executor,
        tmp_path,
        [TOUCHER, "import os\nprint(os.path.getsize('/tmp/alive') > 0, len(os.listdir('/proc')))", "print('done')"],
        slot=slot,
    )
    assert texts(r, 2) == "done\n" and "processes" in r.protections.on
    assert texts(r, 1).startswith("True"), "the daemon ran while the submission did"
    assert none_left(sandbox.SANDBOX_UID_BASE + slot), "a daemon outlived its submission"


def test_the_submission_sees_and_signals_only_its_own_processes(executor, tmp_path):
    if not ROOT:
        pytest.skip("a PID namespace needs root on Linux")
    r = run(
        executor,
        tmp_path,
        [
            "import os\nprint(os.getpid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))",
            f"os.kill({os.getpid()}, 0)",  # the grader's pid, as the grader knows it
        ],
    )
    assert texts(r, 0) == "1 [1]\n"
    assert errors(r, 1)[0]["ename"] == "ProcessLookupError"


def test_a_grader_killed_outright_takes_its_submissions_with_it(tmp_path):
    # kill -9 of the grader: nothing calls Executor._kill, yet no submission may run on.
    workdir = tmp_path / "job"
    slot = 5  # a uid no other test's submissions run as
    sandbox.prepare_workdir(workdir, slot)
    script = tmp_path / "grader.py"
    script.write_text(f"""
import sys
sys.path.insert(0, {str(project_root())!r})
from pathlib import Path
from autograder.grading import sandbox
from autograder.grading.executor import Deadlines, Executor, JobSpec
spec = sandbox.SandboxSpec(workdir=Path({str(workdir)!r}), isolate={ROOT!r}, slot={slot},
                           keep=[Path({str(project_root() / ".venv")!r}), Path({str(project_root() / "autograder")!r}),
                                 Path('/root/.pyenv')])
job = JobSpec(env={{}}, sandbox=spec, deadlines=Deadlines(cell=600, notebook=600))
here = '/tmp' if {ROOT!r} else {str(workdir)!r}
Executor().execute([(0, "import time\\nwhile True:\\n    open(here + '/alive', 'a').write('.'); time.sleep(0.02)"
                        .replace('here', repr(here)))], job)
""")
    grader = subprocess.Popen([sys.executable, str(script)])
    uid = sandbox.SANDBOX_UID_BASE + slot

    def marker() -> Path:
        if not ROOT:
            return workdir / "alive"
        # Its /tmp is a RAM disk in its own view; the host reaches it through the process's root.
        return next((Path(f"/proc/{pid}/root/tmp/alive") for pid in processes_of(uid)), workdir / "alive")

    try:
        deadline = time.monotonic() + 30
        while not marker().exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker().exists(), "the submission never started"
        assert grows(marker())
    finally:
        grader.kill()
        grader.wait()
    # the fork server notices, then the kernel ends what it started
    if ROOT:
        assert none_left(uid), "the submission ran on after its grader was killed"
    else:
        assert stops_growing(marker()), "the submission ran on after its grader was killed"


def test_a_world_writable_folder_anywhere_is_read_only_to_the_submission(executor, tmp_path):
    if not ROOT:
        pytest.skip("isolation needs root on Linux")
    # A machine may have world-writable folders we do not know of (a spool, a cache, a mail drop).
    folder = Path("/var/lib") / f"autograder-test-{os.getpid()}"
    folder.mkdir()
    try:
        folder.chmod(0o1777)
        r = run(
            executor,
            tmp_path,
            [f"open({str(folder / 'dropped')!r}, 'w').write('x')", "open('/tmp/mine', 'w').write('ok')"],
        )
        assert errors(r, 0) and errors(r, 0)[0]["ename"] == "FileNotFoundError"  # not in its view at all
        assert not (folder / "dropped").exists()
        assert not errors(r, 1)  # its own folder is writable
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
        assert str(segment) in Path("/proc/sysvipc/shm").read_text()
        r = run(executor, tmp_path, ["print(open('/proc/sysvipc/shm').read().count('\\n'))"])
    finally:
        libc.shmctl(segment, 0, None)  # IPC_RMID
    assert texts(r, 0) == "1\n"  # the header only: not the host's segment, nor another submission's


def test_the_fork_server_writes_nothing_of_ipythons_and_runs_no_thread(tmp_path):
    # The shell is made in the server: with a history database it would record a session in the
    # grader's ~/.ipython and start a writer thread there, which every fork would inherit half of.
    ipython_dir = tmp_path / "ipython"
    probe = subprocess.run(
        [sys.executable, "-c", "import threading, autograder.grading.preload\nprint(threading.active_count())"],
        capture_output=True,
        text=True,
        env={**os.environ, "IPYTHONDIR": str(ipython_dir)},
        cwd=project_root(),
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.strip() == "1"
    assert not ipython_dir.exists()


def test_the_submissions_ipython_profile_is_in_its_own_folder(executor, tmp_path):
    r = run(
        executor,
        tmp_path,
        [
            "ip = get_ipython()\nprint(ip.profile_dir.location.startswith(ip.ipython_dir), ip.history_manager.enabled)",
            "import os\nprint(os.path.isdir(get_ipython().profile_dir.location))",
        ],
    )
    assert texts(r, 0) == "True False\n" and texts(r, 1) == "True\n"
    home = "/tmp" if ROOT else str(tmp_path / "job0")
    r = run(executor, tmp_path, ["import os\nprint(get_ipython().profile_dir.location)"])
    assert texts(r, 0) == f"{home}/.ipython/profile_default\n"


# --- what the grader keeps of a reply, whatever the child sends (issue 11, class F)


class _Alive:
    @staticmethod
    def is_alive():
        return True


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big", signed=True) + payload


def _writer(conn, data: bytes):
    import threading

    def write():
        view = memoryview(data)
        while len(view):
            view = view[os.write(conn.fileno(), view[: 1 << 16]) :]

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_a_reply_over_the_limit_is_read_through_and_stands_as_an_error_on_its_cell():
    import multiprocessing

    from autograder.grading.executor import MAX_MESSAGE_BYTES

    ours, theirs = multiprocessing.Pipe()
    body = json.dumps(
        {
            "execution_count": 1,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "x" * (3 * MAX_MESSAGE_BYTES)}],
            "status": "ok",
            "cell": 3,
            "nonce": "ab12",
        }
    ).encode()
    _writer(theirs, _frame(body) + _frame(b'{"bye": "cd"}'))
    reply = Executor._receive(ours, _Alive(), time.monotonic() + 20)
    assert reply["cell"] == 3 and reply["nonce"] == "ab12"
    assert reply["outputs"][0]["ename"] == "OutputError" and "not kept" in reply["outputs"][0]["evalue"]
    assert Executor._receive(ours, _Alive(), time.monotonic() + 5) == {"bye": "cd"}  # framing kept


def test_a_frame_announced_and_never_finished_does_not_hold_the_grader_past_the_deadline():
    import multiprocessing

    ours, theirs = multiprocessing.Pipe()
    os.write(theirs.fileno(), (1000).to_bytes(4, "big") + b'{"cell": 1')
    started = time.monotonic()
    assert Executor._receive(ours, _Alive(), started + 0.5) is None
    assert time.monotonic() - started < 2


def test_past_the_notebook_s_allowance_a_cell_keeps_a_note_and_its_last_error():
    import multiprocessing

    from autograder.grading.executor import NOTEBOOK_OUTPUT_BYTES

    ours, theirs = multiprocessing.Pipe()
    reply = {
        "execution_count": 1,
        "status": "error",
        "cell": 0,
        "nonce": "n",
        "outputs": [
            {"output_type": "stream", "name": "stdout", "text": "x" * 1_500_000},
            {"output_type": "error", "ename": "KeyError", "evalue": "y" * 100_000, "traceback": ["t" * 100_000]},
        ],
    }
    count = NOTEBOOK_OUTPUT_BYTES // 1_500_000 + 3
    _writer(theirs, _frame(json.dumps(reply).encode()) * count)
    got = [Executor._receive(ours, _Alive(), time.monotonic() + 20) for _ in range(count)]
    kept = sum(len(json.dumps(r["outputs"])) for r in got)
    assert kept < NOTEBOOK_OUTPUT_BYTES + 2_000_000
    last = got[-1]["outputs"]
    assert [o["output_type"] for o in last] == ["stream", "error"] and last[-1]["ename"] == "KeyError"
    assert len(last[-1]["evalue"]) <= 500


@pytest.mark.parametrize(
    "raw",
    [
        b'{"outputs": [], "n": ' + b"9" * 5000 + b"}",  # more digits than int() and json.dumps allow
        b'{"outputs": [{"output_type": "stream", "name": "stdout", "text": NaN}], "x": 1e999}',
        b'{"outputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # deeper than json can parse
        b"\xff\xfe not json",
    ],
)
def test_a_reply_json_cannot_keep_is_parsed_into_writable_values_or_refused_never_raised(raw):
    from autograder.grading import outputs

    message = outputs.parse(raw)
    assert message is None or json.loads(json.dumps(message, allow_nan=False)) == message


UNWRITABLE = [
    {"output_type": "stream", "name": "stdout", "text": "a lone surrogate: \ud800\n"},
    {
        "output_type": "display_data",
        "data": {
            "text/plain": 5,
            "image/png": {"a": 1},
            "text/html": ["<b>", 1],
            "application/json": {"deep": [[[["\udfff"]]]], "n": float("inf")},
        },
        "metadata": [],
    },
    {"output_type": "execute_result", "data": {}, "metadata": {}, "execution_count": "x", "extra": 1},
    {"output_type": "stream", "name": 5, "text": None},
    {"output_type": "no such type"},
    "not even a dict",
    {"output_type": "error", "ename": None, "evalue": {"a": 1}, "traceback": [1, None, "\ud800"]},
]


def test_outputs_nbformat_cannot_write_are_replaced_never_fatal_and_errors_stay_errors(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from autograder.grading.executor import Execution, apply_execution

    nb = new_notebook(cells=[new_code_cell("x"), new_code_cell("y")])
    execution = Execution(
        cells={
            0: {"execution_count": "1", "outputs": UNWRITABLE},
            1: {"execution_count": 2, "outputs": [UNWRITABLE[-1]]},
        }
    )
    apply_execution(nb, execution)
    nbformat.validate(nb)
    nbformat.write(nb, tmp_path / "graded.ipynb")  # raised UnicodeEncodeError before
    back = nbformat.read(tmp_path / "graded.ipynb", as_version=4)
    kinds = [o.output_type for o in back.cells[0].outputs]
    assert len(kinds) == len(UNWRITABLE) and kinds[-1] == "error"
    assert back.cells[1].outputs[0].output_type == "error"
    assert "\\ud800" in back.cells[0].outputs[0].text  # shown as its escape
    assert back.cells[0].outputs[1].data["text/plain"] == "5"
    assert "replaced" in back.cells[0].outputs[4].text
