"""Only the ring's memory-fence extension lives here; everything else is in pyproject.toml.

The extension is optional: on x86-64 the ring is correct without it (see earwig.shm.ring),
so a machine without a C compiler can still install earwig there.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("earwig.shm._fence", ["shm/_fence.c"], optional=True)])
