"""Export a segmentation checkpoint to ONNX and check it against PyTorch.

    python -m guidewire.segmentation.export CHECKPOINT.pt MODEL.onnx [--size 512]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from guidewire.segmentation.inference import export_onnx, load_checkpoint


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("output")
    parser.add_argument("--size", type=int, default=512, help="example input side (the model stays dynamic)")
    args = parser.parse_args(argv)
    import onnxruntime

    network, _ = load_checkpoint(args.checkpoint)
    path = export_onnx(network, args.output, args.size)
    example = np.random.default_rng(0).normal(size=(1, 1, args.size, args.size)).astype(np.float32)
    with torch.no_grad():
        expected = network(torch.from_numpy(example)).numpy()
    got = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": example})[0]
    print(f"{path}: max |logit difference| to PyTorch {np.abs(got - expected).max():.2e}")


if __name__ == "__main__":
    main()
