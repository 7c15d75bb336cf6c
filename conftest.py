# The course's pytest plugin starts (or finds) PostgreSQL once per session so that
# `pytest --nbval` at the repository root needs no wrapper.
pytest_plugins = ["autograder.testing.pytest_plugin"]
