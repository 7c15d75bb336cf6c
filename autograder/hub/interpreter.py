"""A Python every learner's account can run, with the course's packages.

Learners' servers run the course venv's packages as the learners' own accounts, so the venv's
interpreter must be executable by them. A venv made from a Python under a private folder (pyenv
in root's home, say) is not: then the hub makes `.venv/hub-learner/`, a venv of a system Python of
the same version (same ABI) whose site-packages point at the course venv's (a `.pth` file), and
whose `share/` and `etc/` are the course venv's (JupyterLab's assets, kernels and extension
config are found under `sys.prefix`). Nothing is installed twice.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

from autograder.errors import SetupError

LEARNER_VENV = "hub-learner"
SYSTEM_DIRS = ("/usr/bin", "/usr/local/bin")


def blocked_by(path: Path) -> Path | None:
    """The first folder (or the file) on `path`'s resolved way that others may not pass (None: all open)."""
    real = path.resolve()
    for part in [*reversed(real.parents), real]:
        try:
            mode = part.stat().st_mode
        except OSError:
            return part
        if not mode & stat.S_IXOTH:
            return part
    return None


def _same_version(python: Path) -> bool:
    want = f"{sys.version_info.major}.{sys.version_info.minor}"
    result = subprocess.run(
        [str(python), "-c", "import sys; print(f'{sys.version_info.major}.{sys.version_info.minor}')"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0 and result.stdout.strip() == want


def system_python() -> Path | None:
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for folder in SYSTEM_DIRS:
        candidate = Path(folder) / name
        if candidate.exists() and blocked_by(candidate) is None and _same_version(candidate):
            return candidate
    return None


def learner_python(venv_bin: Path) -> Path:
    """The interpreter learners' servers run: the course venv's if others may run it, else a
    `hub-learner` venv beside it (made or refreshed now). SetupError when there is neither."""
    course_python = venv_bin / "python"
    blocked = blocked_by(course_python)
    if blocked is None:
        return course_python
    base = system_python()
    if base is None:
        raise SetupError(
            f"The course venv's Python ({course_python.resolve()}) cannot be run by the learners' accounts "
            f"({blocked} is private) and there is no python{sys.version_info.major}.{sys.version_info.minor} in "
            f"{' or '.join(SYSTEM_DIRS)}; install one (e.g. `apt-get install python3`) or make the venv from a "
            "Python every user can run (`rm -rf .venv && make install PYTHON=/usr/bin/python3`)."
        )
    return make_learner_venv(venv_bin.parent, base)


def make_learner_venv(course_venv: Path, base: Path) -> Path:
    target = course_venv / LEARNER_VENV
    python = target / "bin" / "python"
    if not (python.exists() and python.resolve() == base.resolve()):
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([str(base), "-m", "venv", "--without-pip", str(target)], check=True, capture_output=True)
    purelib = Path(sysconfig.get_paths()["purelib"])  # the course venv's site-packages (this process's)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = target / "lib" / version / "site-packages"
    site.mkdir(parents=True, exist_ok=True)
    (site / "course-venv.pth").write_text(f"import site; site.addsitedir({str(purelib)!r})\n")
    for shared in ("share", "etc"):
        link = target / shared
        if not link.is_symlink():
            shutil.rmtree(link, ignore_errors=True)
            os.symlink(course_venv / shared, link)
    return python
