//! Data augmentation with the options and meanings of Keras's `ImageDataGenerator`,
//! seeded, one image at a time (the trainer calls it on the fly for every sample).
//!
//! # The transform
//!
//! Coordinates are `x` = column, `y` = row, both in pixels, with the origin at the image
//! centre `((w − 1)/2, (h − 1)/2)`. As in Keras, the transform is an *inverse* map: output
//! pixel `p` takes the input value at
//!
//! ```text
//! source = centre + R(θ) · ( Sh(s) · Z(zx, zy) · (p − centre) + (tx, ty) )
//! R(θ)  = [[cos θ, −sin θ], [sin θ, cos θ]]     Sh(s) = [[1, −sin s], [0, cos s]]
//! Z     = [[zx, 0], [0, zy]]
//! ```
//!
//! which is Keras's `rotation · shift · shear · zoom` product, in Keras's (x, y) order. So a
//! positive `θ` turns the picture counter-clockwise as seen on screen, `zx > 1` zooms *out*,
//! and a positive `tx` moves the picture left by `tx` pixels (Keras's signs). The source
//! value is interpolated bilinearly (Keras's `order=1`, `scipy.ndimage.affine_transform`);
//! coordinates within 1e-6 of a whole pixel are snapped to it, so that quarter turns and
//! whole-pixel shifts reproduce pixels exactly. Outside the image the fill mode decides:
//!
//! | mode | samples beyond the edge of `a b c d` |
//! | --- | --- |
//! | `nearest` | `a a a a \| a b c d \| d d d d` |
//! | `constant` | `cval`: any source point outside `[0, n − 1]` on either axis gives `cval` (scipy's `constant`) |
//! | `reflect` | `d c b a \| a b c d \| d c b a` (half-sample symmetric) |
//! | `wrap` | `a b c d \| a b c d \| a b c d` (period `n`) |
//!
//! Then, as in Keras's `apply_transform`, the flips (horizontal: column `x` ↔ `w − 1 − x`;
//! vertical: row `y` ↔ `h − 1 − y`) and last the brightness: every value times the
//! factor, clipped to `[0, 1]`.
//!
//! # Random parameters
//!
//! [`random_transform`] draws, in this order and only for the options that are on (so an
//! identity configuration draws nothing): `θ ~ U[−rotation, rotation]`; the vertical shift
//! `ty ~ U[−s, s]` from `height_shift_range` and then the horizontal shift `tx` from
//! `width_shift_range` (Keras's order), each times the image height / width when the range
//! is below 1; the shear `~ U[−shear, shear]` degrees; `zx` then `zy`, each `~ U[zoom]`
//! independently (only when the zoom range is not `[1, 1]`); a horizontal flip with
//! probability 0.5; a vertical flip with probability 0.5; the brightness factor
//! `~ U[brightness]`.
//!
//! # Where this differs from Keras, and why
//!
//! - Keras 2.9 and later pass the height shift to the horizontal axis and the width shift
//!   to the vertical one (keras-team/tf-keras#310); here `width_shift_range` moves the
//!   picture sideways and `height_shift_range` up and down, as documented.
//! - Keras's `wrap` is scipy's, whose period is `n − 1` (the first and last pixels overlap);
//!   here `wrap` has period `n`, the `abcd|abcd` that Keras documents.
//! - Keras draws integer shifts when a range is a Python `int` ≥ 1; a range is a float here,
//!   so shifts in pixels are continuous.
//! - Keras's brightness goes through PIL, which first stretches the image to the full
//!   0–255 range and returns 0–255 values; here the factor multiplies the `[0, 1]` values
//!   directly, so that brightness 1 is the identity and the output keeps the input's scale.
//! - The random numbers come from the caller's `rand::Rng`, not NumPy, so no sample equals
//!   a Keras sample; the distributions are the same.

use anyhow::{bail, Result};
use rand::Rng;

/// How points outside the input are filled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FillMode {
    /// The nearest edge pixel: `aaaa|abcd|dddd`.
    #[default]
    Nearest,
    /// The constant `cval`.
    Constant,
    /// Half-sample symmetric reflection: `dcba|abcd|dcba`.
    Reflect,
    /// Periodic: `abcd|abcd|abcd`.
    Wrap,
}

/// What to augment, as Keras's `ImageDataGenerator` arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct AugmentConfig {
    /// Rotation range in degrees: `θ ~ U[−r, r]`.
    pub rotation_range: f32,
    /// Horizontal shift range: below 1 a fraction of the width, else pixels.
    pub width_shift_range: f32,
    /// Vertical shift range: below 1 a fraction of the height, else pixels.
    pub height_shift_range: f32,
    /// Shear range in degrees (counter-clockwise): `~ U[−s, s]`.
    pub shear_range: f32,
    /// Zoom range `[lo, hi]`; Keras's float `z` means `[1 − z, 1 + z]`. Above 1 zooms out.
    pub zoom_range: [f32; 2],
    /// Flip left–right with probability 0.5.
    pub horizontal_flip: bool,
    /// Flip top–bottom with probability 0.5.
    pub vertical_flip: bool,
    /// Brightness factor range; values are multiplied and clipped to `[0, 1]`.
    pub brightness_range: Option<[f32; 2]>,
    /// Fill for points outside the input.
    pub fill_mode: FillMode,
    /// The fill value of [`FillMode::Constant`].
    pub cval: f32,
}

impl Default for AugmentConfig {
    /// The identity: nothing is changed.
    fn default() -> Self {
        AugmentConfig {
            rotation_range: 0.0,
            width_shift_range: 0.0,
            height_shift_range: 0.0,
            shear_range: 0.0,
            zoom_range: [1.0, 1.0],
            horizontal_flip: false,
            vertical_flip: false,
            brightness_range: None,
            fill_mode: FillMode::Nearest,
            cval: 0.0,
        }
    }
}

impl AugmentConfig {
    /// Whether every image comes out unchanged (and no random number is drawn).
    pub fn is_identity(&self) -> bool {
        self.rotation_range == 0.0
            && self.width_shift_range == 0.0
            && self.height_shift_range == 0.0
            && self.shear_range == 0.0
            && self.zoom_range == [1.0, 1.0]
            && !self.horizontal_flip
            && !self.vertical_flip
            && self.brightness_range.is_none_or(|b| b == [1.0, 1.0])
    }
}

/// A deterministic transform with given parameters (used by augment_image and by tests).
#[derive(Clone, Debug, PartialEq)]
pub struct Transform {
    /// Rotation in degrees, counter-clockwise on screen.
    pub theta_deg: f32,
    /// Horizontal shift in pixels: the output samples the input `tx` to the right (the
    /// picture moves left).
    pub tx: f32,
    /// Vertical shift in pixels: the output samples the input `ty` lower (the picture moves up).
    pub ty: f32,
    /// Shear angle in degrees.
    pub shear_deg: f32,
    /// Horizontal zoom; above 1 zooms out.
    pub zx: f32,
    /// Vertical zoom; above 1 zooms out.
    pub zy: f32,
    /// Flip left–right (after the affine part).
    pub flip_h: bool,
    /// Flip top–bottom (after the affine part).
    pub flip_v: bool,
    /// Brightness factor, last.
    pub brightness: Option<f32>,
}

impl Default for Transform {
    /// The identity.
    fn default() -> Self {
        Transform {
            theta_deg: 0.0,
            tx: 0.0,
            ty: 0.0,
            shear_deg: 0.0,
            zx: 1.0,
            zy: 1.0,
            flip_h: false,
            flip_v: false,
            brightness: None,
        }
    }
}

/// Draws the parameters of one augmentation for an image of `shape` (h, w, c), in the
/// order given in the module docs.
pub fn random_transform(config: &AugmentConfig, shape: [usize; 3], rng: &mut impl Rng) -> Transform {
    let symmetric = |rng: &mut _, range: f32| -> f32 {
        if range > 0.0 {
            uniform(rng, -range, range)
        } else {
            0.0
        }
    };
    let mut t = Transform { theta_deg: symmetric(rng, config.rotation_range), ..Transform::default() };
    let pixels = |range: f32, size: usize| if range < 1.0 { size as f32 } else { 1.0 };
    t.ty = symmetric(rng, config.height_shift_range) * pixels(config.height_shift_range, shape[0]);
    t.tx = symmetric(rng, config.width_shift_range) * pixels(config.width_shift_range, shape[1]);
    t.shear_deg = symmetric(rng, config.shear_range);
    if config.zoom_range != [1.0, 1.0] {
        t.zx = uniform(rng, config.zoom_range[0], config.zoom_range[1]);
        t.zy = uniform(rng, config.zoom_range[0], config.zoom_range[1]);
    }
    t.flip_h = config.horizontal_flip && rng.random_bool(0.5);
    t.flip_v = config.vertical_flip && rng.random_bool(0.5);
    t.brightness = config.brightness_range.map(|[lo, hi]| uniform(rng, lo, hi));
    t
}

fn uniform(rng: &mut impl Rng, lo: f32, hi: f32) -> f32 {
    if lo < hi {
        rng.random_range(lo..=hi)
    } else {
        lo
    }
}

/// Augments one NHWC image (h, w, c) into `out` (same size). Draws all random parameters
/// from `rng` in a fixed documented order (see [`random_transform`]).
pub fn augment_image(image: &[f32], shape: [usize; 3], config: &AugmentConfig, rng: &mut impl Rng, out: &mut [f32]) {
    if config.is_identity() {
        out.copy_from_slice(image);
        return;
    }
    let t = random_transform(config, shape, rng);
    apply_transform(image, shape, &t, config.fill_mode, config.cval, out);
}

/// Snaps a coordinate within 1e-6 of a whole pixel onto it.
fn snap(v: f64) -> f64 {
    let r = v.round();
    if (v - r).abs() < 1e-6 {
        r
    } else {
        v
    }
}

/// Maps a possibly out-of-range index into `0..n` by the fill mode (not `Constant`).
fn extend(i: i64, n: i64, mode: FillMode) -> usize {
    let i = match mode {
        FillMode::Nearest | FillMode::Constant => i.clamp(0, n - 1),
        FillMode::Wrap => i.rem_euclid(n),
        FillMode::Reflect => {
            let m = i.rem_euclid(2 * n);
            if m < n {
                m
            } else {
                2 * n - 1 - m
            }
        }
    };
    i as usize
}

/// Applies `t` to an HWC image of `shape`, writing `out` (same size); see the module docs.
///
/// # Panics
/// If `image` or `out` does not hold `h · w · c` values.
pub fn apply_transform(image: &[f32], shape: [usize; 3], t: &Transform, fill: FillMode, cval: f32, out: &mut [f32]) {
    let [h, w, c] = shape;
    assert_eq!(image.len(), h * w * c, "image size does not match its shape");
    assert_eq!(out.len(), h * w * c, "output size does not match the shape");
    let (centre_x, centre_y) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let (sin_t, cos_t) = f64::from(t.theta_deg).to_radians().sin_cos();
    let (sin_s, cos_s) = f64::from(t.shear_deg).to_radians().sin_cos();
    let (zx, zy) = (f64::from(t.zx), f64::from(t.zy));
    // A = R · Sh · Z, b = R · (tx, ty).
    let a = [[cos_t * zx, (-cos_t * sin_s - sin_t * cos_s) * zy], [sin_t * zx, (-sin_t * sin_s + cos_t * cos_s) * zy]];
    let (tx, ty) = (f64::from(t.tx), f64::from(t.ty));
    let b = [cos_t * tx - sin_t * ty, sin_t * tx + cos_t * ty];
    let (wi, hi) = (w as i64, h as i64);
    for y in 0..h {
        for x in 0..w {
            let qx = if t.flip_h { w - 1 - x } else { x } as f64 - centre_x;
            let qy = if t.flip_v { h - 1 - y } else { y } as f64 - centre_y;
            let sx = snap(centre_x + a[0][0] * qx + a[0][1] * qy + b[0]);
            let sy = snap(centre_y + a[1][0] * qx + a[1][1] * qy + b[1]);
            let pixel = &mut out[(y * w + x) * c..(y * w + x + 1) * c];
            let outside = sx < 0.0 || sy < 0.0 || sx > (w - 1) as f64 || sy > (h - 1) as f64;
            if fill == FillMode::Constant && outside {
                pixel.fill(cval);
                continue;
            }
            let (fx, fy) = (sx.floor(), sy.floor());
            let (wx, wy) = ((sx - fx) as f32, (sy - fy) as f32);
            let (x0, y0) = (fx as i64, fy as i64);
            let (x0, x1) = (extend(x0, wi, fill), extend(x0 + 1, wi, fill));
            let (y0, y1) = (extend(y0, hi, fill), extend(y0 + 1, hi, fill));
            for (ch, value) in pixel.iter_mut().enumerate() {
                let at = |yy: usize, xx: usize| image[(yy * w + xx) * c + ch];
                let top = at(y0, x0) * (1.0 - wx) + at(y0, x1) * wx;
                let bottom = at(y1, x0) * (1.0 - wx) + at(y1, x1) * wx;
                *value = top * (1.0 - wy) + bottom * wy;
            }
        }
    }
    if let Some(factor) = t.brightness {
        for v in out.iter_mut() {
            *v = (*v * factor).clamp(0.0, 1.0);
        }
    }
}

/// Augmentation flags, to `#[command(flatten)]` into `train`, `finetune` and `augment`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AugmentArgs {
    /// Random rotation in degrees, uniform in [-r, r].
    #[arg(long, default_value_t = 0.0, value_name = "DEG")]
    pub rotation_range: f32,
    /// Random horizontal shift: below 1 a fraction of the width, else pixels.
    #[arg(long, default_value_t = 0.0, value_name = "S")]
    pub width_shift_range: f32,
    /// Random vertical shift: below 1 a fraction of the height, else pixels.
    #[arg(long, default_value_t = 0.0, value_name = "S")]
    pub height_shift_range: f32,
    /// Random shear in degrees, uniform in [-s, s].
    #[arg(long, default_value_t = 0.0, value_name = "DEG")]
    pub shear_range: f32,
    /// Random zoom: one float z for [1-z, 1+z], or "lo,hi"; above 1 zooms out.
    #[arg(long, value_name = "Z|LO,HI")]
    pub zoom_range: Option<String>,
    /// Flip left-right at random.
    #[arg(long)]
    pub horizontal_flip: bool,
    /// Flip top-bottom at random.
    #[arg(long)]
    pub vertical_flip: bool,
    /// Random brightness factor in [lo, hi] (1 = unchanged); values clipped to [0, 1].
    #[arg(long, value_name = "LO,HI")]
    pub brightness_range: Option<String>,
    /// How points outside the image are filled.
    #[arg(long, value_enum, default_value_t = FillMode::Nearest)]
    pub fill_mode: FillMode,
    /// Fill value for --fill-mode constant, in [0, 1].
    #[arg(long, default_value_t = 0.0)]
    pub cval: f32,
}

impl AugmentArgs {
    /// Checks the flags and turns them into a configuration.
    pub fn config(&self) -> Result<AugmentConfig> {
        for (flag, value) in [
            ("--rotation-range", self.rotation_range),
            ("--width-shift-range", self.width_shift_range),
            ("--height-shift-range", self.height_shift_range),
            ("--shear-range", self.shear_range),
        ] {
            if !value.is_finite() || value < 0.0 {
                bail!("{flag} {value}: must be a number >= 0");
            }
        }
        let zoom_range = match &self.zoom_range {
            None => [1.0, 1.0],
            Some(text) => match parse_floats(text) {
                Some(v) if v.len() == 1 => [1.0 - v[0], 1.0 + v[0]],
                Some(v) if v.len() == 2 => [v[0], v[1]],
                _ => bail!("--zoom-range {text}: expected one number z or two numbers lo,hi"),
            },
        };
        if !(zoom_range[0] > 0.0 && zoom_range[0] <= zoom_range[1]) {
            bail!("--zoom-range: [{}, {}] must satisfy 0 < lo <= hi", zoom_range[0], zoom_range[1]);
        }
        let brightness_range = match &self.brightness_range {
            None => None,
            Some(text) => match parse_floats(text) {
                Some(v) if v.len() == 2 && v[0] >= 0.0 && v[0] <= v[1] => Some([v[0], v[1]]),
                _ => bail!("--brightness-range {text}: expected lo,hi with 0 <= lo <= hi"),
            },
        };
        if !(0.0..=1.0).contains(&self.cval) {
            bail!("--cval {}: must be in [0, 1] (pixels are scaled to [0, 1])", self.cval);
        }
        Ok(AugmentConfig {
            rotation_range: self.rotation_range,
            width_shift_range: self.width_shift_range,
            height_shift_range: self.height_shift_range,
            shear_range: self.shear_range,
            zoom_range,
            horizontal_flip: self.horizontal_flip,
            vertical_flip: self.vertical_flip,
            brightness_range,
            fill_mode: self.fill_mode,
            cval: self.cval,
        })
    }
}

/// Comma-separated finite floats.
fn parse_floats(text: &str) -> Option<Vec<f32>> {
    text.split(',').map(|s| s.trim().parse::<f32>().ok().filter(|v| v.is_finite())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Runs `t` with `fill` and `cval` and returns the output.
    fn run(image: &[f32], shape: [usize; 3], t: &Transform, fill: FillMode, cval: f32) -> Vec<f32> {
        let mut out = vec![f32::NAN; image.len()];
        apply_transform(image, shape, t, fill, cval, &mut out);
        out
    }

    /// An image whose values are all distinct: `i / len` in storage order.
    fn ramp(h: usize, w: usize, c: usize) -> Vec<f32> {
        (0..h * w * c).map(|i| i as f32 / (h * w * c) as f32).collect()
    }

    #[test]
    fn rotation_by_90_degrees_turns_counter_clockwise_exactly() {
        let (h, w, c) = (4, 4, 2);
        let image = ramp(h, w, c);
        let t = Transform { theta_deg: 90.0, ..Transform::default() };
        let out = run(&image, [h, w, c], &t, FillMode::Constant, 0.5);
        // np.rot90: out[y][x] = in[x][w - 1 - y]; the top-right corner comes to the top left.
        let mut want = vec![0.0; h * w * c];
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    want[(y * w + x) * c + ch] = image[(x * w + (w - 1 - y)) * c + ch];
                }
            }
        }
        assert_eq!(out, want);
        let back = Transform { theta_deg: -90.0, ..Transform::default() };
        assert_eq!(run(&out, [h, w, c], &back, FillMode::Constant, 0.5), image);
    }

    #[test]
    fn rotation_by_180_degrees_reverses_the_image() {
        let image = ramp(5, 3, 1);
        let t = Transform { theta_deg: 180.0, ..Transform::default() };
        let mut want = image.clone();
        want.reverse();
        assert_eq!(run(&image, [5, 3, 1], &t, FillMode::Nearest, 0.0), want);
    }

    #[test]
    fn horizontal_flip_mirrors_columns() {
        let image = ramp(2, 3, 1);
        let t = Transform { flip_h: true, ..Transform::default() };
        let v = |i: usize| image[i];
        assert_eq!(run(&image, [2, 3, 1], &t, FillMode::Nearest, 0.0), vec![v(2), v(1), v(0), v(5), v(4), v(3)]);
    }

    #[test]
    fn vertical_flip_mirrors_rows() {
        let image = ramp(3, 2, 1);
        let t = Transform { flip_v: true, ..Transform::default() };
        let v = |i: usize| image[i];
        assert_eq!(run(&image, [3, 2, 1], &t, FillMode::Nearest, 0.0), vec![v(4), v(5), v(2), v(3), v(0), v(1)]);
    }

    const A: f32 = 0.1;
    const B: f32 = 0.2;
    const C: f32 = 0.3;
    const D: f32 = 0.4;
    const CVAL: f32 = 0.9;

    #[test]
    fn horizontal_shift_under_each_fill_mode() {
        // One row `a b c d`; tx = 2 samples columns 2..=5, tx = -2 samples columns -2..=1.
        let row = [A, B, C, D];
        let shift = |tx: f32, fill| run(&row, [1, 4, 1], &Transform { tx, ..Transform::default() }, fill, CVAL);
        assert_eq!(shift(2.0, FillMode::Nearest), [C, D, D, D]);
        assert_eq!(shift(2.0, FillMode::Constant), [C, D, CVAL, CVAL]);
        assert_eq!(shift(2.0, FillMode::Reflect), [C, D, D, C]);
        assert_eq!(shift(2.0, FillMode::Wrap), [C, D, A, B]);
        assert_eq!(shift(-2.0, FillMode::Nearest), [A, A, A, B]);
        assert_eq!(shift(-2.0, FillMode::Constant), [CVAL, CVAL, A, B]);
        assert_eq!(shift(-2.0, FillMode::Reflect), [B, A, A, B]);
        assert_eq!(shift(-2.0, FillMode::Wrap), [C, D, A, B]);
    }

    #[test]
    fn vertical_shift_under_each_fill_mode_far_beyond_the_edge() {
        // One column `a b c d` (4 rows, 1 column), shifted by 5 rows: reflection and
        // wrapping reach past a whole period.
        let column = [A, B, C, D];
        let shift = |ty: f32, fill| run(&column, [4, 1, 1], &Transform { ty, ..Transform::default() }, fill, CVAL);
        // Rows 5..=8: reflect `dcba|abcd|dcba|abcd` puts rows 4..=7 at d c b a, row 8 at a.
        assert_eq!(shift(5.0, FillMode::Nearest), [D, D, D, D]);
        assert_eq!(shift(5.0, FillMode::Constant), [CVAL; 4]);
        assert_eq!(shift(5.0, FillMode::Reflect), [C, B, A, A]);
        assert_eq!(shift(5.0, FillMode::Wrap), [B, C, D, A]);
        // Rows -1..=2.
        assert_eq!(shift(-1.0, FillMode::Nearest), [A, A, B, C]);
        assert_eq!(shift(-1.0, FillMode::Constant), [CVAL, A, B, C]);
        assert_eq!(shift(-1.0, FillMode::Reflect), [A, A, B, C]);
        assert_eq!(shift(-1.0, FillMode::Wrap), [D, A, B, C]);
    }

    #[test]
    fn half_pixel_shift_interpolates_bilinearly() {
        let row = [0.0, 1.0, 0.5, 0.5];
        let t = Transform { tx: 0.5, ..Transform::default() };
        assert_eq!(run(&row, [1, 4, 1], &t, FillMode::Nearest, 0.0), [0.5, 0.75, 0.5, 0.5]);
    }

    #[test]
    fn zoom_above_one_zooms_out_about_the_centre() {
        // 3×3, zoom 2: output column x samples column 1 + 2 (x - 1), i.e. -1, 1, 3.
        let image = ramp(3, 3, 1);
        let t = Transform { zx: 2.0, zy: 2.0, ..Transform::default() };
        let mut want = [CVAL; 9];
        want[4] = image[4];
        assert_eq!(run(&image, [3, 3, 1], &t, FillMode::Constant, CVAL), want);
    }

    #[test]
    fn shear_slants_rows_by_the_sine() {
        // Row y samples column x − sin(s)·(y − centre) of row centre + cos(s)·(y − centre).
        let image = ramp(3, 3, 1);
        let t = Transform { shear_deg: 30.0, ..Transform::default() };
        let out = run(&image, [3, 3, 1], &t, FillMode::Nearest, 0.0);
        // The middle row (y = centre) only moves along y by cos·0 = 0: unchanged.
        assert_eq!(out[3..6], image[3..6]);
        assert_ne!(out, image);
    }

    #[test]
    fn brightness_multiplies_and_clips() {
        let row = [0.1, 0.4, 0.6, 1.0];
        let t = Transform { brightness: Some(2.0), ..Transform::default() };
        assert_eq!(run(&row, [1, 4, 1], &t, FillMode::Nearest, 0.0), [0.2, 0.8, 1.0, 1.0]);
    }

    #[test]
    fn identity_returns_the_image_unchanged() {
        let image = ramp(5, 4, 3);
        assert_eq!(run(&image, [5, 4, 3], &Transform::default(), FillMode::Constant, 0.0), image);
        let zoom_one = Transform { zx: 1.0, zy: 1.0, theta_deg: 0.0, brightness: Some(1.0), ..Transform::default() };
        assert_eq!(run(&image, [5, 4, 3], &zoom_one, FillMode::Reflect, 0.0), image);
        let config = AugmentConfig { zoom_range: [1.0, 1.0], ..AugmentConfig::default() };
        assert!(config.is_identity());
        let mut out = vec![0.0; image.len()];
        augment_image(&image, [5, 4, 3], &config, &mut ChaCha8Rng::seed_from_u64(3), &mut out);
        assert_eq!(out, image);
    }

    fn busy_config() -> AugmentConfig {
        AugmentConfig {
            rotation_range: 30.0,
            width_shift_range: 0.2,
            height_shift_range: 2.0,
            shear_range: 10.0,
            zoom_range: [0.7, 1.3],
            horizontal_flip: true,
            vertical_flip: true,
            brightness_range: Some([0.5, 1.8]),
            fill_mode: FillMode::Reflect,
            cval: 0.0,
        }
    }

    fn augmented(image: &[f32], shape: [usize; 3], config: &AugmentConfig, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = vec![0.0; image.len()];
        augment_image(image, shape, config, &mut rng, &mut out);
        out
    }

    #[test]
    fn same_seed_same_output_different_seed_different_output() {
        let image = ramp(8, 8, 3);
        let config = busy_config();
        assert_eq!(augmented(&image, [8, 8, 3], &config, 7), augmented(&image, [8, 8, 3], &config, 7));
        assert_ne!(augmented(&image, [8, 8, 3], &config, 7), augmented(&image, [8, 8, 3], &config, 8));
    }

    #[test]
    fn output_stays_in_the_unit_interval() {
        let image: Vec<f32> = (0..12 * 10 * 3).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
        for fill_mode in [FillMode::Nearest, FillMode::Constant, FillMode::Reflect, FillMode::Wrap] {
            let config = AugmentConfig { fill_mode, cval: 1.0, ..busy_config() };
            for seed in 0..50 {
                let out = augmented(&image, [12, 10, 3], &config, seed);
                assert!(out.iter().all(|v| (0.0..=1.0).contains(v)), "{fill_mode:?} seed {seed}");
            }
        }
    }

    #[test]
    fn random_parameters_stay_in_their_ranges() {
        let config = busy_config();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (mut flips_h, mut flips_v) = (0, 0);
        for _ in 0..400 {
            let t = random_transform(&config, [10, 20, 1], &mut rng);
            assert!(t.theta_deg.abs() <= 30.0 && t.shear_deg.abs() <= 10.0);
            assert!(t.tx.abs() <= 0.2 * 20.0 && t.ty.abs() <= 2.0);
            assert!((0.7..=1.3).contains(&t.zx) && (0.7..=1.3).contains(&t.zy) && t.zx != t.zy);
            assert!(t.brightness.is_some_and(|b| (0.5..=1.8).contains(&b)));
            flips_h += usize::from(t.flip_h);
            flips_v += usize::from(t.flip_v);
        }
        assert!((150..250).contains(&flips_h) && (150..250).contains(&flips_v), "{flips_h} {flips_v}");
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        augment: AugmentArgs,
    }

    fn parse(args: &[&str]) -> Result<AugmentConfig> {
        use clap::Parser;
        let cli = Cli::try_parse_from(std::iter::once("test").chain(args.iter().copied()))?;
        cli.augment.config()
    }

    #[test]
    fn flags_follow_keras_meanings() -> Result<()> {
        assert_eq!(parse(&[])?, AugmentConfig::default());
        assert_eq!(AugmentArgs::default().config()?, AugmentConfig::default());
        let c = parse(&[
            "--rotation-range=15",
            "--zoom-range=0.25",
            "--brightness-range=0.5,1.5",
            "--fill-mode=wrap",
            "--horizontal-flip",
        ])?;
        assert_eq!(c.zoom_range, [0.75, 1.25]);
        assert_eq!(c.brightness_range, Some([0.5, 1.5]));
        assert_eq!(
            (c.fill_mode, c.rotation_range, c.horizontal_flip, c.vertical_flip),
            (FillMode::Wrap, 15.0, true, false)
        );
        assert_eq!(parse(&["--zoom-range", "0.9,1.2"])?.zoom_range, [0.9, 1.2]);
        for bad in [
            &["--zoom-range", "1.5"][..],
            &["--zoom-range", "a,b"],
            &["--brightness-range", "2,1"],
            &["--cval", "3"],
            &["--rotation-range=-5"],
        ] {
            let err = parse(bad).expect_err("should be refused").to_string();
            assert!(err.contains(bad[0].split('=').next().unwrap_or("")), "{err}");
        }
        Ok(())
    }
}
