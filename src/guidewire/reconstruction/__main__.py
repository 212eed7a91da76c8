"""Reconstruct the wire of case folders without ROS.

    python -m guidewire.reconstruction CASE_DIR --out shape.yaml
    python -m guidewire.reconstruction FRAME_1 FRAME_2 ... --out shapes/ --follow-the-leader

Several case folders are frames of one insertion in time order, and --out is a folder that gets one
result per frame (FRAME_k's folder name + .yaml). --follow-the-leader (one view in a vessel): each
frame's fit takes the path of the earlier frames' tips as its body's prior (guidewire.reconstruction.leader).
The folder's format is in guidewire/reconstruction/case.py and the README.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from guidewire.reconstruction.case import CaseError, load_case, shape_document
from guidewire.reconstruction.leader import PathTrack
from guidewire.reconstruction.physics import FitSettings, ReconstructionError, reconstruct, reconstruct_with_leader
from guidewire.reconstruction.views import camera_centreline


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case_dirs", nargs="+", metavar="case_dir")
    parser.add_argument("--out", required=True,
                        help="result YAML (bench frame, metres); with several cases, a folder of them")
    parser.add_argument("--method", choices=("physics", "image_only"), help="overrides case.yaml's method")
    parser.add_argument("--follow-the-leader", action="store_true",
                        help="frames of one insertion in a vessel: earlier tips are the body's prior (physics)")
    args = parser.parse_args(argv)
    several = len(args.case_dirs) > 1
    track = PathTrack() if args.follow_the_leader else None
    for case_dir in args.case_dirs:
        out = Path(args.out) / f"{Path(case_dir).resolve().name}.yaml" if several else Path(args.out)
        try:
            case = load_case(case_dir)
            method = args.method or case.method
            if track is not None and method != "physics":
                raise CaseError(f"--follow-the-leader needs the physics method, {case_dir} asks for {method}")
            start = time.perf_counter()
            pixels = camera_centreline(case.image, case.mask)
            if pixels is None:
                raise ReconstructionError("no wire found in the image" + (" mask" if case.mask is not None else ""))
            if track is not None:
                estimate, note = reconstruct_with_leader(track, case.camera, pixels, case.prior, case.array)
                method = "physics + leader"
            else:
                estimate, note = reconstruct(case.camera, pixels, case.prior, case.array,
                                             FitSettings(use_magnetics=method == "physics")), ""
            document = shape_document(estimate, method)
            if note:
                document["note"] = note
            document["seconds"] = round(time.perf_counter() - start, 4)
        except (CaseError, ReconstructionError) as error:
            print(f"error: {case_dir}: {error}", file=sys.stderr)
            return 2
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w") as file:
            yaml.safe_dump(document, file, sort_keys=False)
        print(f"{out}: {len(estimate.points)} points, length {estimate.length * 1000:.1f} mm, "
              f"tip sigma {estimate.tip_sigma * 1000:.2f} mm, {document['seconds'] * 1000:.0f} ms"
              + (f" ({note})" if note else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
