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

/// A conv step's reusable scratch.
#[derive(Debug, Default)]
pub struct ConvStep {
    ws: ConvWorkspace,
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
        let xv =
            ndarray::ArrayView4::from_shape(x_dims, x).map_err(|e| shape_err(e.to_string()))?;
        let kv = ndarray::ArrayView4::from_shape(k_dims, kernel)
            .map_err(|e| shape_err(e.to_string()))?;
        let ov = ndarray::ArrayViewMut4::from_shape(s.output(), &mut *out)
            .map_err(|e| shape_err(e.to_string()))?;
        conv2d_forward(xv, kv, None, &geom, &mut self.ws, ov)?;
        bias_activation(out, bias, activation, s.o);
        Ok(())
    }
}
