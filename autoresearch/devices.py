"""The torch device a trial trains on (`research init/run --device cpu|cuda|cuda:N|auto`).

`auto` (the default) takes the GPU when torch sees one and the CPU otherwise, so one
workspace runs on a laptop and on a GPU box alike. An explicit `cuda` on a machine
without a usable GPU is refused before anything runs, naming what torch sees, rather
than letting every trial crash on its first tensor.
"""

from __future__ import annotations


class DeviceError(ValueError):
    """The requested device is not available here."""


def cuda_devices() -> list[str]:
    """Names of the CUDA GPUs torch can use here (empty without a GPU or a CUDA build)."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def describe() -> str:
    """One line for logs and benchmarks: what a trial would train on here."""
    import torch

    gpus = cuda_devices()
    if gpus:
        names = ", ".join(sorted(set(gpus)))
        return f"cuda: {len(gpus)} GPU(s) ({names}), torch {torch.__version__}"
    build = "no CUDA in this torch build" if torch.version.cuda is None else "no GPU visible"
    return f"cpu only: {build} (torch {torch.__version__})"


def resolve(device: str) -> str:
    """`auto` -> `cuda` or `cpu`; `cuda[:N]` checked against the GPUs torch sees."""
    if device == "cpu":
        return "cpu"
    gpus = cuda_devices()
    if device == "auto":
        return "cuda" if gpus else "cpu"
    if not device.startswith("cuda"):
        raise DeviceError(f"unknown device '{device}' (cpu, cuda, cuda:N or auto)")
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    if index >= len(gpus):
        raise DeviceError(
            f"device '{device}' asked for, but here torch sees {describe()}; "
            "use --device auto (GPU when present) or --device cpu"
        )
    return device
