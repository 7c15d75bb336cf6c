"""The course's grading backend: Postgres provisioning, app driver, observers, checks."""

__version__ = "0.1.0"
