"""Helpers for grading tests that watch a file a submission keeps writing."""

from __future__ import annotations

import time
from pathlib import Path


def grows(path: Path, seconds: float = 0.3) -> bool:
    """Whether the file gets longer within `seconds`."""
    before = path.stat().st_size
    time.sleep(seconds)
    return path.stat().st_size != before


def stops_growing(path: Path, within: float = 15.0, quiet: float = 0.3) -> bool:
    """Whether the file stops growing (no change for `quiet` seconds) before `within` seconds
    pass. A writer that was ended may land one last write; one that runs on never goes quiet."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not grows(path, quiet):
            return True
    return False
