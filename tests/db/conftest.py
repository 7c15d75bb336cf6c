"""The fixtures these tests take by name (pytest finds them in a conftest, not in a test module's imports)."""

from tests.cli_support import course_state, pg_template

__all__ = ["course_state", "pg_template"]
