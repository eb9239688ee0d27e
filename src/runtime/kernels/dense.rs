//! Dense (fully connected) layer on the last axis of a tensor of any rank ≥ 1.
//!
//! `x: [..., IN]`, kernel `[IN, OUT]` (Keras layout), optional bias `[OUT]`, output
//! `[..., OUT]`. The leading axes are flattened into GEMM rows, so one call is one GEMM.
//! Backward: `dx = dy · kernelᵀ`, `dkernel = xᵀ · dy`, `dbias = Σ dy`; all overwritten.

use ndarray::{ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut1, ArrayViewMut2, ArrayViewMutD};

use super::error::{checked_product, expect_shape, shape_err, KernelResult};
use super::linalg::{column_sums, flat, flat_mut, gemm, mat, mat_mut};

const OP: &str = "dense";

/// Number of GEMM rows for an input whose last axis must be `inner`.
fn leading_rows(shape: &[usize], inner: usize) -> KernelResult<usize> {
    match shape.split_last() {
        Some((&last, lead)) if last == inner => checked_product(OP, lead),
        _ => Err(shape_err(
            OP,
            format!("input shape {shape:?} does not end in {inner}"),
        )),
    }
}

/// The output shape for `x_shape` and `units` outputs.
fn output_shape(x_shape: &[usize], units: usize) -> Vec<usize> {
    let mut s = x_shape.to_vec();
    if let Some(last) = s.last_mut() {
        *last = units;
    }
    s
}

/// `out = x · kernel + bias` on the last axis.
pub fn dense_forward(
    x: ArrayViewD<'_, f32>,
    kernel: ArrayView2<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
    mut out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let (inp, units) = kernel.dim();
    let rows = leading_rows(x.shape(), inp)?;
    expect_shape(OP, "out", out.shape(), &output_shape(x.shape(), units))?;
    let xm = mat(OP, flat(OP, "x", &x)?, rows, inp)?;
    let mut om = mat_mut(OP, flat_mut(OP, "out", &mut out)?, rows, units)?;
    gemm(OP, 1.0, &xm, &kernel, 0.0, &mut om)?;
    if let Some(b) = bias {
        expect_shape(OP, "bias", b.shape(), &[units])?;
        match (b.as_slice(), om.as_slice_mut()) {
            (Some(&[b0]), Some(os)) => os.iter_mut().for_each(|o| *o += b0),
            (Some(bs), Some(os)) if units > 0 => {
                for row in os.chunks_exact_mut(units) {
                    row.iter_mut().zip(bs).for_each(|(o, &v)| *o += v);
                }
            }
            _ => om += &b,
        }
    }
    Ok(())
}

/// Gradient buffers written by [`dense_backward`] (each overwritten).
pub struct DenseGrads<'a> {
    pub dx: ArrayViewMutD<'a, f32>,
    pub dkernel: ArrayViewMut2<'a, f32>,
    pub dbias: Option<ArrayViewMut1<'a, f32>>,
}

/// Backward of [`dense_forward`] given `dy: [..., OUT]`.
pub fn dense_backward(
    x: ArrayViewD<'_, f32>,
    kernel: ArrayView2<'_, f32>,
    dy: ArrayViewD<'_, f32>,
    grads: DenseGrads<'_>,
) -> KernelResult<()> {
    let DenseGrads {
        mut dx,
        mut dkernel,
        dbias,
    } = grads;
    let (inp, units) = kernel.dim();
    let rows = leading_rows(x.shape(), inp)?;
    expect_shape(OP, "dy", dy.shape(), &output_shape(x.shape(), units))?;
    expect_shape(OP, "dx", dx.shape(), x.shape())?;
    expect_shape(OP, "dkernel", dkernel.shape(), kernel.shape())?;
    let xm = mat(OP, flat(OP, "x", &x)?, rows, inp)?;
    let dys = flat(OP, "dy", &dy)?;
    let dym = mat(OP, dys, rows, units)?;
    let mut dxm = mat_mut(OP, flat_mut(OP, "dx", &mut dx)?, rows, inp)?;
    gemm(OP, 1.0, &dym, &kernel.t(), 0.0, &mut dxm)?;
    gemm(OP, 1.0, &xm.t(), &dym, 0.0, &mut dkernel)?;
    if let Some(mut db) = dbias {
        expect_shape(OP, "dbias", db.shape(), &[units])?;
        column_sums(dys, units, flat_mut(OP, "dbias", &mut db)?);
    }
    Ok(())
}
