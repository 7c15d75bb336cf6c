"""The sandbox's own protections, seen from inside a submission: its environment, its standard
output, its privileges and the system calls it may make."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from autograder.grading import sandbox, seccomp
from autograder.grading.executor import Deadlines, Executor, JobSpec
from autograder.paths import project_root

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="isolation needs root on Linux; the summary reports it as off")


@pytest.fixture(scope="module")
def executor():
    Executor.warm_up()
    return Executor()


def run(executor, tmp_path, cells, *, slot=0):
    workdir = tmp_path / f"job{slot}"
    sandbox.prepare_workdir(workdir, slot)
    spec = sandbox.SandboxSpec(
        workdir=workdir, slot=slot, keep=[project_root() / ".venv", project_root() / "autograder", sys_prefix()]
    )
    job = JobSpec(
        env={"COURSE_DB_URL": "postgresql+asyncpg://me@/mine"},
        sandbox=spec,
        deadlines=Deadlines(cell=10.0, notebook=60.0, grace=1.0),
    )
    return executor.execute(list(enumerate(cells)), job)


def sys_prefix():
    from pathlib import Path

    return Path(os.path.realpath(sys.base_prefix))


def texts(result, index):
    return "".join(o.get("text", "") for o in result.cells[index]["outputs"] if o["output_type"] == "stream")


def errors(result, index):
    return [o for o in result.cells[index]["outputs"] if o["output_type"] == "error"]


def test_the_environment_is_an_allow_list_and_the_job_s_own():
    env = sandbox.submission_environment({"DATABASE_URL": "postgresql://mine"})
    assert env["DATABASE_URL"] == "postgresql://mine"
    assert set(env) <= {*sandbox.INHERITED_ENVIRONMENT, "PATH", "DATABASE_URL"}
    assert env["PATH"].startswith(os.path.dirname(sys.executable))


def in_a_fresh_grader(tmp_path, cell: str, before: str = "") -> subprocess.CompletedProcess:
    """Grade one `cell` in a grader process of its own (its own fork server), `before` run first
    in that process; it prints the cell's stream output and errors after `RESULT`."""
    script = (
        f"import os, sys\n{before}\n"
        "from pathlib import Path\n"
        "from autograder.grading import sandbox\n"
        "from autograder.grading.executor import Deadlines, Executor, JobSpec\n"
        f"work = Path({str(tmp_path / 'job')!r})\n"
        "sandbox.prepare_workdir(work, 0)\n"
        f"spec = sandbox.SandboxSpec(workdir=work, isolate={ROOT!r}, keep=[Path({str(project_root() / '.venv')!r}),"
        f" Path({str(project_root() / 'autograder')!r}), Path({str(sys_prefix())!r})])\n"
        "job = JobSpec(env={}, sandbox=spec, deadlines=Deadlines(cell=10, notebook=30))\n"
        f"r = Executor().execute([(0, {cell!r})], job)\n"
        "print('RESULT', ''.join(o.get('text', '') for o in r.cells[0]['outputs']).strip(), "
        "[o.get('evalue') for o in r.cells[0]['outputs'] if o['output_type'] == 'error'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=project_root(), timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_a_secret_in_the_grader_s_environment_is_nowhere_in_the_submission(tmp_path):
    # The grader's environment when the fork server starts is what every fork could read back
    # (/proc/self/environ is the block the process was started with), so it runs in its own.
    # The block a process was started with sits at the top of its stack: read it there.
    done = in_a_fresh_grader(
        tmp_path,
        before="os.environ['GRADER_SECRET'] = 's3cr3t-token-of-the-grader'",
        cell=(
            "import os, ctypes\nstack = next(l for l in open('/proc/self/maps') if '[stack]' in l)\n"
            "lo, hi = (int(x, 16) for x in stack.split()[0].split('-'))\n"
            "print('GRADER_SECRET' in os.environ, b's3cr3t' in ctypes.string_at(lo, hi - lo))"
        ),
    )
    assert "RESULT False False []" in done.stdout, done.stdout[-2000:]


def test_what_the_submission_writes_to_fds_1_and_2_never_reaches_the_grader(tmp_path):
    # `grade-one` prints its JSON on the grader's stdout: a submission writing there could put a
    # forged document in front of it.
    done = in_a_fresh_grader(
        tmp_path,
        cell=(
            "import os, sys\nos.write(1, b'FORGED-OUT')\nos.write(2, b'FORGED-ERR')\n"
            "sys.__stdout__.write('FORGED-PY'); sys.__stdout__.flush()\nprint('mine')"
        ),
    )
    assert "FORGED" not in done.stdout + done.stderr
    assert "RESULT mine []" in done.stdout


@needs_root
def test_no_new_privileges_no_capabilities_and_a_seccomp_filter(executor, tmp_path):
    r = run(
        executor,
        tmp_path,
        [
            (
                "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
                "print(status['NoNewPrivs'].strip(), status['Seccomp'].strip(), status['CapBnd'].strip(),"
                " status['CapEff'].strip())"
            ),
        ],
    )
    assert "syscalls" in r.protections.on, r.protections.off
    no_new_privs, mode, bounding, effective = texts(r, 0).split()
    assert no_new_privs == "1" and mode == "2"  # 2: a filter
    assert int(bounding, 16) == 0 and int(effective, 16) == 0


@needs_root
@pytest.mark.parametrize(
    "call",
    [
        "import os\nos.unshare(os.CLONE_NEWUSER)",
        (  # CLONE_NEWUSER, through libc
            "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "assert libc.unshare(0x10000000) == 0, ctypes.get_errno()"
        ),
        (
            "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "assert libc.mount(b'tmpfs', b'/tmp', b'tmpfs', 0, None) == 0, ctypes.get_errno()"
        ),
        (  # PTRACE_ATTACH to process 1
            "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "assert libc.ptrace(16, 1, 0, 0) == 0, ctypes.get_errno()"
        ),
        (  # unshare by number (x86_64)
            "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "assert libc.syscall(272, 0x10000000) == 0, ctypes.get_errno()"
        ),
    ],
    ids=["unshare-user", "libc-unshare", "mount", "ptrace", "raw-syscall"],
)
def test_namespaces_mounts_and_tracing_are_refused(executor, tmp_path, call):
    if "272" in call and os.uname().machine != "x86_64":
        pytest.skip("the raw call number is x86_64's")
    r = run(executor, tmp_path, [call, "print('still running')"])
    assert errors(r, 0), "the call succeeded"
    assert texts(r, 1) == "still running\n"  # refused with an error, not a kill


@needs_root
def test_a_setuid_root_program_gives_no_root(executor, tmp_path):
    # A setuid-root copy of `id` where the submission can see it (/usr is in its view).
    import shutil

    planted = f"/usr/local/bin/autograder-test-id-{os.getpid()}"
    shutil.copy("/usr/bin/id", planted)
    os.chown(planted, 0, 0)
    os.chmod(planted, 0o4755)
    try:
        assert subprocess.run(
            ["setpriv", "--reuid=65534", planted, "-u"], capture_output=True, text=True
        ).stdout.strip() in ("0", ""), "the planted program should give root outside"
        r = run(
            executor,
            tmp_path,
            [
                (
                    f"import subprocess\nprint(subprocess.run([{planted!r}, '-u'], "
                    "capture_output=True, text=True).stdout.strip())"
                )
            ],
        )
    finally:
        os.unlink(planted)
    assert texts(r, 0) == f"{sandbox.SANDBOX_UID_BASE}\n"


def test_seccomp_needs_its_library_or_says_why():
    if seccomp.library() is None:
        with pytest.raises(OSError, match="libseccomp"):
            seccomp.install()
    else:
        assert callable(seccomp.library().seccomp_load)


@needs_root
def test_a_kept_path_under_tmp_is_there_beside_the_submission_s_own_tmp(executor, tmp_path):
    # A checkout (and so its venv and package) in /tmp: the submission's /tmp is its own RAM disk,
    # and the kept path is bound inside it, read-only.
    kept = tmp_path / "checkout" / "package"
    kept.mkdir(parents=True)
    (kept / "module.txt").write_text("kept")
    workdir = tmp_path / "job"
    sandbox.prepare_workdir(workdir, 0)
    spec = sandbox.SandboxSpec(
        workdir=workdir, keep=[project_root() / ".venv", project_root() / "autograder", sys_prefix(), kept]
    )
    job = JobSpec(env={}, sandbox=spec, deadlines=Deadlines(cell=10.0, notebook=60.0, grace=1.0))
    r = executor.execute(
        list(
            enumerate(
                [
                    f"print(open({str(kept / 'module.txt')!r}).read())",
                    "open('/tmp/mine', 'w').write('ok')\nprint(open('/tmp/mine').read())",
                    f"open({str(kept / 'new.txt')!r}, 'w')",
                ]
            )
        ),
        job,
    )
    assert "filesystem" in r.protections.on, r.protections.off
    assert texts(r, 0) == "kept\n" and texts(r, 1) == "ok\n"
    assert errors(r, 2), "the kept path is read-only"
    assert not (kept / "new.txt").exists()
