"""Functions a user would bring with fn=py, for the tests (importable as tests.userpkg)."""
