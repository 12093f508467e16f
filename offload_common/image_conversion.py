"""Conversion between ``sensor_msgs/Image`` and numpy arrays, without cv_bridge.

Works on any object with the fields of ``sensor_msgs/msg/Image`` (``height``, ``width``,
``encoding``, ``is_bigendian``, ``step``, ``data``): rclpy messages, ``rosbags`` messages or a
plain namespace. Honours ``step`` (row padding) and ``is_bigendian``. The only function that
needs ROS installed is :func:`numpy_to_image_msg`, and it imports ``sensor_msgs`` lazily.

Supported encodings (names from ``sensor_msgs/image_encodings.hpp``):

==================  ========  =============================================
encoding            channels  notes
==================  ========  =============================================
rgb8, bgr8          3         uint8
rgba8, bgra8        4         uint8
mono8               1         uint8
mono16              1         uint16, byte order from ``is_bigendian``
yuv422, uyvy        2         packed 4:2:2, U Y0 V Y1 (BT.601, video range)
yuv422_yuy2, yuyv   2         packed 4:2:2, Y0 U Y1 V (BT.601, video range)
==================  ========  =============================================
"""
from __future__ import annotations

import array
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np


class ImageConversionError(ValueError):
    """An image message or array that cannot be converted (bad encoding, size or layout)."""


@dataclass(frozen=True)
class _Layout:
    channels: int
    dtype: np.dtype
    # Order of the colour channels for 3/4-channel encodings, None otherwise.
    order: Optional[str] = None
    # Packed 4:2:2 layouts: index of Y0, U, Y1, V within a 4-byte macropixel.
    yuv: Optional[tuple] = None


_LAYOUTS = {
    "rgb8": _Layout(3, np.dtype(np.uint8), "rgb"),
    "bgr8": _Layout(3, np.dtype(np.uint8), "bgr"),
    "rgba8": _Layout(4, np.dtype(np.uint8), "rgba"),
    "bgra8": _Layout(4, np.dtype(np.uint8), "bgra"),
    "mono8": _Layout(1, np.dtype(np.uint8)),
    "mono16": _Layout(1, np.dtype(np.uint16)),
    "yuv422": _Layout(2, np.dtype(np.uint8), yuv=(1, 0, 3, 2)),
    "uyvy": _Layout(2, np.dtype(np.uint8), yuv=(1, 0, 3, 2)),
    "yuv422_yuy2": _Layout(2, np.dtype(np.uint8), yuv=(0, 1, 2, 3)),
    "yuyv": _Layout(2, np.dtype(np.uint8), yuv=(0, 1, 2, 3)),
}

SUPPORTED_ENCODINGS = tuple(_LAYOUTS)

#: Largest image accepted (pixels); protects nodes from absurd header values.
MAX_PIXELS = 8192 * 8192


def _layout(encoding: str) -> _Layout:
    try:
        return _LAYOUTS[encoding.lower()]
    except KeyError:
        raise ImageConversionError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        ) from None


def bytes_per_pixel(encoding: str) -> int:
    lay = _layout(encoding)
    return lay.channels * lay.dtype.itemsize


def image_msg_to_array(msg: Any) -> np.ndarray:
    """Return the pixels of an image message as an array in the message's own encoding.

    Shape is ``(H, W)`` for 1-channel encodings and ``(H, W, C)`` otherwise (``C`` = 2 for
    packed YUV 4:2:2). The array is a copy in native byte order, with row padding removed.
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    lay = _layout(msg.encoding)
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"image has no pixels ({width}x{height})")
    if height * width > MAX_PIXELS:
        raise ImageConversionError(f"image {width}x{height} exceeds {MAX_PIXELS} pixels")
    if lay.yuv is not None and width % 2:
        raise ImageConversionError(f"{msg.encoding} needs an even width, got {width}")
    row_bytes = width * lay.channels * lay.dtype.itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than one row of {width} {msg.encoding} pixels ({row_bytes} bytes)"
        )
    data = msg.data
    buf = np.frombuffer(data if isinstance(data, (bytes, bytearray, memoryview)) else bytes(data),
                        dtype=np.uint8)
    # The last row needs only row_bytes, but sensor_msgs defines size as step * height.
    if buf.size < step * height:
        raise ImageConversionError(
            f"data has {buf.size} bytes, expected step*height = {step}*{height} = {step * height}"
        )
    rows = buf[: step * height].reshape(height, step)[:, :row_bytes]
    dtype = lay.dtype
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    arr = np.ascontiguousarray(rows).view(dtype).reshape(height, width, lay.channels)
    arr = arr.astype(lay.dtype.newbyteorder("="), copy=False)
    if lay.channels == 1:
        arr = arr[:, :, 0]
    return np.ascontiguousarray(arr)


def image_msg_to_rgb(msg: Any) -> np.ndarray:
    """Return an image message as an ``(H, W, 3)`` uint8 RGB array, whatever its encoding."""
    return to_rgb(image_msg_to_array(msg), msg.encoding)


def to_rgb(arr: np.ndarray, encoding: str) -> np.ndarray:
    """Convert an array in ``encoding`` (as returned by :func:`image_msg_to_array`) to RGB8."""
    lay = _layout(encoding)
    if lay.yuv is not None:
        return _yuv422_to_rgb(arr, lay.yuv)
    if lay.channels == 1:
        if arr.dtype == np.uint16:
            arr = (arr >> 8).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if lay.order in ("bgr", "bgra"):
        arr = arr[:, :, [2, 1, 0]]
    return np.ascontiguousarray(arr[:, :, :3])


def from_rgb(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """Convert an ``(H, W, 3)`` uint8 RGB array to an array in ``encoding``."""
    rgb = _check_rgb(rgb)
    lay = _layout(encoding)
    if lay.yuv is not None:
        return _rgb_to_yuv422(rgb, lay.yuv)
    if lay.channels == 1:
        gray = (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
        gray = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
        return gray.astype(np.uint16) * 257 if lay.dtype == np.uint16 else gray
    out = rgb[:, :, [2, 1, 0]] if lay.order in ("bgr", "bgra") else rgb
    if lay.channels == 4:
        alpha = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
        out = np.concatenate([out, alpha], axis=2)
    return np.ascontiguousarray(out)


def array_to_image_fields(arr: np.ndarray, encoding: str, *, big_endian: bool = False,
                          row_padding: int = 0) -> dict:
    """Fields of a ``sensor_msgs/Image`` holding ``arr``, which must already be in ``encoding``.

    ``row_padding`` extra bytes are appended to every row (exercises ``step`` handling).
    """
    lay = _layout(encoding)
    arr = np.asarray(arr)
    expected_ndim = 2 if lay.channels == 1 else 3
    if arr.ndim != expected_ndim or (expected_ndim == 3 and arr.shape[2] != lay.channels):
        raise ImageConversionError(
            f"array of shape {arr.shape} does not fit encoding {encoding!r} "
            f"({lay.channels} channel{'s' if lay.channels > 1 else ''})"
        )
    if arr.dtype != lay.dtype:
        raise ImageConversionError(f"encoding {encoding!r} needs dtype {lay.dtype}, got {arr.dtype}")
    height, width = arr.shape[:2]
    if lay.yuv is not None and width % 2:
        raise ImageConversionError(f"{encoding} needs an even width, got {width}")
    if lay.dtype.itemsize > 1:
        arr = arr.astype(lay.dtype.newbyteorder(">" if big_endian else "<"), copy=False)
    rows = np.ascontiguousarray(arr).view(np.uint8).reshape(height, -1)
    if row_padding:
        rows = np.concatenate([rows, np.zeros((height, row_padding), np.uint8)], axis=1)
    return {
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": int(bool(big_endian)),
        "step": rows.shape[1],
        "data": rows.tobytes(),
    }


def uint8_array(data) -> array.array:
    """``data`` (bytes-like or a sequence of ints) as the ``array.array('B')`` a ``uint8[]``
    message field stores as is. Assigning bytes instead makes the generated setter check every
    byte in Python (always on Humble, on newer distros with ROS_PYTHON_CHECK_FIELDS=1): 60 ms for
    a 640x360 rgb8 image instead of 0.06 ms."""
    return array.array("B", data)


def numpy_to_image_msg(rgb: np.ndarray, encoding: str = "rgb8", *, stamp=None, frame_id: str = ""):
    """Build a ``sensor_msgs.msg.Image`` from an RGB8 array, converting to ``encoding``."""
    from sensor_msgs.msg import Image  # lazy: library stays importable without ROS

    fields = array_to_image_fields(from_rgb(rgb, encoding), encoding)
    msg = Image()
    msg.height, msg.width = fields["height"], fields["width"]
    msg.encoding, msg.is_bigendian, msg.step = encoding, fields["is_bigendian"], fields["step"]
    msg.data = uint8_array(fields["data"])
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageConversionError(f"expected an (H, W, 3) uint8 RGB array, got {rgb.shape} {rgb.dtype}")
    return rgb


# BT.601, video range ("studio swing"), as used by V4L2 cameras producing YUYV / UYVY.
_RGB2YUV = np.array([[0.257, 0.504, 0.098], [-0.148, -0.291, 0.439], [0.439, -0.368, -0.071]],
                    np.float32)
_YUV_OFFSET = np.array([16.0, 128.0, 128.0], np.float32)
_YUV2RGB = np.linalg.inv(_RGB2YUV).astype(np.float32)


def _yuv422_to_rgb(arr: np.ndarray, order: tuple) -> np.ndarray:
    h, w = arr.shape[:2]
    macro = arr.reshape(h, w // 2, 4).astype(np.float32)
    y0, u, y1, v = (macro[..., i] for i in order)
    y = np.stack([y0, y1], axis=-1).reshape(h, w)
    u = np.repeat(u, 2, axis=1)
    v = np.repeat(v, 2, axis=1)
    yuv = np.stack([y, u, v], axis=-1) - _YUV_OFFSET
    rgb = yuv @ _YUV2RGB.T
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _rgb_to_yuv422(rgb: np.ndarray, order: tuple) -> np.ndarray:
    h, w = rgb.shape[:2]
    if w % 2:
        raise ImageConversionError(f"packed YUV 4:2:2 needs an even width, got {w}")
    yuv = rgb.astype(np.float32) @ _RGB2YUV.T + _YUV_OFFSET
    y = yuv[..., 0].reshape(h, w // 2, 2)
    uv = yuv[..., 1:].reshape(h, w // 2, 2, 2).mean(axis=2)  # average chroma of pixel pairs
    macro = np.empty((h, w // 2, 4), np.float32)
    y0_i, u_i, y1_i, v_i = order
    macro[..., y0_i] = y[..., 0]
    macro[..., y1_i] = y[..., 1]
    macro[..., u_i] = uv[..., 0]
    macro[..., v_i] = uv[..., 1]
    return np.clip(np.rint(macro), 0, 255).astype(np.uint8).reshape(h, w, 2)
