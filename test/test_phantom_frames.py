"""Generator C (guidewire.segmentation.phantom_frames): deterministic, thin wire-only masks on a dark wire,
unlabelled distractors, and folders that the training loader reads."""
import json

import numpy as np
import pytest
from skimage.morphology import skeletonize

from guidewire.segmentation.phantom_frames import main, render, scene
from guidewire.segmentation.train import read_folder, read_pairs

FRAMES = range(6)


@pytest.fixture(scope="module")
def frames():
    return [render(0, index) for index in FRAMES]


def test_a_frame_is_a_pure_function_of_seed_and_index(frames):
    image, mask, info = render(0, 2)
    assert np.array_equal(image, frames[2][0]) and np.array_equal(mask, frames[2][1]) and info == frames[2][2]
    other, _, _ = render(1, 2)
    assert not np.array_equal(other, image)


def test_masks_are_non_empty_thin_and_binary(frames):
    for image, mask, info in frames:
        assert image.shape == mask.shape == (512, 512) and image.dtype in (np.uint8, np.uint16)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        wire = mask > 0
        assert wire.sum() >= 50, info
        # area over centreline length: the mean width (the skeleton loses about half a width at each end)
        width = info["wire"]["width_px"]
        assert 1 <= width <= 6
        assert wire.sum() / skeletonize(wire).sum() <= width + 2.5, info


def test_the_wire_is_darker_than_its_surroundings(frames):
    import cv2

    contrasts = []
    for image, mask, _ in frames:
        wire = mask > 0
        near = cv2.dilate(mask, np.ones((11, 11), np.uint8)) > 0
        ring = near & ~(cv2.dilate(mask, np.ones((5, 5), np.uint8)) > 0) & (image > 0)
        top = 255.0 if image.dtype == np.uint8 else float(image.max())
        contrasts.append((image[ring].mean() - image[wire].mean()) / top)
    assert np.mean(contrasts) > 0.02, contrasts
    assert sum(c > 0 for c in contrasts) >= len(contrasts) - 1, contrasts


def test_distractors_are_drawn_and_never_labelled(frames):
    drawn = 0
    for index, (_, mask, info) in zip(FRAMES, frames):
        f, *_ = scene(0, index)
        labelled = mask > 0
        # every labelled pixel is on the wire; devices away from it stay unlabelled
        assert not (labelled & (f.wire <= 0)).any()
        devices = (f.distractors > 0.05) & (f.wire <= 0)
        assert not (labelled & devices).any()
        drawn += devices.sum() > 200
    assert drawn >= 3
    kinds = [k for _, _, info in frames for k in info["catheters"] + info["hardware"]]
    assert kinds and any(info["ecg_leads"] for _, _, info in frames)


def test_the_command_writes_what_the_training_loader_reads(tmp_path):
    main([str(tmp_path), "--count", "3", "--seed", "4", "--first", "2"])
    pairs = read_pairs(tmp_path)
    assert [name for name, _, _ in pairs] == [f"c4_{i:06d}.png" for i in (2, 3, 4)]
    for name, image, mask in pairs:
        expected, expected_mask, _ = render(4, int(name[3:9]))
        assert np.array_equal(image, expected) and np.array_equal(mask, expected_mask > 0)
    assert len(read_folder(tmp_path)) == 3
    record = json.loads((tmp_path / "set.json").read_text())
    assert record["seed"] == 4 and record["count"] == 3
    assert len((tmp_path / "frames.jsonl").read_text().splitlines()) == 3
