"""The file-based case format of `python -m guidewire.reconstruction` (see the README).

CASE_DIR/
  case.yaml         view pose, array, wire (below)
  camera_info.yaml  the view's calibration in ROS camera_info YAML (camera_calibration_parsers' format)
  image.png         the view's image (mono or colour)
  mask.png          optional: the wire mask (non-zero = wire); without it the image is segmented

case.yaml (SI units, bench frame):
  view_pose: {position: [x, y, z], orientation: [qx, qy, qz, qw]}   # optical frame in the bench frame
  array:
    positions: [[x, y, z], ...]            # m, one row per sensor
    field: [[bx, by, bz], ...]             # T, measured
    background: [[bx, by, bz], ...]        # T, recorded without the wire (optional, strongly advised)
    noise: 1.2e-7                          # T, 1-sigma per axis of field - background
    valid: [true, ...]                     # optional; false rows are ignored (missing, saturated)
  wire:
    inserted_length: 0.15                  # m, from the entry point to the tip (robot)
    diameter: 0.00046                      # m
    entry_point: [x, y, z]                 # m
    entry_direction: [x, y, z]
    magnets: {offsets: [...], lengths: [...], polarizations: [...]}   # m from the tip, m, T
  method: physics                          # optional: physics (default) or image_only
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from guidewire.geometry import PinholeCamera
from guidewire.reconstruction.magnets import WireMagnets
from guidewire.reconstruction.physics import ArrayField, ReconstructionError, WireEstimate, WirePrior

METHODS = ("physics", "image_only")


class CaseError(ValueError):
    """A case folder is incomplete or holds a bad value; the message names the file and key."""


@dataclass
class ReconstructionCase:
    camera: PinholeCamera
    image: np.ndarray
    mask: np.ndarray | None
    array: ArrayField | None
    prior: WirePrior
    method: str


def _array(data, key: str, shape: tuple) -> np.ndarray:
    try:
        value = np.asarray(data, float)
    except (TypeError, ValueError) as error:
        raise CaseError(f"{key} is not numeric: {error}") from error
    if value.shape != shape and not (shape[0] == -1 and value.ndim == len(shape) and value.shape[1:] == shape[1:]):
        raise CaseError(f"{key} must have shape {shape}, got {value.shape}")
    if not np.isfinite(value).all():
        raise CaseError(f"{key} holds NaN or infinite values")
    return value


def camera_from_info(info: dict, position, orientation) -> PinholeCamera:
    """A PinholeCamera from ROS camera_info YAML and the optical frame's pose (quaternion x, y, z, w)."""
    try:
        intrinsics = _array(info["camera_matrix"]["data"], "camera_matrix.data", (9,)).reshape(3, 3)
        distortion = np.zeros(5)
        coefficients = np.asarray(info.get("distortion_coefficients", {}).get("data", []), float)
        distortion[:min(5, coefficients.size)] = coefficients[:5]
        width, height = int(info["image_width"]), int(info["image_height"])
    except (KeyError, TypeError) as error:
        raise CaseError(f"camera_info.yaml lacks {error}") from error
    rotation = Rotation.from_quat(_array(orientation, "view_pose.orientation", (4,))).as_matrix()
    return PinholeCamera(width=width, height=height, intrinsics=intrinsics, distortion=distortion,
                         rotation=rotation, position=_array(position, "view_pose.position", (3,)))


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise CaseError(f"cannot read {path}: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise CaseError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise CaseError(f"{path} must hold a mapping")
    return data


def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise CaseError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


def load_case(folder: str | Path) -> ReconstructionCase:
    folder = Path(folder)
    data = _read_yaml(folder / "case.yaml")
    info = _read_yaml(folder / "camera_info.yaml")
    try:
        pose, wire = data["view_pose"], data["wire"]
        camera = camera_from_info(info, pose["position"], pose["orientation"])
        magnets = WireMagnets(diameter=float(wire["diameter"]),
                              offsets=tuple(_array(wire["magnets"]["offsets"], "wire.magnets.offsets", (-1,))),
                              lengths=tuple(_array(wire["magnets"]["lengths"], "wire.magnets.lengths", (-1,))),
                              polarizations=tuple(_array(wire["magnets"]["polarizations"],
                                                         "wire.magnets.polarizations", (-1,))))
        direction = _array(wire["entry_direction"], "wire.entry_direction", (3,))
        prior = WirePrior(inserted_length=float(wire["inserted_length"]),
                          entry_point=_array(wire["entry_point"], "wire.entry_point", (3,)),
                          entry_direction=direction / np.linalg.norm(direction), magnets=magnets)
    except KeyError as error:
        raise CaseError(f"case.yaml lacks the key {error}") from error
    if not len(magnets.offsets) == len(magnets.lengths) == len(magnets.polarizations):
        raise CaseError("wire.magnets: offsets, lengths and polarizations must have the same length")
    if not 0 < prior.inserted_length < 10:
        raise CaseError(f"wire.inserted_length must be in (0, 10) m, got {prior.inserted_length}")
    method = str(data.get("method", "physics"))
    if method not in METHODS:
        raise CaseError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    array = None
    if "array" in data:
        raw = data["array"]
        try:
            positions = _array(raw["positions"], "array.positions", (-1, 3))
            count = len(positions)
            field = _array(raw["field"], "array.field", (count, 3))
            background = None if raw.get("background") is None else _array(raw["background"], "array.background",
                                                                           (count, 3))
            valid = np.asarray(raw.get("valid", [True] * count), bool)
            noise = float(raw["noise"])
        except KeyError as error:
            raise CaseError(f"case.yaml: array lacks the key {error}") from error
        if valid.shape != (count,):
            raise CaseError(f"array.valid must have {count} entries")
        if not noise > 0:
            raise CaseError(f"array.noise must be > 0 T, got {noise}")
        array = ArrayField(positions, field, background, noise, valid)
    elif method == "physics":
        raise CaseError("method physics needs the array's field (case.yaml: array)")
    image = _read_image(folder / "image.png")
    mask_path = folder / "mask.png"
    mask = _read_image(mask_path) > 0 if mask_path.exists() else None
    return ReconstructionCase(camera=camera, image=image, mask=mask, array=array, prior=prior, method=method)


def write_case(folder: str | Path, camera: PinholeCamera, image: np.ndarray, prior: WirePrior,
               array: ArrayField | None, mask: np.ndarray | None = None, method: str = "physics") -> None:
    """The inverse of load_case (the bench writes cases with it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    info = {"image_width": int(camera.width), "image_height": int(camera.height),
            "camera_matrix": {"rows": 3, "cols": 3, "data": camera.intrinsics.ravel().tolist()},
            "distortion_model": "plumb_bob",
            "distortion_coefficients": {"rows": 1, "cols": 5, "data": np.asarray(camera.distortion).tolist()}}
    (folder / "camera_info.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    magnets = prior.magnets
    data = {"view_pose": {"position": np.asarray(camera.position).tolist(),
                          "orientation": Rotation.from_matrix(camera.rotation).as_quat().tolist()},
            "wire": {"inserted_length": float(prior.inserted_length), "diameter": float(magnets.diameter),
                     "entry_point": np.asarray(prior.entry_point).tolist(),
                     "entry_direction": np.asarray(prior.entry_direction).tolist(),
                     "magnets": {"offsets": list(map(float, magnets.offsets)),
                                 "lengths": list(map(float, magnets.lengths)),
                                 "polarizations": list(map(float, magnets.polarizations))}},
            "method": method}
    if array is not None:
        data["array"] = {"positions": array.positions.tolist(), "field": array.field.tolist(),
                         "background": None if array.background is None else array.background.tolist(),
                         "noise": float(array.noise), "valid": [bool(v) for v in array.valid]}
    (folder / "case.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    cv2.imwrite(str(folder / "image.png"), image)
    if mask is not None:
        cv2.imwrite(str(folder / "mask.png"), mask.astype(np.uint8) * 255)


def shape_document(estimate: WireEstimate, method: str) -> dict:
    """The result file's content: the wire in the bench frame, metres."""
    return {"method": method, "frame": "bench", "units": "m",
            "centreline": np.round(estimate.points, 7).tolist(),
            "position_stddev": np.round(estimate.sigma, 7).tolist(),
            "tip": {"position": estimate.tip_position.tolist(), "direction": estimate.tip_direction.tolist(),
                    "orientation_xyzw": estimate.tip_orientation.tolist(), "stddev": estimate.tip_sigma},
            "length": estimate.length, "converged": estimate.converged, "chi2_per_dof": estimate.chi2_per_dof,
            "field_residual_rms": None if np.isnan(estimate.field_rms) else estimate.field_rms,
            "sensors_used": estimate.used_sensors}


__all__ = ["CaseError", "ReconstructionCase", "ReconstructionError", "load_case", "write_case",
           "shape_document", "camera_from_info"]
