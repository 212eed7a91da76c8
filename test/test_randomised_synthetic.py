"""The randomised training generator, on a stand-in anatomy (no DRR render)."""
import numpy as np
import pytest

from guidewire.segmentation.metrics import wire_visibility
from guidewire.segmentation.randomised import RandomisedFluoroscopy, RandomisedSetConfig, tube


@pytest.fixture(scope="module")
def frames():
    source = RandomisedFluoroscopy(RandomisedSetConfig(seed=7, sizes=(256, 512)))
    v, u = np.mgrid[0:256, 0:256]
    anatomy = (2 + np.sin(u / 20) + 0.5 * np.cos(v / 13) + 2 * np.exp(-((u - 128) / 30) ** 2)).astype(np.float32)
    source.source.anatomy = lambda pose: (anatomy, None)
    return [source.frame(index) for index in range(12)], source


def test_frames_vary_in_size_and_hold_a_dark_wire_in_their_mask(frames):
    frames, _ = frames
    sizes = {frame.image.shape for frame in frames}
    assert len(sizes) > 3 and all(256 <= s[0] <= 512 and s[0] == s[1] for s in sizes)
    contrasts = []
    for frame in frames:
        assert frame.image.dtype == np.uint8 and frame.mask.shape == frame.image.shape
        assert frame.mask.sum() > 20
        contrasts.append(wire_visibility(frame.image, frame.mask > 0)[1])
    assert np.nanmedian(contrasts) > 0  # the wire is darker than its surroundings


def test_frames_are_a_pure_function_of_seed_and_index(frames):
    frames, source = frames
    again = source.frame(3)
    assert np.array_equal(again.image, frames[3].image) and np.array_equal(again.mask, frames[3].mask)


def test_collimation_varies(frames):
    frames, _ = frames
    zero_share = [float((frame.image == 0).mean()) for frame in frames]
    assert min(zero_share) < 0.01 and max(zero_share) > 0.05  # frames with and without a blank border


def test_tube_chord_of_a_round_wire():
    path = np.column_stack([np.linspace(5, 45, 81), np.full(81, 25.0)])
    chord, distance, nearest = tube(path, 50, 2.0)
    assert chord[25, 25] == pytest.approx(4.0, abs=0.15)  # the diameter at the axis
    assert chord[25 + 3, 25] == 0 and nearest[25, 25] >= 0
    hollow, _, _ = tube(path, 50, 4.0, inner=0.6)
    assert hollow[25, 25] < hollow[25 + 3, 25]  # a catheter's walls are denser than its lumen
