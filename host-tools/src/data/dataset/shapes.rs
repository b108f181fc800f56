//! The built-in `shapes` dataset: camera-like pictures of simple shapes, drawn on the fly.
//!
//! Spec: `shapes[:key=value,...]` with keys
//!
//! | key | meaning | default |
//! | --- | --- | --- |
//! | `size` | `N` (square) or `HxW` | the model's input size, else 32 |
//! | `channels` | 1 (gray) or 3 (colour) | the model's input channels, else 3 |
//! | `count` | number of images | 2000 |
//! | `seed` | seed of the whole set | 0 |
//! | `split` | `train` or `test`: independent images for the same seed | `train` |
//!
//! e.g. `shapes:size=16,channels=1,count=500,split=test`. Given a size or channel count that
//! differs from the model's input, the images are drawn at the given one and then
//! converted like any image.
//!
//! Six classes, in label order: circle, square, triangle, cross, star, ring; label `i % 6`
//! for image `i`. Each picture is drawn from its own random stream (ChaCha8 keyed by seed,
//! split and index), so a set is the same on any machine and thread count, and a larger
//! `count` extends a smaller one. A picture: a background of two colours blended along a
//! random direction, with faint sinusoidal texture and sometimes a stray line; the shape at a
//! random place (centre within ±18 % of the middle), size (radius 22–38 % of the smaller
//! side), rotation, aspect (±15 %) and colour (at least 0.2 luma away from the background
//! under it), shaded along a random direction and antialiased by 4×4 supersampling; then
//! a random exposure, vignetting, sometimes defocus blur, Gaussian sensor noise, and 8-bit
//! quantization. Gray images are the luma of the colour picture.
//!
//! `atoms[:key=value,...]` draws formula-driven classes the same way, for pretraining
//! general-purpose bases (formula-driven supervised learning, as FractalDB and
//! VisualAtom do for ImageNet-size nets): class `k` of `classes=N` (default 200, at most
//! [`ATOM_CLASSES`]) is a closed radial contour given by two sine waves (see `Atom`),
//! filled, stroked or hollow. The keys are those above, `classes` being a count; the
//! pictures use the same random streams as `shapes`, with the outline's own draws last.

use super::Dataset;
use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::f64::consts::PI;

/// Class names of the default set, index = label.
pub const CLASSES: [&str; 6] = ["circle", "square", "triangle", "cross", "star", "ring"];

/// Every shape the generator can draw; `classes=a+b+…` picks a set (default
/// [`CLASSES`]). The last six make a second, disjoint task for transfer learning.
pub const ALL_CLASSES: [&str; 12] =
    ["circle", "square", "triangle", "cross", "star", "ring", "pentagon", "hexagon", "arrow", "tee", "ell", "crescent"];

/// Which independent stream of pictures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Training pictures.
    Train,
    /// Test pictures, disjoint from the training ones for the same seed.
    Test,
}

/// What to draw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Picture height in pixels.
    pub height: usize,
    /// Picture width in pixels.
    pub width: usize,
    /// 1 or 3.
    pub channels: usize,
    /// Number of pictures.
    pub count: usize,
    /// Seed of the set.
    pub seed: u64,
    /// Stream.
    pub split: Split,
    /// The classes drawn.
    pub classes: Classes,
}

/// What a set's classes are: named shapes or formula-driven atoms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Classes {
    /// `shapes`: names from [`ALL_CLASSES`]; label = position here.
    Named(Vec<&'static str>),
    /// `atoms`: the first `n` formula-driven classes; label `k` is atom formula `k`.
    Atoms(usize),
}

/// Number of distinct formula-driven classes (`atoms:classes=N`, N up to this).
pub const ATOM_CLASSES: usize = 336;

/// The formula of `atoms` class `label`: a closed radial contour
/// `R(θ) = 1 + a₁ sin(n₁θ + φ) + a₂ sin(n₂θ + n₂φ/n₁ + δ)` (scaled to fit the unit
/// circle) with `1 ≤ n₁ < n₂ ≤ 8` (28 frequency pairs), drawn filled, as a stroke or
/// hollow (3 styles), with moderate or strong amplitudes (2 regimes) and the second
/// wave in phase or in quadrature with the first (δ = 0 or π/2, 2 settings): 336
/// classes, each a distinct outline at 32×32 pixels. φ (a rotation) is drawn per
/// picture. Consecutive labels change the style first, so any first `N` classes mix all three.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Atom {
    n1: f64,
    n2: f64,
    style: usize,
    amplitude: (f64, f64),
    delta: f64,
}

impl Atom {
    fn of(label: usize) -> Atom {
        let pair = (label / 3) % 28;
        let (mut n1, mut left) = (1, pair);
        while left >= 8 - n1 {
            left -= 8 - n1;
            n1 += 1;
        }
        let amplitude = if (label / 84).is_multiple_of(2) { (0.12, 0.2) } else { (0.22, 0.32) };
        let delta = if label / 168 == 0 { 0.0 } else { PI / 2.0 };
        Atom { n1: n1 as f64, n2: (n1 + 1 + left) as f64, style: label % 3, amplitude, delta }
    }
}

/// One picture's instance of an [`Atom`]: amplitudes, phases and stroke width.
#[derive(Clone, Copy, Debug)]
struct AtomShape {
    atom: Atom,
    a1: f64,
    a2: f64,
    phi: f64,
    stroke: f64,
}

impl AtomShape {
    fn draw(atom: Atom, rng: &mut ChaCha8Rng) -> AtomShape {
        let (lo, hi) = atom.amplitude;
        AtomShape {
            atom,
            a1: rng.random_range(lo..hi),
            a2: rng.random_range(lo..hi),
            phi: rng.random_range(0.0..2.0 * PI),
            stroke: rng.random_range(0.1..0.2),
        }
    }

    fn inside(&self, u: f64, v: f64) -> bool {
        let theta = v.atan2(u);
        let Atom { n1, n2, delta, .. } = self.atom;
        let first = self.a1 * (n1 * theta + self.phi).sin();
        let second = self.a2 * (n2 * theta + n2 * self.phi / n1 + delta).sin();
        let contour = (1.0 + first + second) / (1.0 + self.a1 + self.a2);
        let r = u.hypot(v);
        match self.atom.style {
            0 => r <= contour,
            1 => (r - contour * (1.0 - self.stroke / 2.0)).abs() <= self.stroke / 2.0,
            _ => (0.55 * contour..=contour).contains(&r),
        }
    }
}

impl Params {
    /// Parses the `key=value,...` part of a `shapes` spec; defaults follow the model's input `shape`.
    pub fn parse(options: &str, shape: Option<[usize; 3]>) -> Result<Params> {
        Self::parse_family("shapes", options, shape)
    }

    /// Parses the `key=value,...` part of an `atoms` spec: the same keys, with
    /// `classes=N` the number of formula-driven classes (default 200, at most
    /// [`ATOM_CLASSES`]).
    pub fn parse_atoms(options: &str, shape: Option<[usize; 3]>) -> Result<Params> {
        Self::parse_family("atoms", options, shape)
    }

    fn parse_family(family: &str, options: &str, shape: Option<[usize; 3]>) -> Result<Params> {
        let [height, width, channels] = shape.unwrap_or([32, 32, 3]);
        let mut params = Params {
            height,
            width,
            channels,
            count: 2000,
            seed: 0,
            split: Split::Train,
            classes: if family == "atoms" { Classes::Atoms(200) } else { Classes::Named(CLASSES.to_vec()) },
        };
        for item in options.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                bail!("{family}: {item:?} is not key=value (keys: size, channels, count, seed, split, classes)");
            };
            let bad = || format!("{family}: {key}={value}: not a valid value");
            match key.trim() {
                "size" => {
                    let (h, w) = value.split_once(['x', 'X']).unwrap_or((value, value));
                    params.height = h.trim().parse().with_context(bad)?;
                    params.width = w.trim().parse().with_context(bad)?;
                    if params.height < 4 || params.width < 4 || params.height > 1024 || params.width > 1024 {
                        bail!("{family}: size={value}: each side must be 4 to 1024 pixels");
                    }
                }
                "channels" => {
                    params.channels = value.trim().parse().with_context(bad)?;
                    if params.channels != 1 && params.channels != 3 {
                        bail!("{family}: channels={value}: must be 1 or 3");
                    }
                }
                "count" => {
                    params.count = value.trim().parse().with_context(bad)?;
                    if params.count == 0 {
                        bail!("{family}: count=0: need at least one image");
                    }
                }
                "seed" => params.seed = value.trim().parse().with_context(bad)?,
                "split" => {
                    params.split = match value.trim() {
                        "train" => Split::Train,
                        "test" => Split::Test,
                        _ => bail!("{family}: split={value}: must be train or test"),
                    }
                }
                "classes" if matches!(params.classes, Classes::Atoms(_)) => {
                    let n: usize = value.trim().parse().with_context(bad)?;
                    if !(2..=ATOM_CLASSES).contains(&n) {
                        bail!("{family}: classes={value}: must be 2 to {ATOM_CLASSES}");
                    }
                    params.classes = Classes::Atoms(n);
                }
                "classes" => {
                    let names: Vec<&'static str> = value
                        .split('+')
                        .map(|name| {
                            ALL_CLASSES.iter().copied().find(|c| *c == name.trim()).with_context(|| {
                                format!(
                                    "{family}: classes={value}: unknown shape {name:?} (known: {})",
                                    ALL_CLASSES.join(", ")
                                )
                            })
                        })
                        .collect::<Result<_>>()?;
                    if names.len() < 2 {
                        bail!("{family}: classes={value}: need at least two shapes, joined by +");
                    }
                    if let Some(twice) = names.iter().enumerate().find_map(|(i, c)| names[..i].contains(c).then_some(c))
                    {
                        bail!("{family}: classes={value}: {twice} is named twice");
                    }
                    params.classes = Classes::Named(names);
                }
                other => bail!("{family}: unknown key {other:?} (keys: size, channels, count, seed, split, classes)"),
            }
        }
        // The set is held as bytes, one per pixel and channel: refuse a count the
        // machine cannot hold before drawing.
        let bytes = crate::io::memory::dataset_bytes(params.count, [params.height, params.width, params.channels]);
        crate::io::memory::check(&format!("{family}: count={}", params.count), bytes)?;
        Ok(params)
    }
}

impl Params {
    /// Number of classes (labels are `index % class_count`).
    pub fn class_count(&self) -> usize {
        match &self.classes {
            Classes::Named(names) => names.len(),
            Classes::Atoms(n) => *n,
        }
    }
}

/// Draws the whole set, in parallel, each picture straight into its place.
pub fn generate(params: &Params) -> Dataset {
    let shape = [params.height, params.width, params.channels];
    let len: usize = shape.iter().product();
    let mut images = vec![0u8; params.count * len];
    images.par_chunks_exact_mut(len).enumerate().for_each(|(i, dst)| dst.copy_from_slice(&draw(params, i)));
    Dataset::new(
        shape,
        images,
        (0..params.count).map(|i| i % params.class_count()).collect(),
        match &params.classes {
            Classes::Named(names) => names.iter().map(|c| c.to_string()).collect(),
            Classes::Atoms(n) => (0..*n).map(|k| format!("atom{k:03}")).collect(),
        },
    )
}

/// The random stream of picture `index`.
fn picture_rng(params: &Params, index: usize) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&params.seed.to_le_bytes());
    key[8] = match params.split {
        Split::Train => 1,
        Split::Test => 2,
    };
    key[16..24].copy_from_slice(&(index as u64).to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

type Rgb = [f64; 3];

fn luma(c: Rgb) -> f64 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

fn random_colour(rng: &mut ChaCha8Rng) -> Rgb {
    // A random grey level tinted by a random hue, so that saturated and dull colours both occur.
    let level: f64 = rng.random_range(0.05..0.95);
    let saturation: f64 = rng.random_range(0.0..0.6);
    let tint: Rgb = [rng.random(), rng.random(), rng.random()];
    tint.map(|t| (level + saturation * (t - 0.5)).clamp(0.0, 1.0))
}

/// Sensor noise: a SplitMix64 stream seeded from the picture's stream, kept in this crate
/// so that it runs optimised in test builds (one draw per pixel and channel).
struct Noise(u64);

impl Noise {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // 53 random bits in (0, 1].
        ((z >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// One standard normal draw (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next_unit(), self.next_unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * PI * v).cos()
    }
}

/// Outline of a class as a polygon in unit-radius coordinates, or `None` for the round ones.
fn polygon(class: &str) -> Option<Vec<(f64, f64)>> {
    let regular = |n: usize, radius: f64, start: f64| -> Vec<(f64, f64)> {
        (0..n)
            .map(|k| (start + 2.0 * PI * k as f64 / n as f64).sin_cos())
            .map(|(s, c)| (radius * c, radius * s))
            .collect()
    };
    match class {
        "square" => Some(vec![(-0.72, -0.72), (0.72, -0.72), (0.72, 0.72), (-0.72, 0.72)]),
        "triangle" => Some(regular(3, 1.0, -PI / 2.0)),
        "cross" => {
            let (a, l) = (0.27, 0.95);
            Some(vec![
                (-a, -l),
                (a, -l),
                (a, -a),
                (l, -a),
                (l, a),
                (a, a),
                (a, l),
                (-a, l),
                (-a, a),
                (-l, a),
                (-l, -a),
                (-a, -a),
            ])
        }
        "star" => {
            let outer = regular(5, 1.0, -PI / 2.0);
            let inner = regular(5, 0.42, -PI / 2.0 + PI / 5.0);
            Some(outer.into_iter().zip(inner).flat_map(|(o, i)| [o, i]).collect())
        }
        "pentagon" => Some(regular(5, 0.95, -PI / 2.0)),
        "hexagon" => Some(regular(6, 0.92, 0.0)),
        "arrow" => {
            Some(vec![(-0.9, -0.22), (0.1, -0.22), (0.1, -0.62), (0.92, 0.0), (0.1, 0.62), (0.1, 0.22), (-0.9, 0.22)])
        }
        "tee" => Some(vec![
            (-0.85, -0.85),
            (0.85, -0.85),
            (0.85, -0.45),
            (0.22, -0.45),
            (0.22, 0.9),
            (-0.22, 0.9),
            (-0.22, -0.45),
            (-0.85, -0.45),
        ]),
        "ell" => Some(vec![(-0.7, -0.9), (-0.25, -0.9), (-0.25, 0.45), (0.75, 0.45), (0.75, 0.9), (-0.7, 0.9)]),
        _ => None,
    }
}

/// Even-odd point-in-polygon test.
fn inside_polygon(points: &[(f64, f64)], x: f64, y: f64) -> bool {
    let mut inside = false;
    let mut j = points.len() - 1;
    for i in 0..points.len() {
        let (xi, yi) = points[i];
        let (xj, yj) = points[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Whether unit-radius point `(u, v)` is inside the shape of `class`.
fn inside(class: &str, outline: Option<&[(f64, f64)]>, u: f64, v: f64) -> bool {
    let r2 = u * u + v * v;
    match (class, outline) {
        ("circle", _) => r2 <= 0.85 * 0.85,
        ("ring", _) => (0.5 * 0.5..=0.92 * 0.92).contains(&r2),
        ("crescent", _) => r2 <= 0.88 * 0.88 && (u - 0.38) * (u - 0.38) + v * v > 0.68 * 0.68,
        (_, Some(points)) => inside_polygon(points, u, v),
        _ => false,
    }
}

/// Draws picture `index` of the set: HWC bytes (the network sees `byte / 255`).
fn draw(params: &Params, index: usize) -> Vec<u8> {
    let mut rng = picture_rng(params, index);
    let (h, w) = (params.height, params.width);
    let (hf, wf) = (h as f64, w as f64);
    let side = hf.min(wf);
    let label = index % params.class_count();
    let class = match &params.classes {
        Classes::Named(names) => names[label],
        Classes::Atoms(_) => "",
    };

    // Background: two colours along a random direction, texture, maybe a stray line.
    let colour_a = random_colour(&mut rng);
    let colour_b = random_colour(&mut rng);
    let (gs, gc) = rng.random_range(0.0..2.0 * PI).sin_cos();
    let waves: Vec<(f64, f64, f64, f64)> = (0..3)
        .map(|_| {
            let (s, c) = rng.random_range(0.0..2.0 * PI).sin_cos();
            let cycles = rng.random_range(1.0..6.0) / side;
            (rng.random_range(0.0..0.05), c * cycles, s * cycles, rng.random_range(0.0..2.0 * PI))
        })
        .collect();
    let line = rng.random_bool(0.3).then(|| {
        let (s, c) = rng.random_range(0.0..PI).sin_cos();
        let offset = rng.random_range(-0.5..0.5) * side;
        let width = rng.random_range(0.03..0.08) * side;
        (c, s, offset, width, random_colour(&mut rng), rng.random_range(0.3..0.7))
    });
    let mut picture: Vec<Rgb> = Vec::with_capacity(h * w);
    for y in 0..h {
        for x in 0..w {
            let (px, py) = (x as f64 + 0.5 - wf / 2.0, y as f64 + 0.5 - hf / 2.0);
            let t = (0.5 + (px * gc + py * gs) / (wf.hypot(hf))).clamp(0.0, 1.0);
            let texture: f64 =
                waves.iter().map(|&(a, fx, fy, phase)| a * (2.0 * PI * (fx * px + fy * py) + phase).sin()).sum();
            let mut colour: Rgb = std::array::from_fn(|k| colour_a[k] + (colour_b[k] - colour_a[k]) * t + texture);
            if let Some((c, s, offset, width, line_colour, alpha)) = line {
                let distance = (px * c + py * s - offset).abs();
                let cover = (width / 2.0 + 0.5 - distance).clamp(0.0, 1.0) * alpha;
                colour = std::array::from_fn(|k| colour[k] + (line_colour[k] - colour[k]) * cover);
            }
            picture.push(colour);
        }
    }

    // The shape.
    let centre = (wf / 2.0 + rng.random_range(-0.18..0.18) * wf, hf / 2.0 + rng.random_range(-0.18..0.18) * hf);
    let radius = rng.random_range(0.22..0.38) * side;
    let (sin, cos) = rng.random_range(0.0..2.0 * PI).sin_cos();
    let aspect = rng.random_range(0.85..1.15);
    let (cx, cy) = ((centre.0.floor() as usize).min(w - 1), (centre.1.floor() as usize).min(h - 1));
    let background = luma(picture[cy * w + cx]);
    let mut colour = random_colour(&mut rng);
    for _ in 0..20 {
        if (luma(colour) - background).abs() >= 0.2 {
            break;
        }
        colour = random_colour(&mut rng);
    }
    if (luma(colour) - background).abs() < 0.2 {
        colour = if background > 0.5 { [0.1; 3] } else { [0.9; 3] };
    }
    let (shade_sin, shade_cos) = rng.random_range(0.0..2.0 * PI).sin_cos();
    let shading = rng.random_range(0.0..0.25);
    let outline = polygon(class);
    // Drawn last, so that the named shapes' pictures keep their random streams.
    let atom = matches!(params.classes, Classes::Atoms(_)).then(|| AtomShape::draw(Atom::of(label), &mut rng));
    let reach = radius * 1.15 + 1.5;
    const SUB: usize = 4;
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f64 + 0.5 - centre.0, y as f64 + 0.5 - centre.1);
            if dx.hypot(dy) > reach {
                continue;
            }
            let mut covered = 0;
            for sy in 0..SUB {
                for sx in 0..SUB {
                    let ox = dx + (sx as f64 + 0.5) / SUB as f64 - 0.5;
                    let oy = dy + (sy as f64 + 0.5) / SUB as f64 - 0.5;
                    let u = (ox * cos + oy * sin) / (radius * aspect);
                    let v = (-ox * sin + oy * cos) / radius;
                    covered += usize::from(match &atom {
                        Some(atom) => atom.inside(u, v),
                        None => inside(class, outline.as_deref(), u, v),
                    });
                }
            }
            if covered > 0 {
                let cover = covered as f64 / (SUB * SUB) as f64;
                let shade = 1.0 + shading * (dx * shade_cos + dy * shade_sin) / radius;
                let pixel = &mut picture[y * w + x];
                *pixel = std::array::from_fn(|k| pixel[k] + (colour[k] * shade - pixel[k]) * cover);
            }
        }
    }

    // The camera: exposure, vignetting, defocus, noise.
    let gain = rng.random_range(0.75..1.15);
    let vignette = rng.random_range(0.0..0.35);
    let corner = (wf / 2.0).hypot(hf / 2.0);
    for (i, pixel) in picture.iter_mut().enumerate() {
        let (px, py) = ((i % w) as f64 + 0.5 - wf / 2.0, (i / w) as f64 + 0.5 - hf / 2.0);
        let falloff = 1.0 - vignette * (px.hypot(py) / corner).powi(2);
        *pixel = pixel.map(|v| v * gain * falloff);
    }
    if rng.random_bool(0.3) {
        picture = blur(&picture, h, w);
    }
    let sigma = rng.random_range(0.01..0.05);
    let mut noise = Noise(rng.random());
    // A whole number in 0..=255, so the cast is exact; `unit` of the byte is the f32
    // nearest `byte / 255`, which this set held before it was kept as bytes.
    let quantize = |v: f64| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let mut out = Vec::with_capacity(h * w * params.channels);
    for pixel in picture {
        if params.channels == 1 {
            out.push(quantize(luma(pixel) + sigma * noise.normal()));
        } else {
            for v in pixel {
                out.push(quantize(v + sigma * noise.normal()));
            }
        }
    }
    out
}

/// 3×3 binomial blur with edge clamping.
fn blur(picture: &[Rgb], h: usize, w: usize) -> Vec<Rgb> {
    const K: [f64; 3] = [0.25, 0.5, 0.25];
    let mut out = vec![[0.0; 3]; h * w];
    for y in 0..h {
        for x in 0..w {
            let mut sum = [0.0; 3];
            for (j, ky) in K.iter().enumerate() {
                for (i, kx) in K.iter().enumerate() {
                    let sy = (y + j).saturating_sub(1).min(h - 1);
                    let sx = (x + i).saturating_sub(1).min(w - 1);
                    for k in 0..3 {
                        sum[k] += ky * kx * picture[sy * w + sx][k];
                    }
                }
            }
            out[y * w + x] = sum;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_atom_class_has_its_own_formula() {
        let all: Vec<Atom> = (0..ATOM_CLASSES).map(Atom::of).collect();
        for (i, a) in all.iter().enumerate() {
            assert!(1.0 <= a.n1 && a.n1 < a.n2 && a.n2 <= 8.0, "class {i}: {a:?}");
            assert!(all[..i].iter().all(|b| b != a), "class {i} repeats an earlier one: {a:?}");
        }
        // Any first few classes mix the three styles.
        assert_eq!((0..3).map(|k| all[k].style).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn an_atom_contour_stays_inside_the_unit_circle_and_around_the_centre() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for label in 0..ATOM_CLASSES {
            let shape = AtomShape::draw(Atom::of(label), &mut rng);
            for k in 0..360 {
                let (s, c) = (k as f64).to_radians().sin_cos();
                // Just outside the unit circle is never inside; the filled style covers the centre.
                assert!(!shape.inside(1.001 * c, 1.001 * s), "class {label} leaves the unit circle");
            }
            if shape.atom.style == 0 {
                assert!(shape.inside(0.01, 0.0), "class {label}");
            }
        }
    }
}
