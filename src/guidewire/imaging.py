"""numpy <-> sensor_msgs/Image layout, written against the message spec
(cv_bridge does not exist for these wheels): encoding, step (bytes per row,
rows may be padded) and is_bigendian for multi-byte encodings.

Works on plain fields so the library stays free of rclpy; the node layer
copies them into the message.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

# encoding -> (numpy dtype, channels)
ENCODINGS = {
    "mono8": (np.uint8, 1), "mono16": (np.uint16, 1), "8UC1": (np.uint8, 1), "16UC1": (np.uint16, 1),
    "32FC1": (np.float32, 1), "rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "rgba8": (np.uint8, 4),
    "bgra8": (np.uint8, 4), "8UC3": (np.uint8, 3),
}


class ImageFormatError(ValueError):
    """An image message that does not match its own encoding, size or step."""


@dataclass(frozen=True)
class ImageFields:
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: bytes


def to_image_fields(array: np.ndarray, encoding: str) -> ImageFields:
    if encoding not in ENCODINGS:
        raise ImageFormatError(f"unsupported encoding '{encoding}' (supported: {', '.join(ENCODINGS)})")
    dtype, channels = ENCODINGS[encoding]
    expected_ndim = 2 if channels == 1 else 3
    if array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        raise ImageFormatError(f"array of shape {array.shape} does not fit encoding '{encoding}'")
    array = np.ascontiguousarray(array, dtype=dtype)
    big = sys.byteorder == "big" and array.itemsize > 1
    return ImageFields(height=array.shape[0], width=array.shape[1], encoding=encoding, is_bigendian=int(big),
                       step=array.shape[1] * channels * array.itemsize, data=array.tobytes())


def from_image_fields(height: int, width: int, encoding: str, is_bigendian: int, step: int, data) -> np.ndarray:
    """The image as an (H, W) or (H, W, C) array in native byte order."""
    if encoding not in ENCODINGS:
        raise ImageFormatError(f"unsupported encoding '{encoding}' (supported: {', '.join(ENCODINGS)})")
    dtype, channels = ENCODINGS[encoding]
    dtype = np.dtype(dtype).newbyteorder(">" if is_bigendian else "<")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageFormatError(f"step {step} is smaller than a row of {width} '{encoding}' pixels ({row_bytes} bytes)")
    if len(data) != step * height:
        raise ImageFormatError(f"data has {len(data)} bytes, expected step*height = {step * height}")
    rows = np.frombuffer(bytes(data) if not isinstance(data, (bytes, bytearray, memoryview)) else data,
                         np.uint8).reshape(height, step)[:, :row_bytes]
    array = np.ascontiguousarray(rows).view(dtype).reshape((height, width) if channels == 1 else
                                                          (height, width, channels))
    return array.astype(dtype.newbyteorder("="), copy=False)
