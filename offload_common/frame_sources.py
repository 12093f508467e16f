"""Frame sources for the camera node and for offline tools: video files, image folders,
ROS 2 bags and a synthetic moving scene. Plain Python; no rclpy.

Every source yields :class:`Frame` objects holding an RGB8 array. :class:`FrameStream` adds
looping, resizing and a frame limit on top of any source.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional

import numpy as np

from offload_common.image_conversion import ImageConversionError, image_msg_to_rgb


class FrameSourceError(ValueError):
    """A frame source that cannot be opened or read (a bad source parameter, a missing or unreadable file)."""


@dataclass
class Frame:
    rgb: np.ndarray               # (H, W, 3) uint8
    index: int                    # position in the source, 0-based
    stamp_ns: Optional[int] = None  # original timestamp when the source has one (bags)
    label: Optional[str] = None     # ground truth when the source knows it (synthetic action clips)


class FrameSource:
    """Base class: iterate to get frames once, from the start."""

    name = "base"

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class VideoFileSource(FrameSource):
    """Decodes a video file with PyAV (FFmpeg)."""

    name = "video"

    def __init__(self, path: str):
        if not os.path.isfile(path):
            raise FrameSourceError(f"video file not found: {path}")
        self.path = path

    def __iter__(self) -> Iterator[Frame]:
        import av

        try:
            container = av.open(self.path)
        except av.error.FFmpegError as exc:
            raise FrameSourceError(f"cannot open video {self.path}: {exc}") from exc
        with container:
            if not container.streams.video:
                raise FrameSourceError(f"{self.path} has no video stream")
            frames = container.decode(video=0)
            i = 0
            while True:
                try:
                    frame = next(frames, None)
                except av.error.FFmpegError as exc:
                    raise FrameSourceError(f"cannot decode frame {i} of {self.path}: {exc}") from exc
                if frame is None:
                    return
                stamp = None if frame.time is None else int(round(frame.time * 1e9))   # presentation time
                yield Frame(frame.to_ndarray(format="rgb24"), i, stamp_ns=stamp)
                i += 1


class ImageFolderSource(FrameSource):
    """Reads the images of a folder in sorted file-name order."""

    name = "images"
    EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")

    def __init__(self, folder: str, pattern: str = "*"):
        if not os.path.isdir(folder):
            raise FrameSourceError(f"image folder not found: {folder}")
        self.files = sorted(
            f for f in glob.glob(os.path.join(folder, pattern))
            if f.lower().endswith(self.EXTENSIONS)
        )
        if not self.files:
            raise FrameSourceError(f"no images ({', '.join(self.EXTENSIONS)}) in {folder}")

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        for i, path in enumerate(self.files):
            bgr = cv2.imread(path, cv2.IMREAD_COLOR)
            if bgr is None:
                raise FrameSourceError(f"cannot decode image {path}")
            yield Frame(np.ascontiguousarray(bgr[:, :, ::-1]), i)


class BagSource(FrameSource):
    """Reads ``sensor_msgs/msg/Image`` or ``sensor_msgs/msg/CompressedImage`` (JPEG / PNG)
    messages from a ROS 2 bag (sqlite3 or mcap) with the pure-Python ``rosbags`` reader.
    ``topic`` may be empty when the bag has one image topic."""

    name = "bag"
    IMAGE_TYPE = "sensor_msgs/msg/Image"
    COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
    IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)

    def __init__(self, path: str, topic: str = ""):
        if not os.path.exists(path):
            raise FrameSourceError(f"bag not found: {path}")
        self.path, self.topic = path, topic

    def __iter__(self) -> Iterator[Frame]:
        from pathlib import Path

        from rosbags.highlevel import AnyReader

        try:
            reader = AnyReader([Path(self.path)])
            reader.open()
        except Exception as exc:  # rosbags' own errors, a folder with no bag in it, an unreadable file
            raise FrameSourceError(f"cannot open bag {self.path}: {' '.join(str(exc).split())}") from exc
        try:
            conns = [c for c in reader.connections if c.msgtype in self.IMAGE_TYPES]
            if self.topic:
                conns = [c for c in conns if c.topic == self.topic]
            if not conns:
                raise FrameSourceError(
                    f"no image topic {self.topic!r} in bag {self.path}; image topics: "
                    f"{sorted({c.topic for c in reader.connections if c.msgtype in self.IMAGE_TYPES})}"
                )
            if len({c.topic for c in conns}) > 1:
                raise FrameSourceError(
                    f"bag {self.path} has several image topics {sorted({c.topic for c in conns})}; "
                    "set bag_topic")
            for i, (conn, timestamp, raw) in enumerate(reader.messages(connections=conns)):
                msg = reader.deserialize(raw, conn.msgtype)
                try:
                    rgb = decode_compressed(msg) if conn.msgtype == self.COMPRESSED_TYPE else image_msg_to_rgb(msg)
                except ImageConversionError as exc:
                    raise FrameSourceError(f"bag message {i} on {conn.topic}: {exc}") from exc
                yield Frame(rgb, i, stamp_ns=int(timestamp))
        finally:
            reader.close()


def decode_compressed(msg) -> np.ndarray:
    """A ``sensor_msgs/CompressedImage`` (any format OpenCV decodes: jpeg, png, ...) -> RGB8."""
    import cv2

    bgr = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageConversionError(f"cannot decode a {msg.format!r} CompressedImage of {len(msg.data)} bytes")
    return np.ascontiguousarray(bgr[:, :, ::-1])


class SyntheticSceneSource(FrameSource):
    """A deterministic moving scene: textured discs and boxes drifting over a textured,
    slowly panning background. Endless; ``num_frames`` bounds one pass (for looping)."""

    name = "synthetic"

    def __init__(self, width: int = 320, height: int = 240, seed: int = 0, num_frames: int = 300):
        if width < 16 or height < 16:
            raise FrameSourceError(f"synthetic scene needs at least 16x16 pixels, got {width}x{height}")
        self.width, self.height, self.seed, self.num_frames = width, height, seed, num_frames

    def __iter__(self) -> Iterator[Frame]:
        rng = np.random.default_rng(self.seed)
        h, w = self.height, self.width
        # Background: smooth colour noise, twice the frame size so it can pan.
        coarse = rng.integers(40, 200, size=(h // 8 + 2, w // 4 + 2, 3)).astype(np.float32)
        bg = np.kron(coarse, np.ones((8, 8, 1), np.float32))[: h + 16, : 2 * w]
        objects = []
        for _ in range(4):
            objects.append({
                "pos": rng.uniform([0, 0], [w, h]),
                "vel": rng.uniform(-3, 3, size=2),
                "r": rng.uniform(0.06, 0.14) * min(w, h),
                "colour": rng.integers(0, 256, size=3).astype(np.float32),
                "box": bool(rng.integers(0, 2)),
            })
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        for t in range(self.num_frames):
            off = int((t * 2) % w)
            img = bg[:h, off: off + w].copy()
            for ob in objects:
                ob["pos"] = (ob["pos"] + ob["vel"]) % [w, h]
                cx, cy = ob["pos"]
                if ob["box"]:
                    mask = (np.abs(xx - cx) < ob["r"]) & (np.abs(yy - cy) < ob["r"])
                else:
                    mask = (xx - cx) ** 2 + (yy - cy) ** 2 < ob["r"] ** 2
                stripes = 0.75 + 0.25 * np.sign(np.sin((xx + yy) * 0.5))
                img[mask] = (ob["colour"][None, :] * stripes[mask][:, None])
            yield Frame(np.clip(img, 0, 255).astype(np.uint8), t)


#: the kinds this module opens itself
BUILTIN_KINDS = ("synthetic", "video", "images", "bag")
#: entry-point group through which other packages provide frame sources: ``kind = module:factory``,
#: the factory called as ``factory(uri, width=, height=, seed=)`` (ApproxBit provides ``actions``, its
#: synthetic action clips; declared in setup.py, and for the CMake install in cmake/approxbit_ros.setup.cfg)
ENTRY_POINT_GROUP = "edge_offload.frame_sources"
_registered: Dict[str, Callable[..., FrameSource]] = {}


def register_source(kind: str, factory: Callable[..., FrameSource]) -> None:
    """Make ``open_source(kind, ...)`` call ``factory(uri, width=, height=, seed=)`` in this process
    (what an entry point in ``ENTRY_POINT_GROUP`` does for every process)."""
    if kind in BUILTIN_KINDS:
        raise ValueError(f"frame source kind {kind!r} is built in")
    _registered[kind] = factory


def _entry_points() -> dict:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}     # Python >= 3.10 (setup.py)


def source_kinds() -> List[str]:
    """Every kind ``open_source`` knows: the built-in ones, then the registered ones."""
    return list(BUILTIN_KINDS) + sorted((set(_registered) | set(_entry_points())) - set(BUILTIN_KINDS))


def open_source(kind: str, uri: str = "", *, width: int = 320, height: int = 240, seed: int = 0,
                bag_topic: str = "") -> FrameSource:
    """Open a frame source by kind: ``synthetic``, ``video`` (file path), ``images`` (folder),
    ``bag`` (bag folder or file), or a kind another package registered (``source_kinds()``)."""
    if kind == "synthetic":
        return SyntheticSceneSource(width or 320, height or 240, seed)
    if kind == "video":
        return VideoFileSource(uri)
    if kind == "images":
        return ImageFolderSource(uri)
    if kind == "bag":
        return BagSource(uri, bag_topic)
    factory = _registered.get(kind)
    if factory is None:
        found = _entry_points().get(kind)
        factory = found.load() if found is not None else None
    if factory is None:
        raise FrameSourceError(f"unknown source kind {kind!r}; expected one of {', '.join(source_kinds())}")
    return factory(uri, width=width, height=height, seed=seed)


def resize_rgb(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to ``width`` x ``height``; 0 for one of them keeps the aspect ratio."""
    import cv2

    h, w = rgb.shape[:2]
    if width <= 0 and height <= 0:
        return rgb
    if width <= 0:
        width = max(1, round(w * height / h))
    if height <= 0:
        height = max(1, round(h * width / w))
    if (width, height) == (w, h):
        return rgb
    interp = cv2.INTER_AREA if width * height < w * h else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), interpolation=interp)


class FrameStream:
    """Frames from a source with looping, resizing and an optional frame limit.

    ``next_frame()`` returns None at the end (never when looping an endless source)."""

    def __init__(self, source: FrameSource, *, loop: bool = True, width: int = 0, height: int = 0,
                 max_frames: int = 0):
        self.source, self.loop = source, loop
        self.width, self.height, self.max_frames = width, height, max_frames
        self.count = 0
        self.passes = 0
        self._it: Optional[Iterator[Frame]] = None
        self._first: Optional[Frame] = None

    def open(self) -> "FrameStream":
        """Read the first frame now, so a source that cannot be read (an empty or corrupt video,
        a folder with no bag) fails at start-up (FrameSourceError) rather than at the first tick."""
        self._first = self._read()
        return self

    def next_frame(self) -> Optional[Frame]:
        if self.max_frames and self.count >= self.max_frames:
            return None
        if self._first is not None:
            frame, self._first = self._first, None
            self.count += 1
            return frame
        frame = self._read()
        if frame is not None:
            self.count += 1
        return frame

    def _read(self) -> Optional[Frame]:
        for _attempt in range(2):
            if self._it is None:
                self._it = iter(self.source)
            frame = next(self._it, None)
            if frame is not None:
                break
            self._it = None
            self.passes += 1
            if not self.loop:
                return None
        else:
            raise FrameSourceError(f"{self.source.name} source produced no frames")
        frame.rgb = resize_rgb(frame.rgb, self.width, self.height)
        return frame

    def close(self) -> None:
        self.source.close()
