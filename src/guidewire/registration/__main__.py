"""python -m guidewire.registration CASE_DIR --out pose.yaml (format: README, "CT registration")."""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

import yaml

from guidewire.registration.volume import DEFAULT_VOXEL_MM


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m guidewire.registration",
                                     description="Register a CT to calibrated X-ray views (case folder).")
    parser.add_argument("case_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="output YAML: CT-to-world pose, error, converged")
    parser.add_argument("--coarse", type=Path, default=None, help="a coarse network checkpoint trained on this CT")
    parser.add_argument("--voxel-mm", type=float, nargs=3, default=DEFAULT_VOXEL_MM,
                        help="resample the CT for rendering (mm); the default keeps 64-pixel DRRs sharp")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    from guidewire.registration.api import register
    from guidewire.registration.case import CaseError, read_case, result_to_yaml
    from guidewire.registration.optimise import RegistrationSettings, ViewError
    from guidewire.registration.volume import CTError, CTVolume

    def fail(message: str) -> int:
        print(f"error: {message}", file=sys.stderr)
        args.out.write_text(yaml.safe_dump({"converged": False, "error": message}, sort_keys=False))
        return 2

    try:
        data, views, initial = read_case(args.case_dir)
        overrides = data.get("settings") or {}
        known = {f.name for f in fields(RegistrationSettings)}
        unknown = set(overrides) - known
        if unknown:
            raise CaseError(f"case.yaml settings: unknown keys {sorted(unknown)}")
        settings = RegistrationSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
        ct = CTVolume(data["ct"], data.get("mask"), voxel_mm=tuple(args.voxel_mm))
        coarse = None
        if args.coarse is not None:
            from guidewire.registration.coarse import CoarseRegressor

            coarse = CoarseRegressor.load(args.coarse, ct)
        progress = None if args.quiet else (lambda p: print(
            f"\r{p.get('stage')} {p.get('pixels', '')} px it {p.get('iteration', '')} loss {p.get('loss', 0):.4f}",
            end="", file=sys.stderr, flush=True))
        result = register(views, ct, initial, settings, progress_callback=progress, coarse=coarse)
    except (CaseError, CTError, ViewError, ValueError) as error:
        return fail(str(error))
    if not args.quiet:
        print(file=sys.stderr)
    args.out.write_text(yaml.safe_dump(result_to_yaml(result), sort_keys=False))
    print(f"{'converged' if result.converged else 'NOT converged'}: estimated error "
          f"{result.estimated_error_mm:.2f} mm, {result.iterations} iterations, {result.seconds:.1f} s -> {args.out}")
    return 0 if result.converged else 1


if __name__ == "__main__":
    sys.exit(main())
