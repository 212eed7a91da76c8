"""Ordered wire centreline from a segmentation mask.

The skeleton of the largest wire component is a pixel graph; its longest
geodesic path (the graph's diameter, two Dijkstra sweeps) runs from one end of
the wire to the other and leaves every spur behind. The end closer to the edge
of the field of view is where the wire enters, the other one is the tip.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from skimage.measure import label
from skimage.morphology import skeletonize

NEIGHBOURS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]


@dataclass
class Centreline:
    points: np.ndarray  # (N,2) float pixel (u, v), insertion end first
    tip: np.ndarray  # (2,) pixel (u, v)
    length_px: float


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels = label(mask, connectivity=2)
    if labels.max() == 0:
        return np.zeros_like(mask, bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == sizes.argmax()


def extract_centreline(mask: np.ndarray, valid: np.ndarray | None = None) -> Centreline | None:
    """None when the mask holds no wire; `valid` is the field of view (default: the whole image)."""
    skeleton = skeletonize(_largest_component(mask.astype(bool)))
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
    points = np.column_stack([cols[path], rows[path]]).astype(float)  # from end_b to end_a
    field = np.ones(skeleton.shape, bool) if valid is None else valid.astype(bool)
    border_distance = ndimage.distance_transform_edt(np.pad(field, 1))[1:-1, 1:-1]
    end_a_depth = border_distance[rows[end_a], cols[end_a]]
    end_b_depth = border_distance[rows[end_b], cols[end_b]]
    if end_b_depth > end_a_depth:  # end_b is deeper inside: it is the tip
        points = points[::-1]
    return Centreline(points=points, tip=points[-1], length_px=float(distances[end_b]))
