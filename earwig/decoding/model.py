"""A Whisper model on its device and the passes every reader of audio runs on it (encode,
detect the language, decode), shared by the preview and final actors and ``earwig
transcribe``.

Why the encoder runs once per window, here: the decoder reads the same audio features for
every token, every temperature fallback and the word alignment, so they are computed once
and handed to whisper's decoder (which skips its own encoder when given features).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from whisper.audio import N_FRAMES
from whisper.decoding import DecodingOptions, DecodingResult, DecodingTask
from whisper.model import Whisper
from whisper.tokenizer import get_tokenizer

from earwig.audio.log_mel import SILENCE_LOG_MEL, model_input

#: Silence after the speech in the encoder's window: 6 s, not whisper's 30 s padding, so a
#: 4 s utterance costs the encoder a third. Too little and Whisper invents an ending for
#: the last word: on ten espeak-ng sentences with base, 1 s of silence cost 2.7 WER points
#: against ``transcribe``, 3 s 1.8, 6 s none; with 1 s, tiny.en's committed preview text
#: agreed with the Final on less than half the words of some sentences.
PAD_FRAMES = 600
#: The encoder's window is the speech, ``PAD_FRAMES``, and then silence up to the next
#: multiple of this (2 s): PyTorch and glibc keep buffers and kernels per tensor shape, so a
#: window of any length would grow the model actors' memory with every new utterance length
#: (``bench model_memory``, base, 120 utterances of 1-15 s, heap kept: +29.1 % RSS at any
#: length, +5.9 % rounded). It also makes an utterance's text independent of the other
#: windows in its batch: it is read at its own length.
BUCKET_FRAMES = 200
#: The seed of every sampled decoding (temperature fallback): one fixed value, so a pass
#: over the same audio always samples the same tokens.
SAMPLING_SEED = 0
#: Whisper's most tokens a window (half the decoder's 448-token context).
MAX_SAMPLE_LEN = 224


@dataclass
class LoadedModel:
    """A Whisper model on its device, with what it is told (language, task, the user's
    prompt), and the passes every reader of audio runs on it: encode, detect, decode."""

    whisper: Whisper
    device: torch.device
    #: A language code, or "auto" to detect it per window (English-only models: "en").
    language_setting: str = "en"
    task: str = "transcribe"
    initial_prompt: str = ""

    @property
    def language(self) -> str | None:
        """The language to decode in; None: detect it (a multilingual model set to "auto")."""
        if not self.whisper.is_multilingual:
            return "en"
        return None if self.language_setting == "auto" else self.language_setting

    def warm_up(self) -> None:
        """One pass over a second of silence: first calls pick kernels and grow memory pools,
        which the first utterance would otherwise wait for."""
        silence = np.full((100, self.whisper.dims.n_mels), SILENCE_LOG_MEL, np.float32)
        features = self.encode([silence], n_frames=len(silence))
        self.decode(features, DecodingOptions(language=self.language or "en", without_timestamps=True,
                                              sample_len=4))

    def encode(self, windows: list[np.ndarray], n_frames: int | None = None) -> torch.Tensor:
        """Audio features of each utterance's frames followed by silence up to ``n_frames``
        (by default the longest window's ``padded_length``), not padded to 30 s as
        ``transcribe`` does (whisper.cpp's ``audio_ctx``): the encoder's cost shrinks with
        the window."""
        if n_frames is None:
            n_frames = padded_length(max(map(len, windows)))
        mel = np.stack([model_input(frames, n_frames) for frames in windows])
        with torch.inference_mode():
            return _encoder(self.whisper, torch.from_numpy(mel).to(self.device, self._dtype()))

    def decode(self, features: torch.Tensor, options: DecodingOptions) -> list[DecodingResult]:
        """whisper's decoding of each window's features (fp16 where the model is).

        With no language given, a multilingual model detects each window's own and decodes
        it in that language (windows of one language in one batch). Sampling (a fallback
        temperature) is seeded: the same audio gives the same text, whatever ran before.
        """
        options = dataclasses.replace(options, fp16=self._dtype() == torch.float16)
        if options.language is None and self.whisper.is_multilingual:
            languages = self.detect_languages(features)
            results: list[DecodingResult | None] = [None] * len(features)
            for language in dict.fromkeys(languages):
                chosen = [i for i, found in enumerate(languages) if found == language]
                decoded = self.decode(features[chosen], dataclasses.replace(options, language=language))
                for i, result in zip(chosen, decoded):
                    results[i] = result
            return results
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.inference_mode(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(SAMPLING_SEED)
            return _FeaturesGiven(self.whisper, options).run(features)

    def detect_languages(self, features: torch.Tensor) -> list[str]:
        """The most likely language of each window: whisper's ``detect_language`` (the
        language token after ``<|startoftranscript|>``) on features already computed, which
        whisper's own would encode again, taking them for a mel of the wrong shape."""
        tokenizer = get_tokenizer(True, num_languages=self.whisper.num_languages)
        with torch.inference_mode():
            start = torch.full((len(features), 1), tokenizer.sot, device=features.device)
            logits = self.whisper.logits(start, features)[:, 0]
            best = logits[:, list(tokenizer.all_language_tokens)].argmax(dim=-1)
        return [tokenizer.all_language_codes[i] for i in best.tolist()]

    def _dtype(self) -> torch.dtype:
        return next(self.whisper.parameters()).dtype


def token_budget(audio_s: float, per_second: float, least: int) -> int:
    """The most tokens to decode for ``audio_s`` of speech: ``least`` plus ``per_second``
    for each second, at most whisper's 224. Whisper allows 224 tokens for any window
    because its windows are 30 s long; a 2 s window read with that allowance spends 224
    decoder steps on a hallucination loop ("Ask not. Ask not. ...") before the
    compression ratio can reject it, and again at every fallback temperature (32 s for one
    2 s utterance of ``bench play`` on two cores)."""
    return min(MAX_SAMPLE_LEN, least + int(per_second * audio_s))


def padded_length(frames: int, bucket: int = BUCKET_FRAMES) -> int:
    """The encoder's window for ``frames`` of speech: the speech, ``PAD_FRAMES`` of silence
    after it, rounded up to a multiple of ``bucket``; at most 30 s."""
    return min(N_FRAMES, -(-(frames + PAD_FRAMES) // bucket) * bucket)


def _encoder(model: Whisper, mel: torch.Tensor) -> torch.Tensor:
    """``AudioEncoder.forward`` for a window of any length up to 30 s (the positional
    embedding is cut to it; whisper's own asserts exactly 30 s)."""
    encoder = model.encoder
    x = F.gelu(encoder.conv1(mel))
    x = F.gelu(encoder.conv2(x)).permute(0, 2, 1)
    x = (x + encoder.positional_embedding[:x.shape[1]]).to(x.dtype)
    for block in encoder.blocks:
        x = block(x)
    return encoder.ln_post(x)


class _FeaturesGiven(DecodingTask):
    """whisper's DecodingTask on audio features computed beforehand, of any length (its
    own check only recognises features of a full 30 s window, and re-encodes the rest).

    Each window's features are repeated for its beam (or its samples): whisper repeats only
    the tokens, which works for one window, as ``transcribe()`` decodes, but not for a
    batch of them. The language is known (``LoadedModel.decode`` detects it first)."""

    def _get_audio_features(self, mel: torch.Tensor) -> torch.Tensor:
        return mel.repeat_interleave(self.n_group, dim=0) if self.n_group > 1 else mel

    def _detect_language(self, audio_features: torch.Tensor, tokens: torch.Tensor):
        return [self.options.language] * len(tokens), None
