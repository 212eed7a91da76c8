import numpy as np
import pytest

from guidewire.imaging import ImageFormatError, from_image_fields, to_image_fields


@pytest.mark.parametrize("encoding,shape,dtype", [("mono8", (5, 7), np.uint8), ("mono16", (4, 3), np.uint16),
                                                  ("rgb8", (3, 6, 3), np.uint8), ("32FC1", (2, 5), np.float32)])
def test_round_trip(encoding, shape, dtype):
    array = (np.arange(np.prod(shape)) * 37 % 251).astype(dtype).reshape(shape)
    fields = to_image_fields(array, encoding)
    assert fields.step == shape[1] * (shape[2] if len(shape) == 3 else 1) * np.dtype(dtype).itemsize
    np.testing.assert_array_equal(from_image_fields(**fields.__dict__), array)


def test_big_endian_mono16_and_padded_rows():
    values = np.array([[1, 256, 513], [4096, 65535, 7]], np.uint16)
    big = values.astype(">u2").tobytes()
    padded = b"".join(big[i * 6:(i + 1) * 6] + b"\xff\xff" for i in range(2))  # step 8 for 6-byte rows
    result = from_image_fields(height=2, width=3, encoding="mono16", is_bigendian=1, step=8, data=padded)
    np.testing.assert_array_equal(result, values)
    assert result.dtype.byteorder in ("=", "|", "<")


def test_bad_images_are_explained():
    with pytest.raises(ImageFormatError, match="unsupported encoding 'yuv422'"):
        from_image_fields(2, 2, "yuv422", 0, 4, bytes(8))
    with pytest.raises(ImageFormatError, match="expected step\\*height = 12"):
        from_image_fields(3, 4, "mono8", 0, 4, bytes(10))
    with pytest.raises(ImageFormatError, match="step 2 is smaller"):
        from_image_fields(3, 4, "mono8", 0, 2, bytes(6))
    with pytest.raises(ImageFormatError, match="does not fit encoding 'rgb8'"):
        to_image_fields(np.zeros((4, 4), np.uint8), "rgb8")
