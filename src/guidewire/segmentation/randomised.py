"""Randomised synthetic X-ray guidewire frames: clinical variation instead of one generator's look.

The anatomy is the bench's CT as guidewire.segmentation.synthetic renders it (diffdrr DRRs, cached per
pose), seen from many poses and scales: each frame warps one pose's line integrals by a random zoom,
turn, flip and shift, bends their intensity curve and adds low-frequency and fine texture. On it:

* the guidewire drawn in the frame's own pixels, 1.2-5 px wide at the resolution the network sees, with a
  round, flat or soft profile, a denser and slightly wider distal tip that is straight, angled or J-shaped;
  it enters from the image edge or starts inside the field; its contrast-to-noise ratio is drawn
  (log-uniform) and the dose solved for it (measured on frames: about 1-8, median near 4);
* confounders: catheters (hollow tubes 5-9 px with marker bands) along or across the wire, ECG leads as
  thin as the wire with electrodes and snaps, pacemaker leads, sternal wires, stents, clips and screws,
  contrast-filled vessel trees, a table edge with its rail, burned-in text;
* collimation: none, a circle or a turned rectangle, with hard or soft edges, outside it a blank fill
  (0, as the synthetic set and the paper's crop assume, or grey) or a dim noisy image;
* imaging and display: Poisson quantum noise blurred by the detector (correlated), electronic noise,
  scatter, then a log, square-root or linear transfer, percentile window/level, gamma, dynamic-range
  compression, edge enhancement or extra blur; sizes 256-1024 px.

The mask is every pixel whose centre lies inside the wire and inside the collimated field (transmission
above one half). Each frame is a pure function of (seed, index). synthetic.py's frames are unchanged:
the shipped checkpoint's recorded numbers come from them.

    python -m guidewire.segmentation.randomised out/segmentation/randomised --seed 1000 --frames 600
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import distance_transform_edt
from scipy.spatial import cKDTree

from guidewire.segmentation.synthetic import SyntheticFluoroscopy, SyntheticFrame, SyntheticSetConfig, \
    _ecg_lead, _fixation, _smooth_path, _stent, _vessels, write_frame


@dataclass(frozen=True)
class RandomisedSetConfig:
    frames: int = 600
    seed: int = 1000
    anatomy_seed: int = 1000  # the synthetic set whose C-arm poses give the anatomy (its cache is reused)
    anatomy_poses: int = 8
    sizes: tuple = (256, 1024)  # frame side range, px
    wire_width_px: tuple = (1.2, 5.0)
    cnr: tuple = (1.5, 30.0)  # the dose is solved for this wire contrast-to-noise, drawn log-uniform
    blank_border: float = 0.3  # share of collimated frames with an exact-zero fill outside the field


def _log_uniform(rng, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _dense(path: np.ndarray, step: float = 0.25) -> np.ndarray:
    """The polyline resampled every `step` px."""
    lengths = np.r_[0, np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))]
    samples = np.arange(0, lengths[-1] + step / 2, step)
    return np.column_stack([np.interp(samples, lengths, path[:, 0]), np.interp(samples, lengths, path[:, 1])])


def tube(path: np.ndarray, size: int, radius, inner: float = 0.0, profile: str = "round"):
    """Chord length (px) through a tube of `radius` (px; scalar or one per path point) along `path` for
    every pixel, averaged over 2x2 sub-pixels; with `inner`, a hollow tube with that fraction as its
    lumen. Also the distance of each pixel centre to the path and the index of its nearest path point
    (-1 far from it)."""
    dense = _dense(path)
    if len(dense) < 2:
        dense = np.vstack([path[:1], path[:1] + 1e-3])
    radius = np.broadcast_to(np.interp(np.linspace(0, len(path) - 1, len(dense)), np.arange(len(path)),
                                       np.broadcast_to(np.asarray(radius, float), (len(path),))), (len(dense),))
    reach = int(np.ceil(radius.max())) + 2
    band = np.zeros((size, size), np.uint8)
    cv2.polylines(band, [np.rint(dense[::8]).astype(np.int32)], False, 1, 2 * reach + 1)
    rows, cols = np.nonzero(band)
    chord = np.zeros((size, size), np.float32)
    distance = np.full((size, size), np.inf, np.float32)
    nearest = np.full((size, size), -1, np.int64)
    if rows.size == 0:
        return chord, distance, nearest
    tree = cKDTree(dense)
    centres = np.column_stack([cols, rows]).astype(float)
    d, index = tree.query(centres)
    distance[rows, cols], nearest[rows, cols] = d, np.rint(index * (len(path) - 1) / (len(dense) - 1))
    total = np.zeros(len(centres))
    for offset in ((-0.25, -0.25), (0.25, -0.25), (-0.25, 0.25), (0.25, 0.25)):
        sub_d, sub_i = tree.query(centres + offset)
        r = radius[sub_i]
        if profile == "round":
            through = 2 * np.sqrt(np.maximum(r ** 2 - sub_d ** 2, 0))
            if inner:
                through -= 2 * np.sqrt(np.maximum((inner * r) ** 2 - sub_d ** 2, 0))
        elif profile == "flat":  # a flattened coil: nearly uniform thickness across
            through = 2 * r * 0.85 * (sub_d <= r)
        else:  # "soft": a blurred wire
            through = 2 * r * np.exp(-0.5 * (sub_d / (0.6 * r)) ** 2)
        total += through / 4
    chord[rows, cols] = total
    return chord, distance, nearest


def _wire_path(rng, size: int, valid: np.ndarray, from_edge: bool) -> tuple[np.ndarray, float]:
    """Insertion end first, tip last; a straight, angled or J tip; the length of the tip segment (px)."""
    inner = cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(size // 16, 1))
    candidates = np.argwhere(inner if inner.any() else np.ones_like(valid))
    tip = candidates[rng.integers(len(candidates))][::-1] + rng.uniform(-0.5, 0.5, 2)
    heading = rng.uniform(0, 2 * np.pi)
    straight = rng.uniform(0.01, 0.04) * size
    kind = rng.choice(["straight", "angled", "J"], p=[0.3, 0.4, 0.3])
    bend = {"straight": 0.0, "angled": rng.uniform(0.3, 1.0), "J": rng.uniform(1.8, 3.3)}[kind] * rng.choice([-1, 1])
    arc = rng.uniform(0.01, 0.04) * size
    points = [tip]
    angle = heading
    for distance in np.arange(1.0, straight + arc, 1.0):
        if distance > straight:
            angle += bend / arc
        points.append(points[-1] + np.array([np.cos(angle), np.sin(angle)]))
    hook = np.array(points)
    shaft = _smooth_path(rng, hook[-1], float(angle), 3.0 * size, curvature_scale=rng.uniform(0.0003, 0.004))
    path = np.vstack([hook, shaft[1:]])[::-1]
    inside = np.all((path > -0.05 * size) & (path < 1.05 * size), axis=1)
    outside_run = np.flatnonzero(~inside[::-1])
    start = len(path) - outside_run[0] if outside_run.size else 0
    path = path[start:]
    if not from_edge:  # the wire starts inside the field: keep its distal part
        keep = int(rng.uniform(0.15, 0.7) * size)
        path = path[-max(keep, len(hook) + 2):]
    return path, float(straight + arc) * rng.uniform(0.8, 2.5)


def _anatomy(rng, line_integral: np.ndarray, size: int) -> np.ndarray:
    """One pose's line integrals seen at a random zoom, turn, flip and shift, with a new intensity
    curve and texture."""
    source = line_integral.astype(np.float32)
    height, width = source.shape
    zoom = _log_uniform(rng, 0.9, 3.0) * size / width
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), float(rng.uniform(0, 360)), zoom)
    matrix[:, 2] += np.array([size / 2, size / 2]) - np.array([width / 2, height / 2]) \
        + rng.uniform(-0.3, 0.3, 2) * size
    if rng.random() < 0.5:
        source = source[:, ::-1].copy()
    warped = cv2.warpAffine(source, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    scaled = warped / max(float(np.percentile(warped, 99)), 1e-6)
    curved = np.clip(scaled, 0, None) ** rng.uniform(0.6, 1.6)
    attenuation = curved * rng.uniform(1.0, 4.0)
    low = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), size / rng.uniform(4, 12))
    attenuation += low / max(float(np.abs(low).max()), 1e-6) * rng.uniform(0, 0.5)
    if rng.random() < 0.5:  # lung-like mottle
        fine = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), rng.uniform(1.5, 5))
        attenuation += fine / max(float(fine.std()), 1e-6) * rng.uniform(0, 0.04)
    return np.maximum(attenuation, 0)


def _collimator(rng, size: int, blank_share: float) -> tuple[np.ndarray, str]:
    """Transmission of the collimator (1 inside the field) and what the frame shows outside it: 'none'
    (no collimator), 'zero' or 'grey' (a blank fill) or 'dim' (a dim, noisy image through the blades)."""
    kind = rng.choice(["none", "circle", "rectangle"], p=[0.25, 0.35, 0.4])
    if kind == "none":
        return np.ones((size, size), np.float32), "none"
    v, u = np.mgrid[0:size, 0:size].astype(np.float32)
    centre = (size - 1) / 2 + rng.normal(0, 0.05 * size, 2)
    if kind == "circle":
        signed = rng.uniform(0.4, 0.75) * size - np.hypot(u - centre[0], v - centre[1])
    else:
        angle = rng.uniform(-0.5, 0.5)
        along = (u - centre[0]) * np.cos(angle) + (v - centre[1]) * np.sin(angle)
        across = -(u - centre[0]) * np.sin(angle) + (v - centre[1]) * np.cos(angle)
        half = rng.uniform(0.3, 0.6, 2) * size
        signed = np.minimum(half[0] - np.abs(along), half[1] - np.abs(across))
    softness = rng.uniform(0.3, 0.02 * size)
    inside = 1 / (1 + np.exp(-signed / softness))
    draw = rng.random()
    if draw < blank_share:
        return inside.astype(np.float32), "zero"
    if draw < blank_share + 0.1:
        return inside.astype(np.float32), "grey"
    floor = rng.uniform(0.02, 0.3)
    return (floor + (1 - floor) * inside).astype(np.float32), "dim"


def _catheter(rng, size: int, wire: np.ndarray) -> np.ndarray:
    """A hollow tube 5-9 px wide over the wire's proximal part (or across the frame), marker bands."""
    if rng.random() < 0.7 and len(wire) > 20:
        end = int(rng.uniform(0.3, 0.85) * len(wire))
        path = wire[:end] + rng.normal(0, 1.0, 2)
    else:
        path = _smooth_path(rng, rng.uniform(0.1, 0.9, 2) * size, rng.uniform(0, 2 * np.pi), 1.5 * size,
                            rng.uniform(0.0005, 0.003))
    radius = rng.uniform(2.5, 4.5)
    chord, _, nearest = tube(path, size, radius, inner=rng.uniform(0.55, 0.8))
    layer = chord * rng.uniform(0.05, 0.2)
    for _ in range(int(rng.integers(0, 4))):  # radiopaque marker bands
        centre = int(rng.integers(0, len(path)))
        band, _, _ = tube(path[max(centre - 2, 0):centre + 3], size, radius)
        layer += band * rng.uniform(0.3, 0.8)
    return layer


def _thin_lead(rng, size: int) -> np.ndarray:
    """An ECG lead as thin as the wire, ending in an electrode with a snap."""
    electrode = rng.uniform(0.1, 0.9, 2) * size
    path = _smooth_path(rng, electrode, rng.uniform(0, 2 * np.pi), 2.0 * size, rng.uniform(0.0005, 0.005))
    chord, _, _ = tube(path, size, rng.uniform(0.7, 2.0))
    layer = chord * rng.uniform(0.05, 0.4)
    radius = rng.uniform(0.02, 0.05) * size
    cv2.circle(layer, tuple(int(v) for v in electrode), int(radius), float(rng.uniform(0.1, 0.5)), 2, cv2.LINE_AA)
    cv2.circle(layer, tuple(int(v) for v in electrode), max(int(radius * 0.3), 2), float(rng.uniform(0.5, 2.0)), -1,
               cv2.LINE_AA)
    return layer


def _pacemaker_lead(rng, size: int) -> np.ndarray:
    """A coiled lead 3-6 px wide (density ripples along it) with a dense tip electrode."""
    path = _smooth_path(rng, rng.uniform(0.2, 0.8, 2) * size, rng.uniform(0, 2 * np.pi), 1.5 * size,
                        rng.uniform(0.001, 0.006))
    chord, _, nearest = tube(path, size, rng.uniform(1.5, 3.0))
    ripple = 1 + 0.3 * np.sin(np.where(nearest >= 0, nearest, 0) * rng.uniform(1.0, 2.5))
    layer = chord * ripple * rng.uniform(0.1, 0.4)
    tip, _, _ = tube(path[:int(rng.integers(4, 12))], size, rng.uniform(2.5, 4.0))
    return layer + tip * rng.uniform(0.5, 1.2)


def _sternal_wires(rng, size: int) -> np.ndarray:
    """Twisted wire loops in a column (a closed sternotomy)."""
    layer = np.zeros((size, size), np.float32)
    centre = rng.uniform(0.2, 0.8, 2) * size
    angle = rng.uniform(0, np.pi)
    axis = np.array([np.cos(angle), np.sin(angle)])
    for k in range(int(rng.integers(2, 6))):
        middle = centre + axis * (k - 2) * rng.uniform(0.06, 0.1) * size
        axes = (int(rng.uniform(0.03, 0.08) * size), int(rng.uniform(0.01, 0.025) * size))
        cv2.ellipse(layer, tuple(int(v) for v in middle), axes, float(np.degrees(angle) + 90), 0, 360,
                    1.0, int(rng.integers(2, 4)), cv2.LINE_AA)
        cv2.circle(layer, tuple(int(v) for v in middle + axis * 0), int(rng.integers(2, 5)), 2.0, -1, cv2.LINE_AA)
    return layer * rng.uniform(0.5, 1.5)


def _table_edge(rng, size: int) -> np.ndarray:
    """A table or mattress edge: a straight step in attenuation, sometimes with a rail beside it."""
    v, u = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    signed = (u - rng.uniform(0.1, 0.9) * size) * np.cos(angle) + (v - rng.uniform(0.1, 0.9) * size) * np.sin(angle)
    layer = (1 / (1 + np.exp(-signed / rng.uniform(0.5, 3)))) * rng.uniform(0.1, 0.5)
    if rng.random() < 0.5:
        width = rng.uniform(3, 10)
        layer += (np.abs(signed - rng.uniform(5, 40)) < width) * rng.uniform(0.2, 0.8)
    return layer.astype(np.float32)


CONFOUNDERS = ((0.35, _catheter), (0.35, _thin_lead), (0.15, _pacemaker_lead), (0.1, _sternal_wires),
               (0.25, _table_edge), (0.25, _stent), (0.3, _fixation), (0.3, _vessels), (0.35, _ecg_lead))
TEXT = ("FLUORO", "LAO 30", "RAO 12", "CRAN 20", "CAUD 5", "DAP 12.3", "IMG 41", "ZOOM 2", "12:04:51", "R", "L",
        "7.5 fps", "kV 82  mA 4.1", "CINE", "LOW DOSE")


def _text(rng, image: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Burned-in annotations in the corners (white or black); returns the pixels they cover."""
    size = image.shape[0]
    covered = np.zeros(image.shape, np.uint8)
    for _ in range(int(rng.integers(0, 6))):
        scale = size / 512 * rng.uniform(0.4, 0.9)
        text = str(rng.choice(TEXT))
        (width, height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        corner = rng.integers(0, 4)
        x = int(rng.uniform(2, 0.15 * size)) if corner % 2 == 0 else int(size - width - rng.uniform(2, 0.15 * size))
        y = int(rng.uniform(height + 2, 0.2 * size)) if corner < 2 else int(size - rng.uniform(2, 0.2 * size))
        stamp = np.zeros_like(covered)
        cv2.putText(stamp, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 1, max(int(scale * 2), 1), cv2.LINE_AA)
        if (stamp.astype(bool) & keep).any():
            continue
        image[stamp > 0] = 255 if rng.random() < 0.7 else 0
        covered |= stamp
    return covered.astype(bool)


def _display(rng, measured: np.ndarray, counts: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """A monitor's grey levels (0..1, dark = dense): transfer curve, window/level, gamma, dynamic-range
    compression, then edge enhancement or blur."""
    transfer = rng.choice(["log", "sqrt", "linear"], p=[0.6, 0.25, 0.15])
    if transfer == "log":
        signal = measured  # log of the counts: the wire, fewer counts, is dark
    elif transfer == "sqrt":
        signal = np.sqrt(np.maximum(counts, 0))
    else:
        signal = counts.astype(np.float32)
    inside = signal[valid] if valid.any() else signal.ravel()
    low, high = np.percentile(inside, [rng.uniform(0, 4), rng.uniform(96, 100)])
    display = np.clip((signal - low) / max(high - low, 1e-6), 0, 1) ** rng.uniform(0.6, 1.6)
    if rng.random() < 0.4:  # dynamic-range compression: part of the low-frequency content removed
        smooth = cv2.GaussianBlur(display.astype(np.float32), (0, 0), display.shape[0] / rng.uniform(8, 30))
        display = display - rng.uniform(0.2, 0.7) * (smooth - smooth[valid].mean() if valid.any() else smooth.mean())
    choice = rng.random()
    if choice < 0.35:  # edge enhancement (unsharp mask)
        blurred = cv2.GaussianBlur(display.astype(np.float32), (0, 0), rng.uniform(1, 5))
        display = display + rng.uniform(0.3, 1.5) * (display - blurred)
    elif choice < 0.55:
        display = cv2.GaussianBlur(display.astype(np.float32), (0, 0), rng.uniform(0.5, 1.3))
    lo, hi = np.percentile(display[valid] if valid.any() else display, [0.5, 99.5])
    return np.clip((display - lo) / max(hi - lo, 1e-6), 0, 1)


class RandomisedFluoroscopy:
    """Frames of one randomised set; the anatomy of config.anatomy_poses synthetic-set poses (cached)."""

    def __init__(self, config: RandomisedSetConfig):
        self.config = config
        self.source = SyntheticFluoroscopy(SyntheticSetConfig(poses=config.anatomy_poses, seed=config.anatomy_seed))

    def frame(self, index: int) -> SyntheticFrame:
        c = self.config
        rng = np.random.default_rng([c.seed, 0x52, index])
        size = int(rng.integers(c.sizes[0] // 32, c.sizes[1] // 32 + 1)) * 32
        line_integral, _ = self.source.anatomy(int(rng.integers(c.anatomy_poses)))
        background = _anatomy(rng, line_integral, size)
        transmission, outside = _collimator(rng, size, c.blank_border)
        valid = transmission > 0.5

        path, tip_length = _wire_path(rng, size, valid, from_edge=rng.random() < 0.75)
        radius = np.full(len(path), rng.uniform(*c.wire_width_px) / 2)
        arc = np.r_[0, np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))]
        in_tip = arc >= arc[-1] - tip_length
        radius[in_tip] *= rng.uniform(1.0, 1.35)
        profile = str(rng.choice(["round", "flat", "soft"], p=[0.6, 0.2, 0.2]))
        chord, distance, nearest = tube(path, size, radius, profile=profile)
        density = np.where((nearest >= 0) & in_tip[np.clip(nearest, 0, len(path) - 1)], rng.uniform(1.2, 2.5), 1.0)
        wire = (chord * density).astype(np.float32)
        mask = (distance <= np.maximum(radius[np.clip(nearest, 0, len(path) - 1)], 0.5)) & (nearest >= 0) & valid

        confounders = np.zeros((size, size), np.float32)
        for probability, draw in CONFOUNDERS:
            while rng.random() < probability:
                layer = draw(rng, size, path) if draw is _catheter else draw(rng, size)
                confounders += cv2.resize(layer, (size, size)) if layer.shape != (size, size) else layer
                probability *= 0.4

        # Dose solved for the drawn contrast-to-noise of the wire (log domain, after the detector blur).
        blur = rng.uniform(0.4, 1.5)
        scale = 1.0 / max(float(np.percentile(wire[mask], 90)), 1e-6) if mask.any() else 1.0
        wire *= scale * rng.uniform(0.05, 0.6)  # peak line integral of the wire
        blurred_wire = cv2.GaussianBlur(wire, (0, 0), blur)
        # The contrast as metrics.wire_visibility measures it: the mask against a ring 2-6 px from it.
        from_wire = distance_transform_edt(~mask)
        ring = (from_wire > 2) & (from_wire <= 6)
        contrast = float(blurred_wire[mask].mean() - blurred_wire[ring].mean()) if mask.any() and ring.any() else 0.3
        noise_factor = min(1.0, 1 / (2 * np.sqrt(np.pi) * blur))
        attenuation = background + confounders
        local = float(np.median((transmission * np.exp(-attenuation))[mask])) if mask.any() else 0.3
        cnr = _log_uniform(rng, *c.cnr)
        photons = float(np.clip((cnr * noise_factor / max(contrast, 1e-4)) ** 2 / max(local, 1e-4), 30, 1e9))
        expected = photons * transmission * np.exp(-(attenuation + wire))
        expected += cv2.GaussianBlur(expected, (0, 0), size / 10) * rng.uniform(0, 0.3)  # scatter
        counts = cv2.GaussianBlur(rng.poisson(expected).astype(np.float32), (0, 0), blur)
        counts += rng.normal(0, rng.uniform(0, 0.02) * np.sqrt(photons) + 1e-6, counts.shape).astype(np.float32)
        measured = np.log(np.maximum(counts, 0.5) / photons)
        image = np.rint(255 * _display(rng, measured, counts, valid)).astype(np.uint8)
        if outside == "zero":
            image[valid & (image == 0)] = 1  # a blank border is the only exact 0, as in synthetic.py
            image[~valid] = 0
        elif outside == "grey":
            image[~valid] = int(rng.integers(1, 256))
        covered = _text(rng, image, mask)
        mask &= ~covered
        visible = (path >= 0).all(1) & (path <= size - 1).all(1)
        visible &= valid[np.clip(np.rint(path[:, 1]).astype(int), 0, size - 1),
                         np.clip(np.rint(path[:, 0]).astype(int), 0, size - 1)]
        return SyntheticFrame(image, mask.astype(np.uint8), path[visible], path[-1])


def write_folder(config: RandomisedSetConfig, folder: str | Path, first: int = 0, progress: bool = True) -> Path:
    """images/, masks/ (0/255), frames.jsonl and set.json, as synthetic.write_folder writes them."""
    from tqdm import tqdm

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    source = RandomisedFluoroscopy(config)
    with open(folder / "frames.jsonl", "a" if first else "w") as index_file:
        for index in tqdm(range(first, config.frames), desc=f"randomised seed {config.seed}", disable=not progress):
            write_frame(folder, index, source.frame(index), index_file)
    (folder / "set.json").write_text(json.dumps({"generator": "randomised", **dataclasses.asdict(config)}, indent=1))
    return folder


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Write a randomised synthetic X-ray guidewire set.")
    parser.add_argument("output")
    defaults = RandomisedSetConfig()
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--frames", type=int, default=defaults.frames)
    parser.add_argument("--anatomy-poses", type=int, default=defaults.anatomy_poses)
    parser.add_argument("--max-size", type=int, default=defaults.sizes[1])
    args = parser.parse_args(argv)
    config = RandomisedSetConfig(frames=args.frames, seed=args.seed, anatomy_poses=args.anatomy_poses,
                                 sizes=(defaults.sizes[0], args.max_size))
    print(write_folder(config, args.output))


if __name__ == "__main__":
    main()
