"""Generator C: synthetic cath-lab fluoroscopy frames of a guidewire with its mask, written
independently of the project's other generators (its own anatomy, devices and image chain).

    python -m guidewire.segmentation.phantom_frames OUT_DIR --count N --seed S --size 512

writes OUT_DIR/images/NAME.png (mono, 8 or 16 bit, the wire dark), OUT_DIR/masks/NAME.png
(255 on the guidewire only, at its rendered width), OUT_DIR/frames.jsonl (each frame's draws) and
OUT_DIR/set.json: the folder layout guidewire.segmentation.train reads. Frame i of seed S depends
on (S, i) only (--first extends a set; frames.jsonl is appended to).

Physics, per frame: line integrals of attenuation (1/mm x mm) of a patient (soft tissue, lungs,
heart, diaphragm, vertebrae, ribs, bowel gas, iodinated vessels, Lipiodol) and of devices (the
guidewire with an optional platinum coil, catheters, ECG leads and electrodes, sternal wires,
clips, stents, rulers, lead letters); Beer-Lambert with a beam-hardening (concave) log response and
a kV-dependent contrast of dense against soft materials; collimator blades, iris and wedge filters;
heel effect and vignetting; anti-scatter grid lines; focal-spot and motion blur, detector lag;
scatter as a low-frequency veil; Poisson quanta at a random dose (raised where the wire would
drown), detector light spread, electronic noise, column defects; log or power transfer, range
compression, unsharp masking, window/level, gamma, 8/12/16-bit quantisation, black display
shutters and burned-in text. Only the guidewire is labelled, and only where it is in the frame
(not under a shutter, a blade, burned-in text or a window clipped to black around it). Where the
wire would not show, its attenuation is raised until it does (frames.jsonl: wire_gain, wire_cnr).
The wire is always dark (display convention of the training folders).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

# Effective linear attenuation in 1/mm at a filtered 60-90 kVp fluoroscopy beam, net of the water displaced.
MU_WATER = 0.02
MU_CORTICAL = 0.04
MU_TRABECULAR = 0.01
MU_STEEL = 0.9
MU_COPPER = 1.3
MU_PT_COIL = 5.0  # platinum (about 10/mm) wound at roughly half fill
MU_IODINE = 0.2  # 300-350 mgI/ml undiluted
WIRE_DIAMETERS_MM = np.array([0.254, 0.356, 0.457, 0.635, 0.889])  # 0.010, 0.014, 0.018, 0.025, 0.035 inch
WIRE_DIAMETER_WEIGHTS = np.array([0.1, 0.4, 0.2, 0.1, 0.2])
TEXT = ["LAO {a} CRA {b}", "RAO {a} CAU {b}", "AP 0 0", "FL {f} p/s", "{kv} kV {ma:.1f} mA", "Frame {n}/{m}",
        "{h:02d}:{mi:02d}:{s:02d}", "ID {pid}", "SID {sid} cm", "FOV {fov} cm", "Zoom {z}", "DAP {dap:.1f} Gycm2",
        "Fluoro {t:.1f} min", "LOW DOSE", "NORMAL", "ROADMAP", "Store", "L", "R", "HOSPITAL {pid}"]


def _loguniform(rng, low, high):
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _smooth_noise(rng, shape, cells):
    """Zero-mean, unit-std random field with about `cells` blobs across the frame."""
    n = max(2, int(cells))
    field = cv2.resize(rng.standard_normal((n + 3, n + 3)).astype(np.float32), (shape[1], shape[0]),
                       interpolation=cv2.INTER_CUBIC)
    return (field - field.mean()) / (field.std() + 1e-6)


def _lowpass(image, sigma):
    """Gaussian blur with a large sigma, done at a coarse grid (scatter, range compression)."""
    factor = max(1, int(sigma / 4))
    height, width = image.shape
    small = cv2.resize(image, (max(width // factor, 2), max(height // factor, 2)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _curve(rng, start, heading, length, radius, wiggle, step=1.0, tip_angle=0.0, tip_length=0.0,
           loop_radius=0.0):
    """Polyline (N, 2) of x, y px of a smooth random curve from `start`: curvature is low-pass noise
    of std 1/radius and correlation length `wiggle`; a bend of tip_angle over the first tip_length px
    (J or angled tip), and with loop_radius a full turn somewhere along it."""
    n = max(3, int(length / step))
    curvature = gaussian_filter1d(rng.standard_normal(n), max(wiggle / step, 1.0), mode="nearest")
    curvature *= 1.0 / (radius * (curvature.std() + 1e-9))
    if tip_length > 0:
        m = max(2, min(n - 1, int(tip_length / step)))
        curvature[:m] += tip_angle / (m * step)
    if loop_radius > 0:
        m = int(2 * np.pi * loop_radius / step)
        if m < n // 2:
            first = int(rng.integers(n // 5, n - m))
            curvature[first:first + m] += rng.choice([-1, 1]) * 2 * np.pi / (m * step)
    theta = heading + np.cumsum(curvature) * step
    steps = step * np.stack([np.cos(theta), np.sin(theta)], 1)
    return np.asarray(start, float) + np.concatenate([[[0.0, 0.0]], np.cumsum(steps, 0)[:-1]])


def _tube(shape, polylines, radius, inner=0.0, layers=4, closed=False):
    """Projected chord length (px) through a round tube of `radius` px (hollow inside `inner`) along
    each polyline, area-averaged over every pixel (supersampled for thin tubes; overlaps are a union).
    Returns (slices, chord) of the bounding box inside the frame, or None if it misses the frame."""
    height, width = shape
    polylines = [np.asarray(p, float) for p in polylines if len(p) >= 2]
    if not polylines:
        return None
    every = np.concatenate(polylines)
    low = np.floor(every.min(0) - radius - 2).astype(int)
    high = np.ceil(every.max(0) + radius + 3).astype(int)
    x0, y0, x1, y1 = max(low[0], 0), max(low[1], 0), min(high[0], width), min(high[1], height)
    if x1 <= x0 or y1 <= y0:
        return None
    ss = 4 if radius < 3 else 2 if radius < 8 else 1
    # Pixel centres at integer coordinates; sub-pixel j of pixel i is at i - 0.5 + (j + 0.5) / ss.
    subs = [np.ascontiguousarray(np.clip(np.round(((p - (x0, y0)) + 0.5) * ss * 16 - 8), -2e8, 2e8)
                                 .astype(np.int32)) for p in polylines]

    def chord(r):
        canvas = np.zeros(((y1 - y0) * ss, (x1 - x0) * ss), np.uint16)
        for j in range(layers):  # nested bands, widest first, each painted with the running sum
            half = r * np.sqrt(1 - ((j + 0.5) / layers) ** 2)
            cv2.polylines(canvas, subs, closed, int(65535 * (j + 1) / layers), max(1, int(round(2 * half * ss))),
                          cv2.LINE_8, 4)
        if ss > 1:
            canvas = cv2.resize(canvas, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        return canvas.astype(np.float32) * (2 * r / 65535)

    result = chord(radius)
    if inner > 0:
        result -= chord(inner)
    return (slice(y0, y1), slice(x0, x1)), result


def _coverage(shape, polylines, half_width):
    """Area fraction of each pixel inside a flat band of half_width px about the polylines."""
    height, width = shape
    canvas = np.zeros((height * 4, width * 4), np.uint8)
    subs = [np.ascontiguousarray(np.round((np.asarray(p) + 0.5) * 64 - 8).clip(-2e8, 2e8).astype(np.int32))
            for p in polylines]
    cv2.polylines(canvas, subs, False, 255, max(1, int(round(8 * half_width))), cv2.LINE_8, 4)
    return cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


class _Frame:
    """One frame's draws and line-integral maps (soft: water-like; dense: bone, iodine, metal)."""

    def __init__(self, rng, size):
        self.rng, self.shape = rng, (size, size)
        self.size = size
        self.ppm = size / 512 * _loguniform(rng, 1.4, 5.0)  # px per mm at the object
        self.soft = np.zeros(self.shape, np.float32)
        self.dense = np.zeros(self.shape, np.float32)
        self.info = {"px_per_mm": round(self.ppm, 3)}
        self.wire = self.distractors = None  # the guidewire's and the other devices' line integrals, once drawn
        # Patient coordinates u (lateral), v (caudal) in mm; origin on the spine at the diaphragm's top.
        self.angle = rng.normal(0, 0.12) + (np.pi / 2 if rng.random() < 0.08 else 0.0)
        self.flip = rng.choice([-1.0, 1.0])
        self.u_c, self.v_c = rng.normal(0, 55), rng.uniform(-200, 280)
        self.info.update(fov_centre_mm=[round(self.u_c), round(self.v_c)])
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        self.rotation = np.array([[cos, -sin], [sin, cos]])
        self.origin = np.array([size / 2, size / 2]) - self.ppm * self.rotation @ np.array(
            [self.flip * self.u_c, self.v_c])
        y, x = np.mgrid[0:size, 0:size].astype(np.float32)
        dx, dy = x - self.origin[0], y - self.origin[1]
        self.u = (self.flip * (dx * cos + dy * sin) / self.ppm).astype(np.float32)
        self.v = ((-dx * sin + dy * cos) / self.ppm).astype(np.float32)

    def px(self, u, v):
        """Pixel x, y of patient points (mm)."""
        uv = np.stack([self.flip * np.asarray(u, float), np.asarray(v, float)], -1)
        return self.origin + uv @ (self.ppm * self.rotation).T

    def visible(self, v_low, v_high, margin=60):
        half = self.size / self.ppm * 0.75
        return self.v_c - half - margin < v_high and self.v_c + half + margin > v_low

    def add_tube(self, polylines, radius_mm, mu_wall, inner_mm=0.0, mu_lumen=0.0, dense=True, closed=False,
                 min_radius_px=0.5):
        """Adds a tube (radii in mm, drawn at least min_radius_px wide with the same projected area)."""
        r = radius_mm * self.ppm
        scale = 1.0
        if r < min_radius_px:
            scale, r = (r / min_radius_px) ** 2, min_radius_px
        target = self.dense if dense else self.soft
        ri = inner_mm / radius_mm * r
        drawn = _tube(self.shape, polylines, r, ri if mu_wall != mu_lumen else 0.0, closed=closed)
        if drawn is not None:
            box, chord = drawn
            target[box] += mu_wall * scale / self.ppm * chord
        if inner_mm > 0 and mu_lumen != mu_wall:
            drawn = _tube(self.shape, polylines, ri, closed=closed)
            if drawn is not None:
                box, chord = drawn
                target[box] += mu_lumen * scale / self.ppm * chord


def _ellipsoid_chord(du, dv, a, b, depth, power=2.0):
    q = np.abs(du / a) ** power + np.abs(dv / b) ** power
    return depth * np.sqrt(np.clip(1 - q, 0, None))


def _anatomy(f: _Frame):
    rng, u, v = f.rng, f.u, f.v
    half_width = rng.uniform(140, 190)
    thickness = rng.uniform(180, 300)
    body = thickness * np.sqrt(np.clip(1 - (u / half_width) ** 2, 0, None))
    body *= 1 + 0.04 * _smooth_noise(rng, f.shape, rng.uniform(2, 6))
    f.soft += MU_WATER * body
    f.info["body_mm"] = [round(half_width), round(thickness)]
    dome_r = rng.uniform(-15, 15)
    dome_l = dome_r + rng.uniform(0, 25)
    curvature = rng.uniform(0.004, 0.01)
    dome = np.where(u < 0, dome_r + curvature * (u + 70) ** 2, dome_l + curvature * (u - 70) ** 2)
    edge = rng.uniform(1.5, 5)
    above = 1 / (1 + np.exp(np.clip((v - dome) / edge, -30, 30)))
    if f.visible(-300, 60, margin=0):  # lungs, heart
        heart_u, heart_v = rng.uniform(10, 45), rng.uniform(-90, -50)
        hu, hv = (u - heart_u), (v - heart_v)
        tilt = rng.uniform(0.3, 0.7)
        heart = _ellipsoid_chord(hu * np.cos(tilt) + hv * np.sin(tilt), -hu * np.sin(tilt) + hv * np.cos(tilt),
                                 rng.uniform(65, 90), rng.uniform(50, 70), 1.0)
        air = np.zeros(f.shape, np.float32)
        depth = rng.uniform(40, 110)
        for side in (-1, 1):
            centre = side * rng.uniform(75, 95)
            air += _ellipsoid_chord(u - centre, v + 120, rng.uniform(60, 80), rng.uniform(150, 190), depth, 2.4)
        air *= above * (1 - 0.85 * heart)
        # vascular markings: faint, blurred ridges of a band-passed field
        markings = cv2.GaussianBlur(np.abs(_smooth_noise(rng, f.shape, f.size / f.ppm / 15)), (0, 0), 2.0)
        air *= 1 - rng.uniform(0.02, 0.08) * np.exp(-(markings / 0.25) ** 2)
        f.soft -= MU_WATER * air
        f.info["thorax"] = True
    if rng.random() < 0.3:  # breast or pannus shadow: a broad soft-tissue mound
        cu, cv = rng.uniform(-150, 150), rng.uniform(-120, 150)
        f.soft += MU_WATER * _ellipsoid_chord(u - cu, v - cv, rng.uniform(60, 110), rng.uniform(50, 90),
                                              rng.uniform(20, 60))
    if f.visible(40, 400) and rng.random() < 0.7:  # bowel and stomach gas
        gas = np.clip(_smooth_noise(rng, f.shape, f.size / f.ppm / rng.uniform(15, 40)) - rng.uniform(0.6, 1.4),
                      0, None)
        gas *= np.clip((v - dome - 30) / 40, 0, 1)
        f.soft -= MU_WATER * rng.uniform(10, 40) * np.minimum(gas * 1.5, 1)
    _spine(f)
    if f.visible(-300, 120):
        _ribs(f)
    if rng.random() < 0.35:
        _vessels(f)
    if f.visible(0, 250) and rng.random() < 0.15:  # Lipiodol deposits after chemoembolisation
        blobs = np.clip(_smooth_noise(rng, f.shape, f.size / f.ppm / rng.uniform(4, 10)) - rng.uniform(1.8, 2.6),
                        0, None)
        f.dense += rng.uniform(0.3, 2.0) * np.minimum(blobs * 2, 1) * (
            1 + 0.3 * _smooth_noise(rng, f.shape, f.size / f.ppm / 1.5))


def _spine(f: _Frame):
    rng = f.rng
    wobble, period, phase = rng.uniform(0, 15), rng.uniform(150, 400), rng.uniform(0, 2 * np.pi)
    lateral = rng.normal(0, 6)
    v = -330.0
    while v < 520:
        lumbar = 1 / (1 + np.exp(-v / 60))
        height = (24 + 12 * lumbar) * rng.uniform(0.92, 1.08)
        centre_v = v + height / 2
        if f.visible(centre_v - height, centre_v + height):
            centre_u = lateral + wobble * np.sin(centre_v / period + phase)
            a = (19 + 7 * lumbar) * rng.uniform(0.9, 1.1)
            b = 0.4 * height
            radius = np.hypot(a, height) * 1.4 * f.ppm
            x, y = f.px(centre_u, centre_v)
            rows = slice(max(int(y - radius), 0), min(int(y + radius) + 1, f.size))
            cols = slice(max(int(x - radius), 0), min(int(x + radius) + 1, f.size))
            if rows.stop > rows.start and cols.stop > cols.start:
                du, dv = f.u[rows, cols] - centre_u, f.v[rows, cols] - centre_v
                tilt = rng.normal(0, 0.05)
                du, dv = du * np.cos(tilt) + dv * np.sin(tilt), -du * np.sin(tilt) + dv * np.cos(tilt)
                depth = rng.uniform(25, 35)
                outer = _ellipsoid_chord(du, dv, a, b, depth, 3)
                inner = _ellipsoid_chord(du, dv, a - 1.2, b - 1.0, depth - 2, 3)
                bone = MU_TRABECULAR * rng.uniform(0.8, 1.6) * inner + MU_CORTICAL * rng.uniform(0.4, 0.8) * (
                    outer - inner)
                for side in (-1, 1):  # pedicles: faint cortical rings
                    pu, pv = du - side * 0.62 * a, dv + 0.25 * b
                    ring = _ellipsoid_chord(pu, pv, 0.2 * a, 0.36 * b, 10) - _ellipsoid_chord(
                        pu, pv, 0.2 * a - 1.6, 0.36 * b - 1.6, 9)
                    bone += MU_CORTICAL * rng.uniform(0.2, 0.5) * ring
                bone += MU_CORTICAL * 0.3 * _ellipsoid_chord(du, dv - 0.35 * b, 0.12 * a, 0.55 * b, 10)
                f.dense[rows, cols] += bone
        v += height


def _ribs(f: _Frame):
    rng = f.rng
    spacing = rng.uniform(22, 30)
    first = rng.uniform(-290, -250)
    reach = rng.uniform(120, 165)
    t = np.linspace(0, 1, 60)
    for k in range(12):
        level = first + k * spacing
        if not f.visible(level - 40, level + 160):
            continue
        for side in (-1, 1):
            # posterior rib: laterally from the spine, rising a little, then down along the chest wall
            u = side * (24 + reach * t)
            v = level + reach * (-0.12 * t + 0.55 * t ** 2 + 0.25 * t ** 4)
            f.add_tube([f.px(u, v)], rng.uniform(4.5, 6.5), MU_CORTICAL * rng.uniform(0.5, 1.0),
                       rng.uniform(3.0, 4.5), MU_TRABECULAR)
            if level < -60:  # anterior rib: from the lateral wall down towards the sternum, fainter
                end_v = v[-1]
                ua = side * (24 + reach - reach * 0.75 * t)
                va = end_v - 30 + reach * 0.45 * t + 10 * np.sin(np.pi * t)
                f.add_tube([f.px(ua, va)], rng.uniform(4.0, 5.5), MU_CORTICAL * rng.uniform(0.3, 0.6),
                           rng.uniform(3.0, 4.2), MU_TRABECULAR * 0.7)


def _vessels(f: _Frame, along=None):
    """An iodinated vessel tree (radii in mm), optionally rooted on a path (px) such as the wire's."""
    rng = f.rng
    density = MU_IODINE * rng.uniform(0.15, 0.9)
    queue = []
    if along is not None and len(along) > 20:
        queue.append((along, rng.uniform(1.5, 3.5), 0))
    else:
        start = rng.uniform(0, f.size, 2)
        queue.append((_curve(rng, start, rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5) * f.size,
                             _loguniform(rng, 60, 400) * f.ppm, rng.uniform(15, 50) * f.ppm),
                      rng.uniform(2, 5), 0))
    drawn = 0
    while queue and drawn < 14:
        path, radius, depth = queue.pop()
        f.add_tube([path], radius, density)
        drawn += 1
        if depth < 3 and radius > 0.6:
            for _ in range(int(rng.integers(1, 4))):
                i = int(rng.integers(0, len(path) - 2))
                direction = path[i + 1] - path[i]
                heading = np.arctan2(direction[1], direction[0]) + rng.choice([-1, 1]) * rng.uniform(0.3, 1.2)
                child = _curve(rng, path[i], heading, rng.uniform(0.1, 0.5) * f.size,
                               _loguniform(rng, 30, 250) * f.ppm, rng.uniform(8, 30) * f.ppm)
                queue.append((child, radius * rng.uniform(0.5, 0.8), depth + 1))
    f.info["vessels"] = drawn


def _inside(points, size, margin=0.0):
    return (points[:, 0] >= -margin) & (points[:, 0] <= size - 1 + margin) & \
        (points[:, 1] >= -margin) & (points[:, 1] <= size - 1 + margin)


def _guidewire(f: _Frame, open_field):
    """Draws the wire into f.dense; returns its path (proximal first), rendered half-width and tau map."""
    rng, size = f.rng, f.size
    diameter = rng.choice(WIRE_DIAMETERS_MM, p=WIRE_DIAMETER_WEIGHTS)
    magnified = diameter * f.ppm * rng.uniform(1.0, 1.35)
    width = float(np.clip(magnified, 1.0, 6.0))
    for _ in range(40):
        if rng.random() < 0.85:
            tip = rng.uniform(0.08, 0.92, 2) * size
            if not open_field[int(tip[1]), int(tip[0])]:
                continue
        else:
            tip = rng.uniform(-0.2, 1.2, 2) * size
        shape = rng.choice(["straight", "angled", "J"], p=[0.35, 0.45, 0.2])
        tip_angle = {"straight": 0.0, "angled": rng.uniform(0.4, 1.1), "J": rng.uniform(2.0, 3.3)}[shape]
        tip_length = (rng.uniform(1.5, 4) if shape == "angled" else rng.uniform(3, 7)) * f.ppm
        loop = _loguniform(rng, 4, 15) * f.ppm if rng.random() < 0.1 else 0.0
        path = _curve(rng, tip, rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 3.0) * size,
                      _loguniform(rng, 25, 300) * f.ppm, _loguniform(rng, 8, 60) * f.ppm,
                      tip_angle=tip_angle * rng.choice([-1, 1]), tip_length=tip_length, loop_radius=loop)[::-1]
        seen = _inside(path, size)
        inside = seen.copy()
        inside[seen] = open_field[path[seen, 1].astype(int), path[seen, 0].astype(int)]
        if inside.sum() >= 0.2 * size:
            break
    r = width / 2
    area_scale = (magnified / width) ** 2
    mm_per_px = diameter / magnified
    tau = np.zeros(f.shape, np.float32)
    drawn = _tube(f.shape, [path], r)
    body = MU_STEEL * rng.uniform(0.35, 1.0) * area_scale * mm_per_px
    if drawn is not None:
        box, chord = drawn
        tau[box] += body * chord
    coil = 0.0
    if rng.random() < 0.6:
        coil_px = rng.uniform(10, 40) * f.ppm
        n = int(min(len(path) - 2, coil_px))
        coil = MU_PT_COIL * rng.uniform(0.5, 1.2) * area_scale * mm_per_px
        drawn = _tube(f.shape, [path[-n:]], r)
        if drawn is not None:
            box, chord = drawn
            tau[box] += (coil - body) * chord
    f.dense += tau
    f.wire = tau
    f.info.update(wire={"diameter_mm": float(diameter), "width_px": round(width, 2), "tip": str(shape),
                        "loop": bool(loop), "coil": bool(coil), "length_px": len(path)})
    return path, r, tau


def _catheters(f: _Frame, wire_path):
    rng, size = f.rng, f.size
    kinds = []
    if rng.random() < 0.55:  # the wire runs out of a catheter or microcatheter
        micro = rng.random() < 0.5
        outer = rng.uniform(0.33, 0.47) if micro else rng.uniform(0.65, 1.15)
        extension = int(rng.uniform(5, 150) * f.ppm)
        if len(wire_path) - extension > 10:
            path = wire_path[:len(wire_path) - extension] + rng.normal(0, 0.3, 2)
            _catheter(f, path, outer, micro)
            kinds.append("micro" if micro else "over-wire")
    for _ in range(int(rng.random() < 0.3) + int(rng.random() < 0.1)):
        start = rng.uniform(0, size, 2)
        kind = rng.choice(["plain", "pigtail", "sheath"], p=[0.6, 0.25, 0.15])
        path = _curve(rng, start, rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 2) * size,
                      _loguniform(rng, 40, 300) * f.ppm, rng.uniform(20, 60) * f.ppm,
                      tip_angle=rng.uniform(5.5, 7.5) if kind == "pigtail" else 0.0,
                      tip_length=rng.uniform(20, 35) * f.ppm if kind == "pigtail" else 0.0)[::-1]
        _catheter(f, path, rng.uniform(1.1, 1.5) if kind == "sheath" else rng.uniform(0.6, 1.1), False)
        kinds.append(str(kind))
    f.info["catheters"] = kinds


def _catheter(f: _Frame, path, outer_mm, micro):
    rng = f.rng
    wall = outer_mm * rng.uniform(0.15, 0.35)
    lumen = MU_IODINE * rng.uniform(0.3, 1.0) if rng.random() < 0.25 else 0.0
    f.add_tube([path], outer_mm, rng.uniform(0.06, 0.4), outer_mm - wall, lumen)
    step = np.linalg.norm(path[-1] - path[-2]) + 1e-9
    markers = 2 if micro and rng.random() < 0.6 else int(rng.random() < 0.5)
    for k in range(markers):  # platinum-iridium marker bands: the tip, and 30 mm back
        end = len(path) - 1 - int(k * 30 * f.ppm / step)
        n = max(2, int(rng.uniform(0.8, 1.5) * f.ppm / step))
        if end - n > 0:
            f.add_tube([path[end - n:end]], outer_mm, 2.0 * rng.uniform(0.5, 1.0), outer_mm - wall, lumen)


def _leads_and_electrodes(f: _Frame):
    rng, size = f.rng, f.size
    count = 0
    for _ in range(int(rng.integers(1, 5)) if rng.random() < 0.45 else 0):
        electrode = rng.uniform(-0.1, 1.1, 2) * size
        path = _curve(rng, electrode, rng.uniform(0, 2 * np.pi), rng.uniform(1.0, 2.5) * size,
                      _loguniform(rng, 60, 500) * f.ppm, rng.uniform(30, 100) * f.ppm)
        f.add_tube([path], rng.uniform(1.0, 2.0), 0.03, dense=False)  # PVC jacket
        f.add_tube([path], rng.uniform(0.15, 0.5), MU_COPPER * rng.uniform(0.4, 0.8), min_radius_px=0.5)
        _electrode(f, electrode)
        count += 1
    for _ in range(int(rng.integers(1, 3)) if rng.random() < 0.2 else 0):
        _electrode(f, rng.uniform(0, size, 2))
    f.info["ecg_leads"] = count


def _electrode(f: _Frame, centre):
    rng = f.rng
    disc = rng.uniform(14, 26) * f.ppm
    x, y = centre
    rows = slice(max(int(y - disc - 2), 0), min(int(y + disc + 3), f.size))
    cols = slice(max(int(x - disc - 2), 0), min(int(x + disc + 3), f.size))
    if rows.stop > rows.start and cols.stop > cols.start:
        yy, xx = np.mgrid[rows, cols]
        distance = np.hypot(xx - x, yy - y)
        f.soft[rows, cols] += rng.uniform(0.01, 0.05) * np.clip((disc - distance) / 2, 0, 1)
    snap = rng.uniform(2.0, 5.0) * f.ppm
    angles = np.linspace(0, 2 * np.pi, 40)
    ring = np.stack([x + snap * np.cos(angles), y + snap * np.sin(angles)], 1)
    f.add_tube([ring], rng.uniform(0.3, 0.6), MU_STEEL * rng.uniform(0.3, 1.0), closed=True)
    f.add_tube([ring[:1] + [[0, 0], [0.5, 0.5]]], snap / f.ppm * 0.4, MU_STEEL * rng.uniform(0.1, 0.4))


def _hardware(f: _Frame, wire_path):
    """Sternal wires, clips, stents, a ruler and lead letters: dense, never labelled."""
    rng, size, found = f.rng, f.size, []
    if f.visible(-260, -60) and rng.random() < 0.2:
        u0 = rng.normal(0, 8)
        for k in range(int(rng.integers(3, 8))):
            centre_v = -240 + k * rng.uniform(20, 30)
            a, b, tilt = rng.uniform(7, 14), rng.uniform(1.5, 5), rng.normal(0, 0.15)
            t = np.linspace(0, 2 * np.pi, 48)
            uu = u0 + a * np.cos(t) * np.cos(tilt) - b * np.sin(t) * np.sin(tilt)
            vv = centre_v + a * np.cos(t) * np.sin(tilt) + b * np.sin(t) * np.cos(tilt)
            f.add_tube([f.px(uu, vv)], rng.uniform(0.4, 0.6), MU_STEEL, closed=True)
            knot_u = u0 + rng.choice([-1, 1]) * a
            f.add_tube([f.px([knot_u, knot_u + rng.uniform(2, 5)], [centre_v, centre_v + rng.normal(0, 2)])],
                       rng.uniform(0.8, 1.3), MU_STEEL)
        found.append("sternal wires")
    if rng.random() < 0.2:
        centre = rng.uniform(0, size, 2)
        spread = rng.uniform(10, 40) * f.ppm
        metal = rng.choice([0.25, MU_STEEL])
        for _ in range(int(rng.integers(1, 9))):
            apex = centre + rng.normal(0, spread, 2)
            heading, opening = rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.4)
            length = rng.uniform(4, 9) * f.ppm
            legs = [apex + length * np.array([np.cos(heading + s * opening), np.sin(heading + s * opening)])
                    for s in (-1, 1)]
            f.add_tube([np.array([legs[0], apex, legs[1]])], rng.uniform(0.3, 0.6), metal)
        found.append("clips")
    if rng.random() < 0.2:
        if rng.random() < 0.4 and len(wire_path) > 50:
            i = int(rng.integers(0, len(wire_path) - 20))
            axis = wire_path[i:i + int(rng.uniform(12, 40) * f.ppm)]
        else:
            axis = _curve(rng, rng.uniform(0, size, 2), rng.uniform(0, 2 * np.pi), rng.uniform(12, 40) * f.ppm,
                          _loguniform(rng, 30, 150) * f.ppm, 10 * f.ppm)
        if len(axis) > 4:
            tangent = np.gradient(axis, axis=0)
            normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1) / (np.linalg.norm(tangent, axis=1)[:, None] + 1e-9)
            s = np.arange(len(axis)) / f.ppm
            radius, pitch = rng.uniform(1.5, 5), rng.uniform(3, 8)
            struts = int(rng.integers(5, 10))
            helices = [axis + normal * (radius * f.ppm * np.sin(sign * 2 * np.pi * s / pitch
                                                                 + 2 * np.pi * k / struts))[:, None]
                       for k in range(struts) for sign in (-1, 1)]
            f.add_tube(helices, rng.uniform(0.05, 0.1), MU_STEEL * rng.uniform(0.5, 1.5))
            found.append("stent")
    if rng.random() < 0.1:
        start = rng.uniform(0, size, 2)
        heading = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.cos(heading), np.sin(heading)])
        normal = np.array([-direction[1], direction[0]])
        ticks = [[start + direction * k * 10 * f.ppm,
                  start + direction * k * 10 * f.ppm + normal * (8 if k % 5 == 0 else 4) * f.ppm]
                 for k in range(-60, 60)]
        f.add_tube([np.array(t) for t in ticks], rng.uniform(0.3, 0.6), MU_STEEL * rng.uniform(0.3, 1.0))
        found.append("ruler")
    if rng.random() < 0.12:
        letter = np.zeros(f.shape, np.uint8)
        height = rng.uniform(10, 20) * f.ppm
        cv2.putText(letter, str(rng.choice(["L", "R"])), tuple(int(c) for c in rng.uniform(0.05, 0.85, 2) * size),
                    cv2.FONT_HERSHEY_SIMPLEX, height / 22, 255, max(1, int(height / 8)), cv2.LINE_AA)
        f.dense += rng.uniform(0.3, 1.5) * letter.astype(np.float32) / 255
        found.append("lead letter")
    f.info["hardware"] = found


def _collimation(rng, size):
    """Source-side transmission (blades, iris, wedges; penumbra) and the display shutter (True: shown)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    transmission = np.ones((size, size), np.float32)
    shutter = np.ones((size, size), bool)
    kinds = []
    centre = size / 2 + rng.normal(0, 0.04 * size, 2)
    if rng.random() < 0.6:
        angle = rng.normal(0, 0.08)
        cos, sin = np.cos(angle), np.sin(angle)
        dx, dy = xx - centre[0], yy - centre[1]
        along, across = dx * cos + dy * sin, -dx * sin + dy * cos
        blade = rng.uniform(0.01, 0.1)
        open_ = np.ones((size, size), np.float32)
        penumbra = rng.uniform(1, 5)
        for coordinate in (along, -along, across, -across):
            if rng.random() < 0.75:
                edge = size * rng.uniform(0.25, 0.5)
                open_ *= 1 / (1 + np.exp(np.clip((coordinate - edge) / penumbra, -30, 30)))
        transmission *= blade + (1 - blade) * open_
        kinds.append("blades")
    if rng.random() < 0.2:
        radius = size * rng.uniform(0.42, 0.7)
        distance = np.hypot(xx - centre[0], yy - centre[1])
        blade = rng.uniform(0.01, 0.1)
        transmission *= blade + (1 - blade) / (1 + np.exp(np.clip((distance - radius) / rng.uniform(1, 5), -30, 30)))
        kinds.append("iris")
    if rng.random() < 0.25:
        heading = rng.uniform(0, 2 * np.pi)
        coordinate = (xx - centre[0]) * np.cos(heading) + (yy - centre[1]) * np.sin(heading)
        wedge = rng.uniform(0.3, 0.7)
        transmission *= 1 - (1 - wedge) / (1 + np.exp(np.clip((size * rng.uniform(0.1, 0.45) - coordinate)
                                                              / rng.uniform(3, 15), -30, 30)))
        kinds.append("wedge")
    if rng.random() < 0.45:
        if rng.random() < 0.5:
            shutter = np.hypot(xx - size / 2, yy - size / 2) <= size * rng.uniform(0.45, 0.62)
            kinds.append("round shutter")
        else:
            m = (rng.uniform(0, 0.12, 4) * size).astype(int)
            shutter[:m[0]] = shutter[size - m[1]:] = False
            shutter[:, :m[2]] = shutter[:, size - m[3]:] = False
            kinds.append("rectangular shutter")
    return transmission, shutter, kinds


def _overlays(rng, size):
    """Burned-in text, a scale bar and a cross-hair, drawn after display processing (255: on)."""
    layer = np.zeros((size, size), np.uint8)
    lines = [0, 0, 0, 0]  # px of text already stacked in each corner
    if rng.random() < 0.7:
        for _ in range(int(rng.integers(1, 7))):
            text = str(rng.choice(TEXT)).format(
                a=int(rng.integers(0, 60)), b=int(rng.integers(0, 40)), f=int(rng.choice([7, 10, 15, 30])),
                kv=int(rng.integers(60, 120)), ma=rng.uniform(1, 20), n=int(rng.integers(1, 99)), m=99,
                h=int(rng.integers(0, 24)), mi=int(rng.integers(0, 60)), s=int(rng.integers(0, 60)),
                pid=int(rng.integers(10 ** 5, 10 ** 7)), sid=int(rng.integers(90, 120)),
                fov=int(rng.choice([15, 20, 25, 31, 42])), z=int(rng.integers(0, 4)), dap=rng.uniform(0, 90),
                t=rng.uniform(0, 40))
            font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN]))
            scale = rng.uniform(0.3, 0.8) * size / 512 * (1.6 if font == cv2.FONT_HERSHEY_PLAIN else 1.0)
            thickness = int(rng.integers(1, 3))
            (width, height), _ = cv2.getTextSize(text, font, scale, thickness)
            corner = int(rng.integers(0, 4))
            x = int(0.02 * size) if corner % 2 == 0 else int(size * 0.98) - width
            y = int(0.02 * size) + height + lines[corner] if corner < 2 else int(size * 0.98) - lines[corner]
            lines[corner] += int(height * 1.6)
            cv2.putText(layer, text, (x, y), font, scale, 255, thickness, cv2.LINE_AA)
    if rng.random() < 0.15:
        x, y = (rng.uniform(0.1, 0.9, 2) * size).astype(int)
        length = int(rng.uniform(0.05, 0.2) * size)
        cv2.line(layer, (x, y), (x + length, y), 255, 1)
        cv2.line(layer, (x, y - 4), (x, y + 4), 255, 1)
        cv2.line(layer, (x + length, y - 4), (x + length, y + 4), 255, 1)
    if rng.random() < 0.1:
        x, y = (rng.uniform(0.3, 0.7, 2) * size).astype(int)
        arm = int(rng.uniform(0.01, 0.04) * size)
        cv2.line(layer, (x - arm, y), (x + arm, y), 255, 1)
        cv2.line(layer, (x, y - arm), (x, y + arm), 255, 1)
    return layer


def scene(seed: int, index: int, size: int = 512):
    """Frame `index` of `seed` before the image chain: its maps (f.soft, f.dense with f.wire in it, and
    f.distractors: the devices that are not the wire), source-side transmission, display shutter, open
    field and the wire's geometric mask (bool)."""
    rng = np.random.default_rng([seed, index])
    f = _Frame(rng, size)
    transmission, shutter, collimation = _collimation(rng, size)
    open_field = shutter & (transmission > 0.5)
    _anatomy(f)
    path, half_width, _ = _guidewire(f, open_field)
    if rng.random() < 0.2:  # the wire inside an opacified vessel
        _vessels(f, along=path)
    before = f.soft + f.dense
    _catheters(f, path)
    _leads_and_electrodes(f)
    _hardware(f, path)
    f.distractors = f.soft + f.dense - before
    f.info["collimation"] = collimation
    mask = _coverage(f.shape, [path], half_width) >= 0.5
    centre_line = np.zeros(f.shape, np.uint8)
    cv2.polylines(centre_line, [np.ascontiguousarray(np.round(path * 16).clip(-2e8, 2e8).astype(np.int32))],
                  False, 1, 1, cv2.LINE_8, 4)
    return f, transmission, shutter, open_field, (mask | (centre_line > 0)) & open_field


def render(seed: int, index: int, size: int = 512):
    """(image uint8 or uint16, mask uint8 0/255, draws) of frame `index` of `seed`."""
    f, transmission, shutter, open_field, mask = scene(seed, index, size)
    tau_wire = f.wire
    rng = np.random.default_rng([seed, index, 3])
    # The wire must show in the written frame (a label on an invisible wire teaches nothing): if its
    # contrast-to-noise there falls short of a drawn target, its attenuation is raised (a denser wire,
    # a closer magnification) and the same image chain, same draws, runs again.
    wanted = rng.uniform(0.8, 2.5)
    gain, photons = 1.0, None
    for _ in range(4):
        image, overlay, info, photons = _image_chain([seed, index], f, tau_wire * gain, transmission, shutter,
                                                     open_field, mask, photons)
        cnr = _wire_cnr(image, mask & (overlay == 0), open_field & (overlay == 0), 2.0 ** info["bits"] - 1)
        if cnr >= wanted or gain >= 40:
            break
        gain = min(40.0, gain * float(np.clip(wanted / max(cnr, 0.1), 1.5, 6.0)))
    # Where the window clips the wire and its surroundings to black, or the wire to white, it is not in the frame.
    top = 2 ** info["bits"] - 1
    ring = ((cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0) & ~mask).astype(np.float32)
    background = cv2.GaussianBlur(image.astype(np.float32) * ring, (0, 0), 3) / (
        cv2.GaussianBlur(ring, (0, 0), 3) + 1e-6)
    mask &= (overlay == 0) & ((image > 1) | (background > 1.5)) & (image < top)
    f.info.update(info, wire_gain=round(gain, 2), wire_cnr=round(cnr, 2))
    return image, mask.astype(np.uint8) * 255, f.info


def _wire_cnr(image, mask, valid, top):
    """Contrast of the wire against its surroundings 2-5 px away, over the pixel noise there or 3% of the
    full scale `top`, whichever is larger (a smooth frame does not make a faint wire visible): the 20th
    percentile along the wire (contrast averaged over about 10 px of it), so that most of it shows."""
    if not mask.any():
        return float("inf")
    values = image.astype(np.float32)
    wire = mask.astype(np.uint8)
    near = cv2.dilate(wire, np.ones((11, 11), np.uint8)) > 0
    ring = (near & ~(cv2.dilate(wire, np.ones((5, 5), np.uint8)) > 0) & valid).astype(np.float32)
    if ring.sum() < 10:
        return float("inf")
    noise = max(float(np.std((values - cv2.GaussianBlur(values, (0, 0), 2.0))[ring > 0])), 0.03 * top)
    background = cv2.GaussianBlur(values * ring, (0, 0), 4) / (cv2.GaussianBlur(ring, (0, 0), 4) + 1e-6)
    on = mask.astype(np.float32)
    contrast = cv2.GaussianBlur((background - values) * on, (0, 0), 5) / (cv2.GaussianBlur(on, (0, 0), 5) + 1e-6)
    return float(np.percentile(contrast[mask], 20)) / noise


def _image_chain(seed, f: _Frame, tau_wire, transmission, shutter, open_field, mask, photons=None):
    """The frame as written (uint8/uint16), its burned-in overlay, the chain's draws and its photons per
    unit fluence (drawn when None). The same seed gives the same draws whatever the wire's attenuation."""
    rng, noise = np.random.default_rng([*seed, 1]), np.random.default_rng([*seed, 2])
    size, info = f.size, {}
    # Beam: kV sets how much denser materials stand out of soft tissue; beam hardening makes thick paths
    # attenuate less per mm.
    soft_scale = rng.uniform(0.85, 1.15)
    dense_scale = soft_scale ** 3
    hardening = rng.uniform(0.01, 0.15)
    others = soft_scale * f.soft + dense_scale * (f.dense - f.wire)
    exit_fluence = lambda wire: np.exp(-np.log1p(hardening * np.clip(others + dense_scale * wire, 0, None))
                                       / hardening)
    primary = exit_fluence(tau_wire)
    if rng.random() < 0.15:  # detector lag: a fading copy of the wire where it was a frame ago
        shift = rng.normal(0, 3, 2)
        ghost = cv2.warpAffine(tau_wire, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]), (size, size))
        lag = rng.uniform(0.1, 0.4)
        primary = (1 - lag) * primary + lag * exit_fluence(ghost)
        info["lag"] = round(lag, 2)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    heel_angle = rng.uniform(0, 2 * np.pi)
    gain = (1 + rng.uniform(0, 0.25) * (xx * np.cos(heel_angle) + yy * np.sin(heel_angle))) * \
        (1 - rng.uniform(0, 0.5) * (xx ** 2 + yy ** 2) * 2)
    primary *= transmission * gain
    if rng.random() < 0.4:  # grid lines, aliased by the pixel pitch into a fine or coarse stripe pattern
        heading = rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.02)
        period = rng.uniform(1.6, 8) / size
        primary *= 1 - rng.uniform(0.005, 0.04) * (
            0.5 + 0.5 * np.cos(2 * np.pi * (xx * np.cos(heading) + yy * np.sin(heading)) / period))
        info["grid_lines"] = True
    if rng.random() < 0.1:  # patient or table motion during the pulse
        length = int(rng.integers(2, 6))
        kernel = np.zeros((length, length), np.float32)
        cv2.line(kernel, (0, length // 2), (length - 1, length // 2), 1.0, 1)
        rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rotation, (length, length))
        primary = cv2.filter2D(primary, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)
        info["motion_px"] = length
    focal = rng.uniform(0.3, 1.1)
    primary = cv2.GaussianBlur(primary, (0, 0), focal)
    spr = _loguniform(rng, 0.15, 2.5)
    scatter = spr * _lowpass(primary, rng.uniform(20, 80) * size / 512)
    signal = primary + scatter

    # Dose: counts per pixel at the field's median, raised where the wire would sink below a drawn
    # contrast-to-noise (an operator steps the dose up until the wire shows).
    counts, wanted = 10 ** rng.uniform(1.3, 3.3), rng.uniform(0.8, 2.5)
    level = float(np.median(signal[open_field])) if open_field.any() else float(np.median(signal))
    if photons is None:
        photons = counts / max(level, 1e-9)
        if mask.any():
            drop = cv2.GaussianBlur(1 - np.exp(-dense_scale * tau_wire), (0, 0), focal)[mask]
            contrast = float(np.median(drop * (primary[mask] / signal[mask])))
            cnr = contrast * np.sqrt(photons * float(np.median(signal[mask])))
            if 0 < cnr < wanted:
                photons *= min((wanted / cnr) ** 2, 100)
    info.update(spr=round(spr, 2), counts=round(float(photons * level), 1), focal_px=round(focal, 2))
    detected = noise.poisson(signal * photons).astype(np.float32)
    detected = cv2.GaussianBlur(detected, (0, 0), rng.uniform(0.4, 0.9))
    detected += noise.normal(0, rng.uniform(0.5, 4.0), f.shape).astype(np.float32)
    detected *= 1 + rng.uniform(0, 0.02) * _smooth_noise(rng, f.shape, 40)  # residual gain pattern
    if rng.random() < 0.08:
        column = int(rng.integers(0, size))
        detected[:, column] *= rng.uniform(0.85, 1.15)
        info["bad_column"] = column
    detected = np.maximum(detected + rng.uniform(0, 0.02) * photons * level, 0.5)  # offset left after correction

    # Display chain.
    if rng.random() < 0.7:
        display = np.log(detected)
    else:
        display = detected ** rng.uniform(0.3, 0.6)
    if rng.random() < 0.7:  # dynamic range compression (harmonisation)
        display -= rng.uniform(0.3, 0.8) * _lowpass(display, rng.uniform(30, 100) * size / 512)
    if rng.random() < 0.5:
        display += rng.uniform(0.3, 1.5) * (display - cv2.GaussianBlur(display, (0, 0), rng.uniform(1.5, 5)))
    elif rng.random() < 0.3:
        display = cv2.GaussianBlur(display, (0, 0), rng.uniform(0.5, 1.0))  # spatial noise reduction
    values = display[open_field] if open_field.sum() > 100 else display.ravel()
    low, high = np.percentile(values, [rng.uniform(0, 1.5), rng.uniform(97, 100)])
    near = (cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0) & open_field
    if near.sum() > 20:  # the window is set so that the wire's surroundings are not clipped
        around = np.percentile(display[near], [1, 99])
        low, high = min(low, around[0]), max(high, around[1])
    spread = (high - low) * rng.uniform(0.85, 1.3)
    middle = (high + low) / 2 + rng.uniform(-0.08, 0.08) * (high - low)
    image = np.clip((display - middle) / max(spread, 1e-6) + 0.5, 0, 1) ** rng.uniform(0.6, 1.25)
    bits = 8 if rng.random() < 0.7 else int(rng.choice([12, 16]))
    top = 2 ** bits - 1
    image = np.round(image * (top - 1)) + 1  # zero is kept for the display shutter
    image[~shutter] = 0
    overlay = _overlays(rng, size)
    image = np.where(overlay > 0, np.maximum(image, overlay.astype(np.float32) / 255 * top), image)
    info["bits"] = bits
    return image.astype(np.uint8 if bits == 8 else np.uint16), overlay, info, photons


def write_frame(folder: Path, name: str, image: np.ndarray, mask: np.ndarray) -> None:
    for sub, array in (("images", image), ("masks", mask)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(folder / sub / name), array):
            raise OSError(f"could not write {folder / sub / name}")


def _one(job):
    folder, seed, index, size = job
    image, mask, info = render(seed, index, size)
    name = f"c{seed}_{index:06d}.png"
    write_frame(Path(folder), name, image, mask)
    return name, info


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="folder to write images/, masks/, frames.jsonl and set.json into")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=512, help="frame side in px")
    parser.add_argument("--first", type=int, default=0, help="index of the first frame (to extend a set)")
    parser.add_argument("--workers", type=int, default=1, help="processes")
    args = parser.parse_args(argv)
    if args.count < 1 or args.size < 64:
        parser.error("--count must be >= 1 and --size >= 64")
    cv2.setNumThreads(1)  # one core per process; --workers for more
    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(str(folder), args.seed, i, args.size) for i in range(args.first, args.first + args.count)]
    started = time.perf_counter()
    with open(folder / "frames.jsonl", "a") as log:
        pool = Pool(args.workers) if args.workers > 1 else None
        for name, info in (pool.imap(_one, jobs) if pool else map(_one, jobs)):
            log.write(json.dumps({"name": name, **info}) + "\n")
        if pool:
            pool.close()
            pool.join()
    elapsed = time.perf_counter() - started
    command = "python -m guidewire.segmentation.phantom_frames " + " ".join(sys.argv[1:] if argv is None else argv)
    (folder / "set.json").write_text(json.dumps({
        "generator": "guidewire.segmentation.phantom_frames (C)", "command": command, "seed": args.seed,
        "first": args.first, "count": args.count, "size": args.size}, indent=1) + "\n")
    print(f"{args.count} frames in {elapsed:.1f} s ({elapsed / args.count * 1000:.0f} ms a frame) -> {folder}")


if __name__ == "__main__":
    main()
