"""The learner's workspace: a git-ignored copy of the release that is theirs to edit.

`autograder lab` opens JupyterLab on the workspace (default `<repo>/workspace/`,
`COURSE_WORKSPACE` or `--workspace` move it), never on the committed release
`notebooks/`, so `git pull`, `make release` and the release drift test never meet
a learner's edits. Each start syncs the workspace with the release:

* first start: every release file is copied, plus the start page `START_HERE.ipynb`;
* a file missing from the workspace (a new lesson, or one the learner deleted) is copied;
* a file that exists is never overwritten with the learner's work in it. What was
  copied is recorded in `.release-manifest.json` (a hash per file), so when the
  release's copy of a file changes (a fixed typo) there are two cases:
  - the learner has not edited the file since it was copied: it is replaced by the
    new release (atomically) — nothing the learner wrote is lost. For notebooks
    "edited" means the cells' sources differ; outputs and metadata from running
    the notebook are not learner work;
  - the learner edited it: it is kept as it is, and the new release is written
    beside it as `<name>.release-<date><suffix>` (offered once per release change);
* nothing is ever deleted. `reset_lesson` ("start a lesson afresh") moves the
  learner's lesson folder to `backups/<lesson>-<timestamp>/` and copies a fresh one.

Functions raise `SetupError` (one sentence) when the workspace cannot be used.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course.layout import RELEASE_DIR
from autograder.errors import SetupError
from autograder.paths import project_root

ENV_WORKSPACE = "COURSE_WORKSPACE"
DEFAULT_DIR = "workspace"
MANIFEST = ".release-manifest.json"
MANIFEST_VERSION = 1
START_PAGE = "START_HERE.ipynb"
START_PAGE_SOURCE = Path(__file__).with_name("start_here.md")  # the start page's text (markdown)
BACKUPS = "backups"
SKIPPED = frozenset({".ipynb_checkpoints", "__pycache__", ".DS_Store"})
LESSONS_MARKER = "<!-- lessons -->"


# --------------------------------------------------------------------------- where
def release_dir() -> Path:
    """The committed learner release (`notebooks/`)."""
    return project_root() / RELEASE_DIR


def workspace_dir(override: Path | str | None = None) -> Path:
    """The workspace folder: `override` (--workspace), else $COURSE_WORKSPACE, else <repo>/workspace."""
    chosen = override if override not in (None, "") else os.environ.get(ENV_WORKSPACE) or None
    if chosen is None:
        return project_root() / DEFAULT_DIR
    return Path(chosen).expanduser().resolve()


# --------------------------------------------------------------------------- what the release holds
def release_files(release: Path) -> dict[str, bytes]:
    """Every file of the release, by POSIX path relative to it (checkpoints and caches left out)."""
    if not release.is_dir():
        raise SetupError(
            f"The course release folder {release} is missing; restore it with `git checkout -- {release.name}` "
            "or rebuild it with `make release`."
        )
    files: dict[str, bytes] = {}
    for path in sorted(release.rglob("*")):
        rel = path.relative_to(release)
        if any(part in SKIPPED for part in rel.parts) or not path.is_file():
            continue
        files[rel.as_posix()] = path.read_bytes()
    if not files:
        raise SetupError(f"The course release folder {release} is empty; rebuild it with `make release`.")
    return files


def lesson_title(notebook: bytes, fallback: str) -> str:
    """The first markdown heading of a notebook ('Lesson 01 — ...'), else `fallback`."""
    try:
        cells = json.loads(notebook).get("cells", [])
    except (ValueError, AttributeError):
        return fallback
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        for line in _source(cell).splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip() or fallback
    return fallback


def start_page(files: Mapping[str, bytes]) -> bytes:
    """START_HERE.ipynb: the start page text with the release's lessons listed, as a markdown-only notebook.

    The bytes depend only on the template and the lessons (fixed cell ids), so an
    unchanged release gives a byte-identical page."""
    lessons = sorted(
        {rel.split("/")[0] for rel in files if "/" in rel and rel.endswith(".ipynb")},
    )
    rows = []
    for lesson in lessons:
        notebook = f"{lesson}/{lesson}.ipynb"
        title = lesson_title(files[notebook], lesson) if notebook in files else lesson
        target = notebook if notebook in files else f"{lesson}/"
        rows.append(f"- [{title}]({target}) — `{lesson}`")
    text = START_PAGE_SOURCE.read_text(encoding="utf-8").replace(LESSONS_MARKER, "\n".join(rows))
    notebook_json = {
        "cells": [
            {
                "cell_type": "markdown",
                "id": "start-here",
                "metadata": {"deletable": False, "editable": False},  # read-only in JupyterLab
                "source": text.strip() + "\n",
            }
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return (json.dumps(notebook_json, indent=1, ensure_ascii=False) + "\n").encode()


def course_files(release: Path) -> dict[str, bytes]:
    """What the workspace is synced from: the release files and the start page."""
    files = release_files(release)
    files[START_PAGE] = start_page(files)
    return files


# --------------------------------------------------------------------------- hashes
def _source(cell: Mapping) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def content_hash(rel: str, data: bytes) -> str:
    """What counts as the learner's work: a notebook's cells (type, source, nbgrader metadata), not
    its outputs, execution counts or other metadata; any other file's bytes."""
    if rel.endswith(".ipynb"):
        try:
            cells = json.loads(data).get("cells")
            if isinstance(cells, list):
                # nbgrader's cell metadata (ids, points, locks) belongs to the course, not the learner:
                # a release that changes only that is still a change to bring in.
                work = [
                    [c.get("cell_type"), _source(c), (c.get("metadata") or {}).get("nbgrader")]
                    for c in cells
                    if isinstance(c, dict)
                ]
                return "cells:" + hashlib.sha256(json.dumps(work).encode()).hexdigest()
        except (ValueError, AttributeError):
            pass  # not a readable notebook: compare bytes
    return "bytes:" + hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- manifest
@dataclass
class Manifest:
    """What was copied into the workspace (content hash per file) and which new releases were offered."""

    files: dict[str, str] = field(default_factory=dict)
    offered: dict[str, str] = field(default_factory=dict)
    readable: bool = True  # False: the file was there but unreadable (treated as absent, conservatively)

    @classmethod
    def load(cls, workspace: Path) -> Manifest:
        path = workspace / MANIFEST
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            files, offered = raw["files"], raw.get("offered", {})
            if not (isinstance(files, dict) and isinstance(offered, dict)):
                raise ValueError("not a manifest")
            return cls({str(k): str(v) for k, v in files.items()}, {str(k): str(v) for k, v in offered.items()})
        except FileNotFoundError:
            return cls()
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return cls(readable=False)

    def save(self, workspace: Path) -> None:
        data = {
            "version": MANIFEST_VERSION,
            "note": "Written by `autograder lab`: what was copied from the release (hash of the cells). "
            "Deleting it only makes the next start keep every existing file as edited.",
            "files": dict(sorted(self.files.items())),
            "offered": dict(sorted(self.offered.items())),
        }
        _write_atomic(workspace / MANIFEST, (json.dumps(data, indent=1) + "\n").encode())


# --------------------------------------------------------------------------- report
@dataclass
class WorkspaceReport:
    """What a sync did, by relative path."""

    workspace: Path
    first_start: bool
    copied: list[str] = field(default_factory=list)  # were missing (first start, or deleted by the learner)
    new: list[str] = field(default_factory=list)  # new in the release since the last start
    updated: list[str] = field(default_factory=list)  # unedited, the release changed: replaced
    kept: list[str] = field(default_factory=list)  # left exactly as they are
    offered: dict[str, str] = field(default_factory=dict)  # edited, the release changed: file -> new copy beside it
    manifest_unreadable: bool = False

    def notes(self) -> list[str]:
        """One line per kind of change, for the terminal (nothing when nothing changed)."""
        lines: list[str] = []
        if self.manifest_unreadable:
            lines.append(f"{MANIFEST} in {self.workspace} was unreadable: every existing file was kept as it is.")
        if self.first_start:
            lines.append(
                f"your workspace {self.workspace} was created: {len(self.copied)} files copied from the release."
            )
        elif self.copied:
            lines.append(f"copied {len(self.copied)} missing file(s) from the release: {_names(self.copied)}.")
        if self.new:
            lessons = sorted({p.split("/")[0] for p in self.new})
            lines.append(f"new in the release, added to your workspace: {_names(lessons)}.")
        if self.updated:
            lines.append(f"updated from the release (you had not edited them): {_names(self.updated)}.")
        for mine, theirs in sorted(self.offered.items()):
            lines.append(f"the release changed {mine}, which you edited: yours is kept, the new one is {theirs}.")
        return lines


def _names(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# --------------------------------------------------------------------------- file operations
def _write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one step (a temp file in the same folder, then rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            mode = path.stat().st_mode & 0o777  # keep the replaced file's permissions
        except FileNotFoundError:
            mode = 0o644
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_new(path: Path, data: bytes) -> None:
    """Create `path`; never replaces a file that appeared meanwhile (FileExistsError)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as out:
        out.write(data)


def _free_name(path: Path, label: str) -> Path:
    """`dir/name.<label>.ext`, or `dir/name.<label>-2.ext`, ... whichever does not exist yet."""
    stem, suffix = (path.name[: -len(".ipynb")], ".ipynb") if path.name.endswith(".ipynb") else (path.stem, path.suffix)
    candidate = path.with_name(f"{stem}.{label}{suffix}")
    n = 2
    while candidate.exists():
        candidate = path.with_name(f"{stem}.{label}-{n}{suffix}")
        n += 1
    return candidate


def _unusable(workspace: Path, exc: OSError) -> SetupError:
    reason = exc.strerror or str(exc)
    where = f": {exc.filename}" if exc.filename and str(exc.filename) != str(workspace) else ""
    return SetupError(
        f"Your workspace folder {workspace} cannot be used ({reason}{where}); make it a writable folder "
        f"or point {ENV_WORKSPACE} (or --workspace) at another one."
    )


@contextlib.contextmanager
def _locked(workspace: Path, release: Path) -> Iterator[None]:
    """Create the workspace if needed and hold an exclusive lock on it (two labs starting at once)."""
    resolved, release_resolved = workspace.resolve(), release.resolve()
    if resolved == release_resolved or release_resolved in resolved.parents or resolved in release_resolved.parents:
        raise SetupError(
            f"The workspace {workspace} overlaps the course release {release}, which git tracks; "
            f"choose a folder outside it with {ENV_WORKSPACE} or --workspace."
        )
    try:
        if workspace.exists() and not workspace.is_dir():
            raise OSError(errno.ENOTDIR, "it is a file, not a folder", str(workspace))
        workspace.mkdir(parents=True, exist_ok=True)
        fd = os.open(workspace, os.O_RDONLY)
    except OSError as exc:
        raise _unusable(workspace, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- sync
def sync_workspace(
    release: Path,
    workspace: Path,
    *,
    files: Mapping[str, bytes] | None = None,
    today: dt.date | None = None,
) -> WorkspaceReport:
    """Bring `workspace` up to date with the release without ever overwriting or deleting learner work.

    `files` is what to sync from (default: `course_files(release)`, the release and the
    start page); `today` dates the name of a new release offered beside an edited file."""
    source = dict(files) if files is not None else course_files(release)
    label = f"release-{(today or dt.date.today()).isoformat()}"
    with _locked(workspace, release):
        manifest = Manifest.load(workspace)
        first = not (workspace / MANIFEST).exists() and not any(
            p.name not in SKIPPED for p in workspace.iterdir() if p.name != MANIFEST
        )
        report = WorkspaceReport(workspace, first_start=first, manifest_unreadable=not manifest.readable)
        known = {rel.split("/")[0] for rel in manifest.files}  # lessons (top-level entries) copied before
        try:
            for rel, data in sorted(source.items()):
                _sync_file(workspace, rel, data, manifest, report, label, known)
            manifest.save(workspace)
        except OSError as exc:
            with contextlib.suppress(OSError):
                manifest.save(workspace)  # keep a record of what was copied before the failure
            raise _unusable(workspace, exc) from None
    return report


def _sync_file(
    workspace: Path, rel: str, data: bytes, manifest: Manifest, report: WorkspaceReport, label: str, known: set[str]
) -> None:
    target = workspace / rel
    release_hash = content_hash(rel, data)
    base = manifest.files.get(rel)  # what we copied last time (None: never copied, or manifest lost)
    if not target.exists() and not target.is_symlink():
        _write_new(target, data)
        manifest.files[rel] = release_hash
        manifest.offered.pop(rel, None)
        restored = report.first_start or not manifest.readable or rel.split("/")[0] in known
        (report.copied if restored else report.new).append(rel)
        return
    if not target.is_file():  # a folder or a dangling link where a file should be: leave it alone
        report.kept.append(rel)
        return
    mine = content_hash(rel, target.read_bytes())
    if mine == release_hash:  # the same work (maybe with outputs): nothing to do
        manifest.files[rel] = release_hash
        manifest.offered.pop(rel, None)
        report.kept.append(rel)
    elif base is not None and mine == base:  # not edited since we copied it, and the release changed
        _write_atomic(target, data)
        manifest.files[rel] = release_hash
        manifest.offered.pop(rel, None)
        report.updated.append(rel)
    elif (base is not None and base == release_hash) or manifest.offered.get(rel) == release_hash:
        report.kept.append(rel)  # edited; the release did not change since (or its change was already offered)
    else:  # edited, and a release the learner has not seen: keep theirs, offer the new one beside it
        beside = _free_name(target, label)
        _write_new(beside, data)
        manifest.offered[rel] = release_hash
        report.kept.append(rel)
        report.offered[rel] = beside.relative_to(workspace).as_posix()


# --------------------------------------------------------------------------- start a lesson afresh
@dataclass
class ResetReport:
    lesson: str
    backup: Path | None  # where the learner's copy went (None: there was none)
    files: list[str]  # the fresh files copied


def lessons_of(files: Mapping[str, bytes]) -> list[str]:
    return sorted({rel.split("/")[0] for rel in files if "/" in rel})


def reset_lesson(
    release: Path,
    workspace: Path,
    lesson: str,
    *,
    files: Mapping[str, bytes] | None = None,
    now: dt.datetime | None = None,
) -> ResetReport:
    """Move the learner's `lesson` folder to backups/<lesson>-<timestamp>/ and copy a fresh one from the release."""
    source = dict(files) if files is not None else course_files(release)
    lesson = lesson.strip().strip("/")
    known = lessons_of(source)
    if lesson not in known:
        raise SetupError(f"There is no lesson {lesson!r} in the release; the lessons are {', '.join(known)}.")
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    with _locked(workspace, release):
        manifest = Manifest.load(workspace)
        current = workspace / lesson
        backup: Path | None = None
        try:
            if current.exists() or current.is_symlink():
                backups = workspace / BACKUPS
                backups.mkdir(exist_ok=True)
                backup = backups / f"{lesson}-{stamp}"
                n = 2
                while backup.exists():
                    backup = backups / f"{lesson}-{stamp}-{n}"
                    n += 1
                os.rename(current, backup)  # same file system: a move, never a copy-and-delete
            fresh = sorted(rel for rel in source if rel.split("/")[0] == lesson)
            for rel in fresh:
                _write_new(workspace / rel, source[rel])
                manifest.files[rel] = content_hash(rel, source[rel])
                manifest.offered.pop(rel, None)
            manifest.save(workspace)
        except OSError as exc:
            raise _unusable(workspace, exc) from None
    return ResetReport(lesson, backup, fresh)
