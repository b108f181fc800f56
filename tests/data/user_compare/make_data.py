"""Generate a small "user-like" image-classification dataset with PIL.

Six classes of a single foreground object drawn on a cluttered background:

    circle, ring, square, triangle, star, cross

Every image differs in size (width and height drawn independently from
40..72 px), background (two-colour gradient plus noise; three in four are
light with a dark object, the rest dark with a light object), object colour,
size, position, rotation and style (filled or outline); up to three small
distractor blobs and lines are scattered over the background, some objects
are partly cut off by the border or crossed by an occluding bar, and a light
blur and sensor-like noise are applied to some images.  Images are saved as
a mix of PNG and JPEG (quality 85), as a user's own photo folder would be.

Layout written (as `microcnn train --data` and
`keras.utils.image_dataset_from_directory` read it):

    OUT/train/<class>/<index>.{png,jpg}   (500 per class -> 3000)
    OUT/test/<class>/<index>.{png,jpg}    (~167 per class -> 1002)

Everything is drawn from two seeded numpy Generators (train, test), so the output is
identical for a given seed, numpy and Pillow version.

    python make_data.py --out /tmp/user_data [--seed 0] [--train 500] [--test 167]
"""

import argparse
import math
import os
import shutil

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ["circle", "ring", "square", "triangle", "star", "cross"]


def rand_colour(rng, lo=0, hi=256):
    return tuple(int(v) for v in rng.integers(lo, hi, size=3))


def object_colour(rng, dark):
    """A saturated-ish random colour, dark (channels 0..120) on a light
    background or light (channels 140..255) on a dark one."""
    lo, hi = (0, 121) if dark else (140, 256)
    return rand_colour(rng, lo, hi)


def background(rng, w, h, light):
    """A two-colour linear gradient plus noise; channels 110..255 for a
    light background, 0..150 for a dark one (so contrast varies)."""
    lo, hi = (110, 256) if light else (0, 151)
    c0 = np.array(rand_colour(rng, lo, hi), dtype=float)
    c1 = np.array(rand_colour(rng, lo, hi), dtype=float)
    ang = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    t = (xx / w - 0.5) * math.cos(ang) + (yy / h - 0.5) * math.sin(ang) + 0.5
    t = np.clip(t, 0, 1)[..., None]
    img = c0 * (1 - t) + c1 * t
    img += rng.normal(0, rng.uniform(2, 12), size=img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def rot(points, cx, cy, ang):
    ca, sa = math.cos(ang), math.sin(ang)
    return [(cx + x * ca - y * sa, cy + x * sa + y * ca) for x, y in points]


def draw_object(draw, rng, cls, cx, cy, r, colour, ang):
    filled = rng.random() < 0.8
    width = max(1, int(round(r * rng.uniform(0.12, 0.25))))
    fill = colour if filled else None
    if cls == "circle":
        # slightly elliptical at times
        rx, ry = r * rng.uniform(0.85, 1.0), r * rng.uniform(0.85, 1.0)
        box = [cx - rx, cy - ry, cx + rx, cy + ry]
        if filled:
            draw.ellipse(box, fill=colour)
        else:
            draw.ellipse(box, outline=colour, width=max(1, width // 2))
    elif cls == "ring":
        # a thick annulus; the hole is 35..60 % of the radius
        box = [cx - r, cy - r, cx + r, cy + r]
        w = max(2, int(round(r * rng.uniform(0.4, 0.65))))
        draw.ellipse(box, outline=colour, width=w)
    elif cls == "square":
        s = r * 0.85
        pts = rot([(-s, -s), (s, -s), (s, s), (-s, s)], cx, cy, ang)
        if filled:
            draw.polygon(pts, fill=colour)
        else:
            draw.line(pts + [pts[0]], fill=colour, width=width, joint="curve")
    elif cls == "triangle":
        pts = rot([(r * math.cos(a), r * math.sin(a))
                   for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)], cx, cy, ang)
        if filled:
            draw.polygon(pts, fill=colour)
        else:
            draw.line(pts + [pts[0]], fill=colour, width=width, joint="curve")
    elif cls == "star":
        n = int(rng.choice([5, 5, 6]))
        inner = rng.uniform(0.38, 0.55)
        pts = []
        for k in range(2 * n):
            rr = r if k % 2 == 0 else r * inner
            a = k * math.pi / n
            pts.append((rr * math.cos(a), rr * math.sin(a)))
        pts = rot(pts, cx, cy, ang)
        if filled:
            draw.polygon(pts, fill=colour)
        else:
            draw.line(pts + [pts[0]], fill=colour, width=max(1, width // 2), joint="curve")
    elif cls == "cross":
        t = r * rng.uniform(0.22, 0.38)
        pts = [(-t, -r), (t, -r), (t, -t), (r, -t), (r, t), (t, t), (t, r),
               (-t, r), (-t, t), (-r, t), (-r, -t), (-t, -t)]
        pts = rot(pts, cx, cy, ang)
        if filled:
            draw.polygon(pts, fill=colour)
        else:
            draw.line(pts + [pts[0]], fill=colour, width=max(1, width // 2), joint="curve")
    else:
        raise ValueError(cls)


def distractors(draw, rng, w, h):
    for _ in range(int(rng.integers(0, 4))):
        c = rand_colour(rng)
        kind = rng.integers(0, 3)
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        if kind == 0:  # small blob
            s = rng.uniform(1.5, 4.0)
            draw.ellipse([x - s, y - s, x + s, y + s], fill=c)
        elif kind == 1:  # short line
            a = rng.uniform(0, 2 * math.pi)
            L = rng.uniform(5, 0.35 * min(w, h))
            draw.line([x, y, x + L * math.cos(a), y + L * math.sin(a)],
                      fill=c, width=int(rng.integers(1, 3)))
        else:  # small rectangle
            s = rng.uniform(1.5, 3.5)
            draw.rectangle([x - s, y - s, x + s, y + s], fill=c)


def make_image(rng, cls):
    w, h = int(rng.integers(40, 73)), int(rng.integers(40, 73))
    # most "photos" show a dark object on a light background, some the reverse
    light = rng.random() < 0.75
    img = background(rng, w, h, light)
    draw = ImageDraw.Draw(img)
    distractors(draw, rng, w, h)
    m = min(w, h)
    r = m * rng.uniform(0.26, 0.45)
    # centre may put up to ~25 % of the object outside the frame
    cx = rng.uniform(0.75 * r, w - 0.75 * r)
    cy = rng.uniform(0.75 * r, h - 0.75 * r)
    colour = object_colour(rng, dark=light)
    draw_object(draw, rng, cls, cx, cy, r, colour, rng.uniform(0, 2 * math.pi))
    # occasional occluding bar across the object
    if rng.random() < 0.15:
        a = rng.uniform(0, math.pi)
        L = 2 * r
        draw.line([cx - L * math.cos(a), cy - L * math.sin(a),
                   cx + L * math.cos(a), cy + L * math.sin(a)],
                  fill=rand_colour(rng), width=int(rng.integers(2, max(3, int(r * 0.3)))))
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2)))
    # sensor-like noise after drawing
    a = np.asarray(img).astype(float)
    a += rng.normal(0, rng.uniform(0, 8), size=a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def write_split(rng, root, n_per_class):
    for cls in CLASSES:
        os.makedirs(os.path.join(root, cls), exist_ok=True)
    # interleave classes so the rng stream does not depend on class order only
    order = [(i, cls) for i in range(n_per_class) for cls in CLASSES]
    n_png = n_jpg = 0
    for i, cls in order:
        img = make_image(rng, cls)
        if rng.random() < 0.5:
            img.save(os.path.join(root, cls, f"{i:04d}.png"), optimize=False)
            n_png += 1
        else:
            img.save(os.path.join(root, cls, f"{i:04d}.jpg"), quality=85)
            n_jpg += 1
    return n_png, n_jpg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/tmp/user_data")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=500, help="train images per class")
    ap.add_argument("--test", type=int, default=167, help="test images per class")
    args = ap.parse_args()

    for split in ("train", "test"):
        shutil.rmtree(os.path.join(args.out, split), ignore_errors=True)
    rng_train = np.random.default_rng([args.seed, 0])
    rng_test = np.random.default_rng([args.seed, 1])
    p, j = write_split(rng_train, os.path.join(args.out, "train"), args.train)
    print(f"train: {p + j} images ({p} PNG, {j} JPEG) in {len(CLASSES)} classes")
    p, j = write_split(rng_test, os.path.join(args.out, "test"), args.test)
    print(f"test:  {p + j} images ({p} PNG, {j} JPEG) in {len(CLASSES)} classes")


if __name__ == "__main__":
    main()
