"""Checkpoints, ONNX export and sliding-window inference."""
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from guidewire.segmentation import backends, cache
from guidewire.segmentation.fganet import NetworkConfig, SegmentationNetwork, fold_batch_norms
from guidewire.segmentation.cache import cached_compiled_path
from guidewire.segmentation.checkpoint import WeightsError, load_checkpoint, save_checkpoint
from guidewire.segmentation.frame import mask_confidence, overlay, segment_frame
from guidewire.segmentation.inference import Segmenter, gaussian_window
from guidewire.segmentation.precision import resolve_precision


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(1)
    network = SegmentationNetwork(NetworkConfig(widths=(4, 4, 8, 8, 8, 8)))
    with torch.no_grad():  # non-trivial batch-norm statistics, as after training
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    save_checkpoint(path, network.eval(), threshold=0.5, note="test")
    return path


def frame(height=160, width=224, seed=0):
    image = np.random.default_rng(seed).integers(1, 255, (height, width)).astype(np.uint8)
    image[:, :10] = 0
    return image


def test_checkpoint_round_trip_keeps_weights_and_metadata(weights):
    network, meta = load_checkpoint(weights)
    assert meta["note"] == "test" and not network.training
    again, _ = load_checkpoint(weights)
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(network(x), again(x))


def test_missing_and_corrupt_weights_say_what_is_wrong(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x04not a checkpoint")
    with pytest.raises(WeightsError, match="cannot load"):
        Segmenter(corrupt)


def test_onnx_runtime_gives_the_same_mask_as_pytorch(weights, tmp_path):
    image = frame()
    torch_result = Segmenter(weights, backend="torch", window=128).probability(image)
    onnx_result = Segmenter(weights, backend="onnx", window=128, onnx_file=tmp_path / "tiny.onnx").probability(image)
    np.testing.assert_allclose(onnx_result, torch_result, atol=2e-5)
    decided = np.abs(torch_result - 0.5) > 1e-4
    np.testing.assert_array_equal((onnx_result >= 0.5)[decided], (torch_result >= 0.5)[decided])


def assert_absurd_float_frames_are_handled_before_the_backend(segmenter):
    """Issue 23: a 32FC1 frame of finite values near +-3e38 overflowed the normalisation to NaN (the
    compiled model then died with 'index out of bounds', eager PyTorch returned confidence 0). The
    z-score does not depend on the scale, so such a frame must segment as the same frame at +-1;
    a NaN or infinite pixel is refused, by name, whatever the backend."""
    signs = np.where(frame() > 128, 1.0, -1.0).astype(np.float32)
    expected = segmenter.probability(signs)
    for scale in (3e38, -3.3e38):
        huge = segmenter.probability(signs * np.float32(scale) if scale > 0 else -signs * np.float32(-scale))
        assert np.isfinite(huge).all()
        np.testing.assert_allclose(huge, expected if scale > 0 else segmenter.probability(-signs), atol=2e-5)
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="NaN or infinite"):
            segmenter.probability(np.where(signs > 0, bad, signs).astype(np.float32))


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_absurd_float_frames_on_the_eager_and_onnx_backends(weights, tmp_path, backend):
    """The compiled backend is checked in its own (compiling) test below."""
    assert_absurd_float_frames_are_handled_before_the_backend(
        Segmenter(weights, backend=backend, window=128, onnx_file=tmp_path / "tiny.onnx"))


def test_compiled_backend_gives_the_same_mask_as_pytorch_and_caches_its_build(weights, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    image = frame()
    torch_result = Segmenter(weights, backend="torch", window=128).probability(image)
    compiled = Segmenter(weights, backend="compiled", window=128)
    packages = list((tmp_path / "guidewire_perception" / "compiled").glob("*.pt2"))
    assert len(packages) == 1 and "-128-float32-" in packages[0].name
    np.testing.assert_allclose(compiled.probability(image), torch_result, atol=2e-5)
    assert_absurd_float_frames_are_handled_before_the_backend(compiled)
    os.utime(packages[0], (0, 0))

    def rebuild(*args, **kwargs):
        raise AssertionError("a cached package was compiled again")

    monkeypatch.setattr(backends, "export_compiled", rebuild)
    again = Segmenter(weights, backend="compiled", window=128)  # loads the cached package
    np.testing.assert_array_equal(again.probability(image), compiled.probability(image))
    assert packages[0].stat().st_mtime > time.time() - 600  # marked used, so pruning keeps it


def test_pruning_deletes_only_exports_unused_for_the_set_days(weights, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "guidewire_perception" / "onnx"
    folder.mkdir(parents=True)
    stale, recent = folder / "old-0123.onnx", folder / "other-4567.onnx"
    for export, days_unused in ((stale, cache.CACHE_UNUSED_DAYS + 1), (recent, cache.CACHE_UNUSED_DAYS - 1)):
        export.write_bytes(b"an earlier export")
        os.utime(export, (time.time() - days_unused * 86400,) * 2)
    Segmenter(weights, backend="onnx", window=64)  # exports anew into the cache, then prunes it
    assert not stale.exists() and recent.exists()
    assert cache.cached_onnx_path(weights).is_file()


def test_exported_graphs_are_cached_per_network_code_as_well_as_per_checkpoint(weights, tmp_path, monkeypatch):
    from guidewire.segmentation import deformable
    from guidewire.segmentation.cache import cached_onnx_path

    before = cached_compiled_path(weights, 128, "float32"), cached_onnx_path(weights)
    edited = tmp_path / "deformable.py"
    edited.write_bytes(Path(deformable.__file__).read_bytes() + b"\n# another sampling form\n")
    monkeypatch.setattr(deformable, "__file__", str(edited))
    after = cached_compiled_path(weights, 128, "float32"), cached_onnx_path(weights)
    assert before[0] != after[0] and before[1] != after[1]


def test_a_damaged_compiled_package_is_named_in_the_error(weights, tmp_path, monkeypatch):
    from guidewire.segmentation.cache import cached_compiled_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    damaged = cached_compiled_path(weights, 64, "float32")
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"PK\x03\x04 not a package")
    with pytest.raises(WeightsError, match="cannot load compiled model .*-64-float32-"):
        Segmenter(weights, backend="compiled", window=64)


def test_folding_batch_norms_keeps_the_function_and_removes_them(weights):
    network, _ = load_checkpoint(weights)
    folded, _ = load_checkpoint(weights)
    fold_batch_norms(folded)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 1, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), network(x), atol=1e-5, rtol=1e-4)


def test_bfloat16_inference_stays_close_to_float32(weights):
    image = frame()
    full = Segmenter(weights, window=128).probability(image)
    half = Segmenter(weights, window=128, precision="bfloat16").probability(image)
    assert np.abs(half - full).max() < 0.05
    decided = np.abs(full - 0.5) > 0.05
    np.testing.assert_array_equal((half >= 0.5)[decided], (full >= 0.5)[decided])


def test_sliding_window_covers_the_image_and_blanks_the_collimated_border(weights):
    segmenter = Segmenter(weights, window=64)
    image = frame(100, 150)
    probability = segmenter.probability(image)
    assert probability.shape == image.shape and probability.dtype == np.float32
    assert np.all(probability[:, :10] == 0) and np.all(probability[:, 10:] > 0)
    result = segment_frame(segmenter, image)
    assert set(np.unique(result.mask)) <= {0, 255}
    assert np.array_equal(result.mask > 0, probability >= segmenter.threshold)
    # No cut in the checkpoint flags nothing; a cut above the frame's confidence flags it.
    assert segmenter.confidence_cut == 0.0 and not result.low_confidence
    flagged = segment_frame(segmenter, image, confidence_cut=result.confidence + 0.01)
    assert flagged.low_confidence
    assert not segment_frame(segmenter, image, confidence_cut=result.confidence).low_confidence
    # The overlay marks a flagged frame with a red border, and only a flagged one.
    red = np.array([255, 0, 0], np.uint8)
    assert (overlay(image, flagged)[[0, -1]] == red).all() and (overlay(image, flagged)[:, [0, -1]] == red).all()
    assert not (overlay(image, result)[0] == red).all()


def test_component_filter_keeps_only_the_long_thin_parts_of_the_mask(weights):
    probability = np.zeros((100, 100), np.float32)
    probability[20, 10:90] = 0.9  # a wire: 80 px long, 1 px wide
    probability[50:56, 20:28] = 0.9  # a blob (an electrode)
    probability[70, 10:15] = 0.9  # a short fragment
    probability[80:92, 30:90] = 0.9  # a bar 60 px long but 12 px wide (a catheter's shadow)
    probability[20, 95] = 0.4  # below the threshold
    segmenter = Segmenter(weights)
    assert segmenter.wire_mask(probability).sum() == 80 + 48 + 5 + 720  # off by default: the threshold alone
    segmenter = Segmenter(weights, min_component_length=0.2, max_component_width_px=7)
    wire = segmenter.wire_mask(probability)
    assert wire[20, 10:90].all() and wire.sum() == 80
    # Each bound alone: width drops only the bar; length (0.2 x 100 px) drops the blob and the fragment.
    segmenter.min_component_length, segmenter.max_component_width_px = 0.0, 7
    assert segmenter.wire_mask(probability).sum() == 80 + 48 + 5
    segmenter.min_component_length, segmenter.max_component_width_px = 0.2, 0.0
    assert segmenter.wire_mask(probability).sum() == 80 + 720
    # A frame's mask is the filtered one: the random network's mask is wide, and goes with its confidence.
    segmenter = Segmenter(weights, window=64, min_component_length=0.2, max_component_width_px=3)
    result = segment_frame(segmenter, frame(100, 150))
    assert (result.probability >= segmenter.threshold).sum() > 1000
    assert not result.mask.any() and result.confidence == 0.0
    with pytest.raises(ValueError, match="min_component_length"):
        Segmenter(weights, min_component_length=1.5)
    with pytest.raises(ValueError, match="max_component_width_px"):
        Segmenter(weights, max_component_width_px=-1)


def test_gaussian_window_weights_the_centre_most():
    window = gaussian_window(64)
    assert window[32, 32] == pytest.approx(window.max()) and window[0, 0] < 0.01


def test_confidence_is_the_mean_probability_over_the_mask():
    probability = np.array([[0.95, 0.65, 0.2], [0.1, 0.5, 0.0]], np.float32)
    assert mask_confidence(probability, probability >= 0.5) == pytest.approx((0.95 + 0.65 + 0.5) / 3)
    assert mask_confidence(probability, probability >= 0.99) == 0.0  # nothing segmented: no confidence


def test_bad_backend_and_window_are_rejected(weights):
    with pytest.raises(ValueError, match="backend"):
        Segmenter(weights, backend="tensorrt")
    with pytest.raises(ValueError, match="multiple of 32"):
        Segmenter(weights, window=100)
    with pytest.raises(ValueError, match="precision"):
        Segmenter(weights, backend="onnx", precision="bfloat16")
    with pytest.raises(ValueError, match="precision"):
        Segmenter(weights, precision="float16")
    with pytest.raises(ValueError, match="unknown torch device 'gpu0'"):
        Segmenter(weights, device="gpu0")
    with pytest.raises(ValueError, match="needs the torch backend"):
        Segmenter(weights, backend="onnx", device="cuda")


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bfloat16_only_where_the_cpu_has_it(weights, monkeypatch, native):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    expected = "bfloat16" if native else "float32"
    assert resolve_precision("auto") == expected and Segmenter(weights, precision="auto").precision == expected
    assert resolve_precision("auto", "cuda") == "float32"
    assert resolve_precision("float32") == "float32" and resolve_precision("bfloat16") == "bfloat16"
    assert Segmenter(weights, backend="onnx", precision="auto").precision == "float32"  # ONNX Runtime: float32
    # The node asks the cache with "auto": it must find the package built for what auto means here.
    assert cached_compiled_path(weights, 128, "auto") == cached_compiled_path(weights, 128, expected)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_a_gpu_that_torch_cannot_see_is_named_in_the_error(weights):
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        Segmenter(weights, device="cuda")


def test_test_time_augmentation_is_the_mean_over_mirrored_and_resampled_frames(weights):
    import cv2

    image = frame(128, 128, seed=4)
    plain = Segmenter(weights, window=128)
    mirrors = Segmenter(weights, window=128, test_time_flips=True).probability(image)
    direct = np.mean([np.flip(plain.probability(np.ascontiguousarray(np.flip(image, axes))), axes)
                      for axes in ((), (1,), (0,), (0, 1))], axis=0)
    np.testing.assert_allclose(mirrors, direct, atol=1e-5)
    assert np.abs(mirrors - plain.probability(image)).max() > 1e-4  # the random network is not symmetric

    scaled = Segmenter(weights, window=128, test_time_scales=(1.0, 1.5)).probability(image)
    enlarged = cv2.resize(image, (192, 192), interpolation=cv2.INTER_LINEAR)
    enlarged[cv2.resize((image == 0).astype(np.uint8), (192, 192), interpolation=cv2.INTER_NEAREST) > 0] = 0
    back = cv2.resize(plain.probability(enlarged), (128, 128), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(scaled, (plain.probability(image) + back) / 2, atol=1e-5)
    for bad in ((), (0.1,), (1.0, 9.0)):
        with pytest.raises(ValueError, match="test_time_scales"):
            Segmenter(weights, test_time_scales=bad)
