//! The conv2d step: geometry from the plan's window, then the convolution with bias and the
//! fused activation applied to the output.
//!
//! Input: NHWC input data, a Keras `[kh, kw, in, out]` kernel, optional bias, the window.
//! Output: `[N, OH, OW, out]` written into the step's buffer. Scratch memory stays in the
//! step's [`ConvStep`] between calls.

use crate::ir::{Activation, Padding, Window};
use crate::runtime::kernels::conv::{
    conv2d_forward, same_padding, Conv2dGeometry, ConvWorkspace, Padding2d,
};
use crate::runtime::kernels::{KernelError, KernelResult};

use super::elementwise::bias_activation;

/// A conv step's reusable scratch: one workspace per batch slice (one slice per thread).
#[derive(Debug, Default)]
pub struct ConvStep {
    slices: Vec<ConvWorkspace>,
}

/// Splits `n` samples into at most `parts` contiguous ranges of nearly equal size.
pub fn batch_ranges(n: usize, parts: usize) -> Vec<(usize, usize)> {
    let parts = parts.clamp(1, n.max(1));
    let (base, extra) = (n / parts, n % parts);
    let mut at = 0;
    (0..parts)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let r = (at, at + len);
            at += len;
            r
        })
        .collect()
}

/// The kernel geometry of `window` over an `h × w` input.
pub fn geometry(window: &Window, h: usize, w: usize) -> KernelResult<Conv2dGeometry> {
    let padding = match window.padding {
        Padding::Valid => Padding2d::default(),
        Padding::Explicit([top, bottom, left, right]) => Padding2d {
            top,
            bottom,
            left,
            right,
        },
        Padding::Same => {
            let (top, bottom) =
                same_padding(h, window.size[0], window.strides[0], window.dilation[0])?;
            let (left, right) =
                same_padding(w, window.size[1], window.strides[1], window.dilation[1])?;
            Padding2d {
                top,
                bottom,
                left,
                right,
            }
        }
    };
    Ok(Conv2dGeometry {
        stride: (window.strides[0], window.strides[1]),
        dilation: (window.dilation[0], window.dilation[1]),
        padding,
    })
}

fn shape_err(detail: String) -> KernelError {
    KernelError::Shape {
        op: "conv2d",
        detail,
    }
}

impl ConvStep {
    /// Runs the convolution of `x` (`x_dims`) with `kernel` (`k_dims`) into `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        x: &[f32],
        x_dims: [usize; 4],
        kernel: &[f32],
        k_dims: [usize; 4],
        bias: Option<&[f32]>,
        activation: Activation,
        window: &Window,
        out: &mut [f32],
    ) -> KernelResult<()> {
        let geom = geometry(window, x_dims[1], x_dims[2])?;
        let s = crate::runtime::kernels::conv::Conv2dShape::new(x_dims, k_dims, &geom)?;
        let kv = ndarray::ArrayView4::from_shape(k_dims, kernel)
            .map_err(|e| shape_err(e.to_string()))?;
        // Samples are independent: each thread convolves its own slice of the batch with its
        // own workspace. A sample's output does not depend on the slicing (GEMM rows are
        // computed independently), so results are identical for every thread count.
        let ranges = batch_ranges(s.n, rayon::current_num_threads());
        self.slices
            .resize_with(ranges.len(), ConvWorkspace::default);
        let in_sample = x_dims[1] * x_dims[2] * x_dims[3];
        let out_sample = s.oh * s.ow * s.o;
        let mut jobs = Vec::with_capacity(ranges.len());
        let mut rest_out = out
            .get_mut(..s.n * out_sample)
            .ok_or_else(|| shape_err("output shorter than its shape".into()))?;
        for (&(a, b), ws) in ranges.iter().zip(self.slices.iter_mut()) {
            let (mine, later) = rest_out.split_at_mut((b - a) * out_sample);
            rest_out = later;
            let xs = x
                .get(a * in_sample..b * in_sample)
                .ok_or_else(|| shape_err("input shorter than its shape".into()))?;
            jobs.push((b - a, xs, mine, ws));
        }
        let run = |(count, xs, out, ws): (usize, &[f32], &mut [f32], &mut ConvWorkspace)| {
            let xv = ndarray::ArrayView4::from_shape([count, x_dims[1], x_dims[2], x_dims[3]], xs)
                .map_err(|e| shape_err(e.to_string()))?;
            let ov = ndarray::ArrayViewMut4::from_shape([count, s.oh, s.ow, s.o], &mut *out)
                .map_err(|e| shape_err(e.to_string()))?;
            conv2d_forward(xv, kv, None, &geom, ws, ov)?;
            bias_activation(out, bias, activation, s.o);
            Ok(())
        };
        if jobs.len() == 1 {
            jobs.into_iter().try_for_each(run)?;
        } else {
            use rayon::prelude::*;
            jobs.into_par_iter().try_for_each(run)?;
        }
        Ok(())
    }
}
