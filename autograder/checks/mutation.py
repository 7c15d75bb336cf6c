"""Grade a learner's *test suite* by mutation: it must pass a correct app and fail each buggy one.

The suite is a folder (pytest.ini, conftest.py, test_*.py) that the learner wrote. It gets its
app from an `app` fixture provided by a pytest plugin (`plugin`, a module name).

    verdict = await suite_kills_mutants(folder, {"n_plus_one": "GET /authors loads books per author"},
                                        plugin="autograder.demos.testing", env={"DATABASE_URL": url})

The variants must be indistinguishable to the suite except by their behaviour: a suite that could
read which app it has (a test id, an environment variable) would "catch" every mutant by testing
nothing. So pytest runs once per variant, each run in a child process of its own (`_child_main`):
`python -I` (neither the suite's folder nor user site-packages on sys.path, so no file of the
suite's can run first), which reads the variant's name from its stdin, hands it to the plugin's
`select_variant(name)` (which keeps the app, not the name), forgets it and only then starts pytest.
argv, the environment, the test ids (`test_x[app]`: `APP_PARAM_ID` in every run, it only marks
the tests that use the app) are the same in every run, the report's path is random in all, and
the runs go in a random order, so that a suite keeping notes between runs learns nothing from
that either. The grader alone maps each run back to its variant: the outcome of every test is
read from that run's JUnit XML report, and the learner-facing messages name the variants.
Runs are cached by the suite's file contents, so several graded cells can share one run.

What stays possible is analysing the app's *code*: the child holds the variant under test only
(`make_app` builds it whatever it is asked), but a suite that loads a second copy of the course's
module from its file (`importlib.reload`, `exec`) or carries a hash of the correct app's bytecode
can compare. The bug is that code, public (the lesson shows the mutants) and in the process of the
tests the lesson needs (dependency overrides, the pool); only an app out of process would hide it.
And a suite that fails at random, or by how many runs it has counted, is lucky sometimes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autograder.checks.messages import check, verdict
from autograder.checks.verdict import Verdict
from autograder.errors import first_line

APP_PARAM_ID = "app"  # the app fixture's one parameter id, the same for every variant
CORRECT = "correct"
OUTPUT_TAIL_LINES = 15

__all__ = ["SuiteRun", "run_suite", "suite_kills_mutants", "suite_passes", "APP_PARAM_ID"]


@dataclass
class SuiteRun:
    """What one pytest run of a suite did, per test and per variant."""

    variants: tuple[str, ...]
    exit_code: int | None  # the highest of the runs' exit codes; None: a run was killed at the timeout
    outcomes: dict[tuple[str, str], str] = field(default_factory=dict)  # (test, variant) -> outcome
    messages: dict[tuple[str, str], str] = field(default_factory=dict)  # first line of a failure
    problems: list[str] = field(default_factory=list)  # collection errors, crashes
    output: str = ""
    seconds: float = 0.0

    def tests(self) -> list[str]:
        return list(dict.fromkeys(test for test, _ in self.outcomes))

    def failing(self, variant: str) -> list[str]:
        return [t for (t, v), o in self.outcomes.items() if v == variant and o in ("failed", "error")]

    def ran(self, variant: str) -> list[str]:
        return [t for (t, v), o in self.outcomes.items() if v == variant and o != "skipped"]

    def tail(self, lines: int = OUTPUT_TAIL_LINES) -> str:
        return "\n".join(self.output.strip().splitlines()[-lines:])

    def table(self) -> str:
        """Tests down, variants across: '.' passed, 'F' failed, 'E' error, 's' skipped."""
        tests = self.tests()
        mark = {"passed": ".", "failed": "F", "error": "E", "skipped": "s"}
        width = max([len(t) for t in tests] + [4])
        head = " " * width + "  " + "  ".join(self.variants)
        rows = [head]
        for test in tests:
            cells = [mark.get(self.outcomes.get((test, v), ""), "-").center(len(v)) for v in self.variants]
            rows.append(f"{test:<{width}}  " + "  ".join(cells))
        caught = [v for v in self.variants if v != CORRECT and self.failing(v)]
        rows.append("")
        if self.problems:
            rows.append("the suite did not run: " + "; ".join(self.problems))
        elif self.failing(CORRECT):
            rows.append(
                f"false alarm: {len(self.failing(CORRECT))} test(s) fail against the correct app, "
                "so no mutant counts as caught"
            )
        else:
            rows.append(
                f"mutants caught: {len(caught)} of {len([v for v in self.variants if v != CORRECT])}"
                + (f" ({', '.join(caught)})" if caught else "")
            )
        return "\n".join(rows)


def _split_id(name: str) -> tuple[str, bool]:
    """'test_x[app]' -> ('test_x', True); 'test_x[app-3]' -> ('test_x[3]', True); no app -> (name, False)."""
    if not name.endswith("]") or "[" not in name:
        return name, False
    base, params = name[:-1].split("[", 1)
    parts = params.split("-")
    if APP_PARAM_ID not in parts:
        return name, False
    parts.remove(APP_PARAM_ID)
    return (f"{base}[{'-'.join(parts)}]" if parts else base), True


def _read_junit(path: Path, run: SuiteRun, variant: str) -> None:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        run.problems.append("pytest wrote no test report (it crashed or was stopped)")
        return
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        test, uses_app = _split_id(name)
        failure = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        if not uses_app:
            node = error if error is not None else failure
            if node is not None:
                where = case.get("classname") or name
                message = (node.get("message") or "").strip()
                detail = [ln.strip() for ln in (node.text or "").splitlines() if ln.startswith("E ")]
                run.problems.append(f"{where}: " + (detail[-1][1:].strip() if detail else message))
            continue
        key = (test, variant)
        if error is not None:
            # a teardown error after a passed call is reported as a second testcase entry
            run.outcomes[key] = "error"
            run.messages.setdefault(key, (error.get("message") or "").strip())
        elif failure is not None:
            run.outcomes[key] = "failed"
            run.messages.setdefault(key, (failure.get("message") or "").strip())
        elif skipped is not None:
            run.outcomes.setdefault(key, "skipped")
        else:
            run.outcomes.setdefault(key, "passed")


_cache: dict[str, SuiteRun] = {}


def _fingerprint(folder: Path, plugin: str, variants: Sequence[str], env: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    digest.update(repr((plugin, tuple(variants), sorted(env.items()))).encode())
    return digest.hexdigest()


_CHILD = "from autograder.checks.mutation import _child_main; _child_main()"


def _child_main() -> None:
    """The child's entry point: argv is `plugin pytest-args...`, stdin the variant's name."""
    import importlib

    import pytest

    plugin, *args = sys.argv[1:]
    variant = sys.stdin.readline().strip()
    # fd 0 pointed at /dev/null: nothing is left to read, and pytest's capture expects an fd 0
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    importlib.import_module(plugin).select_variant(variant)
    del variant  # this frame stays on the stack under every test: it must not hold the name
    sys.argv = [sys.argv[0], *args]
    raise SystemExit(pytest.main(args))


async def _run_variant(
    folder: Path, variant: str, run: SuiteRun, *, plugin: str, env: Mapping[str, str], timeout: float
) -> str:
    """One pytest child against one variant; its outcomes go into `run`; returns its output."""
    with tempfile.TemporaryDirectory(prefix="suite-report-") as tmp:
        report = Path(tmp) / "report.xml"
        child_env = {**os.environ, **env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        ini = folder / "pytest.ini"
        args = [
            sys.executable,
            "-I",
            "-B",
            "-c",
            _CHILD,
            plugin,
            str(folder),
            "-q",
            "-p",
            "pytest_asyncio.plugin",
            "-p",
            plugin,
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(folder),
            f"--junitxml={report}",
            "-o",
            "junit_family=xunit1",
            "--color=no",
            "-W",
            "ignore::DeprecationWarning",
        ]
        if ini.is_file():
            args += ["-c", str(ini)]
        proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=str(folder),
            env=child_env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(f"{variant}\n".encode()), timeout)
            if run.exit_code is not None and proc.returncode is not None:
                run.exit_code = max(run.exit_code, proc.returncode)
        except TimeoutError:
            proc.kill()
            out, _ = await proc.communicate()
            run.exit_code = None
            run.problems.append(f"the suite did not finish within {timeout:g} s and was stopped")
        _read_junit(report, run, variant)
    return out.decode(errors="replace")


async def run_suite(
    folder: str | Path,
    variants: Sequence[str],
    *,
    plugin: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    cache: bool = True,
) -> SuiteRun:
    """Run pytest on `folder` once per variant of the plugin's `app` (`timeout`: per run)."""
    folder = Path(folder).resolve()  # noqa: ASYNC240 - one path lookup before minutes of pytest runs
    env = dict(env or {})
    key = _fingerprint(folder, plugin, variants, env)
    if cache and key in _cache:
        return _cache[key]
    run = SuiteRun(variants=tuple(variants), exit_code=0)
    order = list(dict.fromkeys(variants))
    random.SystemRandom().shuffle(order)  # a fixed order would tell a suite with a memory which run is which
    outputs: dict[str, str] = {}
    started = time.perf_counter()
    for variant in order:
        outputs[variant] = await _run_variant(folder, variant, run, plugin=plugin, env=env, timeout=timeout)
        if run.problems:
            break  # a suite that cannot be collected (or hangs) fails the same way against every app
    run.seconds = time.perf_counter() - started
    run.problems = list(dict.fromkeys(run.problems))
    # in run order, so that the tail shown with a problem is the run that had it
    run.output = "\n".join(f"---- against {v} ----\n{out}" for v, out in outputs.items())
    if run.exit_code in (2, 3, 4) and not run.problems:
        run.problems.append(f"pytest stopped with exit code {run.exit_code} (interrupted or a usage error)")
    if run.exit_code == 5 or (run.exit_code is not None and not run.outcomes and not run.problems):
        run.problems.append("pytest collected no test that uses the `app` fixture")
    if cache:
        _cache[key] = run
    return run


def _broken(run: SuiteRun, expected: str) -> Verdict | None:
    if run.problems:
        return verdict(
            False,
            expected,
            "the suite did not run: " + "; ".join(run.problems) + "\n" + run.tail(),
            hint="run the suite yourself and fix what pytest reports; every test should take "
            "the `app` fixture (that is how each app variant reaches your tests).",
        )
    if not run.ran(CORRECT):
        return verdict(
            False,
            expected,
            "no test ran against the apps (none takes the `app` fixture, or all were skipped)",
            hint="request the `app` fixture, directly or through your own fixtures (client).",
        )
    return None


@check
def suite_passes(run: SuiteRun) -> Verdict:
    """The suite passes against the correct app: a test that fails there catches nothing."""
    expected = "every test passes against the correct app"
    broken = _broken(run, expected)
    if broken is not None:
        return broken
    failing = run.failing(CORRECT)
    details = "; ".join(f"{t}: {first_line(run.messages.get((t, CORRECT)) or '?', 200)}" for t in failing[:3])
    return verdict(
        not failing,
        expected,
        (
            f"all {len(run.ran(CORRECT))} test(s) passed against it"
            if not failing
            else f"{len(failing)} of {len(run.ran(CORRECT))} test(s) failed against the correct app — {details}"
        ),
        hint=(
            "a test that fails on a correct app is a false alarm, and the grader cannot tell a caught bug from it. "
            "Check what the app really answers (status codes, body), and that each test starts from a clean "
            "database (savepoint fixture) rather than from what an earlier test left behind."
        ),
    )


@check
async def suite_kills_mutants(
    folder: str | Path,
    mutants: Mapping[str, str],
    *,
    plugin: str,
    hints: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    variants: Sequence[str] | None = None,
    cache: bool = True,
) -> Verdict:
    """The suite passes against the correct app and fails against every app in `mutants`.

    `mutants` maps each mutant variant to what is wrong with it (shown to the learner when it
    survives); `hints` optionally maps it to what kind of test would catch it. `variants` is the
    full list to run (default: correct + the mutants); pass the same list from several graded cells
    so they share one cached run.
    """
    names = list(mutants)
    everything = list(variants) if variants is not None else [CORRECT, *names]
    missing = [m for m in [CORRECT, *names] if m not in everything]
    if missing:
        raise ValueError(f"variants {everything} lack {missing}")
    run = await run_suite(folder, everything, plugin=plugin, env=env, timeout=timeout, cache=cache)
    expected = "the suite passes against the correct app and at least one test fails against " + (
        "the app where " + mutants[names[0]]
        if len(names) == 1
        else "each buggy app: " + "; ".join(f"{n} ({mutants[n]})" for n in names)
    )
    gate = suite_passes(run)
    if not gate.passed:
        return verdict(False, expected, gate.actual, hint=gate.hint)
    survivors = [m for m in names if not run.failing(m)]
    if not survivors:
        caught = "; ".join(f"{m} by {', '.join(run.failing(m)[:3])}" for m in names)
        return verdict(True, expected, f"caught: {caught}")
    lines = [
        f"{m} survived: all {len(run.ran(m))} test(s) passed against the app where {mutants[m]}" for m in survivors
    ]
    hint_text = " ".join((hints or {}).get(m, "") for m in survivors).strip()
    return verdict(
        False,
        expected,
        "\n          ".join(lines),
        hint=hint_text or "write a test that observes the behaviour the buggy app gets wrong.",
    )
