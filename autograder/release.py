"""Generate the learner release `notebooks/` from `solutions/` with nbgrader.

    autograder release           # regenerate notebooks/ (make release)
    autograder release --check   # exit 1 and name the lessons that drifted
    autograder release --learner-copy DIR   # a copy of the course for learners: the release only

(the command is autograder/commands/release.py; this module is its function API).

The release is built in a scratch course folder with its own gradebook and then
copied over, so a failed build never leaves a half-written notebooks/ and the
check compares exactly what `make release` would write.
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from autograder.course.api import checked, course_api
from autograder.course.layout import RELEASE_DIR, SOURCE_DIR, lessons
from autograder.errors import SetupError
from autograder.paths import project_root

# What a learner's installation holds: enough to `make lab`, nothing of the answers (solutions/:
# every answer and hidden test; tests/ and benchmarks/ build answered notebooks from them). The
# compose learner image copies exactly these (Dockerfile, asserted in tests/test_compose.py).
LEARNER_FILES = ("pyproject.toml", "README.md", "Makefile", "nbgrader_config.py", "autograder", "jupyter", RELEASE_DIR)


def build(dest_root: Path, source_root: Path | None = None, only: list[str] | None = None) -> Path:
    """Build the release of every lesson under `dest_root/notebooks`; return that folder."""
    source_root = source_root or project_root()
    shutil.copytree(
        source_root / SOURCE_DIR,
        dest_root / SOURCE_DIR,
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
    )
    api = course_api(root=dest_root, db_url=f"sqlite:///{dest_root / 'gradebook.db'}")
    for lesson in only or lessons(source_root):
        checked(api.generate_assignment(lesson, force=True, create=True), f"generate_assignment {lesson}")
    return dest_root / RELEASE_DIR


def differences(fresh: Path, committed: Path) -> list[str]:
    """Relative paths that differ between two release trees (missing, extra or changed)."""
    problems: list[str] = []

    def walk(cmp: filecmp.dircmp, prefix: str) -> None:
        problems.extend(f"{prefix}{n} (missing from {RELEASE_DIR}/)" for n in cmp.left_only)
        problems.extend(f"{prefix}{n} (not produced by the release)" for n in cmp.right_only)
        _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
        problems.extend(f"{prefix}{n} (differs)" for n in mismatch + errors)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    ignore = [".ipynb_checkpoints", "__pycache__"]
    if not committed.exists():
        return [f"{RELEASE_DIR}/ does not exist"]
    walk(filecmp.dircmp(fresh, committed, ignore=ignore), "")
    return sorted(problems)


def check(root: Path | None = None) -> list[str]:
    """What differs between root/notebooks and a fresh release of root/solutions (nothing: up to date)."""
    root = root or project_root()
    with tempfile.TemporaryDirectory(prefix="release-check-") as tmp:
        return differences(build(Path(tmp), source_root=root), root / RELEASE_DIR)


def release_course(root: Path | None = None) -> list[str]:
    """Regenerate root/notebooks from root/solutions; return the lessons written."""
    root = root or project_root()
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        fresh = build(Path(tmp), source_root=root)
        target = root / RELEASE_DIR
        staged = root / f".{RELEASE_DIR}.new"
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(fresh, staged)
        shutil.rmtree(target, ignore_errors=True)
        staged.rename(target)
        return sorted(p.name for p in target.iterdir() if p.is_dir())


def learner_copy(dest: Path, root: Path | None = None) -> list[str]:
    """Copy what a learner may have (LEARNER_FILES) to `dest`, a new or empty folder; return what was copied."""
    root = root or project_root()
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise SetupError(f"{dest} exists and is not an empty folder; name a new one.")
    if dest.resolve().is_relative_to(root.resolve()):
        raise SetupError(f"{dest} is inside the course checkout; name a folder outside it.")
    dest.mkdir(parents=True, exist_ok=True)
    skip = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc", ".mypy_cache", ".ruff_cache")
    for name in LEARNER_FILES:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=skip)
        else:
            shutil.copy2(source, dest / name)
    return list(LEARNER_FILES)


if __name__ == "__main__":  # the old spelling, `python -m autograder.release [--check]`
    from autograder import cli

    sys.exit(cli.main(["release", *sys.argv[1:]]))
