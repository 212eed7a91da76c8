"""Synthetic X-ray fluoroscopy frames with a guidewire and its ground truth, for validation only.

An independent design (it shares no code or model with the project's own wire renderer):

* anatomy: a procedural attenuation map (line integrals), chest / abdomen / limb: soft-tissue thickness fields,
  lungs, heart and diaphragm, a vertebral column with discs, endplates and pedicles, posterior and anterior ribs with
  cortical edges (distance-transform profiles), bowel gas, long bones;
* guidewire: a persistent random walk of control points through a cubic spline (straight / gently curved /
  curved), ended by a straight, angled or J tip built from circular arcs; a round cross-section whose chord length
  is integrated over 5x5 sub-pixels, with a denser, wider distal tip segment; the mask is the sub-pixel coverage
  > 1/2 inside the collimated field;
* confounders: catheters (hollow tubes, marker bands) along or across the wire, ECG leads with electrodes, snaps
  and clips, stents (zig-zag ring meshes), contrast-filled vessel trees, sternal wires and surgical clips, a table
  edge with a rail, burned-in text;
* imaging: Beer-Lambert primary x collimator transmission x vignetting, a scatter halo, quantum noise from the
  counts blurred with the detector PSF, white electronic noise; the dose is solved for a drawn contrast-to-noise
  ratio;
* display: log or square-root transfer, dynamic-range compression, percentile window/level, gamma, unsharp mask or
  blur, a soft shutter region that keeps a dim, noisy image, uint8.

``python -m guidewire.validation.fluoro_frames OUT_DIR --seed 9000 --count 200`` writes images/NNNN.png,
masks/NNNN.png (0/255) and frames.json.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.interpolate import splev, splprep
from scipy.spatial import cKDTree
from scipy.special import erf

__all__ = ["FluoroFrame", "fluoro_frame", "main", "write_set"]


@dataclass(frozen=True)
class FluoroFrame:
    image: np.ndarray  # (H, W) uint8, as a monitor shows it: dark wire on a brighter background
    mask: np.ndarray  # (H, W) bool, the guidewire only
    tip: tuple[float, float]  # (u, v) pixel of the distal tip
    centreline: np.ndarray  # (n, 2) float (u, v) from the insertion end (first point in the field) to the tip
    metadata: dict


# ----------------------------------------------------------------------------------------------------------------
# geometry helpers


def _resample(pts: np.ndarray, step: float) -> np.ndarray:
    pts = np.asarray(pts, float)
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    keep = np.concatenate([[True], seg > 1e-9])
    pts = pts[keep]
    if len(pts) < 2:
        return pts
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    m = max(math.ceil(s[-1] / step), 1)
    t = np.linspace(0.0, s[-1], m + 1)
    return np.stack([np.interp(t, s, pts[:, 0]), np.interp(t, s, pts[:, 1])], axis=1)


def _arclength(pts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])


def _spline(ctrl: np.ndarray, step: float) -> np.ndarray:
    """Cubic interpolating spline through control points, resampled at `step` pixels of arc."""
    ctrl = _resample(ctrl, 1e9) if len(ctrl) < 2 else ctrl
    seg = np.linalg.norm(np.diff(ctrl, axis=0), axis=1)
    ctrl = ctrl[np.concatenate([[True], seg > 1e-6])]
    if len(ctrl) < 2:
        return ctrl
    k = min(3, len(ctrl) - 1)
    tck, _ = splprep([ctrl[:, 0], ctrl[:, 1]], k=k, s=0)
    length = float(np.sum(np.linalg.norm(np.diff(ctrl, axis=0), axis=1)))
    u = np.linspace(0.0, 1.0, max(64, int(length * 2)))
    x, y = splev(u, tck)
    return _resample(np.stack([x, y], axis=1), step)


def _walk(rng, p0, heading: float, length: float, step: float, kappa: float) -> tuple[np.ndarray, float]:
    """Control points of a persistent random walk: heading changes ~ N(0, kappa) per step."""
    n = max(2, math.ceil(length / step) + 1)
    pts = [np.asarray(p0, float)]
    h = heading
    for _ in range(n):
        h += rng.normal(0.0, kappa)
        pts.append(pts[-1] + step * np.array([math.cos(h), math.sin(h)]))
    return np.array(pts), h


def _cut(pts: np.ndarray, length: float) -> np.ndarray:
    s = _arclength(pts)
    return pts[s <= length + 1e-9]


def _heading_at_end(pts: np.ndarray) -> float:
    d = pts[-1] - pts[max(0, len(pts) - 20)]
    return math.atan2(d[1], d[0])


def _arc(p, heading: float, radius: float, angle: float, straight: float, step: float) -> np.ndarray:
    """Points continuing from p: a circular arc turning by `angle` (signed) with `radius`, then a straight run."""
    out = []
    n = int(abs(angle) * radius / step)
    h = heading
    cur = np.asarray(p, float)
    dh = math.copysign(step / radius, angle) if radius > 0 else 0.0
    for _ in range(n):
        h += dh
        cur = cur + step * np.array([math.cos(h), math.sin(h)])
        out.append(cur)
    for _ in range(int(straight / step)):
        cur = cur + step * np.array([math.cos(h), math.sin(h)])
        out.append(cur)
    return np.array(out).reshape(-1, 2)


def _normals(pts: np.ndarray) -> np.ndarray:
    t = np.gradient(pts, axis=0)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-9)
    return np.stack([-t[:, 1], t[:, 0]], axis=1)


def _tube(n: int, pts: np.ndarray, radius, sub: int = 3, inner=None, weight=None):
    """Partial-volume rendering of a round tube along a dense polyline (spacing << 1 px).

    Returns (rows, cols, chord, cover): for each pixel of the band, the chord length through the tube (outer minus
    inner cylinder, times the per-point weight) averaged over sub x sub sub-pixels, and the covered area fraction.
    """
    pts = np.asarray(pts, float).reshape(-1, 2)
    radius = np.broadcast_to(np.asarray(radius, float), (len(pts),))
    rmax = float(radius.max())
    pad = rmax + 1.5
    x0 = max(math.floor(pts[:, 0].min() - pad), 0)
    x1 = min(math.ceil(pts[:, 0].max() + pad), n - 1)
    y0 = max(math.floor(pts[:, 1].min() - pad), 0)
    y1 = min(math.ceil(pts[:, 1].max() + pad), n - 1)
    empty = (np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros(0))
    if x1 < x0 or y1 < y0 or len(pts) == 0:
        return empty
    canvas = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    poly = np.round((pts - [x0, y0]) * 4).astype(np.int32).reshape(-1, 1, 2)
    if len(pts) == 1:
        cv2.circle(canvas, tuple(int(v) for v in poly[0, 0]), math.ceil(pad * 4), 1, -1, shift=2)
    else:
        cv2.polylines(canvas, [poly], False, 1, thickness=2 * math.ceil(pad) + 1, shift=2)
    rows, cols = np.nonzero(canvas)
    if len(rows) == 0:
        return empty
    rows = rows + y0
    cols = cols + x0
    off = (np.arange(sub) + 0.5) / sub - 0.5
    ox, oy = np.meshgrid(off, off)
    q = np.stack([(cols[:, None] + ox.ravel()).ravel(), (rows[:, None] + oy.ravel()).ravel()], axis=1)
    d, idx = cKDTree(pts).query(q, distance_upper_bound=pad + 1.0)
    ok = np.isfinite(d)
    idx = np.where(ok, idx, 0)
    d = np.where(ok, d, 1e9)
    r = radius[idx]
    chord = 2.0 * np.sqrt(np.clip(r * r - d * d, 0.0, None))
    if inner is not None:
        ri = np.broadcast_to(np.asarray(inner, float), (len(pts),))[idx]
        chord -= 2.0 * np.sqrt(np.clip(ri * ri - d * d, 0.0, None))
    if weight is not None:
        chord *= np.broadcast_to(np.asarray(weight, float), (len(pts),))[idx]
    cover = (d < r).astype(float)
    k = sub * sub
    return rows, cols, chord.reshape(-1, k).mean(axis=1), cover.reshape(-1, k).mean(axis=1)


def _add(layer: np.ndarray, tube, mu: float) -> None:
    rows, cols, chord, _ = tube
    layer[rows, cols] += mu * chord


def _chord(r: float, d: np.ndarray) -> np.ndarray:
    d = np.minimum(d, 1e4)  # distanceTransform gives ~FLT_MAX where nothing was drawn
    return 2.0 * np.sqrt(np.clip(r * r - d * d, 0.0, None))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0.05:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def _blur_big(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a large sigma at 1/8 resolution."""
    n = img.shape[0]
    f = 8
    small = cv2.resize(img, (n // f, n // f), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), max(sigma / f, 0.5), borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (n, n), interpolation=cv2.INTER_LINEAR)


def _lowfreq(rng, n: int, cells: int, amp: float) -> np.ndarray:
    g = rng.normal(size=(cells + 2, cells + 2)).astype(np.float32)
    f = cv2.resize(g, (n, n), interpolation=cv2.INTER_CUBIC)
    f = _blur(f, n / (cells + 2) / 2.0)
    f -= f.mean()
    return (amp * f / max(float(f.std()), 1e-6)).astype(np.float32)


def _edge_start(rng, n: int, out: float = 6.0) -> tuple[np.ndarray, float]:
    side = int(rng.integers(4))
    t = rng.uniform(0.05, 0.95) * n
    p, h = {
        0: ((t, -out), math.pi / 2),
        1: ((t, n - 1 + out), -math.pi / 2),
        2: ((-out, t), 0.0),
        3: ((n - 1 + out, t), math.pi),
    }[side]
    return np.array(p, float), h + rng.normal(0.0, 0.35)


# ----------------------------------------------------------------------------------------------------------------
# collimator


def _collimator(rng, n: int) -> dict:
    s = n / 512
    kind = str(rng.choice(["none", "circle", "rect"], p=[0.3, 0.35, 0.35]))
    col = {
        "kind": kind,
        "centre": [float(v) for v in n / 2 + rng.normal(0.0, 0.04 * n, 2)],
        "edge_sigma_px": float(rng.uniform(1.5, 7.0) * s),
        "transmission_outside": float(rng.uniform(0.03, 0.3)),
        "display_level_outside": float(rng.uniform(0.04, 0.45)),
        "display_gain_outside": float(rng.uniform(0.2, 0.8)),
    }
    if kind == "circle":
        col["radius_px"] = float(rng.uniform(0.42, 0.62) * n)
    elif kind == "rect":
        col["half_widths_px"] = [float(v) for v in rng.uniform(0.3, 0.53, 2) * n]
        col["angle_rad"] = float(rng.uniform(-0.4, 0.4))
    return col


def _col_sd(col: dict, x, y) -> np.ndarray:
    """Signed distance to the collimator edge, positive inside the field."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if col["kind"] == "none":
        return np.full(np.broadcast(x, y).shape, 1e6)
    cx, cy = col["centre"]
    if col["kind"] == "circle":
        return col["radius_px"] - np.hypot(x - cx, y - cy)
    a = col["angle_rad"]
    p = (x - cx) * math.cos(a) + (y - cy) * math.sin(a)
    q = -(x - cx) * math.sin(a) + (y - cy) * math.cos(a)
    hw, hh = col["half_widths_px"]
    return np.minimum(hw - np.abs(p), hh - np.abs(q))


def _field_sd(col: dict, n: int, pts: np.ndarray) -> np.ndarray:
    x, y = pts[:, 0], pts[:, 1]
    img = np.minimum.reduce([x + 0.5, n - 0.5 - x, y + 0.5, n - 0.5 - y])
    return np.minimum(img, _col_sd(col, x, y))


# ----------------------------------------------------------------------------------------------------------------
# anatomy


def _anatomy(rng, n: int, xx: np.ndarray, yy: np.ndarray) -> tuple[np.ndarray, dict]:
    s = n / 512
    zoom = float(rng.uniform(0.75, 1.5))
    z = s * zoom
    kind = str(rng.choice(["chest", "abdomen", "limb"], p=[0.6, 0.25, 0.15]))
    info: dict = {"kind": kind, "zoom": zoom}
    A = np.full((n, n), rng.uniform(1.6, 3.0), np.float32)
    A += _lowfreq(rng, n, 3, rng.uniform(0.05, 0.2))
    g = rng.normal(0.0, 0.35, 2)
    A += (g[0] * (xx / n - 0.5) + g[1] * (yy / n - 0.5)).astype(np.float32)

    if kind in ("chest", "abdomen"):
        xs = n * rng.uniform(0.2, 0.8)
        ang = rng.normal(0.0, 0.08)
        ca, sa = math.cos(ang), math.sin(ang)
        p = (xx - xs) * ca - (yy - n / 2) * sa
        q = (xx - xs) * sa + (yy - n / 2) * ca
        half = rng.uniform(32, 52) * z
        a_s = rng.uniform(0.18, 0.45) * (1.3 if kind == "abdomen" else 1.0)
        period = rng.uniform(44, 62) * z
        m = ((q + rng.uniform(0, period)) % period) / period
        dm = np.minimum(m, 1 - m)
        disc = np.exp(-((dm / 0.07) ** 2))
        endplate = np.exp(-(((dm - 0.1) / 0.03) ** 2))
        body = np.sqrt(np.clip(1 - (p / half) ** 2, 0, None))
        wall = np.exp(-(((np.abs(p) - 0.93 * half) / (2.5 * z)) ** 2))
        spine = a_s * (body * (1 - 0.22 * disc + 0.12 * endplate) + 0.12 * wall * (1 - disc))
        dq = (m - 0.5) * period
        for side in (-1, 1):
            rr = np.sqrt(((p - side * 0.58 * half) / (0.2 * half)) ** 2 + (dq / (0.22 * period)) ** 2)
            spine += 0.12 * a_s * np.exp(-(((rr - 1) / 0.45) ** 2))
        rr = np.sqrt((p / (0.12 * half)) ** 2 + ((dq + 0.15 * period) / (0.2 * period)) ** 2)
        spine += 0.12 * a_s * np.exp(-(rr**2))
        A += _blur(spine.astype(np.float32), 1.5 * z)
        info["spine_x"] = float(xs)

        def to_img(pp, qq):
            return np.stack([xs + pp * ca + qq * sa, n / 2 - pp * sa + qq * ca], axis=1)

        nrib = int(rng.integers(8, 12)) if kind == "chest" else int(rng.integers(0, 4))
        if nrib:
            post = np.full((n, n), 255, np.uint8)
            ant = np.full((n, n), 255, np.uint8)
            spacing = rng.uniform(34, 50) * z
            q0 = (-0.9 * n if kind == "chest" else 0.1 * n) + rng.uniform(-0.2, 0.2) * n
            L = rng.uniform(150, 250) * z
            for side in (-1, 1):
                for k in range(nrib):
                    t = np.linspace(0, L, 80)
                    qq = q0 + k * spacing * (1 + 0.03 * k) - 0.35 * t + 1.1 * t**2 / L
                    pp = side * (half * 1.05 + t)
                    pts = to_img(pp, qq)
                    cv2.polylines(post, [np.round(pts * 4).astype(np.int32).reshape(-1, 1, 2)], False, 0, 1,
                                  shift=2)
                    t2 = np.linspace(0, 0.75 * L, 60)
                    pts2 = to_img(side * (half * 1.05 + L - t2), qq[-1] + 0.1 * L + 0.45 * t2)
                    cv2.polylines(ant, [np.round(pts2 * 4).astype(np.int32).reshape(-1, 1, 2)], False, 0, 1,
                                  shift=2)
            r = rng.uniform(6.5, 10.5) * z
            peak = rng.uniform(0.05, 0.16)
            d = cv2.distanceTransform(post, cv2.DIST_L2, 5)
            A += (peak / (2 * r) * (_chord(r, d) - 0.75 * _chord(0.72 * r, d))).astype(np.float32)
            d = cv2.distanceTransform(ant, cv2.DIST_L2, 5)
            A += (0.5 * peak / (2 * r) * _chord(0.9 * r, d)).astype(np.float32)
            info["ribs_per_side"] = nrib

        if kind == "chest":
            Lr = rng.uniform(150, 230) * z
            qd = rng.uniform(-0.1, 0.55) * n
            below = _sigmoid((q - (qd + 0.0022 / z * (p - rng.normal(0, 30 * z)) ** 2)) / (5 * z))
            lung = np.zeros((n, n), np.float32)
            for side in (-1, 1):
                pc = side * (half + 0.55 * Lr)
                e = 1 - ((p - pc) / (0.6 * Lr)) ** 2 - ((q - qd + 0.5 * Lr) / (1.4 * Lr)) ** 2
                lung = np.maximum(lung, _sigmoid(e * 5))
            lung *= 1 - below
            dl = rng.uniform(0.45, 1.1)
            A -= (dl * lung).astype(np.float32)
            A += (lung * _lowfreq(rng, n, 40, rng.uniform(0.02, 0.06))).astype(np.float32)
            ph = rng.uniform(0.1, 0.9) * half * rng.choice([-1, 1])
            eh = 1 - ((p - ph - 0.4 * Lr) / (0.75 * Lr)) ** 2 - ((q - qd + 0.2 * Lr) / (0.7 * Lr)) ** 2
            A += (rng.uniform(0.25, 0.6) * _sigmoid(eh * 4)).astype(np.float32)
            A += (rng.uniform(0.4, 0.9) * below).astype(np.float32)
            info["lung_drop"] = float(dl)
        else:
            ngas = int(rng.integers(6, 22))
            for _ in range(ngas):
                cx, cy = rng.uniform(-0.05, 1.05, 2) * n
                ax, ay = rng.uniform(8, 35, 2) * z
                e = 1 - ((xx - cx) / ax) ** 2 - ((yy - cy) / ay) ** 2
                A -= (rng.uniform(0.05, 0.2) * _sigmoid(e * 2.5 + _lowfreq(rng, n, 12, 1.5))).astype(np.float32)
            info["gas_pockets"] = ngas
    else:  # limb
        ang = rng.normal(0.0, 0.25)
        xc = n * rng.uniform(0.3, 0.7)
        ca, sa = math.cos(ang), math.sin(ang)
        p = (xx - xc) * ca - (yy - n / 2) * sa
        hw = rng.uniform(170, 320) * z
        A *= 0.35
        A += (rng.uniform(1.2, 2.2) * np.sqrt(np.clip(1 - (p / hw) ** 2, 0, None))).astype(np.float32)
        nb = int(rng.integers(1, 3))
        for b in range(nb):
            pb = p - rng.normal(0, 0.25 * hw) - 0.1 * (yy - n / 2) * rng.normal(0, 0.3)
            r = rng.uniform(22, 42) * z * (0.6 if b else 1.0)
            d = np.abs(pb)
            A += (rng.uniform(0.5, 1.0) / (2 * r) * (_chord(r, d) - 0.85 * _chord(0.68 * r, d))).astype(np.float32)
        info["bones"] = nb
    A += _lowfreq(rng, n, 24, rng.uniform(0.01, 0.035))
    return np.maximum(A, 0.05).astype(np.float32), info


# ----------------------------------------------------------------------------------------------------------------
# the guidewire


def _wire(rng, n: int, col: dict) -> dict:
    s = n / 512
    step = 0.1
    shape = str(rng.choice(["straight", "gentle", "curved"], p=[0.25, 0.45, 0.3]))
    kappa = {"straight": 0.03, "gentle": 0.17, "curved": 0.4}[shape]
    tip_shape = str(rng.choice(["straight", "angled", "J"], p=[0.35, 0.35, 0.3]))
    from_edge = bool(rng.random() < 0.7)
    width = float(np.clip(1.5 + 2.5 * rng.beta(1.3, 1.8), 1.5, 4.0) * s)
    tip_width = float(min(width * rng.uniform(1.1, 1.35), 4.6 * s))
    tip_len = float(rng.uniform(10, 30) * s)
    tip_density = float(rng.uniform(1.4, 2.3))
    bend = {"straight": (0.0, 1.0, 0.0)}
    bend["angled"] = (rng.uniform(0.35, 1.05), rng.uniform(6, 15) * s, rng.uniform(4, 22) * s)
    bend["J"] = (rng.uniform(2.1, 3.5), rng.uniform(3, 8) * s, rng.uniform(1, 8) * s)
    angle, radius, straight = bend[tip_shape]
    angle *= rng.choice([-1.0, 1.0])
    margin = 3.0 + tip_width
    pts = None
    for attempt in range(80):
        shrink = 0.985**attempt
        if from_edge:
            for _ in range(50):
                c0 = rng.uniform(0.2, 0.8, 2) * n
                if _field_sd(col, n, c0[None])[0] > 60 * s:
                    break
            a = rng.uniform(0, 2 * math.pi)
            d = np.array([math.cos(a), math.sin(a)])
            ray = c0 + np.arange(0, 1.5 * n, 2.0)[:, None] * d
            k = int(np.argmax(_field_sd(col, n, ray) < 0))
            p0 = ray[k] + 6.0 * d
            heading = a + math.pi + rng.normal(0.0, 0.35)
            length = rng.uniform(180, 650) * s * shrink
        else:
            for _ in range(50):
                p0 = rng.uniform(0.1, 0.9, 2) * n
                if _field_sd(col, n, p0[None])[0] > 40 * s:
                    break
            heading = rng.uniform(0, 2 * math.pi)
            length = rng.uniform(100, 420) * s * shrink
        tip_extra = abs(angle) * radius + straight
        body_len = max(length - tip_extra, 30 * s)
        ctrl, _ = _walk(rng, p0, heading, body_len + 60 * s, rng.uniform(45, 110) * s, kappa)
        body = _cut(_spline(ctrl, step), body_len)
        tipseg = _arc(body[-1], _heading_at_end(body), radius, angle, straight, step)
        cand = np.concatenate([body, tipseg]) if len(tipseg) else body
        sd = _field_sd(col, n, cand)
        inside = sd > margin
        first = int(np.argmax(inside))
        if not inside[first] or not inside[first:].all():
            continue
        if from_edge and first * step > 40 * s:
            continue
        if not from_edge and first != 0:
            continue
        pts = cand
        break
    if pts is None:  # a short straight wire through the middle of the field
        c0 = np.array(col["centre"]) if col["kind"] != "none" else np.array([n / 2, n / 2])
        pts = _resample(np.array([c0 - [60 * s, 0], c0 + [60 * s, 0]]), step)
        from_edge = False
        shape = tip_shape = "straight"
    arc = _arclength(pts)
    total = float(arc[-1])
    ramp = np.clip((arc - (total - tip_len) + 1.5) / 3.0, 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)
    return {
        "pts": pts,
        "radius": 0.5 * (width + (tip_width - width) * ramp),
        "weight": 1.0 + (tip_density - 1.0) * ramp,
        "info": {
            "width_px": width,
            "tip_width_px": tip_width,
            "tip_dense_length_px": tip_len,
            "tip_density_ratio": tip_density,
            "shape": shape,
            "tip_shape": tip_shape,
            "tip_bend_rad": float(angle),
            "start": "edge" if from_edge else "inside",
            "length_px": total,
        },
    }


# ----------------------------------------------------------------------------------------------------------------
# confounders


def _random_path(rng, n, length, kappa, start=None, heading=None, toward=None, step=0.25):
    s = n / 512
    if start is None:
        start, heading = _edge_start(rng, n)
    if toward is not None:
        heading = math.atan2(toward[1] - start[1], toward[0] - start[0]) + rng.normal(0, 0.15)
    ctrl, _ = _walk(rng, start, heading, length + 60 * s, rng.uniform(50, 110) * s, kappa)
    return _cut(_spline(ctrl, step), length)


def _catheters(rng, n, layer, wire, info):
    s = n / 512
    items = []
    for _ in range(int(rng.choice([1, 1, 1, 2]))):
        ro = rng.uniform(2.5, 4.5) * s
        wall = rng.uniform(0.9, 1.7) * s
        wpts = wire["pts"][::2]
        along = bool(rng.random() < 0.55) and info["start"] == "edge" and not items
        if along:
            arc = _arclength(wpts)
            end = rng.uniform(0.35, 0.8) * arc[-1]
            sel = wpts[arc <= end]
            room = max(ro - wall - wire["info"]["width_px"] / 2, 0.0)
            off = room * np.sin(2 * math.pi * _arclength(sel) / rng.uniform(80, 200) + rng.uniform(0, 6.3))
            pts = _resample(sel + _normals(sel) * off[:, None], 0.25)
        else:
            target = wire["pts"][int(rng.integers(len(wire["pts"])))]
            pts = _random_path(rng, n, rng.uniform(250, 750) * s, rng.uniform(0.1, 0.3), toward=target)
            if rng.random() < 0.2:  # pigtail
                curl = _arc(pts[-1], _heading_at_end(pts), rng.uniform(7, 14) * s,
                            rng.choice([-1, 1]) * rng.uniform(4.5, 5.8), 0.0, 0.25)
                pts = np.concatenate([pts, curl])
        arc = _arclength(pts)
        taper = np.clip((arc[-1] - arc) / (6 * s), 0.0, 1.0)
        r_out = ro * (0.7 + 0.3 * taper)
        r_in = np.maximum(r_out - wall, 0.2)
        mu = rng.uniform(0.035, 0.11)
        _add(layer, _tube(n, pts, r_out, sub=3, inner=r_in), mu)
        bands = 0
        if rng.random() < 0.45:
            bands = int(rng.integers(1, 5))
            gap = rng.uniform(8, 20) * s
            for b in range(bands):
                pos = arc[-1] - 2 * s - b * gap
                seg = pts[(arc > pos - rng.uniform(1, 2) * s) & (arc < pos + rng.uniform(1, 2) * s)]
                if len(seg):
                    _add(layer, _tube(n, seg, ro * 0.95, sub=3), rng.uniform(0.12, 0.3))
        items.append({"mode": "along_wire" if along else "crossing", "outer_width_px": float(2 * ro),
                      "wall_px": float(wall), "marker_bands": bands})
    return items


def _ecg_leads(rng, n, layer):
    s = n / 512
    items = []
    for _ in range(int(rng.integers(1, 4))):
        c = rng.uniform(-0.05, 1.05, 2) * n
        pad_r = rng.uniform(12, 24) * s
        rows, cols, _, cover = _tube(n, c[None], pad_r, sub=2)
        layer[rows, cols] += rng.uniform(0.02, 0.06) * cover
        _add(layer, _tube(n, c[None], rng.uniform(2.5, 5) * s, sub=3), rng.uniform(0.06, 0.2))
        ring = _arc(c + [rng.uniform(5, 7) * s, 0], math.pi / 2, rng.uniform(5, 7) * s, 2 * math.pi, 0, 0.25)
        _add(layer, _tube(n, ring, rng.uniform(0.6, 1.0) * s, sub=3), rng.uniform(0.1, 0.3))
        r = rng.uniform(0.6, 1.6) * s
        pts = _random_path(rng, n, rng.uniform(200, 800) * s, rng.uniform(0.12, 0.35), start=c,
                           heading=rng.uniform(0, 2 * math.pi))
        _add(layer, _tube(n, pts, r, sub=3), rng.uniform(0.1, 0.5) / (2 * r))
        clip = bool(rng.random() < 0.5)
        if clip:
            seg = _cut(pts, rng.uniform(8, 16) * s)
            _add(layer, _tube(n, seg, rng.uniform(2.5, 4) * s, sub=3), rng.uniform(0.04, 0.1))
        items.append({"lead_width_px": float(2 * r), "electrode_centre": [float(v) for v in c], "clip": clip})
    return items


def _stent(rng, n, layer, wire):
    s = n / 512
    crimped = bool(rng.random() < 0.3)
    R = (rng.uniform(2.5, 4.0) if crimped else rng.uniform(5, 12)) * s
    length = rng.uniform(30, 80) * s
    on_wire = bool(rng.random() < 0.6) and wire["info"]["length_px"] > length + 40 * s
    if on_wire:
        arc = _arclength(wire["pts"])
        a0 = rng.uniform(0.15, 0.95) * (arc[-1] - length - 20 * s)
        axis = wire["pts"][(arc >= a0) & (arc <= a0 + length)]
    else:
        start = rng.uniform(0.15, 0.85, 2) * n
        axis = _random_path(rng, n, length, 0.05, start=start, heading=rng.uniform(0, 2 * math.pi))
    axis = _resample(axis, 0.25)
    arc = _arclength(axis)
    nrm = _normals(axis)
    spacing = rng.uniform(5, 9) * s
    crowns = int(rng.integers(6, 11))
    phi = np.linspace(0, 2 * math.pi, 400)
    tri = 2 * np.abs((crowns * phi / (2 * math.pi)) % 1 - 0.5)
    struts = []
    for s0 in np.arange(0.0, arc[-1] - 0.7 * spacing, spacing):
        sa = s0 + 0.7 * spacing * tri
        i = np.clip(np.searchsorted(arc, sa), 0, len(axis) - 1)
        struts.append(axis[i] + nrm[i] * (R * np.cos(phi))[:, None])
    pts = _resample(np.concatenate(struts), 0.25) if struts else axis
    # _resample joins the rings with straight connectors, as the links of a real stent do
    r = rng.uniform(0.35, 0.6) * s
    _add(layer, _tube(n, pts, r, sub=3), rng.uniform(0.2, 0.5) / (2 * r))
    if crimped:
        for e in (axis[:8], axis[-8:]):
            _add(layer, _tube(n, e, rng.uniform(1.5, 2.2) * s, sub=3), rng.uniform(0.15, 0.3))
    return {"on_wire": on_wire, "crimped": crimped, "diameter_px": float(2 * R), "length_px": float(arc[-1])}


def _vessels(rng, n, layer, wire):
    s = n / 512
    vessel = np.zeros_like(layer)
    mu = rng.uniform(0.025, 0.08)
    r0 = rng.uniform(4, 10) * s
    follow = bool(rng.random() < 0.5)
    if follow:
        trunk = _resample(_spline(wire["pts"][::200], 0.25), 0.25) if len(wire["pts"]) > 800 else wire["pts"][::2]
    else:
        trunk = _random_path(rng, n, rng.uniform(250, 600) * s, rng.uniform(0.1, 0.3))
    segs = [(trunk, r0, 0)]
    count = 0
    while segs and count < 14:
        pts, r, depth = segs.pop(0)
        count += 1
        arc = _arclength(pts)
        rad = r * (1 - 0.45 * arc / max(arc[-1], 1.0))
        rows, cols, chord, _ = _tube(n, pts, rad, sub=2)
        np.maximum.at(vessel, (rows, cols), mu * chord)
        if depth < 3 and r > 1.2 * s:
            for _ in range(int(rng.integers(1, 4))):
                i = int(rng.uniform(0.15, 0.9) * (len(pts) - 1))
                h = math.atan2(*(pts[min(i + 4, len(pts) - 1)] - pts[max(i - 4, 0)])[::-1])
                h += rng.choice([-1, 1]) * rng.uniform(0.4, 1.2)
                child = _random_path(rng, n, rng.uniform(40, 200) * s * (0.8**depth), rng.uniform(0.1, 0.35),
                                     start=pts[i], heading=h)
                segs.append((child, rad[i] * rng.uniform(0.5, 0.8), depth + 1))
    layer += vessel
    return {"follows_wire": follow, "trunk_width_px": float(2 * r0), "segments": count}


def _sternal_and_clips(rng, n, layer):
    s = n / 512
    out = {"sternal_wires": 0, "clips": 0}
    if rng.random() < 0.6:
        x = rng.uniform(0.25, 0.75) * n
        y = rng.uniform(0.0, 0.4) * n
        gap = rng.uniform(25, 45) * s
        for k in range(int(rng.integers(2, 6))):
            c = np.array([x + rng.normal(0, 4) * s, y + k * gap])
            a, b = rng.uniform(7, 15) * s, rng.uniform(3, 7) * s
            t = np.linspace(0, 2 * math.pi, 200)
            loop = np.stack([c[0] + a * np.cos(t), c[1] + b * np.sin(t)], axis=1)
            tw = np.linspace(0, rng.uniform(7, 14) * s, 60)
            twist = np.stack([c[0] + a + tw, c[1] + 1.5 * s * np.sin(tw * 1.3 / s)], axis=1)
            for part in (loop, twist):
                r = rng.uniform(1.0, 1.8) * s
                _add(layer, _tube(n, _resample(part, 0.25), r, sub=3), rng.uniform(0.7, 1.5) / (2 * r))
            out["sternal_wires"] += 1
    if rng.random() < 0.7:
        for _ in range(int(rng.integers(1, 8))):
            c = rng.uniform(0.1, 0.9, 2) * n
            h = rng.uniform(0, 2 * math.pi)
            op = rng.uniform(0.15, 0.6)
            ln = rng.uniform(8, 18) * s
            r = rng.uniform(1.2, 2.3) * s
            for sgn in (-1, 1):
                e = c + ln * np.array([math.cos(h + sgn * op / 2), math.sin(h + sgn * op / 2)])
                _add(layer, _tube(n, _resample(np.array([c, e]), 0.25), r, sub=3), rng.uniform(0.6, 1.3) / (2 * r))
            out["clips"] += 1
    return out


def _table_edge(rng, n, layer, xx, yy):
    s = n / 512
    th = rng.uniform(0, 2 * math.pi)
    c = rng.uniform(0.1, 0.9, 2) * n
    sd = (xx - c[0]) * math.cos(th) + (yy - c[1]) * math.sin(th)
    step = rng.uniform(0.06, 0.25)
    rail_off, rail_w = rng.uniform(0, 25) * s, rng.uniform(6, 20) * s
    rail = _sigmoid((sd - rail_off) / 0.5) - _sigmoid((sd - rail_off - rail_w) / 0.5)
    layer += (step * _sigmoid(sd / 0.6) + rng.uniform(0.1, 0.4) * rail).astype(np.float32)
    return {"angle_rad": float(th), "step": float(step), "rail_width_px": float(rail_w)}


def _confounders(rng, n, wire, xx, yy):
    layer = np.zeros((n, n), np.float32)
    out: dict = {}
    if rng.random() < 0.5:
        out["catheter"] = _catheters(rng, n, layer, wire, wire["info"])
    if rng.random() < 0.45:
        out["ecg_lead"] = _ecg_leads(rng, n, layer)
    if rng.random() < 0.22:
        out["stent"] = _stent(rng, n, layer, wire)
    if rng.random() < 0.3:
        out["vessel_tree"] = _vessels(rng, n, layer, wire)
    if rng.random() < 0.35:
        sc = _sternal_and_clips(rng, n, layer)
        if sc["sternal_wires"]:
            out["sternal_wire"] = sc["sternal_wires"]
        if sc["clips"]:
            out["clip"] = sc["clips"]
    if rng.random() < 0.3:
        out["table_edge"] = _table_edge(rng, n, layer, xx, yy)
    return layer, out


# ----------------------------------------------------------------------------------------------------------------
# display processing and text


def _display_params(rng, n: int) -> dict:
    s = n / 512
    enh = str(rng.choice(["unsharp", "blur", "none"], p=[0.45, 0.25, 0.3]))
    return {
        "transfer": str(rng.choice(["log", "sqrt"], p=[0.7, 0.3])),
        "drc": float(rng.uniform(0.2, 0.65) if rng.random() < 0.6 else 0.0),
        "drc_sigma_px": float(rng.uniform(15, 50) * s),
        "window_low_pct": float(rng.uniform(0.2, 3.0)),
        "window_high_pct": float(rng.uniform(97.0, 99.9)),
        "out_low": float(rng.uniform(0.0, 0.12)),
        "out_high": float(rng.uniform(0.85, 1.0)),
        "gamma": float(rng.uniform(0.7, 1.45)),
        "enhancement": enh,
        "unsharp_amount": float(rng.uniform(0.3, 1.5)) if enh == "unsharp" else 0.0,
        "unsharp_sigma_px": float(rng.uniform(1.2, 4.0) * s) if enh == "unsharp" else 0.0,
        "blur_sigma_px": float(rng.uniform(0.5, 1.1) * s) if enh == "blur" else 0.0,
    }


def _display(D: np.ndarray, prm: dict, col: dict, F: np.ndarray, cal: dict | None = None) -> tuple[np.ndarray, dict]:
    D = np.maximum(D, 1e-3)
    V = np.log(D) if prm["transfer"] == "log" else np.sqrt(D)
    ref = cal["drc_mean"] if cal else float(V[F > 0.5].mean()) if (F > 0.5).any() else float(V.mean())
    if prm["drc"] > 0:
        V = V - prm["drc"] * (_blur_big(V, prm["drc_sigma_px"]) - ref)
    if cal is None:
        inside = V[F > 0.95]
        if inside.size < 100:
            inside = V.ravel()
        lo, hi = np.percentile(inside, [prm["window_low_pct"], prm["window_high_pct"]])
        outside = V[F < 0.05]
        cal = {"lo": float(lo), "hi": float(max(hi, lo + 1e-3)),
               "out_ref": float(np.median(outside)) if outside.size else float(lo), "drc_mean": ref}
    span = cal["hi"] - cal["lo"]
    W = prm["out_low"] + (prm["out_high"] - prm["out_low"]) * (V - cal["lo"]) / span
    W = np.clip(W, 0.0, 1.0) ** prm["gamma"]
    if prm["enhancement"] == "unsharp":
        W = W + prm["unsharp_amount"] * (W - _blur(W, prm["unsharp_sigma_px"]))
    elif prm["enhancement"] == "blur":
        W = _blur(W, prm["blur_sigma_px"])
    if col["kind"] != "none":
        shut = col["display_level_outside"] + col["display_gain_outside"] * (V - cal["out_ref"]) / span
        W = F * W + (1 - F) * shut
    return np.clip(W, 0.0, 1.0).astype(np.float32), cal


_TEXT = ["LAO {a}", "RAO {a}", "CRAN {b}", "CAUD {b}", "{fps} fps", "FL {f:.1f} mGy", "{kv} kV {ma:.1f} mA",
         "ZOOM {z}", "{d:02d}/{m:02d}/20{y:02d}", "{h:02d}:{mi:02d}:{se:02d}", "SID {sid} cm", "IMG {i}",
         "Ser {i}/{j}", "DAP {f:.2f} Gycm2", "FLUORO LOW", "CINE", "ID {pid}"]


def _text(rng, img: np.ndarray, keep_clear: np.ndarray) -> int:
    n = img.shape[0]
    s = n / 512
    drawn = 0
    corners = rng.permutation(4)[: int(rng.integers(1, 5))]
    colour = int(rng.uniform(170, 255)) if rng.random() < 0.85 else int(rng.uniform(0, 40))
    font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX]))
    scale = rng.uniform(0.35, 0.6) * s * (1.6 if font == cv2.FONT_HERSHEY_PLAIN else 1.0)
    for c in corners:
        for li in range(int(rng.integers(1, 4))):
            txt = str(rng.choice(_TEXT)).format(
                a=int(rng.integers(0, 60)), b=int(rng.integers(0, 40)), fps=int(rng.choice([3, 7, 15, 30])),
                f=rng.uniform(0.1, 80), kv=int(rng.integers(60, 120)), ma=rng.uniform(1, 20),
                z=int(rng.integers(0, 4)), d=int(rng.integers(1, 29)), m=int(rng.integers(1, 13)),
                y=int(rng.integers(10, 30)), h=int(rng.integers(0, 24)), mi=int(rng.integers(0, 60)),
                se=int(rng.integers(0, 60)), sid=int(rng.integers(90, 120)), i=int(rng.integers(1, 99)),
                j=int(rng.integers(1, 99)), pid=int(rng.integers(100000, 999999)))
            (tw, th), _ = cv2.getTextSize(txt, font, scale, 1)
            pad = int(6 * s)
            x = pad if c in (0, 2) else n - pad - tw
            y = pad + th + li * int(th * 1.6) if c in (0, 1) else n - pad - li * int(th * 1.6)
            box = keep_clear[max(y - th - 2, 0): y + 4, max(x - 2, 0): x + tw + 2]
            if box.any():
                continue
            cv2.putText(img, txt, (x, y), font, scale, colour, 1, cv2.LINE_AA)
            drawn += 1
    if rng.random() < 0.3:  # a big side marker
        txt = str(rng.choice(["L", "R"]))
        x, y = int(rng.uniform(0.2, 0.8) * n), int(rng.uniform(20, 60) * s)
        if not keep_clear[max(y - 30, 0): y + 4, max(x - 4, 0): x + 30].any():
            cv2.putText(img, txt, (x, y), font, 1.2 * s, colour, 2, cv2.LINE_AA)
            drawn += 1
    return drawn


# ----------------------------------------------------------------------------------------------------------------
# the frame


def _to_json(v):
    if isinstance(v, dict):
        return {str(k): _to_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_to_json(x) for x in v]
    if isinstance(v, np.ndarray):
        return _to_json(v.tolist())
    if isinstance(v, (np.floating, float)):
        return round(float(v), 4)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return v


def _render(seed: int, size: int = 512) -> dict:
    """Everything drawn for one seed, including the noise-free displays with and without the wire (for tests)."""
    n = int(size)
    s = n / 512
    rng = np.random.default_rng([int(seed), 0xF1A0])
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    col = _collimator(rng, n)
    sd_col = _col_sd(col, xx, yy).astype(np.float32)
    F = (0.5 * (1 + erf(sd_col / (col["edge_sigma_px"] * math.sqrt(2))))).astype(np.float32)
    anat, anat_info = _anatomy(rng, n, xx, yy)

    wire = _wire(rng, n, col)
    rows, cols, chord, cover = _tube(n, wire["pts"], wire["radius"], sub=5, weight=wire["weight"])
    W_unit = np.zeros((n, n), np.float32)
    W_unit[rows, cols] = chord
    cov = np.zeros((n, n), np.float32)
    cov[rows, cols] = cover
    # the wire's pixels in the field, from where its centreline enters the field (the insertion end) to the tip
    first = int(np.argmax(_field_sd(col, n, wire["pts"]) > 1.0))
    mask = (cov > 0.5) & (sd_col > 0)
    mv, mu_ = np.nonzero(mask)
    _, nearest = cKDTree(wire["pts"]).query(np.c_[mu_, mv])
    mask[mv[nearest < first], mu_[nearest < first]] = False

    conf, conf_info = _confounders(rng, n, wire, xx, yy)

    # imaging chain
    r2 = ((xx - n / 2) ** 2 + (yy - n / 2) ** 2) / (0.7 * n) ** 2
    vign = 1.0 - rng.uniform(0.0, 0.35 if col["kind"] == "circle" else 0.12) * r2
    T = col["transmission_outside"] + (1 - col["transmission_outside"]) * F if col["kind"] != "none" else 1.0
    scatter = float(rng.uniform(0.05, 0.5))
    det_sigma = float(rng.uniform(0.5, 1.1) * s)
    elec = float(rng.uniform(0.002, 0.02))
    N0 = 3000.0
    base = (np.exp(-(anat + conf)) * T * vign).astype(np.float32)
    peak = float(rng.uniform(0.08, 0.45))  # line integral through the wire body's axis
    prm = _display_params(rng, n)
    cnr_target = float(np.clip(math.exp(rng.normal(math.log(5.0), 0.6)), 1.3, 16.0))
    min_dn = float(rng.uniform(9.0, 14.0))  # the wire's mean contrast in grey levels: at least this ...
    max_dn = max(1.3 * min_dn, float(rng.uniform(6.0, 14.0)) * cnr_target)  # ... and at most this (noise <= 6-14)

    def detector(wire_mu: float) -> tuple[np.ndarray, np.ndarray]:
        P = base * np.exp(-wire_mu * W_unit)
        E = P + scatter * _blur_big(P, 40 * s)
        counts = N0 * E
        return _blur(counts, det_sigma), counts

    mu = peak / wire["info"]["width_px"]
    Df, _ = detector(0.0)
    for _ in range(6):
        Dw, counts = detector(mu)
        Vw, cal = _display(Dw, prm, col, F)
        Vf, _ = _display(Df, prm, col, F, cal)
        contrast = 255.0 * float((Vf - Vw)[mask].mean()) if mask.any() else 0.0
        if contrast < min_dn and mu < 50:
            mu *= min(max(1.05 * min_dn / max(contrast, 0.5), 1.2), 6.0)
        elif contrast > max_dn:
            mu *= max(0.95 * max_dn / contrast, 0.15)
        else:
            break

    z1 = rng.standard_normal((n, n)).astype(np.float32)
    z2 = rng.standard_normal((n, n)).astype(np.float32)
    noise = _blur(np.sqrt(counts) * z1, det_sigma) + elec * N0 * z2
    dil = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=9).astype(bool)
    ring = dil & ~cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2).astype(bool)
    ring &= sd_col > 3 * col["edge_sigma_px"] + 3
    if ring.sum() < 50:
        ring = dil & ~mask
    sigma_t = contrast / cnr_target
    sigma_eff = math.sqrt(max(sigma_t**2 - 1 / 12, 0.05))
    k = 1.0
    for _ in range(3):
        Vn, _ = _display(Dw + k * noise, prm, col, F, cal)
        sig = 255.0 * float((Vn - Vw)[ring].std())
        k *= sigma_eff / max(sig, 1e-6)
    Vn, _ = _display(Dw + k * noise, prm, col, F, cal)
    img = np.clip(np.round(255.0 * Vn), 0, 255).astype(np.uint8)
    noise_dn = float((img.astype(np.float32) - 255.0 * Vw)[ring].std())
    cnr = contrast / max(noise_dn, 1e-6)

    clear = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=12)
    n_text = _text(rng, img, clear)
    if n_text:
        conf_info["text"] = n_text

    cl = _resample(wire["pts"][first:], 1.0)
    cl[-1] = wire["pts"][-1]
    tip = (float(wire["pts"][-1, 0]), float(wire["pts"][-1, 1]))
    meta = {
        "seed": int(seed),
        "size": n,
        "anatomy": anat_info,
        "wire": dict(wire["info"], attenuation_peak=float(mu * wire["info"]["width_px"])),
        "wire_width_px": wire["info"]["width_px"],
        "cnr": cnr,
        "cnr_target": cnr_target,
        "contrast_dn": contrast,
        "noise_dn": noise_dn,
        "confounders": conf_info,
        "collimator": col,
        "processing": prm,
        "imaging": {"dose_scale": float(1 / max(k * k, 1e-12)), "detector_blur_px": det_sigma,
                    "electronic_noise": elec, "scatter_fraction": scatter},
    }
    return {"image": img, "mask": mask, "tip": tip, "centreline": cl, "metadata": _to_json(meta),
            "clean": Vw, "clean_no_wire": Vf, "ring": ring, "coverage": cov, "field_sd": sd_col}


def fluoro_frame(seed: int, size: int = 512) -> FluoroFrame:
    """One synthetic frame, deterministic from `seed`."""
    r = _render(seed, size)
    return FluoroFrame(image=r["image"], mask=r["mask"], tip=r["tip"], centreline=r["centreline"],
                       metadata=r["metadata"])


def write_set(folder, first_seed: int, count: int, size: int = 512) -> None:
    """images/NNNN.png, masks/NNNN.png (0/255) and frames.json (tip, centreline, metadata per frame)."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(count):
        f = fluoro_frame(first_seed + i, size)
        name = f"{i:04d}.png"
        cv2.imwrite(str(folder / "images" / name), f.image)
        cv2.imwrite(str(folder / "masks" / name), f.mask.astype(np.uint8) * 255)
        frames.append({
            "index": i,
            "seed": first_seed + i,
            "image": f"images/{name}",
            "mask": f"masks/{name}",
            "tip": [round(f.tip[0], 3), round(f.tip[1], 3)],
            "centreline": np.round(f.centreline, 3).tolist(),
            "metadata": f.metadata,
        })
    doc = {"generator": "guidewire.validation.fluoro_frames", "first_seed": first_seed, "count": count,
           "size": size, "coordinates": "(u, v) = (column, row), pixel centres at integers", "frames": frames}
    (folder / "frames.json").write_text(json.dumps(doc))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=9000)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--size", type=int, default=512)
    a = ap.parse_args(argv)
    write_set(a.out_dir, a.seed, a.count, a.size)
    print(f"wrote {a.count} frames to {a.out_dir}")


if __name__ == "__main__":
    main()
