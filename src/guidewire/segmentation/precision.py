"""Which arithmetic this CPU runs fast: bfloat16 where it has AMX or AVX512-BF16, and the CPU's
model name, which keys the compiled cache."""
from __future__ import annotations

import platform
from pathlib import Path

import torch

PRECISIONS = ("float32", "bfloat16", "auto")  # auto: bfloat16 where the CPU computes it natively


def native_bfloat16() -> bool:
    """Whether this CPU does bfloat16 arithmetic in hardware (AMX or AVX512-BF16). Elsewhere
    oneDNN emulates it: 1654 ms per 512x512 frame compiled, against 125 ms in float32, on an
    AVX2 EPYC (bench/results/segmentation.md). torch.cpu's checks are private; a torch without them
    counts as no."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """"auto" as the precision to run: bfloat16 on a CPU with native bfloat16, float32 elsewhere
    (GPUs included: on a lent H100 it made the paper-width FGA-Net slower, its kernels being
    bound by launches, not arithmetic)."""
    if precision != "auto":
        return precision
    return "bfloat16" if torch.device(device).type == "cpu" and native_bfloat16() else "float32"


def cpu_model() -> str:
    """/proc/cpuinfo's "model name" line as it stands (a compiled-cache key: keep it unchanged)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line
    except OSError:
        pass
    return platform.processor()
