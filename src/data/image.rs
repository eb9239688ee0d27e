//! Geometric kernels on one channels-last image `[h, w, c]` stored as a flat slice: bilinear
//! resize (half-pixel centres, as TensorFlow's `resize`), rotation, zoom, flips and padded crops.
//!
//! Input: a source slice and its dimensions. Output: written into a destination slice whose
//! size the caller computed. Invariant: callers pass slices of exactly `h * w * c` values;
//! pixels sampled outside the source read as 0.

/// Image dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Dims {
    pub fn len(self) -> usize {
        self.h * self.w * self.c
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// One axis of TF's half-pixel bilinear resize: the two source indices and the weight of the
/// upper one, for each destination index.
fn axis_weights(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f64 / dst as f64;
    let last = src.saturating_sub(1);
    (0..dst)
        .map(|i| {
            let pos = (i as f64 + 0.5) * scale - 0.5;
            let floor = pos.floor();
            let lo = (floor.max(0.0) as usize).min(last);
            let hi = (pos.ceil().max(0.0) as usize).min(last);
            (lo, hi, (pos - floor) as f32)
        })
        .collect()
}

/// Bilinear resize with half-pixel centres (TensorFlow `tf.image.resize`, bilinear, no
/// antialias): source coordinate `(i + 0.5) · src/dst − 0.5`, neighbours clamped to the edge.
pub fn resize_bilinear(src: &[f32], from: Dims, to: Dims, dst: &mut [f32]) {
    let ys = axis_weights(from.h, to.h);
    let xs = axis_weights(from.w, to.w);
    let c = from.c;
    let px =
        |y: usize, x: usize, k: usize| src.get((y * from.w + x) * c + k).copied().unwrap_or(0.0);
    for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
        for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
            for k in 0..c {
                let top = px(y0, x0, k) + (px(y0, x1, k) - px(y0, x0, k)) * fx;
                let bottom = px(y1, x0, k) + (px(y1, x1, k) - px(y1, x0, k)) * fx;
                if let Some(d) = dst.get_mut((oy * to.w + ox) * c + k) {
                    *d = top + (bottom - top) * fy;
                }
            }
        }
    }
}

/// Bilinear sample at `(y, x)` of every channel into `out`; pixels outside the image are 0.
#[inline]
fn sample(src: &[f32], d: Dims, y: f32, x: f32, out: &mut [f32]) {
    let y0f = y.floor();
    let x0f = x.floor();
    let fy = y - y0f;
    let fx = x - x0f;
    let (y0, x0) = (y0f as isize, x0f as isize);
    let (h, w) = (d.h as isize, d.w as isize);
    let weights = [
        (1.0 - fy) * (1.0 - fx),
        (1.0 - fy) * fx,
        fy * (1.0 - fx),
        fy * fx,
    ];
    if y0 >= 0 && x0 >= 0 && y0 + 1 < h && x0 + 1 < w {
        // interior: all four neighbours exist
        let row = d.w * d.c;
        let base = (y0 as usize * d.w + x0 as usize) * d.c;
        if let (Some(top), Some(bottom)) = (
            src.get(base..base + 2 * d.c),
            src.get(base + row..base + row + 2 * d.c),
        ) {
            for (k, o) in out.iter_mut().enumerate() {
                *o = top[k] * weights[0]
                    + top[k + d.c] * weights[1]
                    + bottom[k] * weights[2]
                    + bottom[k + d.c] * weights[3];
            }
            return;
        }
    }
    let at = |yy: isize, xx: isize, kk: usize| -> f32 {
        if yy >= 0 && yy < h && xx >= 0 && xx < w {
            src.get((yy as usize * d.w + xx as usize) * d.c + kk)
                .copied()
                .unwrap_or(0.0)
        } else {
            0.0
        }
    };
    for (k, o) in out.iter_mut().enumerate() {
        *o = at(y0, x0, k) * weights[0]
            + at(y0, x0 + 1, k) * weights[1]
            + at(y0 + 1, x0, k) * weights[2]
            + at(y0 + 1, x0 + 1, k) * weights[3];
    }
}

/// Writes `dst(p) = src(centre + A · (p − centre))` for every pixel, bilinear, fill 0, where
/// `A = [[a, b], [c, d]]` maps destination (y, x) offsets to source offsets.
fn affine(src: &[f32], dims: Dims, a: [f32; 4], dst: &mut [f32]) {
    let cy = (dims.h as f32 - 1.0) / 2.0;
    let cx = (dims.w as f32 - 1.0) / 2.0;
    for (y, row) in dst.chunks_exact_mut(dims.w * dims.c).enumerate() {
        let dy = y as f32 - cy;
        for (x, out) in row.chunks_exact_mut(dims.c).enumerate() {
            let dx = x as f32 - cx;
            let sy = cy + a[0] * dy + a[1] * dx;
            let sx = cx + a[2] * dy + a[3] * dx;
            sample(src, dims, sy, sx, out);
        }
    }
}

/// Rotates the picture counter-clockwise (as displayed, rows going down) by `radians` about
/// its centre; bilinear, fill 0.
pub fn rotate(src: &[f32], dims: Dims, radians: f32, dst: &mut [f32]) {
    let (s, c) = radians.sin_cos();
    // source offset = R(θ)ᵀ applied to the destination offset, in (y, x) order
    affine(src, dims, [c, s, -s, c], dst);
}

/// Zooms by `factor` about the centre (> 1 magnifies); bilinear, fill 0.
pub fn zoom(src: &[f32], dims: Dims, factor: f32, dst: &mut [f32]) {
    let inv = 1.0 / factor;
    affine(src, dims, [inv, 0.0, 0.0, inv], dst);
}

/// Mirrors left–right (`horizontal`) and/or top–bottom (`vertical`) in place.
pub fn flip(img: &mut [f32], dims: Dims, horizontal: bool, vertical: bool) {
    let row = dims.w * dims.c;
    if horizontal {
        for r in img.chunks_exact_mut(row) {
            for x in 0..dims.w / 2 {
                for k in 0..dims.c {
                    r.swap(x * dims.c + k, (dims.w - 1 - x) * dims.c + k);
                }
            }
        }
    }
    if vertical {
        for y in 0..dims.h / 2 {
            let (top, bottom) = img.split_at_mut((dims.h - 1 - y) * row);
            if let (Some(a), Some(b)) = (top.get_mut(y * row..(y + 1) * row), bottom.get_mut(..row))
            {
                a.swap_with_slice(b);
            }
        }
    }
}

/// Cuts the `size × size` window at `(top, left)` out of the image padded by `padding` zeros
/// on every side.
pub fn crop_padded(
    src: &[f32],
    dims: Dims,
    padding: usize,
    size: usize,
    top: usize,
    left: usize,
    dst: &mut [f32],
) {
    let c = dims.c;
    // destination columns [x_lo, x_hi) read source columns x + left - padding, which exist
    let x_lo = padding.saturating_sub(left).min(size);
    let x_hi = (dims.w + padding).saturating_sub(left).clamp(x_lo, size);
    for (y, row) in dst.chunks_exact_mut(size * c).enumerate() {
        row.fill(0.0);
        let Some(sy) = (y + top).checked_sub(padding).filter(|&sy| sy < dims.h) else {
            continue;
        };
        let sx = x_lo + left - padding;
        let from = (sy * dims.w + sx) * c;
        if let (Some(d), Some(s)) = (
            row.get_mut(x_lo * c..x_hi * c),
            src.get(from..from + (x_hi - x_lo) * c),
        ) {
            d.copy_from_slice(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D3: Dims = Dims { h: 3, w: 3, c: 1 };
    const IMG: [f32; 9] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];

    fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol, "at {i}: {x} vs {y}\n{a:?}\n{b:?}");
        }
    }

    #[test]
    fn rotating_a_3x3_by_90_degrees_turns_it_counter_clockwise() {
        let mut out = [0.0; 9];
        rotate(&IMG, D3, std::f32::consts::FRAC_PI_2, &mut out);
        close(&out, &[3.0, 6.0, 9.0, 2.0, 5.0, 8.0, 1.0, 4.0, 7.0], 1e-5);
        rotate(&IMG, D3, -std::f32::consts::FRAC_PI_2, &mut out);
        close(&out, &[7.0, 4.0, 1.0, 8.0, 5.0, 2.0, 9.0, 6.0, 3.0], 1e-5);
    }

    #[test]
    fn rotating_by_45_degrees_interpolates_and_fills_zero() {
        // destination corner (0, 0): offset (-1, -1) maps to source offset (-√2, 0), i.e.
        // (1 - √2, 1) = (-0.414, 1): 0.586 of pixel (0, 1) = 2 and 0.414 of the zero border.
        // The centre stays 5; edge midpoint (0, 1): offset (-1, 0) → source offset
        // (-cos, +sin), i.e. source (0.293, 1.707): bilinear of 2, 3, 5, 6 with t = 0.293.
        let mut out = [0.0; 9];
        rotate(&IMG, D3, std::f32::consts::FRAC_PI_4, &mut out);
        let t = 1.0 - std::f32::consts::FRAC_1_SQRT_2;
        let corner = 2.0 * (1.0 - std::f32::consts::SQRT_2 + 1.0);
        let mid = (2.0 * t + 3.0 * (1.0 - t)) * (1.0 - t) + (5.0 * t + 6.0 * (1.0 - t)) * t;
        assert!((out[0] - corner).abs() < 1e-5, "{} vs {corner}", out[0]);
        assert!((out[4] - 5.0).abs() < 1e-5);
        assert!((out[1] - mid).abs() < 1e-5, "{} vs {mid}", out[1]);
    }

    #[test]
    fn bilinear_resize_of_2x2_matches_half_pixel_hand_values() {
        // x positions for 2 → 4: (i + .5)/2 − .5 = −.25, .25, .75, 1.25 → weights of the
        // second pixel 0 (clamped), .25, .75, 1 (clamped).
        let src = [0.0, 1.0, 2.0, 3.0];
        let mut out = [0.0; 16];
        resize_bilinear(
            &src,
            Dims { h: 2, w: 2, c: 1 },
            Dims { h: 4, w: 4, c: 1 },
            &mut out,
        );
        let row = |base: f32| [base, base + 0.25, base + 0.75, base + 1.0];
        let expect: Vec<f32> = [row(0.0), row(0.5), row(1.5), row(2.0)].concat();
        close(&out, &expect, 1e-6);
        // downscale 2x2 → 1x1: position .5 → mean of all four
        let mut one = [0.0; 1];
        resize_bilinear(
            &src,
            Dims { h: 2, w: 2, c: 1 },
            Dims { h: 1, w: 1, c: 1 },
            &mut one,
        );
        close(&one, &[1.5], 1e-6);
    }

    #[test]
    fn crop_flip_and_zoom_by_hand() {
        // pad 1 → 5x5 with IMG in the middle; a 3x3 window at (0, 0) holds the top-left 2x2.
        let mut out = [0.0; 9];
        crop_padded(&IMG, D3, 1, 3, 0, 0, &mut out);
        close(&out, &[0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 4.0, 5.0], 0.0);
        crop_padded(&IMG, D3, 1, 3, 2, 1, &mut out);
        close(&out, &[4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 0.0, 0.0, 0.0], 0.0);

        let mut img = IMG;
        flip(&mut img, D3, true, false);
        close(&img, &[3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 9.0, 8.0, 7.0], 0.0);
        flip(&mut img, D3, false, true);
        close(&img, &[9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0], 0.0);

        // zoom ×2: corner (0, 0) samples source (0.5, 0.5) = mean(1, 2, 4, 5) = 3
        zoom(&IMG, D3, 2.0, &mut out);
        assert!((out[0] - 3.0).abs() < 1e-6 && (out[4] - 5.0).abs() < 1e-6);
    }
}
