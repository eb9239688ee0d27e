//! A right-hand matrix packed into panels as wide as the GEMM's register tile (16 columns,
//! 32 with AVX-512), for a product repeated many times with the same weights: the
//! per-timestep products of the recurrent layers.
//!
//! Row-major, the `K` rows of a 16-column strip of a `K × n` matrix are `4n` bytes apart
//! (1 KiB for `n = 256`, an LSTM's four gate blocks of 64 units), so they fall into a quarter
//! or less of the L1 cache's sets, and a strip cannot stay in L1 while [`simd_gemm`]'s row
//! tiles pass over it. Packed once, each panel is `K` consecutive cache lines, and one product
//! per panel ([`Panels::gemm`]) sums exactly as one product over the row-major matrix does,
//! bit for bit.

use ndarray::ArrayView2;

use super::linalg::ensure_len;
use super::simd_gemm;

/// The panels of a `k × n` matrix, each `k × width` contiguous (the last padded with zeros).
pub(crate) struct Panels<'a> {
    data: &'a [f32],
    k: usize,
    n: usize,
    /// Columns per panel: the width of the GEMM's register tile, so a panel's product is one
    /// column of tiles.
    width: usize,
}

impl<'a> Panels<'a> {
    /// Packs `weights` into `buf` (grown as needed).
    pub(crate) fn pack(weights: &ArrayView2<'_, f32>, buf: &'a mut Vec<f32>) -> Self {
        let (k, n) = weights.dim();
        let width = simd_gemm::TileSet::current().shape().1;
        let count = n.div_ceil(width);
        ensure_len(buf, count * k * width);
        let data = &mut buf[..count * k * width];
        for (p, panel) in data.chunks_exact_mut(k * width).enumerate() {
            let cols = width.min(n - p * width);
            for (row, dst) in panel.chunks_exact_mut(width).enumerate() {
                for (c, d) in dst.iter_mut().enumerate() {
                    *d = if c < cols {
                        weights[[row, p * width + c]]
                    } else {
                        0.0
                    };
                }
            }
        }
        Panels { data, k, n, width }
    }

    /// `out ← lhs · weights` (or `out += …` when `accumulate`): `lhs` holds `m` rows of `k`
    /// elements `row_stride` apart, `out` `m` rows of `n` elements `ldc` apart. `false`
    /// (nothing written) where our GEMM does not run or the buffers are short; the caller then
    /// runs the row-major product.
    pub(crate) fn gemm(
        &self,
        lhs: &[f32],
        (m, row_stride): (usize, usize),
        accumulate: bool,
        out: &mut [f32],
        ldc: usize,
    ) -> bool {
        let Some(last_row) = m.checked_sub(1) else {
            return true;
        };
        let fits = |len: usize, stride: usize, width: usize| {
            last_row
                .checked_mul(stride)
                .and_then(|v| v.checked_add(width))
                .is_some_and(|need| need <= len)
        };
        if !simd_gemm::available()
            || !fits(lhs.len(), row_stride, self.k)
            || !fits(out.len(), ldc, self.n)
        {
            return false;
        }
        let lhs = simd_gemm::Lhs::Strided {
            data: lhs,
            row_stride,
            col_stride: 1,
        };
        let width = self.width;
        for (p, panel) in self.data.chunks_exact(self.k * width).enumerate() {
            let call = simd_gemm::GemmCall {
                lhs,
                m,
                k: self.k,
                n: width.min(self.n - p * width),
                rhs: panel,
                ldb: width,
                ldc,
                accumulate,
                epilogue: simd_gemm::Epilogue::NONE,
                parallel: false,
            };
            if !simd_gemm::gemm(&call, &mut out[p * width..]) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Panels;
    use crate::runtime::kernels::linalg::{gemm, mat, mat_mut};
    use crate::runtime::kernels::tests::data;

    /// The panel products give one row-major product's bits, for a width that leaves a
    /// partial last panel (whose zero padding never reaches the output), with strided rows
    /// on both sides, written and accumulated.
    #[test]
    fn panels_give_the_row_major_product_bit_for_bit() {
        let (m, k, n, row_stride, ldc) = (7usize, 21usize, 52usize, 30usize, 60usize);
        let (lhs, w, init) = (
            data(m * row_stride, 1, 1.0),
            data(k * n, 2, 1.0),
            data(m * ldc, 3, 1.0),
        );
        let weights = mat("test", &w, k, n).unwrap();
        let mut buf = Vec::new();
        let panels = Panels::pack(&weights, &mut buf);
        let width = panels.width;
        assert_eq!(panels.data.len(), n.div_ceil(width) * k * width);
        let packed: Vec<f32> = (0..m)
            .flat_map(|i| lhs[i * row_stride..i * row_stride + k].to_vec())
            .collect();
        for accumulate in [false, true] {
            let mut want: Vec<f32> = (0..m)
                .flat_map(|i| init[i * ldc..i * ldc + n].to_vec())
                .collect();
            gemm(
                "test",
                1.0,
                &mat("test", &packed, m, k).unwrap(),
                &weights,
                if accumulate { 1.0 } else { 0.0 },
                &mut mat_mut("test", &mut want, m, n).unwrap(),
            )
            .unwrap();
            let mut out = init.clone();
            if !panels.gemm(&lhs, (m, row_stride), accumulate, &mut out, ldc) {
                eprintln!("skipped: no AVX2 + FMA here, so the panels are not used");
                return;
            }
            for i in 0..m {
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&out[i * ldc..i * ldc + n]),
                    bits(&want[i * n..(i + 1) * n])
                );
                // Past `n` the output rows are untouched.
                assert_eq!(
                    bits(&out[i * ldc + n..(i + 1) * ldc]),
                    bits(&init[i * ldc + n..(i + 1) * ldc])
                );
            }
        }
        // Short buffers are declined.
        assert!(!panels.gemm(
            &lhs[..20],
            (m, row_stride),
            false,
            &mut vec![0.0; m * ldc],
            ldc
        ));
    }
}
