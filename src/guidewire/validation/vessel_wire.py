"""Guidewire shapes that follow random vessel paths, for held-out validation.

This generator is deliberately independent of the project's own wire model: it
shares no code with it and uses a different construction, so that shapes drawn
here are "held out" in design and not only in seed.

Construction, per attempt (all randomness from one ``numpy`` generator seeded by
``(seed, attempt)``):

1. **Vessel.**  A biased 3-D random walk of waypoints (10-20 mm steps).  The
   heading turns per step by a persistent "curl" (which makes partial loops)
   plus Gaussian jitter; the pitch is an AR(1) process clipped to +-40 deg so
   the vessel rises and falls.  With a per-wire probability a step is a
   *bifurcation*: the wire picks the left or right (occasionally upper or
   lower) daughter branch, a 25-65 deg turn.  A candidate step is accepted only
   if its waypoint lies inside the workspace shrunk by a margin and a point
   20 mm further along stays inside too, so the walk turns before it meets a
   wall; when no random candidate passes, the step is steered by a fan search
   that maximises the clearance.  Some wires draw "quiet" parameters and come
   out nearly straight.  The waypoints are joined by a centripetal
   Catmull-Rom spline whose first segment is collinear with the entry
   direction, sampled densely and parameterised by arc length.  A small,
   smooth lateral offset (0-2 mm, a lumen) is added to the axis.

2. **Wire.**  The inextensible wire is integrated from the entry point in
   exact steps of arc length.  Its curvature vector steers it (pure pursuit)
   towards a point a few millimetres ahead on the vessel axis (plus the lumen
   offset), is rate-limited so that curvature varies smoothly, and is clipped
   to ``0.95 * max_curvature``.  Where the vessel bends more tightly than the
   wire may, the wire cuts the corner inside the vessel, as a real wire does.
   Each step rotates the tangent by ``|kappa| * h`` about the binormal, and the
   point moves along the chord (the bisector of the two tangents), so
   consecutive points are exactly ``h`` apart and both the node tangents and
   the chord directions turn by at most ``0.95 * max_curvature * h``.

3. **Tip.**  Over the distal 5-15 mm the wire stops following the vessel and
   takes its pre-shaped form, bent in a random plane (a direction normal to
   the tangent, parallel-transported along the tip): *straight*, *angled*
   (a 30-60 deg bend followed by a short straight end) or *J* (a constant
   curvature arc over the whole distal section).  The bend angle is limited by
   the curvature bound and the distal length, so at 60 1/m an angled tip
   bends by at most about 45 deg and a J-tip is a gentle hook, not a
   half-circle.

A draw whose points leave the workspace, or that comes within 3 mm of a part of
itself more than 30 mm further along (a vessel crossing itself), is discarded
and redrawn with the derived seed ``(seed, attempt + 1)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["VesselWire", "vessel_wire"]

_MAX_ATTEMPTS = 200
_CURVATURE_SAFETY = 0.95  # the wire's curvature is clipped to this fraction of the bound
_DEG = math.pi / 180.0
_SELF_CLEARANCE = 0.003  # m: parts of the wire further apart than _SELF_GAP along it stay this far apart
_SELF_GAP = 0.03  # m of arc length


@dataclass(frozen=True)
class VesselWire:
    """A wire laid along a random vessel; arrays are read-only."""

    centreline: np.ndarray  # (N,3) m, bench frame, entry point -> tip, consecutive points equally spaced
    tangents: np.ndarray  # (N,3) unit tangents towards the tip
    inserted_length: float  # m, the arc length of the centreline


def vessel_wire(
    seed: int,
    inserted_length: float,
    entry_point=(-0.12, 0.0, 0.025),
    entry_direction=(1.0, 0.0, 0.0),
    workspace=((-0.125, 0.095), (-0.06, 0.06), (0.004, 0.07)),
    spacing: float = 0.001,
    max_curvature: float = 60.0,
) -> VesselWire:
    """Draw a wire of ``inserted_length`` metres that follows a random vessel.

    The wire starts at ``entry_point`` with tangent ``entry_direction``
    (normalised), every point lies inside ``workspace`` (``(x, y, z)`` ranges,
    metres), the turning angle between consecutive tangents (and consecutive
    chords) divided by the spacing never exceeds ``max_curvature`` (1/m), and the
    result depends only on the arguments.

    The ``N - 1 = round(inserted_length / spacing)`` segments all have length
    ``inserted_length / (N - 1)``: exactly ``spacing`` when the length is a
    multiple of it (the usual case, e.g. millimetres), otherwise within half a
    segment's share of it, so that the arc length equals ``inserted_length``.
    """
    length = float(inserted_length)
    spacing = float(spacing)
    max_curvature = float(max_curvature)
    if not (length > 0.0 and math.isfinite(length)):
        raise ValueError(f"inserted_length must be positive, got {inserted_length!r}")
    if not (spacing > 0.0 and math.isfinite(spacing)):
        raise ValueError(f"spacing must be positive, got {spacing!r}")
    if not (max_curvature > 0.0):
        raise ValueError(f"max_curvature must be positive, got {max_curvature!r}")
    p0 = np.asarray(entry_point, dtype=float).reshape(3)
    d0 = np.asarray(entry_direction, dtype=float).reshape(3)
    norm = float(np.linalg.norm(d0))
    if not norm > 0.0:
        raise ValueError("entry_direction must be non-zero")
    d0 = d0 / norm
    box = np.asarray(workspace, dtype=float).reshape(3, 2)
    lo, hi = box[:, 0], box[:, 1]
    if np.any(hi <= lo):
        raise ValueError(f"empty workspace {workspace!r}")
    if np.any(p0 < lo) or np.any(p0 > hi):
        raise ValueError(f"entry_point {tuple(p0)} lies outside the workspace {workspace!r}")

    segments = max(2, round(length / spacing))
    h = length / segments
    seed_entropy = int(seed) % (1 << 64)

    for attempt in range(_MAX_ATTEMPTS):
        rng = np.random.default_rng([seed_entropy, attempt])
        points, tangents = _draw(rng, length, segments, h, p0, d0, lo, hi, max_curvature)
        if np.all(points >= lo) and np.all(points <= hi) and _clear_of_itself(points, h):
            points.setflags(write=False)
            tangents.setflags(write=False)
            return VesselWire(centreline=points, tangents=tangents, inserted_length=length)
    raise RuntimeError(
        f"no wire of length {length} m fits the workspace {workspace!r} after {_MAX_ATTEMPTS} draws (seed {seed})"
    )


def _clear_of_itself(points, h):
    """False when the wire (a vessel) passes within _SELF_CLEARANCE of itself further along."""
    pairs = cKDTree(points).query_pairs(_SELF_CLEARANCE, output_type="ndarray")
    return not np.any(np.abs(pairs[:, 1] - pairs[:, 0]) * h > _SELF_GAP)


# ----------------------------------------------------------------------------- one draw


def _draw(rng, length, segments, h, p0, d0, lo, hi, max_curvature):
    kappa_cap = _CURVATURE_SAFETY * max_curvature
    look = rng.uniform(0.006, 0.012)  # pure-pursuit look-ahead along the vessel, m
    tip = _tip_shape(rng, length, kappa_cap)
    waypoints = _vessel_waypoints(rng, p0, d0, lo, hi, total=length + look + 0.03)
    axis = _catmull_rom(waypoints, d0)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(axis, axis=0), axis=1))])
    target = axis + _lumen_offset(rng, axis, arc)
    return _lay_wire(rng, axis, arc, target, look, tip, segments, h, p0, d0, kappa_cap)


def _tip_shape(rng, length, kappa_cap):
    """(distal length, bend length, bend curvature) of the pre-shaped tip."""
    longest = min(0.015, 0.3 * length)
    shortest = min(0.005, longest)
    kind = rng.random()
    if kind < 0.25:  # straight
        distal = rng.uniform(shortest, longest)
        return distal, 0.0, 0.0
    if kind < 0.7:  # angled: a bend, then a short straight end
        angle = rng.uniform(30.0, 60.0) * _DEG
        kappa = rng.uniform(0.75, 1.0) * kappa_cap
        bend = angle / kappa
        straight_end = rng.uniform(0.0015, 0.003)
        distal = min(longest, max(shortest, bend + straight_end) + rng.uniform(0.0, 0.003))
        bend = min(bend, max(0.0, distal - straight_end))  # short wires / tight bounds: a smaller angle
        return distal, bend, kappa
    # J: one arc over the whole distal section
    distal = rng.uniform(min(0.008, longest), longest)
    return distal, distal, rng.uniform(0.7, 1.0) * kappa_cap


def _vessel_waypoints(rng, p0, d0, lo, hi, total):
    """Biased random walk of vessel waypoints from the entry point, at least ``total`` long."""
    margin = np.minimum(0.008, 0.2 * (hi - lo))
    inner_lo, inner_hi = lo + margin, hi - margin
    guard = np.minimum(0.002, 0.05 * (hi - lo))
    look_lo, look_hi = lo + guard, hi - guard
    look_ahead = 0.02

    quiet = rng.random() < 0.15  # a nearly straight vessel
    sigma_yaw = rng.uniform(0.5, 3.0) * _DEG if quiet else rng.uniform(3.0, 18.0) * _DEG
    curl = 0.0 if (quiet or rng.random() < 0.35) else rng.normal(0.0, 6.0) * _DEG
    sigma_pitch = rng.uniform(1.0, 4.0) * _DEG if quiet else rng.uniform(4.0, 16.0) * _DEG
    pitch_memory = rng.uniform(0.5, 0.9)
    pitch_max = 40.0 * _DEG
    p_branch = 0.0 if quiet else rng.uniform(0.0, 0.3)

    yaw = math.atan2(d0[1], d0[0])
    pitch = math.asin(max(-1.0, min(1.0, d0[2])))
    first = p0 + d0 * rng.uniform(0.012, 0.02)
    points = [p0, first]
    walked = float(np.linalg.norm(first - p0))
    here = first
    while walked < total:
        step = rng.uniform(0.010, 0.020)
        chosen = None
        for _ in range(8):
            d_yaw = curl + rng.normal(0.0, sigma_yaw)
            d_pitch = rng.normal(0.0, sigma_pitch)
            if rng.random() < p_branch:  # bifurcation: take one daughter branch
                turn = rng.uniform(25.0, 65.0) * _DEG * (1.0 if rng.random() < 0.5 else -1.0)
                if rng.random() < 0.25:
                    d_pitch += 0.6 * turn
                else:
                    d_yaw += turn
            new_yaw = yaw + d_yaw
            new_pitch = max(-pitch_max, min(pitch_max, pitch_memory * pitch + d_pitch))
            direction = _direction(new_yaw, new_pitch)
            nxt = here + step * direction
            ahead = nxt + look_ahead * direction
            if _inside(nxt, inner_lo, inner_hi) and _inside(ahead, look_lo, look_hi):
                chosen = new_yaw, new_pitch, nxt
                break
        if chosen is None:
            chosen = _steer_clear(here, yaw, step, look_ahead, inner_lo, inner_hi, look_lo, look_hi)
        yaw, pitch, here = chosen
        points.append(here)
        walked += step
    return np.asarray(points)


def _direction(yaw, pitch):
    c = math.cos(pitch)
    return np.array([c * math.cos(yaw), c * math.sin(yaw), math.sin(pitch)])


def _inside(p, lo, hi):
    return bool(np.all(p >= lo) and np.all(p <= hi))


_FAN_YAW = np.linspace(-120.0, 120.0, 13) * _DEG
_FAN_PITCH = np.array([-35.0, -15.0, 0.0, 15.0, 35.0]) * _DEG


def _steer_clear(here, yaw, step, look_ahead, inner_lo, inner_hi, look_lo, look_hi):
    """The fan direction whose next waypoint and look-ahead point keep the most clearance."""
    d_yaw, pitch = np.meshgrid(_FAN_YAW, _FAN_PITCH, indexing="ij")
    d_yaw, pitch = d_yaw.ravel(), pitch.ravel()
    yaws = yaw + d_yaw
    dirs = np.stack([np.cos(pitch) * np.cos(yaws), np.cos(pitch) * np.sin(yaws), np.sin(pitch)], axis=1)
    nxt = here + step * dirs
    ahead = nxt + look_ahead * dirs
    clearance = np.minimum(
        np.minimum(nxt - inner_lo, inner_hi - nxt).min(axis=1),
        np.minimum(ahead - look_lo, look_hi - ahead).min(axis=1),
    )
    score = clearance - 0.002 * np.abs(d_yaw) - 0.002 * np.abs(pitch)
    best = int(np.argmax(score))
    return float(yaws[best]), float(pitch[best]), nxt[best]


def _catmull_rom(points, d0, samples=24):
    """Dense centripetal Catmull-Rom spline through ``points``, leaving the first along ``d0``."""
    first = np.linalg.norm(points[1] - points[0])
    ends = [points[0] - d0 * first], [2.0 * points[-1] - points[-2]]
    ctrl = np.concatenate([ends[0], points, ends[1]])
    a, b, c, d = ctrl[:-3], ctrl[1:-2], ctrl[2:-1], ctrl[3:]

    def knot(p, q):
        return np.sqrt(np.linalg.norm(q - p, axis=1)) + 1e-9

    t0 = np.zeros(len(a))
    t1 = t0 + knot(a, b)
    t2 = t1 + knot(b, c)
    t3 = t2 + knot(c, d)
    u = np.arange(samples) / samples
    t = (t1[:, None] + u[None, :] * (t2 - t1)[:, None])[..., None]  # (segments, samples, 1)
    t0, t1, t2, t3 = (x[:, None, None] for x in (t0, t1, t2, t3))
    a, b, c, d = (x[:, None, :] for x in (a, b, c, d))
    a1 = (t1 - t) / (t1 - t0) * a + (t - t0) / (t1 - t0) * b
    a2 = (t2 - t) / (t2 - t1) * b + (t - t1) / (t2 - t1) * c
    a3 = (t3 - t) / (t3 - t2) * c + (t - t2) / (t3 - t2) * d
    b1 = (t2 - t) / (t2 - t0) * a1 + (t - t0) / (t2 - t0) * a2
    b2 = (t3 - t) / (t3 - t1) * a2 + (t - t1) / (t3 - t1) * a3
    curve = (t2 - t) / (t2 - t1) * b1 + (t - t1) / (t2 - t1) * b2
    return np.concatenate([curve.reshape(-1, 3), points[-1:]])


def _lumen_offset(rng, axis, arc):
    """A smooth lateral offset of 0-2 mm from the vessel axis, zero at the entry."""
    radius = rng.uniform(0.0, 0.002)
    wavelengths = rng.uniform(0.02, 0.08, size=3)
    phases = rng.uniform(0.0, 2.0 * math.pi, size=3)
    amplitudes = rng.normal(size=(3, 3))
    offset = np.sin(2.0 * math.pi * arc[:, None] / wavelengths[None, :] + phases[None, :]) @ amplitudes
    tangent = np.gradient(axis, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-15
    offset -= np.sum(offset * tangent, axis=1, keepdims=True) * tangent
    peak = float(np.max(np.linalg.norm(offset, axis=1)))
    if peak > 0.0:
        offset *= radius / peak
    return offset * np.minimum(1.0, arc / 0.02)[:, None]


def _lay_wire(rng, axis, arc, target, look, tip, segments, h, p0, d0, kappa_cap):
    """Integrate the wire: pursue the vessel, then take the tip's pre-shape over the distal section."""
    distal, bend, kappa_tip = tip
    tip_start = segments - round(distal / h)
    bend_end = tip_start + round(bend / h)
    follow_rate = kappa_cap * min(1.0, h / 0.003)  # |d kappa| per step: full range over 3 mm
    tip_rate = kappa_cap * min(1.0, h / 0.0015)

    ax, ay, az = (axis[:, k].tolist() for k in range(3))
    gx, gy, gz = (target[:, k].tolist() for k in range(3))
    s = arc.tolist()
    last = len(s) - 1

    px, py, pz = (float(v) for v in p0)
    tx, ty, tz = (float(v) for v in d0)
    kx = ky = kz = 0.0
    bx = by = bz = 0.0
    j = 0  # vessel sample at or behind the wire's projection
    jt = 0  # vessel sample at or behind the look-ahead target
    points = [(px, py, pz)]
    tangents = [(tx, ty, tz)]
    for i in range(segments):
        if i < tip_start:
            # projection of the wire point onto the vessel axis, marching forward
            while j < last - 1:
                d_here = (px - ax[j]) ** 2 + (py - ay[j]) ** 2 + (pz - az[j]) ** 2
                d_next = (px - ax[j + 1]) ** 2 + (py - ay[j + 1]) ** 2 + (pz - az[j + 1]) ** 2
                if d_next > d_here:
                    break
                j += 1
            ex, ey, ez = ax[j + 1] - ax[j], ay[j + 1] - ay[j], az[j + 1] - az[j]
            seg2 = ex * ex + ey * ey + ez * ez
            f = ((px - ax[j]) * ex + (py - ay[j]) * ey + (pz - az[j]) * ez) / seg2 if seg2 > 0.0 else 0.0
            f = min(1.0, max(0.0, f))
            s_goal = s[j] + f * (s[j + 1] - s[j]) + look
            jt = max(jt, j)
            while jt < last - 1 and s[jt + 1] < s_goal:
                jt += 1
            span = s[jt + 1] - s[jt]
            w = min(1.0, max(0.0, (s_goal - s[jt]) / span)) if span > 0.0 else 0.0
            wx = gx[jt] + w * (gx[jt + 1] - gx[jt]) - px
            wy = gy[jt] + w * (gy[jt + 1] - gy[jt]) - py
            wz = gz[jt] + w * (gz[jt + 1] - gz[jt]) - pz
            dist2 = wx * wx + wy * wy + wz * wz
            along = wx * tx + wy * ty + wz * tz
            if dist2 > 1e-18:
                # pure pursuit: the arc through the target has curvature 2 * (w perp t) / |w|^2
                cx = 2.0 * (wx - along * tx) / dist2
                cy = 2.0 * (wy - along * ty) / dist2
                cz = 2.0 * (wz - along * tz) / dist2
            else:
                cx = cy = cz = 0.0
            rate = follow_rate
        else:
            if i == tip_start:  # the plane of the tip's bend: a random direction normal to the tangent
                rx, ry, rz = rng.normal(size=3).tolist()
                dot = rx * tx + ry * ty + rz * tz
                bx, by, bz = rx - dot * tx, ry - dot * ty, rz - dot * tz
                nb = math.sqrt(bx * bx + by * by + bz * bz) or 1.0
                bx, by, bz = bx / nb, by / nb, bz / nb
            if i < bend_end:
                cx, cy, cz = kappa_tip * bx, kappa_tip * by, kappa_tip * bz
            else:
                cx = cy = cz = 0.0
            rate = tip_rate

        # rate-limit the change of the curvature vector, keep it normal to t, clip its size
        dx, dy, dz = cx - kx, cy - ky, cz - kz
        dn = math.sqrt(dx * dx + dy * dy + dz * dz)
        if dn > rate:
            dx, dy, dz = dx * rate / dn, dy * rate / dn, dz * rate / dn
        kx, ky, kz = kx + dx, ky + dy, kz + dz
        dot = kx * tx + ky * ty + kz * tz
        kx, ky, kz = kx - dot * tx, ky - dot * ty, kz - dot * tz
        kn = math.sqrt(kx * kx + ky * ky + kz * kz)
        if kn > kappa_cap:
            kx, ky, kz = kx * kappa_cap / kn, ky * kappa_cap / kn, kz * kappa_cap / kn
            kn = kappa_cap

        # rotate the tangent by |k| h about the binormal; the curvature vector turns with it
        if kn > 0.0:
            theta = kn * h
            c, sn = math.cos(theta), math.sin(theta)
            nx, ny, nz = kx / kn, ky / kn, kz / kn
            ux, uy, uz = c * tx + sn * nx, c * ty + sn * ny, c * tz + sn * nz
            kx, ky, kz = kn * (c * nx - sn * tx), kn * (c * ny - sn * ty), kn * (c * nz - sn * tz)
        else:
            ux, uy, uz = tx, ty, tz
        un = math.sqrt(ux * ux + uy * uy + uz * uz)
        ux, uy, uz = ux / un, uy / un, uz / un

        # move along the chord, the bisector of the two tangents: exactly h per step
        hx, hy, hz = tx + ux, ty + uy, tz + uz
        hn = math.sqrt(hx * hx + hy * hy + hz * hz)
        px, py, pz = px + h * hx / hn, py + h * hy / hn, pz + h * hz / hn
        tx, ty, tz = ux, uy, uz
        if i >= tip_start:  # parallel-transport the bend plane's direction
            dot = bx * tx + by * ty + bz * tz
            bx, by, bz = bx - dot * tx, by - dot * ty, bz - dot * tz
            nb = math.sqrt(bx * bx + by * by + bz * bz) or 1.0
            bx, by, bz = bx / nb, by / nb, bz / nb
        points.append((px, py, pz))
        tangents.append((tx, ty, tz))

    points = np.array(points)
    points[0] = p0  # bit-exact start
    tangents = np.array(tangents)
    tangents[0] = d0
    return points, tangents
