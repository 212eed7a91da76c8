"""Export a segmentation checkpoint to ONNX, or compile it with AOTInductor into the
user cache that the "compiled" backend reads; either is checked against PyTorch.

    python -m guidewire.segmentation.export CHECKPOINT.pt MODEL.onnx [--size 512]
    python -m guidewire.segmentation.export CHECKPOINT.pt --compiled [--size 512] [--precision bfloat16]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from guidewire.segmentation.backends import export_onnx
from guidewire.segmentation.cache import cached_compiled_path
from guidewire.segmentation.checkpoint import load_checkpoint
from guidewire.segmentation.inference import Segmenter
from guidewire.segmentation.precision import PRECISIONS


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("output", nargs="?", help="ONNX file to write (not with --compiled)")
    parser.add_argument("--compiled", action="store_true", help="build the compiled backend's cached package")
    parser.add_argument("--size", type=int, default=512,
                        help="input side: the ONNX example (the model stays dynamic) or the compiled window")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32", help="compiled package arithmetic")
    parser.add_argument("--threads", type=int, default=0, help="threads the compiled package is built for")
    args = parser.parse_args(argv)
    if args.compiled == bool(args.output):
        parser.error("give either an ONNX output file or --compiled")
    example = np.random.default_rng(0).normal(size=(1, 1, args.size, args.size)).astype(np.float32)
    if args.compiled:
        segmenter = Segmenter(args.checkpoint, backend="compiled", window=args.size, threads=args.threads,
                              precision=args.precision)
        path = cached_compiled_path(args.checkpoint, args.size, args.precision)
        eager = Segmenter(args.checkpoint, window=args.size, threads=args.threads, precision=args.precision)
        expected, got = eager.logits(example), segmenter.logits(example)
    else:
        import onnxruntime

        network, _ = load_checkpoint(args.checkpoint)
        path = export_onnx(network, args.output, args.size)
        with torch.no_grad():
            expected = network(torch.from_numpy(example)).numpy()
        got = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
            None, {"image": example})[0]
    print(f"{path}: max |logit difference| to PyTorch {np.abs(got - expected).max():.2e}")


if __name__ == "__main__":
    main()
