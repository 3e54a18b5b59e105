"""get_best_gpu: the visible CUDA device with the most free memory (NVML imported only when called)."""

from __future__ import annotations

import importlib
from types import ModuleType

import torch

from fastfl.errors import DeviceUnavailableError

__all__ = ["DeviceUnavailableError", "get_best_gpu"]


def _nvml() -> ModuleType | None:
    """Import NVML's Python binding (`pynvml`, from nvidia-ml-py) if installed, else None."""
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        return None


def _uuid_key(uuid: object) -> str:
    text = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
    text = text.lower()
    for prefix in ("gpu-", "mig-"):
        text = text.removeprefix(prefix)
    return text


def _nvml_free_by_uuid(nvml: ModuleType) -> dict[str, int]:
    nvml.nvmlInit()
    try:
        free = {}
        for j in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(j)
            free[_uuid_key(nvml.nvmlDeviceGetUUID(handle))] = int(nvml.nvmlDeviceGetMemoryInfo(handle).free)
        return free
    finally:
        nvml.nvmlShutdown()


def free_memory() -> list[int]:
    """Free bytes of each CUDA device torch can see, indexed as torch indexes them.

    NVML numbers devices in PCI order while CUDA may not (and CUDA_VISIBLE_DEVICES renumbers them),
    so devices are matched by UUID. Without NVML, or for a device NVML does not list, the free
    memory comes from `torch.cuda.mem_get_info` (which creates a CUDA context on that device).
    """
    count = torch.cuda.device_count()
    nvml = _nvml()
    by_uuid = _nvml_free_by_uuid(nvml) if nvml is not None else {}
    free = []
    for i in range(count):
        key = _uuid_key(torch.cuda.get_device_properties(i).uuid)
        free.append(by_uuid[key] if key in by_uuid else int(torch.cuda.mem_get_info(i)[0]))
    return free


def get_best_gpu() -> torch.device:
    """Return `torch.device("cuda:i")` for the visible device with the most free memory.

    Raises:
        DeviceUnavailableError: CUDA is not available (no GPU, or a CPU-only torch build).
    """
    if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
        raise DeviceUnavailableError(
            "get_best_gpu needs a CUDA device, but torch.cuda.is_available() is False; "
            "use torch.device('cpu') or run on a machine with a GPU and a CUDA build of torch"
        )
    free = free_memory()
    best = max(range(len(free)), key=free.__getitem__)
    return torch.device(f"cuda:{best}")
