"""Physics fusion: the wire that the camera, the magnetometer array and the robot all agree on.

The segmented centreline fixes each wire point to a camera ray; what is left
is the depth along each ray, a smooth function (cubic B-spline) of the
position along the image centreline. The fit chooses those depths so that
- the curve starts at the robot's entry point along its entry direction,
- its arc length equals the robot's inserted length (with one view, within a
  slack for the tortuosity that the smooth curve cannot place: see FitSettings),
- the field of its magnets (point-dipole rows, magnets.py) matches the
  background-subtracted field of the array, weighted by the sensors' noise,
  with a uniform offset for Earth-field drift since the background was
  recorded and a scale of each magnet's strength (polarisation tolerance),
- with a leader path (leader.py, a wire in a vessel), its point at each arc
  length lies near where the tip was at that inserted length,
and bends no more than it must (a weak curvature prior on the depths).
scipy's least_squares (Levenberg-Marquardt) solves it; the Gauss-Newton
covariance at the optimum gives each point's 1-sigma uncertainty along its
least certain direction (the ray: with one view, the depth); with a leader
path, for path errors that correlate along the wire.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from scipy.interpolate import BSpline
from scipy.optimize import least_squares
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from guidewire.geometry import PinholeCamera
from guidewire.reconstruction.leader import LeaderPath, PathTrack
from guidewire.reconstruction.magnets import WireMagnets, magnet_fields, wire_field
from guidewire.reconstruction.views import (arc_lengths, optical_depth, orient_from_entry, pixel_rays,
                                            points_at, polyline_length, resample_by_spacing, resample_polyline)


class ReconstructionError(ValueError):
    """The inputs cannot give a wire (no centreline, no usable sensor, bad geometry)."""


@dataclass(frozen=True)
class WirePrior:
    """What the robot and the wire's data sheet say (bench frame, SI)."""

    inserted_length: float  # m, from the entry point to the tip
    entry_point: np.ndarray  # (3,) m
    entry_direction: np.ndarray  # (3,) unit
    magnets: WireMagnets
    length_sigma: float = 0.001  # m, robot encoder + entry uncertainty
    entry_sigma: float = 0.0005  # m
    entry_angle_sigma: float = 0.05  # rad
    polarization_sigma: float = 0.05  # relative, magnet grade tolerance
    path: LeaderPath | None = None  # where earlier tips passed (leader.py): a prior on the body in a vessel


@dataclass(frozen=True)
class ArrayField:
    """One array frame, bench frame, tesla; rows of unusable sensors are False in `valid`."""

    positions: np.ndarray  # (n,3) m
    field: np.ndarray  # (n,3) T, measured
    background: np.ndarray | None  # (n,3) T recorded without the wire, or None
    noise: float  # T, 1-sigma per axis of field - background
    valid: np.ndarray  # (n,) bool

    def wire_component(self) -> np.ndarray:
        return self.field - (self.background if self.background is not None else 0.0)


@dataclass(frozen=True)
class FitSettings:
    knots: int = 12  # depth-spline coefficients with one view (more would only follow the prior)
    knots_with_second_view: int = 24  # a second view can place a finer curve (24: RMSE 0.47 -> 0.39 mm)
    samples_per_metre: float = 300.0  # centreline stations along the image path
    pixel_sigma: float = 0.7  # px, segmentation centreline noise
    bending_sigma: float = 0.004  # m, prior on the second difference of neighbouring depth coefficients
    # m, 1-sigma of the wire's length that one view's smooth depth curve cannot place. One view does not
    # see where the wire rises and falls, so a curve held to the full length put all of it into one smooth
    # hump, mostly in the wrong place (vessel wires, tuning seeds 6000-6059: RMSE 4.6 -> 3.7 mm with 10 mm).
    length_slack: float = 0.01
    length_slack_with_second_view: float = 0.0  # the second view places the wire's ups and downs itself
    restart_chi2: float = 3.0  # with a second view: above this chi2/dof, refit from the one-view fit
    # Two views' covariance misses errors neither view shows (camera calibration, the segmenter's offset
    # from the wire's axis): |z error| <= 2 sigma held at 86 % of the points of tuning seeds 6000-6059
    # (every lab error on); this factor brings them to 95 %. One view, unscaled, held 94 %.
    sigma_scale_with_second_view: float = 1.46
    use_magnetics: bool = True
    # "analytic": _Problem.jacobian; "2-point": scipy's finite differences of every residual, the same fit about
    # 4 times slower, kept as the check and the timing baseline of bench/bench_reconstruction.py.
    jacobian: str = "analytic"

    def length_slack_for(self, second_view: bool) -> float:
        """How far (1-sigma, m) the fitted length may fall from the robot's: the fit's and the node's check."""
        return self.length_slack_with_second_view if second_view else self.length_slack


@dataclass
class WireEstimate:
    points: np.ndarray  # (k,3) m, entry -> tip, about 1 mm apart
    sigma: np.ndarray  # (k,) m, 1-sigma along the point's least certain direction (bounds every axis's)
    tip_position: np.ndarray
    tip_direction: np.ndarray
    tip_sigma: float
    length: float
    field_rms: float  # T, RMS of the weighted-away field residual (nan without magnetics)
    chi2_per_dof: float
    converged: bool
    used_sensors: int
    offset_field: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))  # T

    @property
    def tip_orientation(self) -> np.ndarray:
        """(x, y, z, w) quaternion whose x axis is the tip direction."""
        x = self.tip_direction / np.linalg.norm(self.tip_direction)
        helper = np.array([0.0, 0.0, 1.0]) if abs(x[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
        y = np.cross(helper, x)
        y /= np.linalg.norm(y)
        return Rotation.from_matrix(np.column_stack([x, y, np.cross(x, y)])).as_quat()


def _spline_basis(fraction: np.ndarray, count: int) -> np.ndarray:
    """Cubic B-spline design matrix (len(fraction), count), clamped on [0, 1]."""
    degree = 3
    inner = np.linspace(0.0, 1.0, count - degree + 1)
    knots = np.concatenate([[0.0] * degree, inner, [1.0] * degree])
    return BSpline.design_matrix(np.clip(fraction, 0.0, 1.0), knots, degree).toarray()


class _Problem:
    def __init__(self, camera, pixels, array, prior, settings, second_views=()):
        self.camera, self.array, self.prior, self.settings = camera, array, prior, settings
        self.second_views = [(view, cKDTree(_wire_image_points(line, off_path)))
                             for view, line, off_path in second_views]
        self.origin = np.asarray(camera.position, float)
        count = int(np.clip(prior.inserted_length * settings.samples_per_metre, 40, 250))
        self.pixels, self.fraction = resample_polyline(pixels, count)
        self.rays = pixel_rays(camera, self.pixels)
        self.knots = settings.knots_with_second_view if second_views else settings.knots
        self.length_sigma = float(np.hypot(prior.length_sigma, settings.length_slack_for(bool(second_views))))
        self.basis = _spline_basis(self.fraction, self.knots)
        self.magnet_count = len(prior.magnets.offsets) if settings.use_magnetics else 0
        self.offset_count = 3 if settings.use_magnetics else 0
        self.entry_depth = optical_depth(camera, prior.entry_point)
        valid = array.valid if array is not None else np.zeros(0, bool)
        self.observers = array.positions[valid] if settings.use_magnetics else np.zeros((0, 3))
        self.measured = array.wire_component()[valid] if settings.use_magnetics else np.zeros((0, 3))
        self.noise = array.noise if array is not None else 1.0
        magnets = prior.magnets
        # How far behind the tip the last dipole station sits: only the curve's points within it move the field.
        self.field_reach = max((o + 0.5 * length for o, length in zip(magnets.offsets, magnets.lengths)), default=0.0)
        self.second_difference = np.diff(np.eye(self.knots), 2, axis=0)

    def unpack(self, x):
        k, o = self.knots, self.offset_count
        return x[:k], x[k:k + o], x[k + o:k + o + self.magnet_count]

    def points(self, depths):
        return self.origin + (self.basis @ depths)[:, None] * self.rays

    def field_model(self, x, points=None):
        depths, offset, log_scale = self.unpack(x)
        points = self.points(depths) if points is None else points
        return wire_field(points, self.prior.magnets.scaled(np.exp(log_scale)), self.observers) + offset

    def residuals(self, x):
        depths, _, log_scale = self.unpack(x)
        prior, settings = self.prior, self.settings
        points = self.points(depths)
        start_direction = points[1] - points[0]
        start_direction /= np.linalg.norm(start_direction)
        terms = [
            [(polyline_length(points) - prior.inserted_length) / self.length_sigma],
            (points[0] - prior.entry_point) / prior.entry_sigma,
            (start_direction - prior.entry_direction) / prior.entry_angle_sigma,
            np.diff(depths, 2) / settings.bending_sigma,
        ]
        if self.magnet_count:
            terms.append(((self.field_model(x, points) - self.measured) / self.noise).ravel())
            terms.append(log_scale / prior.polarization_sigma)
        for camera, tree in self.second_views:
            # Distance of each projected point to that view's centreline (its nearest densified point).
            distance, _ = tree.query(camera.project(points))
            terms.append(distance / settings.pixel_sigma)
        if prior.path is not None:
            # Each path point against the curve's point at the same arc length from the entry (the curve's
            # end stands in for path points beyond a curve that came out short). Pairing by nearest point
            # instead, or a finer spline, did worse on the tuning sequences (RMSE 1.3 -> 1.8-2.1 mm).
            # Last, point by point (x, y, z): _estimate finds these rows there.
            at = points_at(points, arc_lengths(points), prior.path.along)
            terms.append(((at - prior.path.positions) / prior.path.sigma[:, None]).ravel())
        return np.concatenate(terms)

    def jacobian(self, x):
        """d residuals / d x, row for row as `residuals` stacks them. The geometric rows (length, entry,
        bending, second views) are exact; the field's and the leader path's rows, whose points move with
        the arc length, are forward differences over the depths that reach them, computing only those
        rows. scipy's finite differences recomputed every residual once per parameter: 96 % of a two-view
        fit's time (31 parameters, about 25 iterations)."""
        depths = self.unpack(x)[0]
        prior, settings, basis, rays = self.prior, self.settings, self.basis, self.rays
        k, n = self.knots, len(x)
        points = self.points(depths)

        def along_depths(per_point):  # rows over the depths from d residual / d point (stations, 3)
            return np.einsum("ik,ik->i", per_point, rays)[:, None] * basis

        blocks = []
        segment = np.diff(points, axis=0)
        unit = segment / np.linalg.norm(segment, axis=1)[:, None]
        length_gradient = np.zeros_like(points)  # d length / d point: the unit segments on either side
        length_gradient[:-1] -= unit
        length_gradient[1:] += unit
        blocks.append(along_depths(length_gradient).sum(axis=0, keepdims=True) / self.length_sigma)
        blocks.append(np.outer(rays[0], basis[0]) / prior.entry_sigma)
        step = points[1] - points[0]
        norm = np.linalg.norm(step)
        direction = step / norm
        blocks.append((np.eye(3) - np.outer(direction, direction)) / norm
                      @ (np.outer(rays[1], basis[1]) - np.outer(rays[0], basis[0])) / prior.entry_angle_sigma)
        blocks.append(self.second_difference / settings.bending_sigma)
        rows = [np.hstack([block, np.zeros((len(block), n - k))]) for block in blocks]
        if self.magnet_count:
            rows.append(self._field_jacobian(x, points))
            scale_rows = np.zeros((self.magnet_count, n))
            scale_rows[:, k + self.offset_count:] = np.eye(self.magnet_count) / prior.polarization_sigma
            rows.append(scale_rows)
        for camera, tree in self.second_views:
            pixels, pixel_jacobian = _projection_with_jacobian(camera, points)
            distance, index = tree.query(pixels)
            towards = (pixels - tree.data[index]) / np.maximum(distance, 1e-12)[:, None]
            towards[distance == 0] = 0.0
            gradient = np.einsum("ic,icj->ij", towards, pixel_jacobian)  # d distance / d point
            rows.append(np.hstack([along_depths(gradient), np.zeros((len(points), n - k))]) / settings.pixel_sigma)
        if prior.path is not None:
            def path_rows(trial):
                trial_points = self.points(trial)
                at = points_at(trial_points, arc_lengths(trial_points), prior.path.along)
                return ((at - prior.path.positions) / prior.path.sigma[:, None]).ravel()
            path = np.zeros((3 * len(prior.path.along), n))
            path[:, :k] = _forward_differences(path_rows, depths, range(k))
            rows.append(path)
        return np.vstack(rows)

    def _field_jacobian(self, x, points):
        depths, _, log_scale = self.unpack(x)
        k, o, n = self.knots, self.offset_count, len(x)
        jacobian = np.zeros((3 * len(self.observers), n))
        # Depths whose spline support reaches the stations within field_reach of the tip (one station more:
        # the segment holding the farthest dipole).
        behind_tip = arc_lengths(points[::-1])[::-1]
        first = max(int(np.argmax(behind_tip <= self.field_reach)) - 1, 0)
        reaching = np.flatnonzero(np.any(self.basis[first:] != 0.0, axis=0))
        scaled = self.prior.magnets.scaled(np.exp(log_scale))
        # Forward differences, every reaching depth's trial curve in one batch.
        steps = _difference_steps(depths[reaching])
        trials = np.tile(depths, (len(reaching) + 1, 1))
        trials[np.arange(1, len(reaching) + 1), reaching] += steps
        curves = self.origin + (trials @ self.basis.T)[..., None] * self.rays
        fields = wire_field(curves, scaled, self.observers).reshape(len(trials), -1) / self.noise
        jacobian[:, reaching] = ((fields[1:] - fields[0]) / steps[:, None]).T
        jacobian[:, k:k + o] = np.tile(np.eye(3), (len(self.observers), 1)) / self.noise
        # The field is linear in each magnet's strength: d field / d log(scale) is that magnet's own field.
        each = magnet_fields(points, scaled, self.observers) / self.noise
        jacobian[:, k + o:] = each.reshape(self.magnet_count, -1).T
        return jacobian

    def start(self):
        """Every depth at the entry point's, no offset, nominal magnets."""
        depths = np.full(self.knots, self.entry_depth)
        return np.concatenate([depths, np.zeros(self.offset_count + self.magnet_count)])


def reconstruct(camera: PinholeCamera, centreline_px: np.ndarray, prior: WirePrior,
                array: ArrayField | None = None, settings: FitSettings = FitSettings(),
                second_views: tuple = ()) -> WireEstimate:
    """Fit the wire to one view's ordered centreline, the array's field and the robot's prior.

    `second_views`: (camera, centreline px[, off-path skeleton px]) of further calibrated views (the
    orthogonal camera of the paper's bench; the optional third item is Centreline.off_path); each point's
    projection is pulled onto that view's image of the wire, which fixes the depth that one view and the
    magnet-free part of the wire leave open."""
    if settings.jacobian not in ("analytic", "2-point"):
        raise ValueError(f"FitSettings.jacobian must be 'analytic' or '2-point', not {settings.jacobian!r}")
    pixels = np.asarray(centreline_px, float)
    if pixels.ndim != 2 or len(pixels) < 4 or not np.isfinite(pixels).all():
        raise ReconstructionError("the centreline needs at least 4 finite pixels")
    use_magnetics = settings.use_magnetics and array is not None and int(np.count_nonzero(array.valid)) >= 3
    if settings.use_magnetics and not use_magnetics:
        raise ReconstructionError("fewer than 3 usable magnetometers: no magnetic fusion possible")
    if use_magnetics and not (np.isfinite(array.wire_component()[array.valid]).all() and array.noise > 0):
        raise ReconstructionError("the array's field has non-finite values on sensors marked valid")
    entry_pixel = camera.project(np.asarray(prior.entry_point, float).reshape(1, 3))[0]
    pixels = orient_from_entry(pixels, entry_pixel)
    second_views = [(view[0], np.asarray(view[1], float),
                     np.asarray(view[2], float).reshape(-1, 2) if len(view) > 2 else np.zeros((0, 2)))
                    for view in second_views]
    for _, line, off_path in second_views:
        if len(line) < 4 or not (np.isfinite(line).all() and np.isfinite(off_path).all()):
            raise ReconstructionError("a second view's centreline needs at least 4 finite pixels")
    problem = _Problem(camera, pixels, array, prior, settings, second_views)

    # One view starts flat at the entry's depth: the field, not the start, decides which way the wire
    # leaves the image plane (tilted starts never won on the held-out wires and tripled the time). With a
    # second view, from the two views' triangulation: the side view's nearest-point rows can hold a curve
    # started flat in a wrong fold at a chi2/dof below any restart bound (seen on insertion seed 5011:
    # 10 mm RMSE at chi2/dof 1.6, 0.5 mm from the triangulation at 0.6).
    from guidewire.reconstruction.stereo import triangulate_wire  # stereo.py imports this module

    def fitted(x0):
        jacobian = problem.jacobian if settings.jacobian == "analytic" else settings.jacobian
        return least_squares(problem.residuals, x0, jac=jacobian, method="lm", x_scale="jac", max_nfev=100 * len(x0))

    flat = problem.start()
    first = flat
    if second_views:
        try:
            triangulated = triangulate_wire(camera, pixels, *second_views[0][:2], prior.entry_point)
            first = np.concatenate([_coefficients_along(problem, triangulated), flat[problem.knots:]])
        except ReconstructionError:
            pass  # views that do not triangulate start flat
    result = fitted(first)
    if second_views and _chi2_per_dof(result) > settings.restart_chi2:
        # Still a poor fit: restart from the one-view fit (field, length, entry: no folds from the second
        # view) and, if not started so, flat; the lowest cost wins.
        one_view = reconstruct(camera, pixels, prior, array, settings).points
        restarts = [np.concatenate([_coefficients_along(problem, one_view), flat[problem.knots:]])]
        for x0 in restarts + ([flat] if first is not flat else []):
            again = fitted(x0)
            result = again if again.cost < result.cost else result
    return _estimate(problem, result)


def reconstruct_with_leader(track: PathTrack, camera: PinholeCamera, centreline_px: np.ndarray, prior: WirePrior,
                            array: ArrayField | None, settings: FitSettings = FitSettings()
                            ) -> tuple[WireEstimate, str]:
    """One view over an insertion: the fit with the path of the earlier tips as the body's prior (leader.py),
    and a note, empty when the path was used (leader_step says when it is not)."""
    alone, path, note = leader_step(track, camera, centreline_px, prior, array, settings)
    if path is None:
        return alone, note
    return reconstruct(camera, centreline_px, replace(prior, path=path), array, settings), ""


def leader_step(track: PathTrack, camera: PinholeCamera, centreline_px: np.ndarray, prior: WirePrior,
                array: ArrayField | None, settings: FitSettings = FitSettings()
                ) -> tuple[WireEstimate, LeaderPath | None, str]:
    """This frame's own fit, the path to fit it with (None when there is none to use) and why not.

    The frame's own fit, without the path so that nothing is counted twice, adds its tip to the track;
    where that fit places the wire well (its 1-sigma within LeaderSettings.placed_sigma: near the magnets)
    and the path keeps disagreeing (PathTrack.follows), the wire has not followed its tip (a free rod, or a
    wire that left the vessel) and the path is not used."""
    if prior.inserted_length < track.settings.distal_free:
        track.clear()  # withdrawn: the next insertion may take another way
    path = track.path(prior.inserted_length)
    alone = reconstruct(camera, centreline_px, prior, array, settings)
    if alone.converged:
        track.add(prior.inserted_length, alone.tip_position, alone.tip_sigma)
    if path is None:
        return alone, None, "no path yet"
    if not track.follows(path, alone.points, alone.sigma, prior.inserted_length):
        return alone, None, (f"the wire is not where its tip has been (mean squared normalised distance "
                             f"{track.recent_disagreement:.1f} where the field places it): fitted without the path")
    return alone, path, ""


def _difference_steps(values: np.ndarray) -> np.ndarray:
    """scipy's 2-point finite-difference step for each value."""
    return np.sqrt(np.finfo(float).eps) * np.maximum(1.0, np.abs(values))


def _forward_differences(rows, x: np.ndarray, columns) -> np.ndarray:
    """(len(rows(x)), len(x)) forward differences of rows() over x[columns] (zero elsewhere)."""
    base = rows(x)
    jacobian = np.zeros((base.size, len(x)))
    for column, step in zip(columns, _difference_steps(x[list(columns)])):
        trial = x.copy()
        trial[column] += step
        jacobian[:, column] = (rows(trial) - base) / step
    return jacobian


def _projection_with_jacobian(camera: PinholeCamera, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distorted pixels (n,2) of world points and d pixel / d point (n,2,3). OpenCV's Jacobian over the
    translation is the one over the point in the camera frame, which is rotation.T @ (point - position)."""
    rvec, tvec = camera.rvec_tvec
    pixels, jacobian = cv2.projectPoints(points.reshape(-1, 1, 3), rvec, tvec, camera.intrinsics, camera.distortion)
    over_camera_point = jacobian[:, 3:6].reshape(len(points), 2, 3)
    return pixels.reshape(-1, 2), over_camera_point @ camera.rotation.T


def _wire_image_points(centreline: np.ndarray, off_path: np.ndarray) -> np.ndarray:
    """Points about 0.5 px apart over a view's image of the wire: along its ordered centreline, and the
    skeleton pixels off it with the midpoints of neighbouring ones. The wire may lie on those too: at a
    projection cusp it runs out along the view's rays and back over a spur the ordered path cuts off
    (insertion seed 5005 at 100 mm: 17 px cut off, and the fit folded 22 mm RMSE away; 0.55 mm with them)."""
    points = [resample_by_spacing(centreline, 0.5), off_path]
    if len(off_path) > 1:
        pairs = cKDTree(off_path).query_pairs(1.5, output_type="ndarray")
        points.append(off_path[pairs].mean(axis=1))
    return np.vstack(points)


def _coefficients_along(problem: _Problem, points: np.ndarray) -> np.ndarray:
    """Depth-spline coefficients of the curve through `points` (entry -> tip). The stations are spaced along
    the view's centreline, so each takes the depth of the curve's point at the same fraction of its
    projected length: by the fraction of its 3D length instead, a stretch running steeply in depth put the
    depths on the wrong rays (insertion seed 5005 at 100 mm: the true curve came out 5.6 mm RMSE away, by
    the projection 0.7 mm)."""
    depths = problem.camera.to_camera(points)[:, 2]
    projected = arc_lengths(problem.camera.project(points))
    station_depths = np.interp(problem.fraction * projected[-1], projected, depths)
    return np.linalg.lstsq(problem.basis, station_depths, rcond=None)[0]


def _chi2_per_dof(result) -> float:
    return float(result.fun @ result.fun) / max(1, result.fun.size - result.x.size)


def _estimate(problem: _Problem, result) -> WireEstimate:
    settings = problem.settings
    depths, offset, _ = problem.unpack(result.x)
    points = problem.points(depths)
    chi2 = _chi2_per_dof(result)
    jacobian = result.jac
    covariance = np.linalg.pinv(jacobian.T @ jacobian)
    path = problem.prior.path
    if path is not None and path.correlation_length > 0:
        # The path's rows are weighed as independent but their errors correlate along the wire
        # (LeaderPath.correlation, R): this estimate's covariance under those errors is the sandwich
        # C (J^T J + J_path^T (R - I) J_path) C, C = (J^T J)^+ (per axis: the path's rows are x, y, z by point).
        rows = jacobian[-3 * len(path.along):]
        excess = path.correlation() - np.eye(len(path.along))
        meat = jacobian.T @ jacobian + sum(rows[axis::3].T @ excess @ rows[axis::3] for axis in range(3))
        covariance = covariance @ meat @ covariance
    covariance *= max(1.0, chi2)
    k = problem.knots
    depth_var = np.einsum("ij,jk,ik->i", problem.basis, covariance[:k, :k], problem.basis)
    ray_norm2 = np.einsum("ij,ij->i", problem.rays, problem.rays)
    depth_now = problem.basis @ depths
    camera = problem.camera
    focal = float(np.mean(np.diag(camera.intrinsics)[:2]))
    lateral = settings.pixel_sigma * depth_now / focal
    # The larger of the along-ray and the lateral (pixel noise) 1-sigma. The isotropic RMS of the three
    # axes hid one view's depth uncertainty by sqrt(3): |z error| <= 2 sigma held at 77 % of the points
    # on the tuning seeds, 94 % with this one (one view needs no calibration factor).
    sigma_station = np.maximum(np.sqrt(depth_var * ray_norm2), lateral)
    if problem.second_views:
        sigma_station *= settings.sigma_scale_with_second_view
    dense = resample_by_spacing(points, 0.001)
    sigma = np.interp(arc_lengths(dense), arc_lengths(points), sigma_station)
    tip_direction = dense[-1] - dense[-3]
    tip_direction /= np.linalg.norm(tip_direction)
    if problem.magnet_count:
        field_rms = float(np.sqrt(np.mean((problem.field_model(result.x) - problem.measured) ** 2)))
    else:
        field_rms = float("nan")
    return WireEstimate(points=dense, sigma=sigma, tip_position=dense[-1], tip_direction=tip_direction,
                        tip_sigma=float(sigma[-1]), length=polyline_length(dense), field_rms=field_rms,
                        chi2_per_dof=chi2, converged=bool(result.success), used_sensors=len(problem.observers),
                        offset_field=offset if problem.magnet_count else np.full(3, np.nan))
