"""A model that does not fit: the model session falls back to a smaller one (or the CPU),
says so, and the smaller one is loaded for real and ready to transcribe."""

from __future__ import annotations

import asyncio
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


def test_a_model_that_does_not_fit_in_memory_falls_back_to_a_smaller_one_and_says_so(frame_rings, monkeypatch):
    real_load = model_store.load

    def load(model, device):
        if model == "small":  # a real shortage of CPU memory cannot be had on purpose here
            raise model_store.no_memory(model, torch.device(device))
        return real_load(model, device)

    monkeypatch.setattr(model_store, "load", load)
    session, said = load_in(frame_rings, "small", "cpu")
    states = [(m.model, m.state) for m in said if isinstance(m, ModelState)]
    assert states == [("small", "loading"), ("small", "failed"), ("base", "loading"), ("base", "ready")]
    warning, = [m for m in said if isinstance(m, ActorFailed)]
    assert not warning.fatal
    assert "not enough memory to load model 'small'" in warning.error and "model base on cpu instead" in warning.error
    assert "tries small on cpu again" in warning.fix
    assert session.model.dims.n_audio_state == 512  # base's width: the real weights are loaded


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_real_gpu_out_of_memory_falls_back_to_a_model_that_fits(frame_rings):
    """PyTorch's allocator is capped a little above what tiny.en needs (fp16, 75 MB), below
    base's weights (148 MB): loading base runs out of GPU memory for real."""
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction((torch.cuda.memory_reserved() + 120e6) / total)
    try:
        session, said = load_in(frame_rings, "base", "cuda")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    states = [(m.model, m.device, m.state) for m in said if isinstance(m, ModelState)]
    assert states == [("base", "cuda", "loading"), ("base", "cuda", "failed"),
                      ("tiny.en", "cuda", "loading"), ("tiny.en", "cuda", "ready")]
    warning, = [m for m in said if isinstance(m, ActorFailed)]
    assert "not enough GPU memory" in warning.error
