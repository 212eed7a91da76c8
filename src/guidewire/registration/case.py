"""The file-based case format (see README, "CT registration") and its reader and writer."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from guidewire.registration.geometry import ViewGeometry
from guidewire.registration.optimise import RegistrationResult, ViewError, XrayView


class CaseError(ValueError):
    """The case folder is incomplete or malformed."""


def pose_to_yaml(pose: np.ndarray) -> dict:
    pose = np.asarray(pose, float)
    return {"position": [float(x) for x in pose[:3, 3]],
            "orientation": [float(x) for x in Rotation.from_matrix(pose[:3, :3]).as_quat()]}


def pose_from_yaml(entry, what: str) -> np.ndarray:
    try:
        if isinstance(entry, dict) and "matrix" in entry:
            pose = np.asarray(entry["matrix"], float)
        else:
            pose = np.eye(4)
            quat = np.asarray(entry["orientation"], float)
            if quat.shape != (4,) or not np.isfinite(quat).all() or np.linalg.norm(quat) < 1e-6:
                raise ValueError("orientation must be a non-zero quaternion [qx, qy, qz, qw]")
            pose[:3, :3] = Rotation.from_quat(quat / np.linalg.norm(quat)).as_matrix()
            pose[:3, 3] = np.asarray(entry["position"], float)
    except (KeyError, TypeError, ValueError) as error:
        raise CaseError(f"{what}: needs position [x, y, z] (m) and orientation [qx, qy, qz, qw] ({error})") from error
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        raise CaseError(f"{what}: not a finite pose")
    return pose


def read_geometry(path: Path) -> ViewGeometry:
    try:
        data = yaml.safe_load(path.read_text())
        spacing = data["pixel_spacing"]
        spacing = (float(spacing), float(spacing)) if np.isscalar(spacing) else tuple(float(x) for x in spacing)
        return ViewGeometry(source_to_detector=float(data["source_to_detector"]), height=int(data["detector"]["rows"]),
                            width=int(data["detector"]["cols"]), pixel_spacing=spacing,
                            pose=pose_from_yaml(data["pose"], f"{path.name}: pose"),
                            principal_point=tuple(float(x) for x in data.get("principal_point", (0.0, 0.0))))
    except CaseError:
        raise
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as error:
        raise CaseError(f"{path}: bad view geometry ({error})") from error


def write_geometry(path: Path, g: ViewGeometry) -> None:
    path.write_text(yaml.safe_dump({
        "source_to_detector": float(g.source_to_detector), "detector": {"rows": int(g.height), "cols": int(g.width)},
        "pixel_spacing": [float(x) for x in g.pixel_spacing],
        "principal_point": [float(x) for x in g.principal_point], "pose": pose_to_yaml(g.pose)}, sort_keys=False))


def read_image(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ViewError(f"{path}: cannot read image")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    if image.dtype not in (np.uint8, np.uint16):
        raise ViewError(f"{path}: expected an 8-bit or 16-bit PNG, got {image.dtype}")
    return image


def read_case(case_dir) -> tuple[dict, list[XrayView], np.ndarray]:
    """(case.yaml contents with absolute `ct`/`mask` paths, views, initial CT-to-world pose in m)."""
    case_dir = Path(case_dir)
    case_file = case_dir / "case.yaml"
    if not case_file.is_file():
        raise CaseError(f"{case_file} not found")
    try:
        data = yaml.safe_load(case_file.read_text()) or {}
    except yaml.YAMLError as error:
        raise CaseError(f"{case_file}: {error}") from error
    for key in ("ct", "views", "initial_pose"):
        if key not in data:
            raise CaseError(f"{case_file}: missing '{key}'")
    data["ct"] = str((case_dir / data["ct"]).resolve())
    if data.get("mask"):
        data["mask"] = str((case_dir / data["mask"]).resolve())
    views = []
    for i, entry in enumerate(data["views"]):
        try:
            image_path, geometry_path = case_dir / entry["image"], case_dir / entry["geometry"]
        except (KeyError, TypeError) as error:
            raise CaseError(f"{case_file}: views[{i}] needs 'image' and 'geometry'") from error
        views.append(XrayView(read_image(image_path), read_geometry(geometry_path),
                              polarity=entry.get("polarity", data.get("polarity", "dark")),
                              name=entry.get("name", image_path.stem)))
    if not 1 <= len(views) <= 8:
        raise CaseError(f"{case_file}: needs 1 to 8 views, got {len(views)}")
    return data, views, pose_from_yaml(data["initial_pose"], "initial_pose")


def write_case(case_dir, ct_path, views: list[XrayView], initial_pose: np.ndarray, mask_path=None,
               true_pose: np.ndarray | None = None) -> Path:
    """Writes a case folder (PNG + geometry YAML per view, case.yaml); true_pose is kept for scoring only."""
    import cv2

    case_dir = Path(case_dir)
    case_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, view in enumerate(views):
        name = view.name or f"view{i}"
        if not cv2.imwrite(str(case_dir / f"{name}.png"), view.image):
            raise CaseError(f"cannot write {case_dir / name}.png")
        write_geometry(case_dir / f"{name}.yaml", view.geometry)
        entries.append({"name": name, "image": f"{name}.png", "geometry": f"{name}.yaml", "polarity": view.polarity})
    data = {"ct": str(Path(ct_path).resolve()), "views": entries, "initial_pose": pose_to_yaml(initial_pose)}
    if mask_path:
        data["mask"] = str(Path(mask_path).resolve())
    if true_pose is not None:
        data["true_pose"] = pose_to_yaml(true_pose)
    (case_dir / "case.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return case_dir


def result_to_yaml(result: RegistrationResult) -> dict:
    return {"ct_pose": {**pose_to_yaml(result.pose), "matrix": np.asarray(result.pose, float).round(9).tolist()},
            "converged": bool(result.converged),
            "estimated_error": float(result.estimated_error) if np.isfinite(result.estimated_error) else None,
            "final_motion": float(result.final_motion) if np.isfinite(result.final_motion) else None,
            "ncc_per_view": [round(float(x), 5) for x in result.ncc_per_view],
            "similarity_per_view": [round(float(x), 5) for x in result.similarity_per_view],
            "iterations": int(result.iterations), "seconds": round(float(result.seconds), 3),
            "message": result.message}
