"""A seeded, deterministic synthetic action-recognition dataset in the spirit of
Something-Something: a textured object acts on a textured, moving background, and the class is
decided by motion and temporal order only, so a single frame cannot tell it.

Every clip is generated from (split seed, index): no files, identical on every machine.
Distractors: camera shake and slow pan, global lighting ramps, clutter objects drifting in
random directions, per-clip random object texture, size, colour and start position.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, List, Tuple

import numpy as np

CLASSES = (
    "moving left", "moving right", "moving up", "falling down",          # direction
    "approaching", "receding",                                            # towards vs away
    "rotating clockwise", "rotating counter-clockwise",                   # rotation sense
    "pushing something right into something", "pushing something left into something",
    "appearing", "disappearing",                                          # temporal order
    "bouncing",                                                           # down then up
)

SPLIT_SEEDS = {"train": 1000, "val": 2000, "test": 3000}


@dataclass
class ActionClipConfig:
    frames: int = 16
    size: int = 64
    clutter: int = 2
    shake: float = 1.5          # pixels of random camera jitter per frame
    pan: float = 0.6            # pixels per frame of background pan (random direction)
    lighting: float = 0.25      # max relative brightness change over a clip


def _texture(rng: np.random.Generator, h: int, w: int, scale: int) -> np.ndarray:
    coarse = rng.uniform(0, 1, size=(h // scale + 2, w // scale + 2, 3)).astype(np.float32)
    tex = np.kron(coarse, np.ones((scale, scale, 1), np.float32))[:h, :w]
    return tex


class SyntheticActions:
    """``dataset[i]`` -> (clip uint8 (T, H, W, 3), label). ``len`` clips per split."""

    def __init__(self, split: str = "train", size: int = 1200, config: ActionClipConfig = ActionClipConfig()):
        if split not in SPLIT_SEEDS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_SEEDS)}")
        self.split, self.length, self.config = split, size, config

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Tuple[np.ndarray, int]:
        clip, label, _ = self.with_layout(index)
        return clip, label

    def with_layout(self, index: int) -> Tuple[np.ndarray, int, "ClipLayout"]:
        """(clip, label, where the acting object is at the first and last frame)."""
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng([SPLIT_SEEDS[self.split], index])
        label = int(index % len(CLASSES)) if self.split != "train" else int(rng.integers(len(CLASSES)))
        layout = ClipLayout()
        return render_clip(label, rng, self.config, layout), label, layout

    def __iter__(self) -> Iterator[Tuple[np.ndarray, int]]:
        for i in range(self.length):
            yield self[i]


@dataclass
class ClipLayout:
    """Where the acting object is at the first and last frame: centre x / frame width and opacity."""
    x_first: float = 0.0
    x_last: float = 0.0
    alpha_first: float = 0.0
    alpha_last: float = 0.0


def _trajectory(label: int, rng: np.random.Generator, t: np.ndarray, size: int):
    """Object centre (x, y), scale, angle and opacity per frame, plus an optional second object
    (pushed) centre, for one class."""
    n = len(t)
    s = size
    u = t / max(n - 1, 1)                                   # 0..1
    x = np.full(n, rng.uniform(0.3, 0.7) * s)
    y = np.full(n, rng.uniform(0.3, 0.7) * s)
    scale = np.full(n, rng.uniform(0.8, 1.1))
    angle = np.full(n, rng.uniform(0, 2 * np.pi))
    alpha = np.ones(n)
    second = None
    dist = rng.uniform(0.35, 0.5) * s
    name = CLASSES[label]
    if name == "moving left":
        x = rng.uniform(0.65, 0.8) * s - dist * u
    elif name == "moving right":
        x = rng.uniform(0.2, 0.35) * s + dist * u
    elif name == "moving up":
        y = rng.uniform(0.65, 0.8) * s - dist * u
    elif name == "falling down":
        y = rng.uniform(0.15, 0.3) * s + dist * u ** 2       # accelerating
    elif name == "approaching":
        scale = 0.5 + 0.9 * u
    elif name == "receding":
        scale = 1.4 - 0.9 * u
    elif name == "rotating clockwise":
        angle = angle[0] + 1.6 * np.pi * u
    elif name == "rotating counter-clockwise":
        angle = angle[0] - 1.6 * np.pi * u
    elif name.startswith("pushing"):
        sign = 1 if "right" in name else -1
        x0 = s * (0.5 - sign * 0.3)
        contact = 0.45
        x = x0 + sign * dist * u
        gap = 0.24 * s
        bx0 = x0 + sign * (dist * contact + gap)
        bx = np.where(u < contact, bx0, bx0 + sign * dist * (u - contact))
        second = np.stack([bx, y], axis=1)
    elif name == "appearing":
        alpha = np.clip((u - 0.25) / 0.35, 0, 1)
    elif name == "disappearing":
        alpha = np.clip((0.75 - u) / 0.35, 0, 1)
    elif name == "bouncing":
        y = rng.uniform(0.6, 0.75) * s - dist * 1.2 * (1 - (2 * u - 1) ** 2) * 0.8
    else:  # pragma: no cover - CLASSES and this table change together
        raise AssertionError(name)
    return x, y, scale, angle, alpha, second


def render_clip(label: int, rng: np.random.Generator, cfg: ActionClipConfig = ActionClipConfig(),
                layout: ClipLayout = None) -> np.ndarray:
    """One clip of class ``label``; ``layout``, when given, is filled in (the pixels do not depend on it)."""
    n, s = cfg.frames, cfg.size
    t = np.arange(n, dtype=np.float32)
    big = s * 2
    tex = _texture(rng, big, big, scale=max(2, s // 12))
    grey = tex.mean(axis=2, keepdims=True)
    background = (0.5 * tex + 0.5 * grey) * 0.45 + 0.25       # textured, lower contrast than objects
    obj_tex = _texture(rng, s, s, scale=max(1, s // 24))
    obj_colour = rng.uniform(0.2, 1.0, size=3).astype(np.float32)
    second_colour = rng.uniform(0.2, 1.0, size=3).astype(np.float32)
    radius = rng.uniform(0.09, 0.14) * s
    x, y, scale, angle, alpha, second = _trajectory(label, rng, t, s)
    if layout is not None:
        layout.x_first, layout.x_last = float(x[0]) / s, float(x[-1]) / s
        layout.alpha_first, layout.alpha_last = float(alpha[0]), float(alpha[-1])
    pan_dir = rng.uniform(0, 2 * np.pi)
    pan = np.stack([np.cos(pan_dir), np.sin(pan_dir)]) * cfg.pan
    shake = rng.normal(0, cfg.shake, size=(n, 2))
    light = 1.0 + rng.uniform(-cfg.lighting, cfg.lighting) * (t / max(n - 1, 1))
    clutter = [(rng.uniform(0, s, 2), rng.uniform(-1.5, 1.5, 2), rng.uniform(0.03, 0.06) * s,
                rng.uniform(0.1, 0.9, 3).astype(np.float32)) for _ in range(cfg.clutter)]
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    out = np.empty((n, s, s, 3), np.uint8)
    for i in range(n):
        ox = int(np.clip(s / 2 + pan[0] * i + shake[i, 0], 0, s))
        oy = int(np.clip(s / 2 + pan[1] * i + shake[i, 1], 0, s))
        img = background[oy:oy + s, ox:ox + s].copy()
        for pos, vel, r, col in clutter:
            cx, cy = (pos + vel * i) % s
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
            img[mask] = col
        if second is not None:
            _draw_box(img, xx, yy, second[i, 0] + shake[i, 0] * 0.0, second[i, 1], radius, 0.0,
                      second_colour, obj_tex, 1.0)
        _draw_box(img, xx, yy, x[i], y[i], radius * scale[i], angle[i], obj_colour, obj_tex, alpha[i])
        out[i] = np.clip(img * light[i] * 255, 0, 255).astype(np.uint8)
    return out


def _draw_box(img, xx, yy, cx, cy, r, angle, colour, tex, alpha):
    """A textured square of half-size r at (cx, cy) rotated by angle, with a bright marker in
    one corner so the rotation sense is visible."""
    if alpha <= 0 or r < 1:
        return
    c, s_ = math.cos(angle), math.sin(angle)
    dx, dy = xx - cx, yy - cy
    u = c * dx + s_ * dy
    v = -s_ * dx + c * dy
    mask = (np.abs(u) < r) & (np.abs(v) < r)
    if not mask.any():
        return
    shade = colour[None, :] * (0.6 + 0.4 * tex[mask])
    marker = (u[mask] > r * 0.35) & (v[mask] > r * 0.35)
    shade[marker] = 1.0
    img[mask] = (1 - alpha) * img[mask] + alpha * shade


def clip_batch(ds: SyntheticActions, indices: List[int]) -> Tuple[np.ndarray, np.ndarray]:
    """(B, T, H, W, 3) uint8 clips and (B,) labels."""
    items = [ds[i] for i in indices]
    return np.stack([c for c, _ in items]), np.array([lbl for _, lbl in items], np.int64)


def clip_batches(ds: SyntheticActions, clips: int, batch_size: int) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """``clip_batch`` over clips 0 .. min(clips, len(ds)) - 1, in order, ``batch_size`` at a time."""
    clips = min(clips, len(ds))
    for start in range(0, clips, batch_size):
        yield clip_batch(ds, list(range(start, min(start + batch_size, clips))))


def open_action_frames(uri: str = "", *, width: int = 256, height: int = 256, seed: int = 0) -> "SyntheticActionFrames":
    """The camera source's ``actions`` kind (entry point ``edge_offload.frame_sources``; ``uri`` unused)."""
    return SyntheticActionFrames(width or 256, height or 256, seed)


class SyntheticActionFrames:
    """The test split as an endless frame stream for the camera source: clips one after the
    other, upscaled to ``width`` x ``height``; ``labels`` records the class of each clip and
    every frame carries its clip's class name (``Frame.label``), frame k being frame k % 16 of
    clip k // 16."""

    name = "actions"

    def __init__(self, width: int = 256, height: int = 256, seed_offset: int = 0, clips: int = 10_000):
        self.width, self.height = width, height
        self.dataset = SyntheticActions("test", clips)
        self.offset = seed_offset
        self.labels: List[int] = []

    def __iter__(self):
        import cv2

        from offload_common.frame_sources import Frame

        k = 0
        for i in range(len(self.dataset)):
            clip, label = self.dataset[(i + self.offset) % len(self.dataset)]
            self.labels.append(label)
            for frame in clip:
                yield Frame(cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_NEAREST), k,
                            label=CLASSES[label])
                k += 1

    def close(self) -> None:
        pass
