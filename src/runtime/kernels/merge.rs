//! Merge layers: n-ary element-wise `add` and `concat` along an axis, with backward.
//!
//! `add`: all inputs share one shape; backward hands `dy` to every input unchanged.
//! `concat`: inputs agree on every axis but `axis`; the output's `axis` is the sum. Backward
//! slices `dy` back into per-input gradients. Gradients are overwritten.

use ndarray::{ArrayViewD, ArrayViewMutD, Axis, Slice};

use super::error::{expect_shape, param_err, shape_err, KernelResult};

/// `out = Σ inputs`.
pub fn add_forward(
    inputs: &[ArrayViewD<'_, f32>],
    mut out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let (first, rest) = inputs
        .split_first()
        .ok_or_else(|| param_err("add", "no inputs"))?;
    expect_shape("add", "out", out.shape(), first.shape())?;
    out.assign(first);
    for x in rest {
        expect_shape("add", "input", x.shape(), first.shape())?;
        out += x;
    }
    Ok(())
}

/// Every input's gradient is `dy`.
pub fn add_backward(
    dy: ArrayViewD<'_, f32>,
    dxs: &mut [ArrayViewMutD<'_, f32>],
) -> KernelResult<()> {
    for dx in dxs.iter_mut() {
        expect_shape("add", "dx", dx.shape(), dy.shape())?;
        dx.assign(&dy);
    }
    Ok(())
}

/// The concatenated shape, or an error if the inputs disagree off `axis`.
pub fn concat_output_shape(shapes: &[&[usize]], axis: usize) -> KernelResult<Vec<usize>> {
    let first = shapes
        .first()
        .ok_or_else(|| param_err("concat", "no inputs"))?;
    if axis >= first.len() {
        return Err(param_err(
            "concat",
            format!("axis {axis} of rank {}", first.len()),
        ));
    }
    let mut out = first.to_vec();
    out[axis] = 0;
    for s in shapes {
        let same_rank = s.len() == first.len();
        if !same_rank
            || s.iter()
                .zip(first.iter())
                .enumerate()
                .any(|(i, (a, b))| i != axis && a != b)
        {
            return Err(shape_err(
                "concat",
                format!("{s:?} does not match {first:?} off axis {axis}"),
            ));
        }
        out[axis] = out[axis]
            .checked_add(s[axis])
            .ok_or(super::error::KernelError::Overflow { op: "concat" })?;
    }
    Ok(out)
}

/// `out = concat(inputs, axis)`.
pub fn concat_forward(
    inputs: &[ArrayViewD<'_, f32>],
    axis: usize,
    mut out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let shapes: Vec<&[usize]> = inputs.iter().map(ArrayViewD::shape).collect();
    expect_shape(
        "concat",
        "out",
        out.shape(),
        &concat_output_shape(&shapes, axis)?,
    )?;
    let mut at = 0;
    for x in inputs {
        let len = x.shape()[axis];
        out.slice_axis_mut(Axis(axis), Slice::from(at..at + len))
            .assign(x);
        at += len;
    }
    Ok(())
}

/// Splits `dy` back into the inputs' gradients (`dxs` in input order).
pub fn concat_backward(
    dy: ArrayViewD<'_, f32>,
    axis: usize,
    dxs: &mut [ArrayViewMutD<'_, f32>],
) -> KernelResult<()> {
    let shapes: Vec<&[usize]> = dxs.iter().map(ArrayViewMutD::shape).collect();
    expect_shape(
        "concat",
        "dy",
        dy.shape(),
        &concat_output_shape(&shapes, axis)?,
    )?;
    let mut at = 0;
    for dx in dxs.iter_mut() {
        let len = dx.shape()[axis];
        dx.assign(&dy.slice_axis(Axis(axis), Slice::from(at..at + len)));
        at += len;
    }
    Ok(())
}
