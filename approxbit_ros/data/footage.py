"""The user's own recordings as ApproxBit training data: a folder of videos (recursive; mp4, avi,
mkv, mov) and / or ROS 2 bags (sqlite3 or MCAP, ``sensor_msgs/Image`` or ``CompressedImage``),
optionally labelled by sub-folder name or a CSV (``path,label``).

Every recording is decoded once — centre-cropped and resized to the backbone's input size, as the
edge node's ``ClipBuffer`` does — and cached on disk (``.npz`` keyed by path, size, mtime and
clip size), so a 2-core machine does not re-decode every epoch. Each recording is cut into time
segments of ``segment_s`` seconds (by the frames' own timestamps); whole segments go to train /
validation / test (seeded, stratified per recording), so no second of footage is in two splits. A
clip is ``frames`` frames taken every ``frame_stride`` frames, inside one segment.
Plain Python (PyAV / rosbags through ``offload_common.frame_sources``), no ROS.
"""
from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov")
SPLITS = ("train", "val", "test")
UNLABELLED = -1


@dataclass
class Recording:
    path: str
    kind: str                        # "video" or "bag"
    label: Optional[str] = None


def _is_bag(path: str) -> bool:
    return (os.path.isdir(path) and os.path.isfile(os.path.join(path, "metadata.yaml"))) or path.endswith(".mcap")


def find_recordings(paths: Sequence[str], labels: str = "none") -> List[Recording]:
    """Recordings under ``paths`` (files, folders searched recursively, bag folders, .mcap files).
    ``labels``: "none", "folders" (the name of the folder holding each file) or a CSV file of
    ``path,label`` rows (paths as found, or relative to the CSV)."""
    found: List[Recording] = []
    for p in paths:
        if not os.path.exists(p):
            raise FileNotFoundError(f"no such recording or folder: {p}")
        if _is_bag(p):
            found.append(Recording(p, "bag"))
        elif os.path.isfile(p):
            if not p.lower().endswith(VIDEO_EXTENSIONS):
                raise ValueError(f"{p}: not a video ({', '.join(VIDEO_EXTENSIONS)}) or a bag")
            found.append(Recording(p, "video"))
        else:
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for d in list(dirs):
                    if _is_bag(os.path.join(root, d)):
                        found.append(Recording(os.path.join(root, d), "bag"))
                        dirs.remove(d)
                for f in sorted(files):
                    full = os.path.join(root, f)
                    if f.lower().endswith(VIDEO_EXTENSIONS):
                        found.append(Recording(full, "video"))
                    elif f.endswith(".mcap") and not os.path.isfile(os.path.join(root, "metadata.yaml")):
                        found.append(Recording(full, "bag"))
    if not found:
        raise ValueError(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) or bags under {', '.join(paths)}")
    if labels == "folders":
        for r in found:
            r.label = os.path.basename(os.path.dirname(os.path.normpath(r.path)))
    elif labels != "none":
        table = _read_label_csv(labels)
        for r in found:
            r.label = table.get(os.path.normpath(r.path)) or table.get(os.path.basename(r.path))
        missing = [r.path for r in found if r.label is None]
        if missing:
            raise ValueError(f"{labels} gives no label for {len(missing)} recordings, e.g. {missing[0]}")
    return found


def _read_label_csv(path: str) -> Dict[str, str]:
    base = os.path.dirname(os.path.abspath(path))
    out = {}
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if len(row) < 2 or row[0].startswith("#") or row[0] == "path":
                continue
            p = row[0].strip()
            out[os.path.normpath(p)] = row[1].strip()
            out[os.path.normpath(os.path.relpath(os.path.join(base, p)))] = row[1].strip()
            out[os.path.basename(p)] = row[1].strip()
    return out


@dataclass
class FootageConfig:
    frames: int = 16                 # frames per clip (the backbone's)
    size: int = 64                   # square input size (the backbone's)
    frame_stride: int = 1            # sampling rate: every n-th frame
    segment_s: float = 4.0           # time segments that are never split
    fractions: Tuple[float, float, float] = (0.7, 0.15, 0.15)
    split_by: str = "segment"        # or "file": whole recordings per split
    seed: int = 0
    eval_step: int = 4               # start of one validation / test clip every eval_step frames
    bag_topic: str = ""

    def __post_init__(self):
        if self.frames < 1 or self.size < 8 or self.frame_stride < 1 or self.eval_step < 1 or self.segment_s <= 0:
            raise ValueError(f"bad footage config {self}")
        if self.split_by not in ("segment", "file"):
            raise ValueError(f"split_by must be 'segment' or 'file', got {self.split_by!r}")
        if len(self.fractions) != 3 or min(self.fractions) <= 0 or abs(sum(self.fractions) - 1) > 1e-6:
            raise ValueError(f"split fractions must be three positive numbers summing to 1, got {self.fractions}")

    @property
    def span(self) -> int:
        """Frames a clip covers."""
        return (self.frames - 1) * self.frame_stride + 1


def decode_recording(rec: Recording, size: int, cache_dir: Optional[str], bag_topic: str = "",
                     progress: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """(N, size, size, 3) uint8 frames and (N,) int64 stamps in ns (from the start), cached."""
    from offload_common.frame_sources import BagSource, VideoFileSource
    from approxbit_ros.pipeline import ClipBuffer

    cache = None
    if cache_dir:
        st = os.stat(rec.path)
        key = hashlib.sha1(f"{os.path.abspath(rec.path)}|{st.st_size}|{st.st_mtime_ns}|{size}|{bag_topic}|v1".encode())
        cache = os.path.join(cache_dir, f"{os.path.basename(os.path.normpath(rec.path))}-{key.hexdigest()[:12]}.npz")
        if os.path.isfile(cache):
            with np.load(cache) as z:
                return z["frames"], z["stamps"]
    source = BagSource(rec.path, bag_topic) if rec.kind == "bag" else VideoFileSource(rec.path)
    prep = ClipBuffer(1, 1, size)
    frames, stamps = [], []
    from tqdm import tqdm

    for f in tqdm(source, desc=f"decoding {os.path.basename(rec.path)}", disable=not progress, leave=False,
                  unit="frame"):
        frames.append(prep.prepare(f.rgb))
        stamps.append(f.stamp_ns if f.stamp_ns is not None else len(stamps) * 33_333_333)
    if not frames:
        raise ValueError(f"{rec.path}: no frames")
    arr, st_ns = np.stack(frames), np.asarray(stamps, np.int64)
    st_ns -= st_ns[0]
    if cache:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = cache + ".tmp.npz"
        np.savez(tmp, frames=arr, stamps=st_ns)
        os.replace(tmp, cache)
    return arr, st_ns


@dataclass
class ClipWindow:
    recording: int
    start: int                       # first frame index


@dataclass
class FootageClips:
    """Decoded recordings and the clip windows of each split."""
    config: FootageConfig
    recordings: List[Recording]
    frames: List[np.ndarray]
    label_names: List[str]
    labels: List[int]                                   # per recording, UNLABELLED without labels
    segments: Dict[str, List[Tuple[int, int]]] = field(default_factory=dict)   # split -> (recording, segment)
    windows: Dict[str, List[ClipWindow]] = field(default_factory=dict)

    @classmethod
    def load(cls, recordings: Sequence[Recording], config: FootageConfig, cache_dir: Optional[str] = None,
             progress: bool = True) -> "FootageClips":
        frames, stamps = [], []
        for r in recordings:
            f, s = decode_recording(r, config.size, cache_dir, config.bag_topic, progress)
            frames.append(f)
            stamps.append(s)
        names = sorted({r.label for r in recordings if r.label is not None})
        labels = [names.index(r.label) if r.label is not None else UNLABELLED for r in recordings]
        clips = cls(config, list(recordings), frames, names, labels)
        clips._split(stamps)
        return clips

    def _split(self, stamps: List[np.ndarray]) -> None:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        seg_of = [(s // int(cfg.segment_s * 1e9)).astype(np.int64) for s in stamps]
        assign: Dict[Tuple[int, int], str] = {}
        if cfg.split_by == "file":
            order = rng.permutation(len(self.recordings))
            for name, idx in zip(SPLITS, _proportional(order, cfg.fractions)):
                for r in idx:
                    for seg in np.unique(seg_of[r]):
                        assign[(int(r), int(seg))] = name
        else:
            for r, segs in enumerate(seg_of):
                uniq = rng.permutation(np.unique(segs))
                for name, idx in zip(SPLITS, _proportional(uniq, cfg.fractions)):
                    for seg in idx:
                        assign[(r, int(seg))] = name
        self.segments = {name: sorted(k for k, v in assign.items() if v == name) for name in SPLITS}
        self.windows = {name: [] for name in SPLITS}
        for r, segs in enumerate(seg_of):
            n = len(segs)
            for start in range(0, n - self.config.span + 1):
                end = start + self.config.span - 1
                if segs[start] != segs[end]:
                    continue
                name = assign[(r, int(segs[start]))]
                if name != "train" and start % cfg.eval_step:
                    continue
                self.windows[name].append(ClipWindow(r, start))

    def clip(self, w: ClipWindow) -> np.ndarray:
        f = self.frames[w.recording]
        return f[w.start:w.start + self.config.span:self.config.frame_stride]

    def batch(self, split: str, indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        """(B, T, S, S, 3) uint8 clips and (B,) labels (UNLABELLED without labels)."""
        ws = [self.windows[split][i] for i in indices]
        return np.stack([self.clip(w) for w in ws]), np.array([self.labels[w.recording] for w in ws], np.int64)

    def use_class_names(self, class_names: Sequence[str]) -> None:
        """Number the labels by ``class_names`` (the frozen backbone's classes: its classifier is
        not retrained), matching names case-insensitively with ``_`` / ``-`` read as spaces."""
        norm = lambda n: " ".join(n.replace("_", " ").replace("-", " ").lower().split())   # noqa: E731
        index = {norm(n): i for i, n in enumerate(class_names)}
        unknown = sorted({n for n in self.label_names if norm(n) not in index})
        if unknown:
            raise ValueError(f"labels {unknown[:5]} are not classes of the backbone ({len(class_names)} classes, "
                             f"e.g. {list(class_names)[:3]}); its classifier is frozen")
        self.labels = [index[norm(self.label_names[i])] if i != UNLABELLED else UNLABELLED for i in self.labels]
        self.label_names = list(class_names)

    @property
    def labelled(self) -> bool:
        return all(lbl != UNLABELLED for lbl in self.labels)

    def seconds(self, split: str) -> float:
        return float(len(self.segments[split]) * self.config.segment_s)

    def summary(self) -> str:
        parts = [f"{len(self.recordings)} recordings, {sum(len(f) for f in self.frames)} frames"]
        for name in SPLITS:
            parts.append(f"{name}: {len(self.segments[name])} segments, {len(self.windows[name])} clips")
        return "; ".join(parts)


def _proportional(items: np.ndarray, fractions: Sequence[float]) -> List[np.ndarray]:
    """Split ``items`` into three runs by ``fractions``; with three or more items none is empty
    (validation and test get at least one each)."""
    n = len(items)
    n_val = max(1, int(round(fractions[1] * n))) if n >= 3 else 0
    n_test = max(1, int(round(fractions[2] * n))) if n >= 3 else 0
    n_train = n - n_val - n_test
    if n < 3:            # too short to split: it trains
        n_train = n
    return [items[:n_train], items[n_train:n_train + n_val], items[n_train + n_val:n_train + n_val + n_test]]


__all__ = ["ClipWindow", "FootageClips", "FootageConfig", "Recording", "SPLITS", "UNLABELLED", "decode_recording",
           "find_recordings"]
