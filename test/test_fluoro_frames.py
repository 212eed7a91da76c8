"""The independent fluoroscopy validation frames: determinism, geometry, measured width and CNR, confounders, CLI."""

import json
import subprocess
import sys
from collections import Counter

import cv2
import numpy as np
import pytest
from scipy.spatial import cKDTree

from guidewire.validation.fluoro_frames import FluoroFrame, _render, fluoro_frame

SEEDS = range(9000, 9040)


@pytest.fixture(scope="module")
def renders():
    return [_render(seed) for seed in SEEDS]


def mask_width(mask: np.ndarray) -> float:
    """Mean width of a thin mask: its area over the length of its skeleton (8-connected steps)."""
    from skimage.morphology import skeletonize

    sk = skeletonize(mask).astype(np.uint8)
    ortho = cv2.filter2D(sk, -1, np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32))
    diag = cv2.filter2D(sk, -1, np.array([[1, 0, 1], [0, 0, 0], [1, 0, 1]], np.float32))
    length = 0.5 * float((sk * (ortho + np.sqrt(2) * np.minimum(diag, np.maximum(2 - ortho, 0)))).sum())
    return float(mask.sum()) / max(length, 1.0)


def measured_cnr(r: dict) -> float:
    """Mean wire contrast over the mask (noise-free displays with and without the wire) over the standard
    deviation of the shipped image's noise in a ring 3-8 px around the mask, away from the collimator edge."""
    img = r["image"].astype(np.float64)
    mask = r["mask"]
    contrast = 255.0 * float((r["clean_no_wire"] - r["clean"])[mask].mean())
    m8 = mask.astype(np.uint8)
    outer = cv2.dilate(m8, np.ones((17, 17), np.uint8)).astype(bool)
    ring = outer & ~cv2.dilate(m8, np.ones((7, 7), np.uint8)).astype(bool)
    ring &= r["field_sd"] > 25
    noise = (img - 255.0 * r["clean"])[ring]
    return contrast / float(noise.std())


def blind_cnr(image: np.ndarray, mask: np.ndarray) -> float:
    """CNR from the shipped image and mask alone: local background by normalised convolution around the wire, the
    noise as the robust spread of the background's residual after a 9x9 median."""
    img = image.astype(np.float32)
    m8 = mask.astype(np.uint8)
    excl = cv2.dilate(m8, np.ones((5, 5), np.uint8)).astype(np.float32)
    w = cv2.GaussianBlur(1 - excl, (0, 0), 4)
    bg = cv2.GaussianBlur(img * (1 - excl), (0, 0), 4) / np.maximum(w, 1e-3)
    contrast = float((bg - img)[mask].mean())
    ring = cv2.dilate(m8, np.ones((21, 21), np.uint8)).astype(bool) & ~excl.astype(bool)
    res = (img - cv2.medianBlur(image, 9).astype(np.float32))[ring]
    noise = 1.4826 * float(np.median(np.abs(res - np.median(res))))
    return contrast / max(noise, 0.3)


def test_deterministic_and_typed():
    a, b, c = fluoro_frame(9001), fluoro_frame(9001), fluoro_frame(9002)
    assert isinstance(a, FluoroFrame)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.centreline, b.centreline) and a.tip == b.tip and a.metadata == b.metadata
    assert not np.array_equal(a.image, c.image)
    assert a.image.shape == (512, 512) and a.image.dtype == np.uint8
    assert a.mask.shape == (512, 512) and a.mask.dtype == bool
    assert a.centreline.ndim == 2 and a.centreline.shape[1] == 2 and a.centreline.dtype == np.float64
    assert len(a.tip) == 2 and all(isinstance(v, float) for v in a.tip)
    json.dumps(a.metadata)
    small = fluoro_frame(9001, size=256)
    assert small.image.shape == (256, 256) and small.mask.shape == (256, 256) and small.mask.any()


def test_wire_width_from_the_mask(renders):
    widths, drawn = [], []
    for r in renders:
        meta = r["metadata"]
        assert 1.5 <= meta["wire_width_px"] <= 4.0
        assert meta["wire"]["tip_width_px"] >= meta["wire_width_px"]
        assert 10 <= meta["wire"]["tip_dense_length_px"] <= 30
        w = mask_width(r["mask"])
        widths.append(w)
        drawn.append(meta["wire_width_px"])
        assert abs(w - meta["wire_width_px"]) < 0.75, (meta["seed"], w, meta["wire_width_px"])
    widths = np.array(widths)
    assert widths.min() >= 1.2 and widths.max() <= 4.6
    assert widths.min() < 2.0 and widths.max() > 3.0  # the range is covered, not one width
    assert np.corrcoef(widths, drawn)[0, 1] > 0.9


def test_contrast_to_noise_measured_in_range(renders):
    cnr = np.array([measured_cnr(r) for r in renders])
    meta = np.array([r["metadata"]["cnr"] for r in renders])
    assert np.all(np.abs(cnr / meta - 1) < 0.3), np.c_[cnr, meta]
    assert cnr.min() >= 1.0 and cnr.max() <= 19.0
    assert 3.5 <= np.median(cnr) <= 7.0
    assert cnr.min() < 2.5 and cnr.max() > 9.0
    blind = np.array([blind_cnr(r["image"], r["mask"]) for r in renders])
    assert np.corrcoef(np.argsort(np.argsort(blind)), np.argsort(np.argsort(cnr)))[0, 1] > 0.6
    for r in renders:  # dark wire on a brighter background
        assert r["metadata"]["contrast_dn"] > 3
        assert np.median(r["image"][r["mask"]]) < np.median(r["image"][r["ring"]])


def test_mask_is_the_wire_and_covers_the_centreline(renders):
    for r in renders:
        mask, cl = r["mask"], r["centreline"]
        meta = r["metadata"]
        assert len(cl) >= 20
        assert np.all(np.linalg.norm(np.diff(cl, axis=0), axis=1) <= 1.01)
        iu, iv = np.round(cl[:, 0]).astype(int), np.round(cl[:, 1]).astype(int)
        assert iu.min() >= 0 and iv.min() >= 0 and iu.max() < 512 and iv.max() < 512
        assert mask[iv, iu].mean() >= 0.99, meta["seed"]
        # every mask pixel is the wire: within the tip's half width (+ a pixel) of the centreline
        vv, uu = np.nonzero(mask)
        d, _ = cKDTree(cl).query(np.c_[uu, vv])
        assert d.max() <= meta["wire"]["tip_width_px"] / 2 + 1.0, meta["seed"]
        # and no more than the drawn stroke (area ~ length x width)
        length = float(np.linalg.norm(np.diff(cl, axis=0), axis=1).sum())
        assert mask.sum() <= (length + 10) * meta["wire"]["tip_width_px"] + 20


def test_tip_is_the_masks_distal_end(renders):
    tip_contrast = []
    for r in renders:
        mask, cl, tip = r["mask"], r["centreline"], np.array(r["tip"])
        meta = r["metadata"]
        assert np.allclose(cl[-1], tip)
        assert mask[round(tip[1]), round(tip[0])]
        # mask pixels whose nearest centreline point is the last one form the round cap around the tip
        vv, uu = np.nonzero(mask)
        _, idx = cKDTree(cl).query(np.c_[uu, vv])
        cap = np.c_[uu, vv][idx == len(cl) - 1]
        assert len(cap) > 0
        assert np.linalg.norm(cap - tip, axis=1).max() <= meta["wire"]["tip_width_px"] / 2 + 1.0
        # the insertion end is where the wire enters the field (edge starts) or inside it, not the tip
        if meta["wire"]["start"] == "edge":
            sd_start = r["field_sd"][round(cl[0, 1]), round(cl[0, 0])]
            image_edge = min(cl[0, 0], cl[0, 1], 511 - cl[0, 0], 511 - cl[0, 1])
            assert min(sd_start, image_edge) < 12
        # the tip segment is denser: more wire contrast there than along the body (noise-free displays)
        arc = np.r_[0, np.cumsum(np.linalg.norm(np.diff(cl, axis=0), axis=1))]
        tipzone = arc > arc[-1] - meta["wire"]["tip_dense_length_px"] + 3
        body = arc < arc[-1] - meta["wire"]["tip_dense_length_px"] - 5
        if body.sum() > 20:
            drop = r["clean_no_wire"] - r["clean"]
            at = np.round(cl).astype(int)
            tip_contrast.append(np.median(drop[at[tipzone, 1], at[tipzone, 0]])
                                / max(np.median(drop[at[body, 1], at[body, 0]]), 1e-6))
    assert np.median(tip_contrast) > 1.2


def test_confounders_collimation_and_processing_vary(renders):
    conf = Counter(k for r in renders for k in r["metadata"]["confounders"])
    n = len(renders)
    for k, share in {"catheter": 0.25, "ecg_lead": 0.2, "stent": 0.08, "vessel_tree": 0.12, "text": 0.4,
                     "table_edge": 0.12}.items():
        assert conf[k] >= share * n, (k, conf)
    assert conf["sternal_wire"] + conf["clip"] >= 0.15 * n
    assert sum(1 for r in renders if len(r["metadata"]["confounders"]) >= 2) >= 0.4 * n
    kinds = Counter(r["metadata"]["collimator"]["kind"] for r in renders)
    assert set(kinds) == {"none", "circle", "rect"}
    outside = [np.median(r["image"][r["field_sd"] < -15]) for r in renders
               if r["metadata"]["collimator"]["kind"] != "none" and (r["field_sd"] < -15).sum() > 500]
    assert len(outside) >= 5 and np.mean(np.array(outside) > 0) > 0.8  # dark or grey, not blanked to zero
    assert set(Counter(r["metadata"]["processing"]["enhancement"] for r in renders)) == {"unsharp", "blur", "none"}
    assert len({r["metadata"]["anatomy"]["kind"] for r in renders}) == 3
    tips = Counter(r["metadata"]["wire"]["tip_shape"] for r in renders)
    assert set(tips) == {"straight", "angled", "J"}
    assert set(Counter(r["metadata"]["wire"]["start"] for r in renders)) == {"edge", "inside"}
    # the catheter along the wire is in the image and not in the mask: the image is darker around the wire
    alongs = [r for r in renders if any(c["mode"] == "along_wire" for c in r["metadata"]["confounders"].get(
        "catheter", []))]
    assert alongs


def test_cli_writes_the_documented_folder(tmp_path):
    out = tmp_path / "set"
    subprocess.run([sys.executable, "-m", "guidewire.validation.fluoro_frames", str(out), "--seed", "9100",
                    "--count", "3", "--size", "256"], check=True, capture_output=True)
    doc = json.loads((out / "frames.json").read_text())
    assert doc["count"] == 3 and len(doc["frames"]) == 3
    for i, fr in enumerate(doc["frames"]):
        img = cv2.imread(str(out / "images" / f"{i:04d}.png"), cv2.IMREAD_UNCHANGED)
        msk = cv2.imread(str(out / "masks" / f"{i:04d}.png"), cv2.IMREAD_UNCHANGED)
        assert img.shape == (256, 256) and img.dtype == np.uint8
        assert set(np.unique(msk)) <= {0, 255} and (msk == 255).any()
        ref = fluoro_frame(9100 + i, size=256)
        assert np.array_equal(img, ref.image) and np.array_equal(msk == 255, ref.mask)
        assert fr["image"] == f"images/{i:04d}.png" and fr["mask"] == f"masks/{i:04d}.png"
        assert np.allclose(fr["tip"], ref.tip, atol=1e-3)
        assert np.allclose(fr["centreline"], ref.centreline, atol=1e-3)
        assert {"wire_width_px", "cnr", "confounders", "collimator", "processing"} <= set(fr["metadata"])
