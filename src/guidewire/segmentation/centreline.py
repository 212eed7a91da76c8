"""Ordered wire centreline from a segmentation mask.

The skeleton of the largest wire component is a pixel graph; its longest
geodesic path (the graph's diameter, two Dijkstra sweeps) runs from one end of
the wire to the other and leaves every spur behind (kept apart as `off_path`: a
spur may be wire too). Optionally other pieces that carry the path on across a
gap are chained to it. The end closer to the edge of
the field of view is where the wire enters, the other one is the tip.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree
from skimage.measure import label
from skimage.morphology import skeletonize

NEIGHBOURS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]
MIN_PIECE_PX = 10  # smaller components are noise, not pieces of a wire
MAX_PIECES = 20  # the largest pieces besides the main one that may continue it (a noisy mask has hundreds)
TANGENT_PX = 15  # the last pixels of a path that give its direction
MAX_BEND_DEG = 30.0  # how far a gap or the next piece may turn from the path's direction
# The segmentation's gap bridging, as a fraction of the image's larger side (see extract_centreline).
MAX_GAP_FRACTION = 0.3
OFF_PATH_PX = 1.5  # skeleton pixels farther than this from the path are off it (8-neighbours are within)


@dataclass
class Centreline:
    points: np.ndarray  # (N,2) float pixel (u, v), insertion end first
    tip: np.ndarray  # (2,) pixel (u, v)
    length_px: float
    # (M,2) skeleton pixels of the wire's component that the path leaves out: its side branches, such as the
    # far side of a projection cusp, where the wire runs out along the view's rays and back.
    off_path: np.ndarray


def _components(mask: np.ndarray, min_pixels: int, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The `count` largest 8-connected components of at least `min_pixels` pixels (the largest one in
    any case), largest first: each cropped to its bounding box, with the box's (u, v) offset."""
    labels = label(mask, connectivity=2)
    if labels.max() == 0:
        return []
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    order = [int(i) for i in np.argsort(sizes)[::-1] if sizes[i] >= min_pixels][:count] or [int(sizes.argmax())]
    boxes = ndimage.find_objects(labels)
    return [(labels[boxes[i - 1]] == i, np.array([boxes[i - 1][1].start, boxes[i - 1][0].start], float))
            for i in order]


def _skeleton_path(component: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, float, np.ndarray] | None:
    """The longest geodesic path through a (cropped component, offset)'s skeleton, (N,2) pixel (u, v),
    its length, and the skeleton's pixels (u, v)."""
    crop, offset = component
    skeleton = skeletonize(crop)
    rows, cols = np.nonzero(skeleton)
    if rows.size == 0:
        return None
    index = -np.ones(skeleton.shape, np.int64)
    index[rows, cols] = np.arange(rows.size)
    sources, targets, weights = [], [], []
    height, width = skeleton.shape
    for dr, dc in NEIGHBOURS:
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        neighbour = np.full(rows.size, -1)
        neighbour[inside] = index[r[inside], c[inside]]
        linked = neighbour >= 0
        sources.append(np.flatnonzero(linked))
        targets.append(neighbour[linked])
        weights.append(np.full(linked.sum(), np.hypot(dr, dc)))
    graph = coo_matrix((np.concatenate(weights), (np.concatenate(sources), np.concatenate(targets))),
                       shape=(rows.size, rows.size)).tocsr()
    first = dijkstra(graph, indices=0)
    end_a = int(np.nanargmax(np.where(np.isinf(first), -1, first)))
    distances, predecessors = dijkstra(graph, indices=end_a, return_predecessors=True)
    end_b = int(np.nanargmax(np.where(np.isinf(distances), -1, distances)))
    path = [end_b]
    while path[-1] != end_a:
        path.append(int(predecessors[path[-1]]))
    pixels = np.column_stack([cols, rows]).astype(float) + offset
    return pixels[path], float(distances[end_b]), pixels


def _direction(points: np.ndarray) -> np.ndarray:
    """Unit direction out of the path's last point, over its last TANGENT_PX pixels."""
    tail = points[-TANGENT_PX:]
    step = tail[-1] - tail[0]
    norm = np.linalg.norm(step)
    return step / norm if norm > 0 else np.zeros(2)


def _bridge(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Points about 1 px apart across a gap, both ends excluded."""
    count = int(np.linalg.norm(end - start))
    return start + (end - start) * (np.arange(1, count) / count)[:, None] if count > 1 else np.zeros((0, 2))


def _extend(path: np.ndarray, pieces: list[np.ndarray], max_gap: float) -> np.ndarray:
    """Append to the path's end, while one fits, the piece that continues it: an end of the piece within
    max_gap of the path's end, in the path's direction (the gap and the piece's own direction within
    MAX_BEND_DEG of it); the nearest such piece first."""
    limit = np.cos(np.radians(MAX_BEND_DEG))
    while pieces:
        end, direction = path[-1], _direction(path)
        best = None
        for number, piece in enumerate(pieces):
            for oriented in (piece, piece[::-1]):
                gap = oriented[0] - end
                distance = np.linalg.norm(gap)
                if not 0 < distance <= max_gap or len(oriented) < 2:
                    continue
                onward = _direction(oriented[::-1]) * -1  # the piece's direction at its near end, into it
                if gap @ direction / distance >= limit and onward @ direction >= limit \
                        and (best is None or distance < best[0]):
                    best = (distance, number, oriented)
        if best is None:
            return path
        _, number, oriented = best
        path = np.vstack([path, _bridge(path[-1], oriented[0]), oriented])
        pieces.pop(number)
    return path


def extract_centreline(mask: np.ndarray, valid: np.ndarray | None = None, max_gap_px: float = 0.0
                       ) -> Centreline | None:
    """None when the mask holds no wire; `valid` is the field of view (default: the whole image).
    With max_gap_px > 0 the largest component's path is continued across gaps up to that long by
    other pieces that carry it on (a wire the mask breaks where it crosses the spine or a denser
    structure: its tip is on the far piece); 0 keeps the largest component alone."""
    components = _components(mask.astype(bool), MIN_PIECE_PX, 1 + MAX_PIECES if max_gap_px > 0 else 1)
    if not components:
        return None
    found = _skeleton_path(components[0])
    if found is None:
        return None
    points, _, skeleton = found
    off_path = skeleton[cKDTree(points).query(skeleton)[0] > OFF_PATH_PX]
    if max_gap_px > 0:
        pieces = [path for path, _, _ in filter(None, map(_skeleton_path, components[1:]))]
        points = _extend(_extend(points, pieces, max_gap_px)[::-1], pieces, max_gap_px)
    field = np.ones(mask.shape, bool) if valid is None else valid.astype(bool)
    border_distance = ndimage.distance_transform_edt(np.pad(field, 1))[1:-1, 1:-1]
    depth = [border_distance[int(p[1]), int(p[0])] for p in (points[0], points[-1])]
    if depth[0] > depth[1]:  # the first end is deeper inside the field: it is the tip
        points = points[::-1]
    length = float(np.hypot(*np.diff(points, axis=0).T).sum())
    return Centreline(points=points, tip=points[-1], length_px=length, off_path=off_path)
