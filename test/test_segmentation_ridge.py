"""Ridge-filter baseline (guidewire.segmentation.ridge): Frangi plus long thin components."""
import numpy as np
import pytest

from guidewire.segmentation.ridge import elongated_components, frangi_dark_ridges, ridge_wire_map


def _frame():
    """A 128x128 grey frame with a dark line 2 px wide (a wire) and a dark disc 7 px across (an electrode
    snap), light noise."""
    rng = np.random.default_rng(0)
    image = np.full((128, 128), 180.0)
    rows, cols = np.mgrid[:128, :128]
    line = np.abs(rows - (0.3 * cols + 20)) <= 1.0
    line &= (cols > 10) & (cols < 118)
    blob = np.hypot(rows - 95, cols - 40) <= 3.5
    image[line] -= 60
    image[blob] -= 60
    image += rng.normal(0, 3, image.shape)
    near_blob = np.hypot(rows - 95, cols - 40) <= 8  # the filter's answer spreads by its scale
    return np.clip(image, 0, 255).astype(np.uint8), line, near_blob


def test_line_kept_blob_removed():
    image, line, blob = _frame()
    response = frangi_dark_ridges(image)
    scale = float(np.percentile(response, 99.9))
    threshold = 0.2
    # the threshold alone answers on the blob too: removing it is the components' work
    assert (response / scale >= threshold)[blob].sum() >= 5
    wire = ridge_wire_map(response, scale, threshold, min_length_px=30) >= threshold
    assert wire[line].mean() > 0.8
    assert not wire[blob].any()


def test_short_and_wide_components_dropped():
    mask = np.zeros((64, 64), bool)
    mask[10, 5:55] = True  # long, 1 px wide
    mask[30:34, 5:15] = True  # 10 px long
    mask[40:60, 30:60] = True  # long but 20 px wide
    kept = elongated_components(mask, min_length_px=20, max_mean_width_px=7)
    assert kept[10, 5:55].all()
    assert kept.sum() == 50


def test_outside_field_and_its_edge_zero():
    image, _, _ = _frame()
    valid = np.zeros(image.shape, bool)
    valid[:, :64] = True
    response = frangi_dark_ridges(image, valid)
    assert not response[:, 64 - 4:].any()
    assert response[:, :60].any()


def test_colour_image_refused():
    with pytest.raises(ValueError, match="single-channel"):
        frangi_dark_ridges(np.zeros((8, 8, 3), np.uint8))
