"""Test support shared by the project's tests and instructors' own test runs."""
