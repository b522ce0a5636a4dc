"""Fixtures shared by the test suite: unique ring names and a check that nothing leaks."""

import pytest

from earwig.shm import segments


@pytest.fixture
def ring_prefix():
    """A fresh segment prefix for one test; fails the test if any of its segments remain."""
    prefix = segments.run_prefix()
    yield prefix
    left = segments.existing(prefix)
    for name in left:
        segments.remove(name)
    assert not left, f"test leaked shared-memory segments: {left}"
