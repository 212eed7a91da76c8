"""Reconstruct the wire of one case folder without ROS.

    python -m guidewire.reconstruction CASE_DIR --out shape.yaml

The folder's format is in guidewire/reconstruction/case.py and the README.
"""
from __future__ import annotations

import argparse
import sys
import time

import yaml

from guidewire.reconstruction.case import CaseError, load_case, shape_document
from guidewire.reconstruction.physics import FitSettings, ReconstructionError, reconstruct
from guidewire.reconstruction.views import camera_centreline


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case_dir")
    parser.add_argument("--out", required=True, help="result YAML (bench frame, metres)")
    parser.add_argument("--method", choices=("physics", "image_only"), help="overrides case.yaml's method")
    args = parser.parse_args(argv)
    try:
        case = load_case(args.case_dir)
        method = args.method or case.method
        start = time.perf_counter()
        pixels = camera_centreline(case.image, case.mask)
        if pixels is None:
            raise ReconstructionError("no wire found in the image" + (" mask" if case.mask is not None else ""))
        estimate = reconstruct(case.camera, pixels, case.prior, case.array,
                               FitSettings(use_magnetics=method == "physics"))
        document = shape_document(estimate, method)
        document["seconds"] = round(time.perf_counter() - start, 4)
    except (CaseError, ReconstructionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with open(args.out, "w") as file:
        yaml.safe_dump(document, file, sort_keys=False)
    print(f"{args.out}: {len(estimate.points)} points, length {estimate.length * 1000:.1f} mm, "
          f"tip sigma {estimate.tip_sigma * 1000:.2f} mm, {document['seconds'] * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
