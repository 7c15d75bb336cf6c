"""PostgreSQL for the course: which server, the bundled one, and per-lesson databases."""

from autograder.db.server import release, server_url

__all__ = ["server_url", "release"]
