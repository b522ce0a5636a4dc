"""Shared-memory rings: the only path bulk data (PCM blocks, mel frames) takes between actors."""

from earwig.shm.ring import Batch, Ring, RingReader, RingSpec, RingWriter

__all__ = ["Batch", "Ring", "RingReader", "RingSpec", "RingWriter"]
