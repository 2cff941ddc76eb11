"""The synthetic focus benchmarks: where to look matters, and so does temporal order.

Each video shows one small object (``object_size`` px, at most a quarter of the frame side) over a cluttered,
moving background. The object has a bright magenta marker border, identical for all classes, so it is easy to
*find* at low resolution. Its class is a pair of fine patterns: the object shows pattern A, then switches to
pattern B at a random frame in the middle third of the video, so the object must be seen at several moments (A
or B alone leaves three candidate classes). By default the pair is unordered (A first or B first at random);
with ``ordered=True`` "A then B" and "B then A" are different classes, which only order-aware models can
separate (an order-blind one -- e.g. max-pooling over per-frame features -- is capped at 50 % per pair).

Where the object goes (``motion``): ``"drift"`` (the papers' regime) moves it in a straight line through a
midpoint anywhere in the frame, the centre included; ``"arc"`` (the hard regime) keeps it on an arc far from
the centre, so centre patches miss it. With ``coarse_groups`` the object's inside is brighter or darker by
class group: coarse evidence a glance at the whole frame can see, which tells the group but not the class.
docs/benchmarks.md gives the registered sets' numbers and the chance that a random or the centre patch holds
the patterned region (``bench.data.geometry``).

The patterns (stripes, checkerboard, bricks) are drawn in square cells of ``cell`` px (default 2) and
alternate from cell to cell in at least one axis (period ``2 * cell`` px), with the same mean; their contrast
tapers towards the border so no edge artefact gives them away. Cells of 2 px, not 1: a 1-px-cell pattern is
erased by bilinear resampling at a half-pixel offset, which would penalise V2's interpolated (sub-pixel) crop
against V1's integer crop for a reason that has nothing to do with focus.

When the object is shown (``visible``): in every frame by default; with ``visible < 1`` only in a contiguous
window of ``round(visible * frames)`` frames at a random place in each video, with the pattern switch inside
the window (both patterns are seen there). The other frames show only the background, so which frames a model
looks at matters (the temporal benchmark, for frame-selecting policies such as Uni-AdaFocus's).

Rendering is pure numpy, seeded per video (``video_rng``), so tests can re-render any video and check
the boxes against the pixels. ``bench.data.synthetic_files`` writes the videos to disk.
"""

from __future__ import annotations

import colorsys
from dataclasses import asdict, dataclass
from typing import Dict, List, Tuple

import numpy as np

from bench.errors import UsageError

GENERATOR_VERSION = 3  # 3: 2-px pattern cells, larger object, fewer distractors
PATTERNS = ("hstripes", "vstripes", "checker", "hbricks", "vbricks")
# Classes are pairs of distinct patterns, fewest patterns first. Unordered: {0,1}, {0,2}, {1,2}, {0,3}, ...
# Ordered (A then B differs from B then A): each pair next to its reverse.
PAIRS = tuple((lo, hi) for hi in range(1, len(PATTERNS)) for lo in range(hi))
ORDERED_PAIRS = tuple(pair for lo, hi in PAIRS for pair in ((lo, hi), (hi, lo)))
MOTIONS = ("arc", "drift")
_LATER_FIELDS = dict(backgrounds=0, motion="arc", drift=[0.1, 0.25], coarse_groups=0, visible=1.0)
COARSE_LEVEL = 60.0  # the brightness step between coarse groups (0-255 scale)
MARKER_RGB = (255, 0, 255)  # magenta; clutter hues keep away from it
_MARKER_HUE = 300.0 / 360.0


@dataclass(frozen=True)
class SynthParams:
    """Generator parameters (all of them define the data; ``ensure_synthetic`` keys its cache on them)."""

    classes: int = 6  # pattern pairs; 6 = the pairs of 4 patterns (of 3 when ordered)
    videos_per_class: Tuple[int, int] = (128, 32)  # (train, val)
    frames: int = 16
    size: int = 64  # frame side (square frames)
    object_size: int = 16  # object side including its marker border
    clutter: int = 3  # moving distractor shapes
    noise: float = 4.0  # per-pixel uniform noise, its standard deviation (0-255 scale)
    amplitude: float = 100.0  # pattern contrast around mid grey
    cell: int = 2  # pattern cell side in px (the pattern period is 2 * cell)
    sweep: Tuple[float, float] = (0.5, 0.9)  # range of the arc swept over the video, in pi rad (0.5 = 90 deg)
    orbit: Tuple[float, float] = (0.75, 0.95)  # arc radius range, fraction of the largest that fits
    launch: float = 0.25  # share of the video spent moving between the centre and the arc
    seed: int = 0
    ordered: bool = False  # True: "A then B" and "B then A" are different classes
    backgrounds: int = 0  # 0: every video its own background; n: drawn from n shared ones
    motion: str = "arc"  # "arc": on an arc far from the centre (the hard regime); "drift":
    # a straight drift anywhere, centre included (the papers' regime)
    drift: Tuple[float, float] = (
        0.1,
        0.25,
    )  # "drift": distance travelled over the video, fraction of the side
    coarse_groups: int = 0  # n > 0: the object's mean brightness tells which of n class groups
    # it is in (coarse evidence a glance at the whole frame can see)
    visible: float = 1.0  # share of the frames showing the object: a contiguous window at a random place
    # per video (1: every frame)

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise UsageError(f"synthetic: {msg}")

        n = len(ORDERED_PAIRS if self.ordered else PAIRS)
        need(2 <= self.classes <= n, f"--classes must be in [2, {n}], got {self.classes}")
        need(self.frames >= 2, f"--frames must be >= 2, got {self.frames}")
        need(self.size >= 16, f"--size must be >= 16, got {self.size}")
        need(
            8 <= self.object_size <= self.size // 4,
            f"--object-size must be in [8, size/4 = {self.size // 4}], got {self.object_size}",
        )
        need(
            0.0 <= self.launch < 0.34,
            f"launch must be in [0, 0.34) (the pattern switches in the middle third), got {self.launch}",
        )
        need(self.clutter >= 0, f"--clutter must be >= 0, got {self.clutter}")
        need(
            1 <= self.cell <= self.object_size // 4, f"--cell must be in [1, object_size/4], got {self.cell}"
        )
        need(min(self.videos_per_class) >= 1, f"--videos-per-class must be >= 1, got {self.videos_per_class}")
        need(self.backgrounds >= 0, f"backgrounds must be >= 0, got {self.backgrounds}")
        need(self.motion in MOTIONS, f"motion must be one of {', '.join(MOTIONS)}, got {self.motion!r}")
        need(
            0 <= self.drift[0] <= self.drift[1] <= 0.5,
            f"drift must be 0 <= lo <= hi <= 0.5, got {self.drift}",
        )
        need(
            0 <= self.coarse_groups <= self.classes,
            f"coarse_groups must be in [0, classes], got {self.coarse_groups}",
        )
        need(
            0 < self.visible <= 1 and visible_frames(self) >= 2,
            f"--visible must be in (0, 1] and show the object in >= 2 of the {self.frames} frames, "
            f"got {self.visible}",
        )

    def to_dict(self) -> Dict:
        d = asdict(self)
        d["videos_per_class"], d["sweep"], d["orbit"] = (
            list(self.videos_per_class),
            list(self.sweep),
            list(self.orbit),
        )
        d["drift"] = list(self.drift)
        # absent means the default: sets generated before a field existed keep their cache key
        for k, v in _LATER_FIELDS.items():
            if d[k] == v:
                del d[k]
        return d


# The registered benchmarks (``bench.data.synthetic_dataset``): SynthParams fields that differ from the
# defaults. Paper regime (docs/benchmarks.md states why each number): 56 px frames (the tiny presets' side), a
# 12 px object drifting anywhere in the frame with its 8 px patterned inside as the discriminative region, and
# a coarse class cue (the inside's brightness: 2 groups of 3 classes) that a glance at the whole frame can
# see.
PAPER_FRAME = dict(
    size=56, object_size=12, motion="drift", coarse_groups=2, amplitude=80.0, videos_per_class=(48, 16)
)
# Hard regime: today's geometry at 56 px: a quarter-side object on an arc far from the centre, no coarse cue.
# Every registered benchmark has 48 + 16 videos per class: the demo's budget (27 runs in 12 minutes on 2
# cores).
HARD_FRAME = dict(size=56, object_size=14, videos_per_class=(48, 16))
# The video variant (one patch location per video must serve every focus frame): "A then B" differs from
# "B then A"; backgrounds come from a shared pool, so f_G cannot fit the labels by memorising backgrounds.
# Paper regime: the object drifts only a little (one location holds it), anywhere, with the coarse cue.
PAPER_VIDEO = dict(
    ordered=True,
    classes=6,
    backgrounds=16,
    size=56,
    object_size=12,
    motion="drift",
    drift=(0.02, 0.06),
    coarse_groups=2,
    amplitude=80.0,
    videos_per_class=(48, 16),
)
# Hard regime: a short arc far from the centre, visiting the centre only in the first or last 15 % of the
# video.
HARD_VIDEO = dict(
    ordered=True,
    classes=6,
    backgrounds=16,
    size=56,
    object_size=14,
    sweep=(0.02, 0.08),
    orbit=(0.75, 0.95),
    launch=0.15,
    videos_per_class=(48, 16),
)
# The temporal benchmark: the papers'-regime frame benchmark with the object in 4 of the 16 frames only
# (absent from 75 % of them), so which frames the focus network sees matters as much as where it looks.
TEMPORAL_FRAME = dict(PAPER_FRAME, visible=0.25)


def class_pairs(p: SynthParams) -> Tuple[Tuple[int, int], ...]:
    """(first, second) pattern indices of each class."""
    return (ORDERED_PAIRS if p.ordered else PAIRS)[: p.classes]


def class_names(p: SynthParams) -> List[str]:
    """``<index>-<first pattern>-then-<second pattern>``: the index prefix makes alphabetical order (the
    20BN convention the loader applies) equal to the generator's class order."""
    join = "-then-" if p.ordered else "+"
    return [f"{c:02d}-{PATTERNS[a]}{join}{PATTERNS[b]}" for c, (a, b) in enumerate(class_pairs(p))]


def video_rng(p: SynthParams, split: str, label: int, k: int) -> np.random.Generator:
    """The generator of video ``k`` of class ``label`` in ``split``: independent of generation order."""
    return np.random.default_rng([p.seed, GENERATOR_VERSION, 0 if split == "train" else 1, label, k])


def background_rng(p: SynthParams, k: int) -> np.random.Generator:
    """The generator of shared background ``k % p.backgrounds``: video k of every class and of both splits
    gets the same one, so a background says nothing about the class and memorising it fits no label."""
    return np.random.default_rng([p.seed, GENERATOR_VERSION, 2, k % p.backgrounds])


# ---------------------------------------------------------------------------------------------- pieces
def pattern(name: str, n: int, cell: int = 1) -> np.ndarray:
    """``[n, n]`` in {-1, +1}, in ``cell`` x ``cell`` px cells alternating with period ``2 * cell`` px
    along at least one axis (mean 0 over a whole period)."""
    r, c = np.arange(n)[:, None] // cell, np.arange(n)[None, :] // cell
    alt_r, alt_c = (-1.0) ** r, (-1.0) ** c
    slow_r, slow_c = np.where((r // 2) % 2 == 0, 1.0, -1.0), np.where((c // 2) % 2 == 0, 1.0, -1.0)
    table = {
        "hstripes": alt_r + 0 * c,
        "vstripes": alt_c + 0 * r,
        "checker": alt_r * alt_c,
        "hbricks": alt_c * slow_r,
        "vbricks": alt_r * slow_c,
    }
    return table[name]


def taper(n: int, ramp: int = 3) -> np.ndarray:
    """``[n, n]`` envelope rising linearly over ``ramp`` px from each edge: hides edge artefacts at low
    res."""
    k = np.arange(n)
    w = np.minimum(np.minimum(k + 1, n - k) / ramp, 1.0)
    return w[:, None] * w[None, :]


def marker_border(p: SynthParams) -> int:
    """Width of the marker border: about a sixth of the object, >= 2 px, nudged so the patterned inside
    holds whole periods (``2 * cell`` px) -- a partial period has a non-zero mean the glance would see."""
    s, period = p.object_size, 2 * p.cell
    b = max(2, round(s / 6))
    fits = [c for c in range(2, s // 2) if (s - 2 * c) % period == 0]
    return min(fits, key=lambda c: (abs(c - b), c)) if fits else b


def coarse_level(p: SynthParams, label: int) -> float:
    """The object's mean brightness offset: ``coarse_groups`` equal steps across the classes (0 without
    them)."""
    if not p.coarse_groups:
        return 0.0
    group = label * p.coarse_groups // p.classes
    return COARSE_LEVEL * (group - (p.coarse_groups - 1) / 2)


def object_sprite(p: SynthParams, name: str, sign: float, level: float = 0.0) -> np.ndarray:
    """The object as float ``[s, s, 3]``: marker border + pattern ``name`` (contrast sign ``sign``) around
    mid grey plus ``level``."""
    s = p.object_size
    b = marker_border(p)
    n = s - 2 * b
    sprite = np.empty((s, s, 3))
    sprite[:] = MARKER_RGB
    inner = 128.0 + level + sign * p.amplitude * pattern(name, n, p.cell) * taper(n)
    sprite[b : b + n, b : b + n] = inner[:, :, None]
    return sprite


def trajectory(p: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """Top-left corners ``[F, 2]`` (x, y) of the object, integer pixels.

    The object moves on an arc around the frame centre. With ``launch > 0`` it travels between the
    centre and the arc during the first (or, at random, the last) ``launch`` fraction of the video, so
    every video passes the centre once, briefly, showing only one of its two patterns there (a start
    for gradient-based policies, whose initial patches sit near the centre). Direction, start angle,
    radius and speed are random (motion is a nuisance, not the class).
    """
    s, S = p.object_size, p.size
    half = S / 2 - s / 2 - 1  # largest radius keeping the object inside
    radius = rng.uniform(*p.orbit) * half  # default >= 0.75 * half: centre patches miss the object
    centre = S / 2 + rng.uniform(-1, 1, size=2) * min(2.0, half - radius)
    direction = 1.0 if rng.random() < 0.5 else -1.0
    angle0 = rng.uniform(0, 2 * np.pi)
    sweep = rng.uniform(*p.sweep) * np.pi
    t = np.linspace(0.0, 1.0, p.frames)
    r = np.full_like(t, radius)
    if p.launch > 0:  # (no extra draw otherwise: launch=0 renders exactly what earlier versions did)
        from_centre = t if rng.random() < 0.5 else 1.0 - t  # out from the centre, or in towards it
        r = radius * np.minimum(1.0, from_centre / p.launch)
    ang = angle0 + direction * sweep * t  # +1: counter-clockwise on screen (y is flipped below)
    xy = centre + r[:, None] * np.stack([np.cos(ang), -np.sin(ang)], axis=1) - s / 2
    return np.clip(np.round(xy), 0, S - s).astype(np.int64)


def drift_trajectory(p: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """Top-left corners ``[F, 2]`` (x, y): a straight drift through a midpoint anywhere in the frame.

    Each coordinate of the midpoint is triangular over the whole range (the mean of two uniforms): every
    position is possible, the centre included, and central ones are the most frequent (objects of interest
    tend to be framed). The object travels ``drift`` x side in a random direction, reflected at the borders.
    """
    span = p.size - p.object_size
    mid = span * (rng.random(2) + rng.random(2)) / 2
    dist = rng.uniform(*p.drift) * p.size
    ang = rng.uniform(0, 2 * np.pi)
    t = np.linspace(-0.5, 0.5, p.frames)[:, None]
    xy = np.abs(mid + dist * t * np.array([np.cos(ang), np.sin(ang)]))
    xy = span - np.abs(span - xy)  # one reflection at each border (dist < span)
    return np.clip(np.round(xy), 0, span).astype(np.int64)


def _clutter_colour(rng: np.random.Generator, max_sat: float = 0.7) -> np.ndarray:
    hue = rng.uniform(0.0, 1.0)
    while min(abs(hue - _MARKER_HUE), 1 - abs(hue - _MARKER_HUE)) < 0.14:  # keep away from magenta
        hue = rng.uniform(0.0, 1.0)
    return 255.0 * np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.15, max_sat), rng.uniform(0.3, 0.9)))


def background(p: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """Moving clutter ``[F, S, S, 3]`` float: drifting smooth colour waves plus moving rectangles/discs."""
    F, S = p.frames, p.size
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S
    t = np.linspace(0, 1, F, dtype=np.float32)
    base = _clutter_colour(rng, max_sat=0.45) * 0.6 + 50
    fx, fy = (rng.uniform(0.5, 2.0, size=(2, 3)) * 2 * np.pi).astype(np.float32)
    ph, v = (
        rng.uniform(0, 2 * np.pi, size=3).astype(np.float32),
        rng.uniform(-3, 3, size=3).astype(np.float32),
    )
    # 28 sin(a(x, y) + v t) per channel, expanded as sin a cos vt + cos a sin vt (no [F, S, S] sin).
    a = fx * xx[..., None] + fy * yy[..., None] + ph  # [S, S, 3]
    vt = v * t[:, None]  # [F, 3]
    bg = np.sin(a)[None] * (28 * np.cos(vt))[:, None, None]
    bg += np.cos(a)[None] * (28 * np.sin(vt))[:, None, None]
    bg += base.astype(np.float32)
    px = np.arange(S, dtype=np.float32) + 0.5  # pixel centres
    f = np.arange(F, dtype=np.float32)[:, None]
    top = np.full((F, S, S), -1, dtype=np.int16)  # index of the shape drawn on top, -1: none
    palette = np.zeros((max(1, p.clutter), 3), dtype=np.float32)
    for k in range(p.clutter):
        w, h = rng.integers(4, 2 * p.object_size + 1, size=2)
        x0, y0 = rng.uniform(-w, S), rng.uniform(-h, S)
        vx, vy = rng.uniform(-1.5, 1.5, size=2) * S / F
        palette[k] = _clutter_colour(rng)
        # Shapes wrap around the frame (a torus of side S + size), so the clutter is as dense at the end
        # of a video as at its start: no frame gives away *when* it was taken.
        cx = np.mod(x0 + w + vx * f, S + w) - w / 2
        cy = np.mod(y0 + h + vy * f, S + h) - h / 2
        # Normalised offsets from the shape's centre, per frame: [F, S] for x and for y.
        ux = (px[None] - cx) / (w / 2)
        uy = (px[None] - cy) / (h / 2)
        if rng.random() < 0.5:  # disc
            mask = uy[:, :, None] ** 2 + ux[:, None, :] ** 2 <= 1.0
        else:  # rectangle
            mask = (np.abs(uy[:, :, None]) <= 1.0) & (np.abs(ux[:, None, :]) <= 1.0)
        np.putmask(top, mask, k)
    if p.clutter:
        bg = np.where((top >= 0)[..., None], palette[top], bg)
    return bg


def visible_frames(p: SynthParams) -> int:
    """How many frames of a video show the object."""
    return p.frames if p.visible >= 1 else int(round(p.visible * p.frames))
