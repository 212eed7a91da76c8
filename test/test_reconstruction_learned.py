"""The paper's learned reconstruction: disparity alignment, the field interpolation, the networks,
MiDaS v3's architecture and loader, and the training command end to end on a few twin samples."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from guidewire.reconstruction.depth import DepthModelError, align_disparity, load_midas_v3, midas_v3_config
from guidewire.reconstruction.learned import FusionConfig, FusionNet, LearnedReconstructor, MagneticDepth, field_at


def test_alignment_recovers_scale_and_shift_and_resists_outliers():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.3, 0.5, (40, 40))
    prediction = (1.0 / depth - 0.4) / 2.5  # disparity = 2.5 p + 0.4
    mask = np.ones_like(depth, bool)
    assert align_disparity(prediction, depth, mask, robust=False) == pytest.approx((2.5, 0.4), rel=1e-9)
    spoiled = prediction.copy()
    spoiled[:4] += 3.0  # a tenth of the anchors wrong (the wire, a shadow)
    plain = align_disparity(spoiled, depth, mask, robust=False)
    robust = align_disparity(spoiled, depth, mask, robust=True, iterations=20)
    assert abs(robust[0] - 2.5) < 0.05 < abs(plain[0] - 2.5)
    with pytest.raises(ValueError, match="two pixels of different predicted depth"):
        align_disparity(np.zeros((4, 4)), depth[:4, :4], np.ones((4, 4), bool))


def test_alignment_refuses_anchors_of_one_depth():
    # The bench's platform from the top camera: its disparity spreads 0.05 %, which leaves the scale to noise.
    rng = np.random.default_rng(1)
    depth = 0.45 + rng.uniform(0.0, 2e-4, (40, 40))
    prediction = rng.normal(0.0, 1.0, (40, 40))
    for robust in (False, True):
        with pytest.raises(ValueError, match="anchors at different depths"):
            align_disparity(prediction, depth, np.ones_like(depth, bool), robust=robust)


def test_image_branch_with_the_true_disparity_recovers_a_wire_above_the_platform():
    from guidewire.geometry import PinholeCamera
    from guidewire.reconstruction.learned import image_branch
    from guidewire.reconstruction.views import resample_polyline
    from guidewire.twin.fusion_set import true_disparity

    camera = PinholeCamera(width=2048, height=1536, intrinsics=np.array([[2400.0, 0, 1023.5], [0, 2400.0, 767.5],
                                                                        [0, 0, 1]]),
                           distortion=np.zeros(5), rotation=np.diag([1.0, -1.0, -1.0]),
                           position=np.array([0.0, 0.0, 0.45]))
    s = np.linspace(0.0, 0.16, 400)
    wire = np.column_stack([-0.12 + s, 0.03 * np.sin(s / 0.05) * s / 0.16, 0.025 + 0.02 * (s / 0.16) ** 2])
    stations = resample_polyline(wire, 128)[0]
    sample = {"shape": np.array([1536, 2048]), "intrinsics": camera.intrinsics, "distortion": camera.distortion,
              "rotation": camera.rotation, "position": camera.position, "pixels": camera.project(stations),
              "entry_point": wire[0]}
    disparity = true_disparity(camera, wire, (1536, 2048))
    points = image_branch(sample, disparity)
    error = np.linalg.norm(points - stations, axis=1)
    assert np.sqrt(np.mean(error ** 2)) < 1e-3 and np.abs(points[:, 2] - stations[:, 2]).mean() < 1e-3
    platform = np.where(disparity > 0, disparity.min(where=disparity > 0, initial=np.inf), 0.0)
    with pytest.raises(ValueError, match="no nearer than the platform"):  # a network that sees the wire below it
        image_branch(sample, 2 * platform - disparity)
    del sample["entry_point"]
    with pytest.raises(ValueError, match="no entry_point"):
        image_branch(sample, disparity)


def test_training_wires_stay_above_the_platform():
    from guidewire.twin.config import load_bench_config
    from guidewire.twin.fusion_set import wire_for

    guidewire = load_bench_config(None).guidewire
    lowest = [wire_for(seed, "twin", guidewire).centreline[:, 2].min() for seed in range(100, 130)]
    assert min(lowest) >= guidewire.diameter / 2


def test_station_errors_pair_each_point_with_its_own_label():
    from guidewire.reconstruction import shape_errors
    from guidewire.reconstruction.metrics import station_errors

    truth = np.column_stack([np.linspace(0.0, 0.127, 128), np.zeros(128), np.full(128, 0.03)])
    jittery = truth + np.column_stack([np.zeros((128, 2)), 0.002 * (-1.0) ** np.arange(128)])  # +-2 mm in z
    errors = station_errors(jittery, truth).as_mm()
    assert errors["rmse"] == pytest.approx(2.0) and errors["mae_z"] == pytest.approx(2.0)
    assert errors["tip"] == pytest.approx(2.0) and errors["hausdorff"] == pytest.approx(2.0, abs=0.05)
    assert shape_errors(jittery, truth).rmse > 0.005  # arc-length pairing adds a slip along the wire
    with pytest.raises(ValueError, match="one estimate per station"):
        station_errors(jittery[:-1], truth)


def test_field_interpolation_hits_the_sensors_and_fills_a_dead_one():
    x, y = np.meshgrid((np.arange(4) - 1.5) * 0.025, (np.arange(4) - 1.5) * 0.025)
    positions = np.column_stack([x.ravel(), y.ravel(), np.zeros(16)])
    field = np.column_stack([positions[:, 0], positions[:, 1], np.ones(16)]) * 1e-4  # linear in x, y
    valid = np.ones(16, bool)
    valid[5] = False
    features = field_at(positions, np.where(valid[:, None], field, np.nan), valid, positions[:, :2])
    np.testing.assert_allclose(features[valid, :3], field[valid] * 1e6, atol=1e-9)
    assert np.isfinite(features).all()
    outside = field_at(positions, field, np.ones(16, bool), np.array([[0.5, 0.0]]))  # clamped to the grid
    np.testing.assert_allclose(outside[0, :3], [0.0375e2, 0.0, 1e2], atol=1e-9)


def test_fusion_variants_differ_only_in_their_branches():
    torch.manual_seed(0)
    image, magnetic = torch.randn(2, 32, 3) * 0.01, torch.randn(2, 32, 3) * 0.01
    field = torch.randn(2, 32, 4)
    sizes = {}
    for name, config in {"encdec": FusionConfig(knn=0, attention=False), "knn": FusionConfig(attention=False),
                         "full": FusionConfig()}.items():
        network = FusionNet(config).eval()
        assert network(image, magnetic, field).shape == (2, 32, 3)
        sizes[name] = sum(p.numel() for p in network.parameters())
    assert sizes["encdec"] < sizes["knn"] < sizes["full"]
    assert MagneticDepth().eval()(image[..., :2], field).shape == (2, 32)


def test_midas_v3_is_dpt_hybrid_and_its_weights_come_only_from_a_local_folder(tmp_path):
    from transformers import DPTForDepthEstimation

    model = DPTForDepthEstimation(midas_v3_config())
    assert 120e6 < sum(p.numel() for p in model.parameters()) < 125e6
    with pytest.raises(DepthModelError, match="put config.json and model.safetensors"):
        load_midas_v3(tmp_path / "nowhere")


def test_training_command_writes_resumable_checkpoints_that_load(tmp_path):
    data, out = tmp_path / "data", tmp_path / "model"
    made = subprocess.run([sys.executable, "-m", "guidewire.twin.fusion_set", str(data), "--count", "4",
                           "--seed", "100"], capture_output=True, text=True, timeout=300, check=False)
    assert made.returncode == 0, made.stderr
    command = [sys.executable, "-m", "guidewire.reconstruction.train_learned", str(data), str(out),
               "--depth-epochs", "1", "--epochs", "2"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert first.returncode == 0, first.stderr
    assert torch.load(out / "fusion_full.pt", weights_only=False)["epoch"] == 1
    resumed = subprocess.run(command[:-1] + ["3", "--resume"], capture_output=True, text=True, timeout=600,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert "fusion epoch 3/3" in resumed.stderr and "fusion epoch 1/3" not in resumed.stderr
    sample = dict(np.load(sorted(data.glob("*.npz"))[0]))
    points = LearnedReconstructor(out, "full").reconstruct(sample)
    assert points.shape == (128, 3) and np.isfinite(points).all()
    with pytest.raises(DepthModelError, match="cannot load the learned reconstruction"):
        LearnedReconstructor(tmp_path / "missing")
