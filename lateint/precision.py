"""The precision a model runs in: the one list of ``dtype`` choices and how ``auto`` is decided.

Every command, config file and API that runs a model takes one of :data:`DTYPES`. ``fp32`` is the
default because exactness comes first (the equivalence proofs are in fp32); ``bf16`` and ``fp16``
trade a little score precision for speed; ``auto`` picks ``bf16`` where the hardware has native
bf16 arithmetic (CUDA GPUs, CPUs with AMX-BF16 or AVX512-BF16) and ``fp32`` elsewhere, because
without those instructions bf16 is emulated and slower than fp32. What a ranker runs in is always
recorded resolved (never as ``auto``), so results name the precision that produced them.
"""

from __future__ import annotations

import functools
from typing import Iterable

import torch

from lateint.errors import ConfigError

#: The values of every ``dtype`` setting (``--dtype``, the ``dtype`` config keys).
DTYPES = ("fp32", "bf16", "fp16", "auto")
#: What a model runs in unless told otherwise.
DEFAULT_DTYPE = "fp32"
#: The concrete precisions and their torch dtypes (``auto`` resolves to one of them).
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: /proc/cpuinfo flags of native bf16 arithmetic: Intel AMX tiles, or AVX-512 BF16 dot products.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")

_NAMES = {v: k for k, v in TORCH_DTYPES.items()}


def check_dtype(value, where: str = "dtype") -> str:
    """``value`` if it is one of :data:`DTYPES`, else a :class:`ConfigError` naming ``where``."""
    if not isinstance(value, str) or value not in DTYPES:
        raise ConfigError(f"{where}={value!r} is unknown; use one of {', '.join(DTYPES)}.")
    return value


def auto_dtype(device_type: str, cpu_flags: Iterable[str]) -> str:
    """What ``auto`` means on a device of ``device_type`` (``cpu``, ``cuda`` ...) whose CPU has the
    /proc/cpuinfo ``cpu_flags``: ``bf16`` on CUDA and on CPUs with AMX-BF16 or AVX512-BF16, else ``fp32``."""
    if device_type == "cuda":
        return "bf16"
    flags = set(cpu_flags)
    return "bf16" if any(f in flags for f in BF16_CPU_FLAGS) else "fp32"


def read_cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel reports (the ``flags`` line of ``path``); empty where there is
    no such file (other systems), so ``auto`` then stays in fp32."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() == "flags":
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


@functools.lru_cache(maxsize=None)
def _this_cpu_flags() -> frozenset[str]:
    return read_cpu_flags()


def resolve_dtype(dtype, device=None, where: str = "dtype") -> str:
    """The concrete precision (``fp32``, ``bf16`` or ``fp16``) for a ``dtype`` setting on ``device``.

    ``dtype`` is one of :data:`DTYPES`, a torch dtype of :data:`TORCH_DTYPES`, or None
    (:data:`DEFAULT_DTYPE`); ``device`` is where the model runs (None: the CPU).

    Raises:
        ConfigError: an unknown value.
    """
    if dtype is None:
        return DEFAULT_DTYPE
    if isinstance(dtype, torch.dtype):
        if dtype not in _NAMES:
            raise ConfigError(f"{where}={dtype} is not supported; use one of {', '.join(DTYPES)}.")
        return _NAMES[dtype]
    check_dtype(dtype, where)
    if dtype != "auto":
        return dtype
    device_type = torch.device(device).type if device is not None else "cpu"
    return auto_dtype(device_type, _this_cpu_flags() if device_type == "cpu" else ())


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a concrete precision name."""
    return TORCH_DTYPES[name]


def dtype_name(dtype: torch.dtype) -> str | None:
    """The precision name of a torch dtype, or None for one outside :data:`TORCH_DTYPES`."""
    return _NAMES.get(dtype)
