"""Guidewire insertion sequences inside a random vessel, for held-out validation.

Independent of the project's wire model (it shares no mechanics with it); only the
vessel *axis* is borrowed from :func:`vessel_wire`, which is itself independent.

Vessel (:func:`lumen_axis`): the centreline of a ``vessel_wire`` drawn in the workspace
shrunk by 3.2 mm, without its pre-shaped tip, is the axis; the lumen radius varies smoothly
along it within 1-3 mm (``1 + (1 + tanh u(s))`` mm, ``u`` a random offset plus a slow sine).
An axis that comes within ``r_i + r_j + 0.5 mm`` of itself 15 mm further along is redrawn.

Wire: a discrete elastic rod, exactly inextensible (the unknowns are its segment directions),
clamped at the entry with its first segment along the entry direction, is inserted from 5 mm
in sub-steps of at most 2 mm.  Each sub-step warm-starts from the previous shape (the body
keeps its shape, the distal section's material moves forward with the push) and relaxes it
by Levenberg-Marquardt to a minimum of, over the bending stiffness EI: bending energy
``sum |d_i - R_i d_(i-1)|^2 / 2h`` (``R_i`` the tip's rest turn, identity in the body),
stiff penalties for leaving the lumen (the wire's centre stays 0.18 mm, its radius, inside
the wall) and for curvature over 55 1/m, the work of axial friction (a force per length ``f``
along the vessel on every node and ``P`` on the tip, both opposing the motion) and a drag on
the body's segments turning away from their previous directions (lateral wall friction).
Mechanics rule: inserting, friction compresses the wire and pushes its body towards the outer
walls of bends; retracting, it is in tension and pulled towards the inner walls.  The tip
(5-15 mm: straight, angled 30-60 deg or J, its angle limited by the curvature bound) bends in
the plane of a random roll in a frame parallel-transported from the entry (a torque-stiff
wire that the robot does not turn); the lumen deflects it where it does not fit.  So the
wire is not the first ``L`` of a fixed path: its body crosses the lumen as the tip goes on.
Randomness: ``numpy`` generators seeded by ``(seed, stream, ...)``; results depend only on
the arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve
from scipy.spatial import cKDTree

from .vessel_wire import vessel_wire

__all__ = ["InsertionFrame", "Lumen", "insertion_sequence", "lumen_axis", "tip_path_departure"]

_DEG = math.pi / 180.0
_AXIS_STEP = 0.0005  # m between samples of the vessel axis
_MARGIN = 0.0032  # m the axis keeps from the workspace walls: the widest lumen plus 0.2 mm
_R_MIN, _R_MAX = 0.001, 0.003  # m, lumen radius
_WIRE_RADIUS = 0.00018  # m, a 0.014 inch wire
_SELF_GAP = 0.015  # m of axis arc beyond which the vessel must keep clear of itself
_MIN_LENGTH = 0.005  # m, the shortest wire simulated (and requested)
_MAX_SUBSTEP = 0.002  # m of insertion per relaxation
_MAX_CURVATURE = 60.0  # 1/m, the bound the output keeps
_KAPPA_CAP = 55.0  # 1/m, where the curvature penalty starts
_KAPPA_REST = 51.0  # 1/m, the largest curvature of the tip's pre-shape
# Penalty weights (residuals whose half square is an energy over EI): the wall is stiff enough
# that penetration stays at the micrometre level; the curvature penalty is ~1e4 times the
# bending stiffness; the drag (per m of body, per rad^2 of turn) is a tenth of it per segment.
_W_WALL = 1e5
_W_CURVATURE = 3.0
_DRAG = 1e5
_STREAM_VESSEL, _STREAM_MECHANICS = 0x5E55E1, 0x3EC4A


@dataclass(frozen=True)
class InsertionFrame:
    inserted_length: float  # m
    centreline: np.ndarray  # (N,3) m, bench frame, entry -> tip, ~spacing apart, arc length == inserted_length


@dataclass(frozen=True)
class Lumen:
    """The vessel: axis samples ``_AXIS_STEP`` apart from the entry, and the lumen radius at each."""

    points: np.ndarray  # (M,3) m
    tangents: np.ndarray  # (M,3) unit
    arc: np.ndarray  # (M,) m from the entry
    radius: np.ndarray  # (M,) m

    def distance(self, points):
        """(distance from the axis, lumen radius there, axis arc) for each of ``points`` (K,3).

        The nearest point of the axis polyline (next to its nearest sample); unambiguous
        because the vessel keeps clear of itself by more than two radii.
        """
        pts = np.asarray(points, dtype=float).reshape(-1, 3)
        j = cKDTree(self.points).query(pts)[1]
        return _project(self, pts, j)[:3]


def _project(lumen, pts, j):
    """Nearest point on the axis polyline's two segments at sample ``j``: (distance, radius, arc, parts).

    ``parts`` = (offset from the foot, unit segment direction, d radius / d arc) for gradients.
    """
    best = None
    for k in (np.maximum(j - 1, 0), np.minimum(j, len(lumen.points) - 2)):
        a, b = lumen.points[k], lumen.points[k + 1]
        chord = b - a
        size2 = np.einsum("ij,ij->i", chord, chord)
        t = np.clip(np.einsum("ij,ij->i", pts - a, chord) / size2, 0.0, 1.0)
        offset = pts - a - t[:, None] * chord
        dist = np.linalg.norm(offset, axis=1)
        size = np.sqrt(size2)
        radius = lumen.radius[k] + t * (lumen.radius[k + 1] - lumen.radius[k])
        arc = lumen.arc[k] + t * size
        slope = (lumen.radius[k + 1] - lumen.radius[k]) / size
        found = (dist, radius, arc, offset, chord / size[:, None], slope)
        if best is None:
            best = found
        else:
            closer = dist < best[0]
            best = tuple(np.where(closer[:, None] if v.ndim == 2 else closer, v, w) for v, w in zip(found, best))
    dist, radius, arc, offset, tan, slope = best
    return dist, radius, arc, (offset, tan, slope)


def lumen_axis(
    seed: int,
    max_length: float = 0.2,
    entry_point=(-0.12, 0.0, 0.025),
    entry_direction=(1.0, 0.0, 0.0),
    workspace=((-0.125, 0.095), (-0.06, 0.06), (0.004, 0.07)),
) -> Lumen:
    """The vessel of ``insertion_sequence(seed, lengths, ...)`` with ``max(lengths) == max_length``.

    The axis is at least ``max_length + 45 mm`` long (250 mm for any ``max_length`` up to
    190 mm, so the vessel does not depend on the lengths requested), starts at the entry
    point along the entry direction, and with its lumen stays inside ``workspace``.
    """
    max_length = float(max_length)
    if not (math.isfinite(max_length) and max_length > 0.0):
        raise ValueError(f"max_length must be positive, got {max_length!r}")
    p0, d0, lo, hi = _bench(entry_point, entry_direction, workspace)
    inner = np.stack([lo + _MARGIN, hi - _MARGIN], axis=1)
    if np.any(inner[:, 1] <= inner[:, 0]) or np.any(p0 < inner[:, 0]) or np.any(p0 > inner[:, 1]):
        raise ValueError(
            f"entry_point {tuple(p0)} must lie at least {_MARGIN * 1e3:.1f} mm inside the workspace {workspace!r}"
        )
    length = max(0.25, max_length + 0.06)
    entropy = int(seed) % (1 << 64)
    for attempt in range(100):
        rng = np.random.default_rng([entropy, _STREAM_VESSEL, attempt])
        wire = vessel_wire(int(rng.integers(1 << 62)), length, p0, d0, inner, spacing=_AXIS_STEP)
        keep = len(wire.centreline) - round(0.015 / _AXIS_STEP)  # drop vessel_wire's pre-shaped tip
        points, tangents = wire.centreline[:keep].copy(), wire.tangents[:keep].copy()
        arc = np.arange(keep) * (wire.inserted_length / (len(wire.centreline) - 1))
        u0, amp = rng.uniform(-1.5, 1.5), rng.uniform(0.0, 0.8)
        wavelength, phase = rng.uniform(0.04, 0.12), rng.uniform(0.0, 2.0 * math.pi)
        u = u0 + amp * np.sin(2.0 * math.pi * arc / wavelength + phase)
        radius = _R_MIN + (_R_MAX - _R_MIN) * 0.5 * (1.0 + np.tanh(u))
        if _clear_of_itself(points, arc, radius):
            for a in (points, tangents, arc, radius):
                a.setflags(write=False)
            return Lumen(points=points, tangents=tangents, arc=arc, radius=radius)
    raise RuntimeError(f"no vessel keeps clear of itself after 100 draws (seed {seed})")


def _clear_of_itself(points, arc, radius):
    pairs = cKDTree(points).query_pairs(2.0 * _R_MAX + 0.0005, output_type="ndarray")
    far = np.abs(arc[pairs[:, 0]] - arc[pairs[:, 1]]) > _SELF_GAP
    pairs = pairs[far]
    gap = np.linalg.norm(points[pairs[:, 0]] - points[pairs[:, 1]], axis=1)
    return not np.any(gap < radius[pairs[:, 0]] + radius[pairs[:, 1]] + 0.0005)


def _bench(entry_point, entry_direction, workspace):
    p0 = np.asarray(entry_point, dtype=float).reshape(3)
    d0 = np.asarray(entry_direction, dtype=float).reshape(3)
    norm = float(np.linalg.norm(d0))
    if not (math.isfinite(norm) and norm > 0.0) or not np.all(np.isfinite(p0)):
        raise ValueError(f"entry_point {entry_point!r} and a non-zero entry_direction {entry_direction!r} needed")
    box = np.asarray(workspace, dtype=float).reshape(3, 2)
    return p0, d0 / norm, box[:, 0], box[:, 1]


# ----------------------------------------------------------------------------- the sequence


def insertion_sequence(
    seed: int,
    lengths,
    entry_point=(-0.12, 0.0, 0.025),
    entry_direction=(1.0, 0.0, 0.0),
    workspace=((-0.125, 0.095), (-0.06, 0.06), (0.004, 0.07)),
    spacing: float = 0.001,
) -> list[InsertionFrame]:
    """The wire at each inserted length of ``lengths`` (m; increasing, short retractions allowed).

    Each frame's centreline has ``N - 1 = round(L / spacing)`` segments of exactly
    ``L / (N - 1)``, starts at ``entry_point`` with its first segment along
    ``entry_direction``, lies inside the lumen of :func:`lumen_axis` (same seed, entry
    and workspace, ``max_length = max(lengths)``) and has a curvature (turning angle over
    segment length) of at most 60 1/m.  The wire is inserted from 5 mm in sub-steps of at
    most 2 mm, so a frame depends on the lengths before it, as a real wire's shape does.
    """
    targets = np.asarray(lengths, dtype=float).reshape(-1)
    spacing = float(spacing)
    if not (math.isfinite(spacing) and 0.0 < spacing <= 0.002):
        raise ValueError(f"spacing must be in (0, 2 mm], got {spacing!r}")
    if targets.size == 0 or not np.all(np.isfinite(targets)) or np.any(targets < _MIN_LENGTH):
        raise ValueError(f"lengths must be finite and at least {_MIN_LENGTH} m, got {lengths!r}")
    lumen = lumen_axis(seed, float(targets.max()), entry_point, entry_direction, workspace)
    p0, d0, _, _ = _bench(entry_point, entry_direction, workspace)
    tip = _Tip(np.random.default_rng([int(seed) % (1 << 64), _STREAM_MECHANICS]))

    length = min(_MIN_LENGTH, float(targets[0]))
    state = _initial(p0, d0, length, spacing, lumen)
    state = _relax(state, lumen, tip, p0, d0, sign=1.0)
    frames = []
    for target in targets:
        start = state.length
        steps = max(1, math.ceil(abs(target - start) / _MAX_SUBSTEP - 1e-9))
        for m in range(1, steps + 1):
            new_length = target if m == steps else start + (target - start) * m / steps
            state = _step(state, new_length, spacing, tip, p0, d0, lumen)
        centreline = state.x.copy()
        centreline.setflags(write=False)
        frames.append(InsertionFrame(inserted_length=float(target), centreline=centreline))
    return frames


def _step(state, length, spacing, tip, p0, d0, lumen, depth=0):
    """One relaxed sub-step; where the relaxation stalls out of bounds, two half-steps instead."""
    sign = 1.0 if length >= state.length else -1.0
    out = _relax(_advance(state, length, spacing, tip, p0, d0, lumen), lumen, tip, p0, d0, sign)
    if depth < 2 and not _within_bounds(out, lumen):
        half = _step(state, 0.5 * (state.length + length), spacing, tip, p0, d0, lumen, depth + 1)
        out = _step(half, length, spacing, tip, p0, d0, lumen, depth + 1)
    return out


def _within_bounds(state, lumen):
    dist, radius, _, _ = _project(lumen, state.x, state.idx)
    d = _directions(state.x)
    turn = np.arccos(np.clip(np.sum(d[1:] * d[:-1], axis=1), -1.0, 1.0)) / state.h
    return bool(np.all(dist <= radius - 0.5 * _WIRE_RADIUS) and np.all(turn <= 0.98 * _MAX_CURVATURE))


def tip_path_departure(frames) -> np.ndarray:
    """Distances from the last frame's wire to the path its tip took, paired by arc length.

    The tip path is the polyline of the tips of the frames that reached new ground (longer
    than all before), parameterised by their inserted lengths; the distances are for the
    last frame's points whose arc length lies within that range.
    """
    reach, tips = [], []
    for frame in frames:
        if not reach or frame.inserted_length > reach[-1]:
            reach.append(frame.inserted_length)
            tips.append(frame.centreline[-1])
    reach, tips = np.asarray(reach), np.asarray(tips)
    last = frames[-1].centreline
    s = np.arange(len(last)) * (frames[-1].inserted_length / (len(last) - 1))
    inside = (s >= reach[0]) & (s <= reach[-1])
    path = np.stack([np.interp(s[inside], reach, tips[:, k]) for k in range(3)], axis=1)
    return np.linalg.norm(last[inside] - path, axis=1)


class _Tip:
    """The pre-shaped distal section and the friction, drawn per sequence."""

    def __init__(self, rng):
        kind = rng.random()
        self.length = rng.uniform(0.005, 0.015)
        self.roll = rng.uniform(0.0, 2.0 * math.pi)
        if kind < 0.25:  # straight
            self.bend, self.kappa = 0.0, 0.0
        elif kind < 0.7:  # angled: a bend, then a straight end of 1.5-3 mm
            self.kappa = rng.uniform(0.8, 1.0) * _KAPPA_REST
            end = rng.uniform(0.0015, 0.003)
            self.bend = min(rng.uniform(30.0, 60.0) * _DEG / self.kappa, self.length - end)
        else:  # J: one arc over the whole distal section
            self.kappa = rng.uniform(0.7, 1.0) * _KAPPA_REST
            self.bend = self.length
        # friction over EI: per length along the wire (1/m^3) and on the tip (1/m^2)
        # (a 0.014 inch nitinol wire has EI ~ 2.4e-5 N m^2: 0.12-0.72 N/m and 12-72 mN; much more
        # and the compression N would buckle it in the lumen into curvatures ~sqrt(2 N / EI) over the bound)
        self.friction = math.exp(rng.uniform(math.log(5e3), math.log(3e4)))
        self.tip_force = math.exp(rng.uniform(math.log(5e2), math.log(3e3)))


@dataclass
class _State:
    x: np.ndarray  # (N,3) nodes
    h: float  # segment length
    length: float
    idx: np.ndarray  # (N,) axis sample nearest each node


def _segments(length, spacing):
    n = max(2, round(length / spacing))
    return n, length / n


def _initial(p0, d0, length, spacing, lumen):
    n, h = _segments(length, spacing)
    x = p0 + np.arange(n + 1)[:, None] * h * d0
    idx = _nearest(lumen, x, np.round(np.arange(n + 1) * h / _AXIS_STEP).astype(int), 20)
    return _State(x=x, h=h, length=length, idx=idx)


def _advance(state, length, spacing, tip, p0, d0, lumen):
    """Warm start at ``length``: the body keeps its shape, the distal section moves with the push."""
    n, h = _segments(length, spacing)
    old = np.diff(state.x, axis=0) / state.h
    old_mid = (np.arange(len(old)) + 0.5) * state.h
    distal = min(tip.length, 0.5 * length, 0.5 * state.length)
    shift = length - state.length

    def material(s):  # arc in the old shape of the material (or body shape) now at arc s
        return np.where(s < length - distal, np.minimum(s, state.length - distal), s - shift)

    mid = material((np.arange(n) + 0.5) * h)
    d = np.stack([np.interp(mid, old_mid, old[:, k]) for k in range(3)], axis=1)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    d[0] = d0
    x = np.concatenate([p0[None], p0 + h * np.cumsum(d, axis=0)])
    s_old = np.arange(len(state.x)) * state.h
    guess = np.round(np.interp(material(np.arange(n + 1) * h), s_old, state.idx)).astype(int)
    return _State(x=x, h=h, length=length, idx=_nearest(lumen, x, guess, 20))


def _nearest(lumen, x, guess, window):
    """Index of the axis sample nearest each node, searched within ``window`` samples of ``guess``."""
    cand = np.clip(guess[:, None] + np.arange(-window, window + 1)[None, :], 0, len(lumen.points) - 1)
    dist = np.sum((lumen.points[cand] - x[:, None, :]) ** 2, axis=2)
    return cand[np.arange(len(x)), np.argmin(dist, axis=1)]


def _rest_turns(d, h, length, tip, d0):
    """Per joint (between segments i-1 and i), the rotation the pre-shaped tip makes at rest."""
    joints = len(d) - 1
    turns = np.broadcast_to(np.eye(3), (joints, 3, 3)).copy()
    if tip.kappa == 0.0 or joints == 0:
        return turns
    distal = min(tip.length, 0.5 * length)
    bend = tip.bend * distal / tip.length
    s = np.arange(1, joints + 1) * h
    bent = np.nonzero((s >= length - distal) & (s < length - distal + bend))[0] + 1
    if bent.size == 0:
        return turns
    # a frame parallel-transported from the entry (projection transport, exact to second order)
    ref = np.array([0.0, 0.0, 1.0]) if abs(d0[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = ref - (ref @ d0) * d0
    u /= np.linalg.norm(u)
    frames = np.empty_like(d)
    frames[0] = u
    for j in range(1, len(d)):
        u = u - (u @ d[j]) * d[j]
        u /= np.linalg.norm(u)
        frames[j] = u
    c, sn = math.cos(tip.roll), math.sin(tip.roll)
    theta = tip.kappa * h
    for i in bent:
        t = d[i - 1]
        normal = c * frames[i - 1] + sn * np.cross(t, frames[i - 1])
        axis = np.cross(t, normal)
        axis /= np.linalg.norm(axis)
        k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
        turns[i - 1] = np.eye(3) + math.sin(theta) * k + (1.0 - math.cos(theta)) * (k @ k)
    return turns


def _directions(x):
    d = np.diff(x, axis=0)
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _complement(d):
    """Two unit vectors normal to each row of ``d`` and to each other."""
    ref = np.where(np.abs(d[:, 2:3]) < 0.9, np.array([[0.0, 0.0, 1.0]]), np.array([[1.0, 0.0, 0.0]]))
    e1 = np.cross(d, ref)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    return e1, np.cross(d, e1)


def _relax(state, lumen, tip, p0, d0, sign, max_iter=150):
    """Levenberg-Marquardt over the directions of segments 1.. (segment 0 is clamped along ``d0``).

    Each iteration turns every free segment by a small rotation (two angles about two axes
    normal to it) from its current direction, so the rod stays exactly inextensible.
    """
    h, n = state.h, len(state.x)
    d = _directions(state.x)
    d[0] = d0
    if n < 3:
        return state
    turns = _rest_turns(d, h, state.length, tip, d0)
    # friction opposes the motion, along the vessel at each node (lagged over the sub-step); as
    # node i = p0 + h * sum(d_j, j < i), its work is linear in the directions: sum(seg_push_j . d_j)
    push = sign * tip.friction * h * lumen.tangents[state.idx]
    push[-1] += sign * tip.tip_force * lumen.tangents[state.idx[-1]]
    seg_push = h * np.cumsum(push[::-1], axis=0)[::-1][2:]  # free segments 1..
    # the body's segments resist turning away from where the previous sub-step left them
    mid = (np.arange(1, n - 1) + 0.5) * h
    drag = np.where(mid < state.length - min(tip.length, 0.5 * state.length), math.sqrt(_DRAG * h), 0.0)
    anchor = (d[1:], drag)
    idx = state.idx.copy()
    x = _positions(p0, d, h)
    cost, parts = _cost(d, x, h, turns, lumen, idx, seg_push, anchor)
    damping = 1e-3
    for _ in range(max_iter):
        e1, e2 = _complement(d[1:])
        hess, grad = _normal_equations(parts, e1, e2, h, turns, seg_push, drag)
        diag = np.diag(hess).copy()
        scale = float(np.median(diag))
        accepted = False
        while not accepted and damping < 1e10:
            # Levenberg: a uniform damping (on the median curvature); Marquardt's per-variable scaling
            # froze the proximal segments, whose diagonal the lumen's long lever arms make huge
            hess[np.diag_indices_from(hess)] = diag + damping * scale
            step = -solve(hess, grad, assume_a="pos").reshape(-1, 2)
            trial_d = d.copy()
            trial_d[1:] += step[:, :1] * e1 + step[:, 1:] * e2
            trial_d[1:] /= np.linalg.norm(trial_d[1:], axis=1, keepdims=True)
            trial_x = _positions(p0, trial_d, h)
            trial_idx = _nearest(lumen, trial_x, idx, 6)
            trial_cost, trial_parts = _cost(trial_d, trial_x, h, turns, lumen, trial_idx, seg_push, anchor)
            if trial_cost <= cost:
                accepted = True
                gain = cost - trial_cost
                d, x, idx, cost, parts = trial_d, trial_x, trial_idx, trial_cost, trial_parts
                damping = max(damping / 3.0, 1e-9)
            else:
                damping *= 4.0
        # converged: no segment turns by more than 3e-6 rad (the tip moves by < 1 um per 0.3 m of wire),
        # or the energy (over EI, ~1-100 1/m) no longer falls by 1e-6 1/m
        if not accepted or np.abs(step).max() < 3e-6 or gain < 1e-6 + 1e-9 * abs(cost):
            break
    return _State(x=x, h=h, length=state.length, idx=_nearest(lumen, x, idx, 6))


def _positions(p0, d, h):
    return np.concatenate([p0[None], p0 + h * np.cumsum(d, axis=0)])


def _cost(d, x, h, turns, lumen, idx, seg_push, anchor):
    """0.5 |r|^2 + the friction's work, and the residual parts the normal equations need."""
    # bending: 0.5 |r|^2 = 0.5 kappa^2 h per joint, relative to the rest turn
    bend = (d[1:] - np.einsum("jab,jb->ja", turns, d[:-1])) / math.sqrt(h)
    # curvature over the cap
    diff = d[1:] - d[:-1]
    size = np.linalg.norm(diff, axis=1)
    over_k = _W_CURVATURE * np.maximum(size / h - _KAPPA_CAP, 0.0)
    # the lumen: the wire's centre at most (radius - wire radius) from the axis; nodes 2..
    dist, radius, _, (perp, tan, slope) = _project(lumen, x[2:], idx[2:])
    limit = radius - _WIRE_RADIUS
    over_w = _W_WALL * np.maximum(dist - limit, 0.0)
    held = anchor[1][:, None] * (d[1:] - anchor[0])
    cost = 0.5 * (np.sum(bend**2) + np.sum(over_k**2) + np.sum(over_w**2) + np.sum(held**2))
    cost += float(np.sum(seg_push * d[1:]))
    return cost, (bend, diff, size, over_k, perp, dist, tan, slope, over_w, held)


def _normal_equations(parts, e1, e2, h, turns, seg_push, drag):
    """Gauss-Newton J^T J and J^T r + gradient of the friction's work, over (a_j, b_j), j = 1.."""
    bend, diff, size, over_k, perp, dist, tan, slope, over_w, held = parts
    m = len(e1)  # free segments
    basis = np.stack([e1, e2], axis=2)  # (m,3,2): d d_j / d(a_j, b_j)
    jac_rows = []  # (row of J as (m,2) blocks, residual) for the dense parts

    hess = np.zeros((m, 2, m, 2))
    grad = np.zeros((m, 2))
    w = 1.0 / math.sqrt(h)
    # bending joint i (1..m) involves d_i (free index i-1) and d_(i-1) (free index i-2 when i >= 2)
    a = w * basis  # (m,3,2), d r_i / d v_i
    b = -w * np.einsum("jab,jbc->jac", turns[1:], basis[:-1])  # (m-1,3,2), d r_i / d v_(i-1), i >= 2
    ar = np.arange(m)
    hess[ar, :, ar, :] += np.einsum("jai,jak->jik", a, a)
    hess[ar[:-1], :, ar[:-1], :] += np.einsum("jai,jak->jik", b, b)
    cross = np.einsum("jai,jak->jik", b, a[1:])  # (v_(i-1), v_i)
    hess[ar[:-1], :, ar[1:], :] += cross
    hess[ar[1:], :, ar[:-1], :] += cross.transpose(0, 2, 1)
    grad += np.einsum("jai,ja->ji", a, bend)
    grad[:-1] += np.einsum("jai,ja->ji", b, bend[1:])

    # curvature cap at joint i
    for i in np.nonzero(over_k > 0.0)[0]:
        u = diff[i] / size[i] * (_W_CURVATURE / h)
        row = np.zeros((m, 2))
        row[i] += u @ basis[i]
        if i >= 1:
            row[i - 1] -= u @ basis[i - 1]
        jac_rows.append((row, over_k[i]))

    # the wall: node i (2..) moves with segments 1..i-1 by h * basis
    for row, r in jac_rows:
        hess += np.einsum("ai,bk->aibk", row, row)
        grad += row * r
    active = np.nonzero(over_w > 0.0)[0]
    if active.size:
        g = perp[active] / dist[active, None] - slope[active, None] * tan[active]
        rows = _W_WALL * h * np.einsum("ka,jai->kji", g, basis)  # (K, m, 2)
        nodes = active + 2
        rows *= (np.arange(m)[None, :] + 1 < nodes[:, None])[:, :, None]
        flat = rows.reshape(len(active), -1)
        hess += (flat.T @ flat).reshape(m, 2, m, 2)
        grad += (flat.T @ over_w[active]).reshape(m, 2)

    grad += np.einsum("ja,jai->ji", seg_push, basis)
    hess[ar, :, ar, :] += (drag**2)[:, None, None] * np.eye(2)
    grad += drag[:, None] * np.einsum("ja,jai->ji", held, basis)
    return hess.reshape(2 * m, 2 * m), grad.ravel()
