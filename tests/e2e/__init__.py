"""A package: its test modules may share a basename with another folder's (test_blocking.py)."""
