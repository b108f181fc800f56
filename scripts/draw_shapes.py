#!/usr/bin/env python3
"""A few-shot task drawn by a program outside the kit (Pillow), for measuring transfer
defaults on images microcnn's own generator never made:

    python3 scripts/draw_shapes.py OUT [--train 20] [--test 100] [--size 64] [--seed 1]

writes OUT/train/<class>/*.png and OUT/test/<class>/*.png for four colour classes
(heart, moon, diamond, zigzag; or --classes a+b+..., also circle, square, triangle, star), drawn with wobbly "hand-drawn" strokes: random colours,
stroke widths, fills, positions, sizes and rotations on noisy coloured backgrounds.
Needs Pillow and numpy (`pip install pillow numpy`).
"""
import argparse
import math
import random
from pathlib import Path

try:
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter
except ImportError as e:  # pragma: no cover
    raise SystemExit(f"error: {e.name} is missing: pip install pillow numpy")

CLASSES = ["heart", "moon", "diamond", "zigzag"]
KNOWN = CLASSES + ["circle", "square", "triangle", "star"]


def outline(name, rng):
    """Points of the class's outline around (0, 0), radius about 1."""
    if name == "heart":
        pts = []
        for i in range(48):
            t = 2 * math.pi * i / 48
            x = 16 * math.sin(t) ** 3
            y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
            pts.append((x / 17, y / 17))
        return pts, True
    if name == "moon":
        outer = [(math.cos(a), math.sin(a)) for a in np.linspace(0.5 * math.pi, 1.5 * math.pi, 24)]
        k = rng.uniform(0.35, 0.6)
        inner = [(k * math.cos(a) - 0.1, math.sin(a)) for a in np.linspace(1.5 * math.pi, 0.5 * math.pi, 24)]
        return outer + inner, True
    if name == "diamond":
        w = rng.uniform(0.5, 0.8)
        return [(0, -1), (w, 0), (0, 1), (-w, 0)], True
    if name == "circle":
        return [(math.cos(a), math.sin(a)) for a in np.linspace(0, 2 * math.pi, 36, endpoint=False)], True
    if name == "square":
        return [(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)], True
    if name == "triangle":
        return [(math.cos(a), math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)], True
    if name == "star":
        return [((1 if k % 2 == 0 else 0.45) * math.cos(-math.pi / 2 + k * math.pi / 5),
                 (1 if k % 2 == 0 else 0.45) * math.sin(-math.pi / 2 + k * math.pi / 5)) for k in range(10)], True
    # zigzag: an open stroke
    n = rng.randint(3, 5)
    return [(-1 + 2 * i / n, 0.6 if i % 2 else -0.6) for i in range(n + 1)], False


def wobble(pts, rng, amount):
    return [(x + rng.gauss(0, amount), y + rng.gauss(0, amount)) for x, y in pts]


def draw(name, size, rng):
    bg = tuple(rng.randint(0, 255) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    noise = np.array(img, dtype=np.int16) + np.random.default_rng(rng.randint(0, 2**31)).integers(-25, 26, (size, size, 3))
    img = Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    pts, closed = outline(name, rng)
    pts = wobble(pts, rng, 0.04)
    r = size * rng.uniform(0.22, 0.4)
    cx = size / 2 + rng.uniform(-0.15, 0.15) * size
    cy = size / 2 + rng.uniform(-0.15, 0.15) * size
    a = rng.uniform(-0.5, 0.5)
    xy = [(cx + r * (x * math.cos(a) - y * math.sin(a)), cy + r * (x * math.sin(a) + y * math.cos(a))) for x, y in pts]
    while True:
        ink = tuple(rng.randint(0, 255) for _ in range(3))
        if sum(abs(p - q) for p, q in zip(ink, bg)) > 200:
            break
    width = max(1, int(size * rng.uniform(0.03, 0.08)))
    if closed and rng.random() < 0.5:
        d.polygon(xy, fill=ink)
    else:
        d.line(xy + ([xy[0]] if closed else []), fill=ink, width=width, joint="curve")
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    return img


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--train", type=int, default=20)
    p.add_argument("--test", type=int, default=100)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--classes", default="+".join(CLASSES), help=f"classes joined by + (known: {', '.join(KNOWN)})")
    args = p.parse_args()
    classes = args.classes.split("+")
    if unknown := [c for c in classes if c not in KNOWN]:
        p.error(f"unknown classes {unknown} (known: {', '.join(KNOWN)})")
    rng = random.Random(args.seed)
    for split, n in (("train", args.train), ("test", args.test)):
        for c in classes:
            folder = args.out / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                draw(c, args.size, rng).save(folder / f"{c}_{i:04}.png")
    print(f"{args.out}: {len(classes)} classes, {args.train} train and {args.test} test images each")


if __name__ == "__main__":
    main()
