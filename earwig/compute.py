"""Which compute device the models would run on, and whether this PyTorch build can use it.

Why check the build: an RTX 50-series (Blackwell, sm_120) card is "available" to a PyTorch
built for older CUDA, and then fails at the first kernel. Saying so up front, with the fix,
beats a crash when the first model loads.
"""

from __future__ import annotations

from earwig.errors import EarwigError


def describe() -> str:
    """One line: the CUDA device with its capability, or the CPU and why."""
    try:
        import torch
    except ImportError:
        return "CPU (PyTorch is not installed)"
    if not torch.cuda.is_available():
        return f"CPU (no CUDA device visible to PyTorch {torch.__version__})"
    index = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    name = torch.cuda.get_device_name(index)
    line = f"CUDA {index}: {name}, compute capability {major}.{minor} (PyTorch {torch.__version__}, CUDA {torch.version.cuda})"
    arch = f"sm_{major}{minor}"
    if arch not in torch.cuda.get_arch_list():
        line += (f" - WARNING: this PyTorch build has no kernels for {arch}; "
                 "install one built for it (README, 'A GPU')")
    return line


def final_model(configured: str) -> str:
    """The final model for "auto": large-v3-turbo where a GPU can run it, base on a CPU."""
    if configured != "auto":
        return configured
    import torch

    return "large-v3-turbo" if torch.cuda.is_available() else "base"


def torch_device(wanted: str):
    """The ``torch.device`` for a configured device name, or a clear error naming the fix."""
    import torch

    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise EarwigError(f"device {wanted!r} was asked for, but PyTorch sees no CUDA device",
                          'set device = "auto" or "cpu", or install a CUDA build of PyTorch (README, "A GPU")')
    try:
        device = torch.device(wanted)
    except RuntimeError:
        raise EarwigError(f"device {wanted!r} is not a PyTorch device",
                          'use "auto", "cpu", "cuda" or "cuda:N"') from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise EarwigError(f"device {wanted!r}: PyTorch sees {torch.cuda.device_count()} CUDA device(s)",
                          "pick one that `earwig devices` lists")
    return device
