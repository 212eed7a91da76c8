"""Time per 512x512 frame of the paper-width FGA-Net and U-Net on a CUDA GPU, beside the
paper's RTX 4090 figures (17.18 and 4.06 ms): does this implementation cost what the paper's does?

    python bench/bench_segmentation_gpu.py   # on a machine with a CUDA GPU

Eager PyTorch, batch 1, float32 (TF32 off) and bfloat16 autocast; median of CUDA-event timings.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from guidewire.segmentation.fganet import PAPER_FGANET, PAPER_UNET, SegmentationNetwork  # noqa: E402

PAPER_MS = {"FGA-Net (paper width)": 17.18, "U-Net (paper width)": 4.06}


def median_ms(network, image, bfloat16: bool, repeats: int = 50) -> float:
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bfloat16):
        for _ in range(10):
            network(image)
        samples = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            network(image)
            end.record()
            torch.cuda.synchronize()
            samples.append(start.elapsed_time(end))
    return statistics.median(samples)


def main() -> None:
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    image = torch.randn(1, 1, 512, 512, device="cuda").contiguous(memory_format=torch.channels_last)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; ms per 512x512 frame, batch 1")
    print("| network | float32 ms | bfloat16 ms | paper (RTX 4090) ms |\n|---|---|---|---|")
    for name, config in (("FGA-Net (paper width)", PAPER_FGANET), ("U-Net (paper width)", PAPER_UNET)):
        torch.manual_seed(0)
        network = SegmentationNetwork(config).cuda().eval().to(memory_format=torch.channels_last)
        print(f"| {name} | {median_ms(network, image, False):.2f} | {median_ms(network, image, True):.2f} "
              f"| {PAPER_MS[name]} |")
    print("command: python bench/bench_segmentation_gpu.py")


if __name__ == "__main__":
    main()
