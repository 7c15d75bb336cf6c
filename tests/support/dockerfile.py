"""A Dockerfile read as its stages, for tests that assert what an image holds (no Docker engine here)."""

from __future__ import annotations

from pathlib import Path


def dockerfile_stages(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its instructions (KEYWORD, rest), continuation lines joined, comments dropped."""
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            current = []
            stages[rest.split()[-1]] = current
        current.append((keyword.upper(), rest.strip()))
    return stages
