"""CTranslate2 / faster-whisper Whisper models, converted to openai-whisper checkpoints.

Why convert rather than run CTranslate2: the preview and final actors are built on
openai-whisper's ``Whisper`` module (SDPA attention, our own decoding loop, word timestamps
from its cross-attention), and faster-whisper's published models are the most widely
available Whisper weights. Converted once into earwig's cache, a CTranslate2 model is a
plain ``.pt`` loaded with ``weights_only``.

The layout undone here (``WhisperSpec``, binary version 6): attention projections are fused
(``self_attention/linear_0`` is Q, K and V stacked; the decoder's cross attention has Q in
``attention/linear_0`` and K, V stacked in ``linear_1``), each with a bias whose key part
is zero (Whisper's key projection has none), and the output projection is an alias of the
token embedding (tied weights). Layer norms are ``gamma``/``beta``.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from whisper.model import ModelDimensions

from earwig.errors import EarwigError

SUPPORTED_SPEC = "WhisperSpec"
SUPPORTED_VERSIONS = (5, 6)
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
#: A key bias larger than this would mean the model is not Whisper as openai-whisper builds it.
KEY_BIAS_LIMIT = 1e-6


class _Reader:
    """CTranslate2's ``model.bin``: little-endian counters, length-prefixed strings."""

    def __init__(self, data: bytes, path: Path) -> None:
        self._data, self._at, self._path = data, 0, path

    def number(self, fmt: str) -> int:
        try:
            (value,) = struct.unpack_from("<" + fmt, self._data, self._at)
        except struct.error:
            raise _unreadable(self._path, "it ends early (truncated?)") from None
        self._at += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = self.number("H")
        raw = self._data[self._at:self._at + length]
        if len(raw) != length:
            raise _unreadable(self._path, "it ends early (truncated?)")
        self._at += length
        return raw.rstrip(b"\0").decode("utf-8", "replace")

    def array(self, dims: list[int], dtype: int) -> np.ndarray:
        if dtype not in _DTYPES:
            raise _unreadable(self._path, f"it holds a weight of unknown type {dtype} "
                                          "(quantized models are not supported: use a float16 or float32 one)")
        nbytes = self.number("I")
        raw = self._data[self._at:self._at + nbytes]
        if len(raw) != nbytes:
            raise _unreadable(self._path, "it ends early (truncated?)")
        self._at += nbytes
        array = np.frombuffer(raw, _DTYPES[dtype])
        return array.reshape(dims) if dims else array


def _unreadable(path: Path, why: str) -> EarwigError:
    return EarwigError(f"cannot read the CTranslate2 model {path}: {why}",
                       "download it again, or import another model directory")


def read_model_bin(data: bytes, path: Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 ``model.bin`` by name, aliases resolved."""
    reader = _Reader(data, path)
    version = reader.number("I")
    if version not in SUPPORTED_VERSIONS:
        raise _unreadable(path, f"binary version {version} is not one this importer knows "
                                f"({', '.join(map(str, SUPPORTED_VERSIONS))})")
    spec = reader.string()
    if spec != SUPPORTED_SPEC:
        raise EarwigError(f"{path} is a CTranslate2 {spec or 'model of unnamed architecture'}, "
                          "not a Whisper model",
                          "import a faster-whisper (Whisper) model directory")
    reader.number("I")  # spec revision
    variables = {}
    for _ in range(reader.number("I")):
        name = reader.string()
        dims = [reader.number("I") for _ in range(reader.number("B"))]
        variables[name] = reader.array(dims, reader.number("B"))
    for _ in range(reader.number("I")):
        alias, target = reader.string(), reader.string()
        variables[alias] = variables[target]
    return variables


def _layer_count(variables: dict[str, np.ndarray], stack: str) -> int:
    layer = re.compile(rf"{stack}/layer_(\d+)/")
    return len({match[1] for name in variables if (match := layer.match(name))})


def _split_fused(weight: np.ndarray, bias: np.ndarray, parts: int, key_at: int, where: str):
    """Un-stack a fused projection; the key part's bias must be zero."""
    weights, biases = np.split(weight, parts), np.split(bias, parts)
    if np.abs(biases[key_at]).max() > KEY_BIAS_LIMIT:
        raise EarwigError(f"{where}: the key projection has a bias, which Whisper does not",
                          "this is not a Whisper model openai-whisper can load")
    return weights, biases


def to_whisper_checkpoint(variables: dict[str, np.ndarray], alignment_heads: list[list[int]]) -> dict:
    """openai-whisper's checkpoint dict (``dims`` + ``model_state_dict``), in float32."""
    state: dict[str, np.ndarray] = {}

    def put(name: str, value: np.ndarray) -> None:
        state[name] = value

    def layer_norm(target: str, source: str) -> None:
        put(f"{target}.weight", variables[f"{source}/gamma"])
        put(f"{target}.bias", variables[f"{source}/beta"])

    def linear(target: str, source: str, bias: bool = True) -> None:
        put(f"{target}.weight", variables[f"{source}/weight"])
        if bias:
            put(f"{target}.bias", variables[f"{source}/bias"])

    def fused(target_names: list[str], source: str, key_at: int) -> None:
        weights, biases = _split_fused(variables[f"{source}/weight"], variables[f"{source}/bias"],
                                       len(target_names), key_at, source)
        for name, weight, bias in zip(target_names, weights, biases):
            put(f"{name}.weight", weight)
            if not name.endswith(".key"):
                put(f"{name}.bias", bias)

    def self_attention(target: str, source: str) -> None:
        layer_norm(f"{target}.attn_ln", f"{source}/self_attention/layer_norm")
        fused([f"{target}.attn.query", f"{target}.attn.key", f"{target}.attn.value"],
              f"{source}/self_attention/linear_0", key_at=1)
        linear(f"{target}.attn.out", f"{source}/self_attention/linear_1")

    def ffn(target: str, source: str) -> None:
        layer_norm(f"{target}.mlp_ln", f"{source}/ffn/layer_norm")
        linear(f"{target}.mlp.0", f"{source}/ffn/linear_0")
        linear(f"{target}.mlp.2", f"{source}/ffn/linear_1")

    for name in ("conv1", "conv2"):
        linear(f"encoder.{name}", f"encoder/{name}")
    put("encoder.positional_embedding", variables["encoder/position_encodings/encodings"])
    for i in range(_layer_count(variables, "encoder")):
        block, source = f"encoder.blocks.{i}", f"encoder/layer_{i}"
        self_attention(block, source)
        ffn(block, source)
    layer_norm("encoder.ln_post", "encoder/layer_norm")

    put("decoder.token_embedding.weight", variables["decoder/embeddings/weight"])
    put("decoder.positional_embedding", variables["decoder/position_encodings/encodings"])
    for i in range(_layer_count(variables, "decoder")):
        block, source = f"decoder.blocks.{i}", f"decoder/layer_{i}"
        self_attention(block, source)
        layer_norm(f"{block}.cross_attn_ln", f"{source}/attention/layer_norm")
        linear(f"{block}.cross_attn.query", f"{source}/attention/linear_0")
        fused([f"{block}.cross_attn.key", f"{block}.cross_attn.value"],
              f"{source}/attention/linear_1", key_at=0)
        linear(f"{block}.cross_attn.out", f"{source}/attention/linear_2")
        ffn(block, source)
    layer_norm("decoder.ln", "decoder/layer_norm")

    embedding = variables["decoder/embeddings/weight"]
    dims = ModelDimensions(
        n_mels=variables["encoder/conv1/weight"].shape[1],
        n_audio_ctx=variables["encoder/position_encodings/encodings"].shape[0],
        n_audio_state=variables["encoder/conv1/weight"].shape[0],
        n_audio_head=int(variables["encoder/num_heads"][0]),
        n_audio_layer=_layer_count(variables, "encoder"),
        n_vocab=embedding.shape[0],
        n_text_ctx=variables["decoder/position_encodings/encodings"].shape[0],
        n_text_state=embedding.shape[1],
        n_text_head=int(variables["decoder/num_heads"][0]),
        n_text_layer=_layer_count(variables, "decoder"),
    )
    return {
        "dims": asdict(dims),
        "model_state_dict": {k: torch.from_numpy(v.astype(np.float32)) for k, v in state.items()},
        "alignment_heads": torch.tensor(alignment_heads, dtype=torch.int64).reshape(-1, 2),
    }


def model_bin_path(directory: Path) -> Path:
    """The directory's ``model.bin``; an error naming the directory where it has none (an
    empty folder, any other folder given as a model)."""
    path = directory / "model.bin"
    if not path.is_file():
        raise EarwigError(f"{directory} has no model.bin", "point at a CTranslate2 / faster-whisper model directory")
    return path


def convert_directory(directory: Path, model_bin: bytes | None = None) -> dict:
    """A CTranslate2 Whisper directory (``model.bin`` + ``config.json``) as a checkpoint.

    ``model_bin`` gives the bytes when they are not one file in the directory (a model
    shipped in parts).
    """
    config_path = directory / "config.json"
    if model_bin is None:
        model_bin = model_bin_path(directory).read_bytes()
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    try:
        variables = read_model_bin(model_bin, directory / "model.bin")
        return to_whisper_checkpoint(variables, config.get("alignment_heads", []))
    except KeyError as missing:
        raise EarwigError(f"{directory}: the Whisper weight {missing} is missing",
                          "the model is incomplete or not Whisper; import another directory") from None
