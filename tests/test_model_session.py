"""A model that does not fit: the model session falls back to a smaller one (or the CPU),
says so, and the smaller one is loaded for real and ready to transcribe. Between passes the
heap goes back to the system."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
import torch

from earwig import model_store
from earwig.actors.model_session import ModelParams, ModelSession
from earwig.messages import ActorFailed, ModelState
from earwig.shm import Ring, RingSpec
from earwig.supervisor.plan import mel_ring_name


@pytest.fixture
def frame_rings(ring_prefix):
    """The 80-bin mel ring of the mic, as the mel actor would have made it."""
    ring = Ring.create(RingSpec(mel_ring_name(ring_prefix, "mic", 80), capacity=1024, item_len=80))
    yield {"mic": {80: ring.spec.name}}
    ring.close()
    ring.unlink()


def load_in(frame_rings, model: str, device: str):
    said = []
    actor = SimpleNamespace(name="final", publish=said.append)
    session = ModelSession(actor, ModelParams(role="final", model=model, device=device, frame_rings=frame_rings))
    try:
        asyncio.run(session.ready_model())
    finally:
        session.close()
    return session, said


#: The CUDA case runs where PyTorch sees a GPU (as tests/test_log_mel.py's devices).
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@contextmanager
def too_little_memory_for_base(device: str, monkeypatch):
    """Loading base does not fit, tiny.en does. On CUDA for real: PyTorch's allocator is
    capped a little above what tiny.en needs (fp16, 75 MB), below base's weights (148 MB).
    On the CPU a real shortage cannot be had on purpose, so loading base raises the
    out-of-memory error the model store raises for one."""
    if device == "cuda":
        torch.cuda.empty_cache()
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction((torch.cuda.memory_reserved() + 120e6) / total)
        try:
            yield
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0)
        return
    real_load = model_store.load

    def load(model, on):
        if model == "base":
            raise model_store.no_memory(model, torch.device(on))
        return real_load(model, on)

    monkeypatch.setattr(model_store, "load", load)
    yield


@pytest.mark.model
@pytest.mark.parametrize("device", DEVICES)
def test_a_model_that_does_not_fit_falls_back_to_a_smaller_one_and_says_so(frame_rings, monkeypatch, device):
    with too_little_memory_for_base(device, monkeypatch):
        session, said = load_in(frame_rings, "base", device)
    states = [(m.model, m.device, m.state) for m in said if isinstance(m, ModelState)]
    assert states == [("base", device, "loading"), ("base", device, "failed"),
                      ("tiny.en", device, "loading"), ("tiny.en", device, "ready")]
    warning, = [m for m in said if isinstance(m, ActorFailed)]
    assert not warning.fatal
    memory = "GPU memory" if device == "cuda" else "memory"
    assert f"not enough {memory} to load model 'base'" in warning.error
    assert f"model tiny.en on {device} instead" in warning.error and f"tries base on {device} again" in warning.fix
    assert session.model.dims.n_audio_state == 384  # tiny's width: the real weights are loaded


FRAGMENTED_HEAP = """
import psutil
from earwig.actors.model_session import give_back_free_heap
blocks = [bytes(2000) for _ in range(100_000)]  # 200 MB in blocks malloc keeps in its heap
kept = blocks[::50]                             # a block every 100 kB stays in use
del blocks
before = psutil.Process().memory_info().rss
give_back_free_heap()
print(before - psutil.Process().memory_info().rss)
"""


@pytest.mark.pipeline
def test_the_heap_between_blocks_in_use_goes_back_to_the_system():
    """What a model actor does between passes: the tensors of a pass are freed among blocks
    still in use, and glibc alone would keep those pages (the RSS of a long session grew)."""
    given_back = int(subprocess.run([sys.executable, "-c", FRAGMENTED_HEAP], capture_output=True, text=True,
                                    check=True).stdout)
    assert given_back > 150e6
