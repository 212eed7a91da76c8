import numpy as np

from guidewire.preprocessing import crop_and_normalise, mask_guided_zscore, nonzero_crop_box, pad_to_square_and_resize


def test_pad_2048x1536_to_square_512():
    image = np.full((1536, 2048), 200, np.uint8)
    out = pad_to_square_and_resize(image)
    assert out.shape == (512, 512)
    # 256 padded rows of 2048 become 64 rows of 512: black bands top and bottom, content between.
    assert out[:63].max() == 0 and out[-63:].max() == 0
    assert (out[65:447] == 200).all()


def test_crop_to_nonzero_region():
    image = np.zeros((100, 120), np.uint8)
    image[10:60, 20:90] = 7
    rows, cols = nonzero_crop_box(image)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (10, 60, 20, 90)


def test_mask_guided_zscore_uses_only_the_mask():
    image = np.zeros((10, 10), np.float32)
    image[2:8, 2:8] = np.arange(36).reshape(6, 6) + 100
    normalised = mask_guided_zscore(image)
    inside = normalised[2:8, 2:8]
    assert abs(inside.mean()) < 1e-5 and abs(inside.std() - 1) < 1e-5
    assert (normalised[0] == 0).all()


def test_crop_and_normalise_on_a_collimated_frame():
    image = np.zeros((64, 64), np.uint8)
    image[8:56, 4:60] = np.random.default_rng(0).integers(1, 255, (48, 56))
    normalised, box = crop_and_normalise(image)
    assert normalised.shape == (48, 56)
    assert abs(normalised.mean()) < 1e-5


def _field(rng, size=128):
    """A noisy frame with a dark wire across it."""
    image = rng.normal(150, 12, (size, size))
    image[:, size // 2 - 1:size // 2 + 2] -= 60
    return np.clip(image, 1, 255).astype(np.uint8)


def test_robust_field_of_view_finds_a_zero_border_and_a_grey_one():
    from guidewire.preprocessing import robust_field_of_view

    rng = np.random.default_rng(0)
    for fill in (0, 128, 255):
        image = _field(rng)
        v, u = np.mgrid[0:128, 0:128]
        outside = np.hypot(u - 64, v - 64) > 50
        image[outside] = fill
        valid = robust_field_of_view(image)
        assert (valid == ~outside).mean() > 0.99, fill


def test_robust_field_of_view_keeps_a_dark_wire_that_enters_from_a_zero_border():
    from guidewire.preprocessing import robust_field_of_view

    image = _field(np.random.default_rng(1))
    image[:20] = 0
    image[20:, 63:66] = 1  # darkest grey a frame of the synthetic writer holds
    assert robust_field_of_view(image)[20:, 63:66].all()


def test_robust_field_of_view_of_a_frame_without_a_blank_border_is_the_whole_frame():
    from guidewire.preprocessing import robust_field_of_view

    rng = np.random.default_rng(2)
    image = _field(rng)
    image[:, :30] = rng.integers(0, 40, (128, 30))  # a dim, noisy shutter region with some zeros in it
    assert robust_field_of_view(image).all()


def test_robust_normalisation_ignores_text_and_shutter_share():
    from guidewire.preprocessing import ROBUST_CLIP, robust_preprocessing

    rng = np.random.default_rng(3)
    image = _field(rng)
    image[3:10, 4:60] = 255  # burned-in text
    normalised, box, valid = robust_preprocessing(image)
    assert normalised.shape == image.shape and valid.all()
    assert abs(float(np.median(normalised))) < 0.05
    assert normalised.max() <= ROBUST_CLIP and normalised[50:, 63:66].mean() < -2  # the wire stays dark
    # A zero border is cropped away as by the paper's preprocessing.
    bordered = np.zeros((160, 160), np.uint8)
    bordered[16:144, 16:144] = image
    normalised, box, valid = robust_preprocessing(bordered)
    assert normalised.shape == (128, 128) and valid.all()


def test_segmenter_resamples_to_the_expected_wire_width():
    from guidewire.segmentation.checkpoint import DEFAULT_WEIGHTS
    from guidewire.segmentation.inference import Segmenter

    segmenter = Segmenter(DEFAULT_WEIGHTS, window=256, wire_width_px=6.0, threads=1)
    assert segmenter.scale == segmenter.expected_wire_width_px / 6.0
    image = _field(np.random.default_rng(4), 200)
    probability = segmenter.probability(image)
    assert probability.shape == image.shape
    assert probability[:, 95:105].mean() > probability[:, :80].mean()
