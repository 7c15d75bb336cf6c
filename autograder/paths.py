"""Where the course checkout is: everything else locates itself from here."""

from __future__ import annotations

from pathlib import Path


def project_root() -> Path:
    """The course checkout (the package is installed in editable mode from it)."""
    return Path(__file__).resolve().parents[1]
