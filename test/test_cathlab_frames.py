"""Generator D (guidewire.validation.cathlab_frames): determinism, label geometry, wire visibility, file format."""

import json

import cv2
import numpy as np
import pytest

from guidewire.validation import cathlab_frames as cf

SEEDS = (21, 22, 23)  # one CT chest frame (a single cached view) and two procedural-abdomen frames


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("d")
    cf.write_set(folder, SEEDS[0], len(SEEDS), size=512)
    return folder, json.loads((folder / "frames.json").read_text())


def test_same_seed_same_frame(written):
    folder, doc = written
    img, mask, tip, centreline, _ = cf.render_frame(SEEDS[1], 512)
    frame = doc["frames"][1]
    assert np.array_equal(img, cv2.imread(str(folder / frame["image"]), cv2.IMREAD_UNCHANGED))
    assert np.array_equal(mask, cv2.imread(str(folder / frame["mask"]), cv2.IMREAD_UNCHANGED))
    assert np.allclose(tip, frame["tip"], atol=1e-3)
    assert len(centreline) == len(frame["centreline"])


def test_json_fields(written):
    folder, doc = written
    assert doc["generator"] == "guidewire.validation.cathlab_frames"
    assert (doc["first_seed"], doc["count"], doc["size"]) == (SEEDS[0], len(SEEDS), 512)
    assert doc["coordinates"] == "(u, v) = (column, row), pixel centres at integers"
    for i, frame in enumerate(doc["frames"]):
        assert (frame["index"], frame["seed"]) == (i, SEEDS[0] + i)
        assert frame["image"] == f"images/{i:04d}.png" and frame["mask"] == f"masks/{i:04d}.png"
        assert frame["centreline"][-1] == frame["tip"]
        for key in ("wire_width_px", "cnr", "collimator", "processing", "confounders"):
            assert key in frame["metadata"]


def test_labels_match_the_drawn_wire(written):
    folder, doc = written
    darker = []
    for frame in doc["frames"]:
        img = cv2.imread(str(folder / frame["image"]), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(folder / frame["mask"]), cv2.IMREAD_UNCHANGED)
        assert img.shape == mask.shape == (512, 512) and img.dtype == mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 255}
        line = np.asarray(frame["centreline"])
        steps = np.linalg.norm(np.diff(line, axis=0), axis=1)
        assert steps.max() < 1.5
        area = (mask > 0).sum()
        assert area > 0 and 1.0 <= area / steps.sum() <= 5.0
        u, v = np.round(frame["tip"]).astype(int)
        assert mask[v, u] == 255
        md = frame["metadata"]
        assert cf.CNR_RANGE[0] <= md["cnr"] <= cf.CNR_RANGE[1]
        assert cf.WIRE_WIDTH_RANGE[0] <= md["wire_width_px"] <= cf.WIRE_WIDTH_RANGE[1]
        # local surroundings: a band 2..6 px outside the mask
        near = cv2.dilate(mask, np.ones((13, 13), np.uint8)) & ~cv2.dilate(mask, np.ones((5, 5), np.uint8))
        darker.append(img[near > 0].mean() - img[mask > 0].mean())
    assert np.mean(darker) > 0
