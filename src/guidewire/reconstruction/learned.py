"""The magnetic-fusion paper's learned reconstruction (its Fig. 1-2), for comparison with the physics fit.

- Image branch: relative inverse depth from a depth network (depth.py), made metric
  on the platform plane and the wire's entry point, read at the wire's centreline
  stations and back-projected.
- Magnetic branch: the array's field interpolated (scipy RegularGridInterpolator over
  the sensor grid) at each station, encoded by an encoder-decoder MLP (Linear +
  BatchNorm + LeakyReLU) into an absolute height per point; trained with Chamfer distance.
- Fusion: linear embeddings of both branches, concatenation and a fusion layer, the
  k nearest image embeddings of each magnetic embedding, cross-attention (magnetic
  queries, image keys and values), all concatenated into a PointNet regressor (shared
  MLP, max-pooled global feature, two-layer head) of 3D points; weighted MAE loss
  with w = (1, 1, 5).
`knn` 0 and `attention` False give the paper's ablation rows (Table 2).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.interpolate import RegularGridInterpolator
from torch import nn

from guidewire.geometry import PinholeCamera
from guidewire.reconstruction.views import pixel_rays

STATIONS = 128  # points per wire, equal steps along the image centreline
FIELD_SCALE = 1e6  # T -> uT for the networks
LOSS_WEIGHTS = (1.0, 1.0, 5.0)
WEIGHTS = Path(__file__).resolve().parent / "weights"  # the shipped networks and their model card


def field_at(positions: np.ndarray, field: np.ndarray, valid: np.ndarray, points_xy: np.ndarray) -> np.ndarray:
    """(n,4): the field interpolated over the sensor grid at each point (clamped to the grid), uT, and |B|."""
    xs, ys = np.unique(np.round(positions[:, 0], 6)), np.unique(np.round(positions[:, 1], 6))
    grid = np.zeros((len(ys), len(xs), 3))
    column = np.searchsorted(xs, np.round(positions[:, 0], 6))
    row = np.searchsorted(ys, np.round(positions[:, 1], 6))
    values = np.where(valid[:, None], field, np.nan)
    grid[row, column] = values
    # Unusable sensors take their grid neighbours' mean, so one dead sensor does not blank a region.
    for r, c in zip(*np.nonzero(~np.isfinite(grid).all(axis=2))):
        neighbours = grid[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2].reshape(-1, 3)
        grid[r, c] = np.nanmean(neighbours, axis=0) if np.isfinite(neighbours).any() else 0.0
    query = np.column_stack([np.clip(points_xy[:, 1], ys[0], ys[-1]), np.clip(points_xy[:, 0], xs[0], xs[-1])])
    interpolated = RegularGridInterpolator((ys, xs), grid * FIELD_SCALE)(query)
    return np.column_stack([interpolated, np.linalg.norm(interpolated, axis=1)])


def image_points(camera: PinholeCamera, pixels: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Back-projection of the stations at their optical depths."""
    return camera.position + depth[:, None] * pixel_rays(camera, pixels)


@dataclass(frozen=True)
class FusionConfig:
    embedding: int = 64
    knn: int = 8  # neighbours; 0 = no KNN branch
    attention: bool = True
    heads: int = 4


def _mlp(sizes) -> nn.Sequential:
    layers = []
    for inputs, outputs in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(inputs, outputs), nn.BatchNorm1d(outputs), nn.LeakyReLU(0.1)]
    return nn.Sequential(*layers)


class MagneticDepth(nn.Module):
    """Encoder-decoder MLP: per point (x, y from the image branch, field features) -> absolute height z (m)."""

    def __init__(self):
        super().__init__()
        self.encoder = _mlp([6, 64, 128, 32])
        self.decoder = nn.Sequential(_mlp([32, 128, 64]), nn.Linear(64, 1))

    def forward(self, xy: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
        """xy (b,n,2) m, field (b,n,4) uT -> z (b,n) m."""
        b, n, _ = xy.shape
        features = torch.cat([xy * 10.0, field / 10.0], dim=-1).reshape(b * n, -1)
        return 0.05 * self.decoder(self.encoder(features)).reshape(b, n)


class FusionNet(nn.Module):
    """Image and magnetic point clouds (b,n,3) + field features (b,n,4) -> fused points (b,n,3) m."""

    def __init__(self, config: FusionConfig = FusionConfig()):
        super().__init__()
        self.config = config
        e = config.embedding
        self.image_embedding = nn.Linear(3, e)
        self.magnetic_embedding = nn.Linear(3 + 4, e)
        self.fusion = nn.Sequential(nn.Linear(2 * e, e), nn.LeakyReLU(0.1))
        self.attention = nn.MultiheadAttention(e, config.heads, batch_first=True) if config.attention else None
        width = e * (1 + (config.knn > 0) + config.attention)
        self.shared = nn.Sequential(nn.Conv1d(width, 128, 1), nn.BatchNorm1d(128), nn.LeakyReLU(0.1),
                                    nn.Conv1d(128, 128, 1), nn.BatchNorm1d(128), nn.LeakyReLU(0.1))
        self.head = nn.Sequential(nn.Conv1d(256, 128, 1), nn.LeakyReLU(0.1), nn.Conv1d(128, 3, 1))

    def forward(self, image_points: torch.Tensor, magnetic_points: torch.Tensor, field: torch.Tensor):
        centre = image_points.mean(dim=1, keepdim=True)
        image = self.image_embedding((image_points - centre) * 20.0)
        magnetic = self.magnetic_embedding(torch.cat([(magnetic_points - centre) * 20.0, field / 10.0], -1))
        parts = [self.fusion(torch.cat([image, magnetic], -1))]
        if self.config.knn > 0:
            distance = torch.cdist(magnetic, image)
            index = distance.topk(min(self.config.knn, image.shape[1]), largest=False).indices  # (b,n,k)
            neighbours = torch.gather(image.unsqueeze(1).expand(-1, index.shape[1], -1, -1), 2,
                                      index.unsqueeze(-1).expand(-1, -1, -1, image.shape[-1]))
            parts.append(neighbours.max(dim=2).values)
        if self.attention is not None:
            parts.append(self.attention(magnetic, image, image, need_weights=False)[0])
        features = self.shared(torch.cat(parts, -1).transpose(1, 2))  # (b,128,n)
        global_feature = features.max(dim=2, keepdim=True).values.expand_as(features)
        offset = self.head(torch.cat([features, global_feature], 1)).transpose(1, 2)
        return image_points + 0.02 * offset


def weighted_mae(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor(LOSS_WEIGHTS, dtype=prediction.dtype)
    return ((prediction - target).abs() * weights).mean()


def chamfer(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    distance = torch.cdist(prediction, target)
    return distance.min(dim=2).values.mean() + distance.min(dim=1).values.mean()


def fusion_state(network: FusionNet) -> dict:
    return {"config": asdict(network.config), "state": network.state_dict()}


def load_fusion(state: dict) -> FusionNet:
    network = FusionNet(FusionConfig(**state["config"]))
    network.load_state_dict(state["state"])
    return network.eval()


def station_disparity(disparity_square: np.ndarray, pixels: np.ndarray, shape) -> np.ndarray:
    """Disparity at each station (source pixels) read from a map on the padded square input. A 3x3
    maximum first: at 512 px the wire is under a pixel wide and nearer than the platform around it."""
    import cv2

    height, width = shape
    side = max(height, width)
    size = disparity_square.shape[0]
    square = (pixels + [(side - width) // 2, (side - height) // 2]) * (size / side)
    peak = cv2.dilate(disparity_square.astype(np.float32), np.ones((3, 3), np.uint8))
    return cv2.remap(peak, square[:, 0].astype(np.float32).reshape(-1, 1),
                     square[:, 1].astype(np.float32).reshape(-1, 1), cv2.INTER_LINEAR).ravel()


def sample_camera(sample) -> PinholeCamera:
    shape = np.asarray(sample["shape"]).astype(int)
    return PinholeCamera(width=int(shape[1]), height=int(shape[0]), intrinsics=np.asarray(sample["intrinsics"]),
                         distortion=np.asarray(sample["distortion"]), rotation=np.asarray(sample["rotation"]),
                         position=np.asarray(sample["position"]))


ENTRY_STATIONS = 3  # stations (the first 3 mm or so) read for the entry anchor: the wire leaves the introducer straight


def image_branch(sample, relative_disparity: np.ndarray, platform_height: float = 0.0) -> np.ndarray:
    """Station points (n,3) from a depth network's relative disparity on the square input, made metric on
    what a lab knows in the bench frame: the platform plane (every pixel of it, total weight 1) and the
    wire's entry point (weight 1; the network read at the first stations, which start there). The platform
    alone fixes the shift only: a top view sees it at one depth."""
    from guidewire.reconstruction.depth import plane_disparity, weighted_line
    from guidewire.reconstruction.physics import ReconstructionError
    from guidewire.reconstruction.views import optical_depth

    if "entry_point" not in sample:
        raise ReconstructionError("the sample has no entry_point (samples made before it was stored): add the "
                                  "wire's entry point in the bench frame, metres")
    camera = sample_camera(sample)
    shape = tuple(np.asarray(sample["shape"]).astype(int))
    pixels = np.asarray(sample["pixels"], float)
    plane = plane_disparity(camera, shape, relative_disparity.shape[0], platform_height)
    platform = plane > 0
    stations = station_disparity(relative_disparity, pixels, shape)
    ground = relative_disparity[platform].astype(np.float64)
    entry = float(np.median(stations[:ENTRY_STATIONS]))
    middle = float(np.median(ground))
    if entry - middle <= max(3.0 * float(np.median(np.abs(ground - middle))), 1e-6 * abs(middle)):
        raise ReconstructionError("the depth network sees the wire's entry no nearer than the platform: "
                                  "no metric scale")
    p = np.append(ground, entry)
    d = np.append(plane[platform], 1.0 / optical_depth(camera, sample["entry_point"])).astype(np.float64)
    try:
        scale, shift = weighted_line(p, d, np.append(np.full(ground.size, 1.0 / ground.size), 1.0))
    except ValueError as error:  # a ReconstructionError, which the node reports and survives
        raise ReconstructionError(f"learned image branch: {error}") from error
    depth = 1.0 / np.maximum(scale * stations + shift, 1e-3)
    return image_points(camera, pixels, depth)


def branch_inputs(sample, image_station_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(xy (n,2), field features (n,4)) of the magnetic branch."""
    xy = image_station_points[:, :2]
    return xy, field_at(np.asarray(sample["positions"]), np.asarray(sample["field"]),
                        np.asarray(sample["valid"], bool), xy)


class LearnedReconstructor:
    """The trained depth network, magnetic encoder-decoder and one fusion variant, from a folder of
    train_learned's checkpoints (default: the shipped ones)."""

    def __init__(self, folder=None, variant: str = "full"):
        from guidewire.reconstruction.depth import DepthModelError, SmallDepthNet

        folder = Path(folder) if folder else WEIGHTS
        try:
            depth_state = torch.load(folder / "depth.pt", weights_only=False, map_location="cpu")
            magnetic_state = torch.load(folder / "magnetic.pt", weights_only=False, map_location="cpu")
            fusion = torch.load(folder / f"fusion_{variant}.pt", weights_only=False, map_location="cpu")
            self.depth = SmallDepthNet()
            self.depth.load_state_dict(depth_state["state"])
            self.magnetic = MagneticDepth()
            self.magnetic.load_state_dict(magnetic_state["state"])
            self.fusion = load_fusion(fusion)
        except (OSError, KeyError, RuntimeError) as error:
            raise DepthModelError(f"cannot load the learned reconstruction from {folder}: {error}") from error
        self.depth.eval()
        self.magnetic.eval()

    def relative_disparity(self, image_square: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            tensor = torch.from_numpy(np.asarray(image_square, np.float32))[None, None]
            tensor = (tensor - tensor.mean()) / tensor.std().clamp_min(1e-6)
            return self.depth(tensor)[0].numpy()

    def reconstruct(self, sample: dict, stage: str = "fusion") -> np.ndarray:
        """Station points (n,3) m. stage: 'image' (depth network only), 'magnetic' (image x, y and
        the magnetic height) or 'fusion'."""
        image = image_branch(sample, self.relative_disparity(sample["image"]))
        if stage == "image":
            return image
        xy, field = branch_inputs(sample, image)
        with torch.no_grad():
            xy_t = torch.tensor(xy, dtype=torch.float32)[None]
            field_t = torch.tensor(field, dtype=torch.float32)[None]
            magnetic = torch.cat([xy_t, self.magnetic(xy_t, field_t)[..., None]], -1)
            if stage == "magnetic":
                return magnetic[0].numpy().astype(float)
            image_t = torch.tensor(image, dtype=torch.float32)[None]
            return self.fusion(image_t, magnetic, field_t)[0].numpy().astype(float)


def make_sample(image: np.ndarray, camera: PinholeCamera, centreline_px: np.ndarray, entry_point,
                positions: np.ndarray, field: np.ndarray, valid: np.ndarray) -> dict:
    """The networks' inputs from one view and one array frame (bench frame, field minus background, T)."""
    from guidewire.preprocessing import pad_to_square_and_resize
    from guidewire.reconstruction.views import orient_from_entry, resample_polyline

    entry_pixel = camera.project(np.asarray(entry_point, float).reshape(1, 3))[0]
    pixels, _ = resample_polyline(orient_from_entry(np.asarray(centreline_px, float), entry_pixel), STATIONS)
    return {"image": pad_to_square_and_resize(np.asarray(image), 512), "pixels": pixels, "field": field,
            "entry_point": np.asarray(entry_point, float),
            "positions": positions, "valid": valid, "intrinsics": camera.intrinsics,
            "distortion": camera.distortion, "rotation": camera.rotation, "position": camera.position,
            "shape": np.array([camera.height, camera.width])}


def as_estimate(points: np.ndarray, used_sensors: int):
    """A WireEstimate of learned station points: 1 mm resampled, no uncertainty (NaN sigma)."""
    from guidewire.reconstruction.physics import WireEstimate
    from guidewire.reconstruction.views import polyline_length, resample_by_spacing

    dense = resample_by_spacing(np.asarray(points, float), 0.001)
    direction = dense[-1] - dense[-3]
    return WireEstimate(points=dense, sigma=np.full(len(dense), np.nan), tip_position=dense[-1],
                        tip_direction=direction / np.linalg.norm(direction), tip_sigma=float("nan"),
                        length=polyline_length(dense), field_rms=float("nan"), chi2_per_dof=float("nan"),
                        converged=True, used_sensors=used_sensors)
