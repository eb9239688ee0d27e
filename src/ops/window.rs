//! The one copy of Keras's sliding-window arithmetic, shared by the checker's shape rules, the
//! IR's shape rules and the convolution and pooling kernels.
//!
//! Input: one spatial axis of a window (input size, kernel, stride, dilation) and its padding.
//! Output: the output size and the padding amounts `(before, after)`. Invariants: all arithmetic
//! is checked (an overflow or a zero kernel, stride or dilation is an error, never a panic);
//! `same` is TensorFlow's rule: output `ceil(in / stride)`, padding split with the odd pixel
//! after.

use super::types::Padding;

/// A window (kernel or pool) that does not fit its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowTooLarge {
    /// The input size along the axis, padding included.
    pub input: usize,
    /// The smallest input the window fits.
    pub needed: usize,
}

/// Why a window size could not be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowError {
    TooLarge(WindowTooLarge),
    /// A size overflowed, or a kernel, stride or dilation is zero.
    Overflow,
}

/// The extent of a dilated kernel: `dilation * (kernel - 1) + 1`.
fn dilated(kernel: usize, dilation: usize) -> Result<usize, WindowError> {
    if kernel == 0 || dilation == 0 {
        return Err(WindowError::Overflow);
    }
    (kernel - 1)
        .checked_mul(dilation)
        .and_then(|v| v.checked_add(1))
        .ok_or(WindowError::Overflow)
}

/// TensorFlow's `same` padding for one axis: `(before, after)`, the odd pixel going after.
pub fn same_padding(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Result<(usize, usize), WindowError> {
    if stride == 0 {
        return Err(WindowError::Overflow);
    }
    let effective = dilated(kernel, dilation)?;
    let out = input.div_ceil(stride);
    let needed = out
        .saturating_sub(1)
        .checked_mul(stride)
        .and_then(|v| v.checked_add(effective))
        .ok_or(WindowError::Overflow)?;
    let total = needed.saturating_sub(input);
    Ok((total / 2, total - total / 2))
}

/// The padding `(before, after)` of one axis (`axis` 0 = height, 1 = width: it selects the
/// explicit amounts `[top, bottom, left, right]`).
pub fn padding_amounts(
    padding: &Padding,
    axis: usize,
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Result<(usize, usize), WindowError> {
    match padding {
        Padding::Valid => Ok((0, 0)),
        Padding::Same => same_padding(input, kernel, stride, dilation),
        Padding::Explicit(p) => {
            let i = axis.min(1) * 2;
            Ok((p[i], p[i + 1]))
        }
    }
}

/// The output size of a window over one axis with explicit padding `before + after` added to
/// the input: `floor((in + pads - dilation*(kernel-1) - 1) / stride) + 1`.
pub fn padded_output_size(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pads: (usize, usize),
) -> Result<usize, WindowError> {
    if stride == 0 {
        return Err(WindowError::Overflow);
    }
    let span = dilated(kernel, dilation)?;
    let padded = input
        .checked_add(pads.0)
        .and_then(|v| v.checked_add(pads.1))
        .ok_or(WindowError::Overflow)?;
    if padded < span {
        return Err(WindowError::TooLarge(WindowTooLarge {
            input: padded,
            needed: span,
        }));
    }
    Ok((padded - span) / stride + 1)
}

/// The output size of a sliding window along one axis (Keras, channels-last):
/// `same` → `ceil(in / stride)`; `valid` (or explicit padding `before + after` added to the
/// input) → `floor((in - dilation*(kernel-1) - 1) / stride) + 1`.
/// `axis` is 0 for height and 1 for width (it selects the explicit padding amounts).
pub fn output_size(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: &Padding,
    axis: usize,
) -> Result<usize, WindowError> {
    match padding {
        Padding::Same => {
            dilated(kernel, dilation)?;
            if stride == 0 {
                return Err(WindowError::Overflow);
            }
            Ok(input.div_ceil(stride))
        }
        Padding::Valid | Padding::Explicit(_) => {
            let pads = padding_amounts(padding, axis, input, kernel, stride, dilation)?;
            padded_output_size(input, kernel, stride, dilation, pads)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(i: usize, k: usize, s: usize, d: usize) -> Result<usize, WindowError> {
        output_size(i, k, s, d, &Padding::Valid, 0)
    }

    // Expected values computed by hand from Keras's formulas:
    // valid: floor((in - d*(k-1) - 1)/s) + 1; same: ceil(in/s).
    #[test]
    fn valid_padding_by_hand() {
        assert_eq!(valid(28, 3, 1, 1), Ok(26));
        assert_eq!(valid(13, 3, 1, 1), Ok(11));
        assert_eq!(valid(26, 2, 2, 1), Ok(13)); // max_pool2d(2) after the first conv
        assert_eq!(valid(11, 2, 2, 1), Ok(5)); // floor(9/2)+1
        assert_eq!(valid(13, 2, 2, 1), Ok(6));
        assert_eq!(valid(3, 2, 2, 1), Ok(1));
        assert_eq!(valid(7, 3, 2, 1), Ok(3)); // floor(4/2)+1
        assert_eq!(valid(7, 3, 2, 2), Ok(2)); // span 5: floor(2/2)+1
        assert_eq!(valid(8, 3, 2, 1), Ok(3)); // floor(5/2)+1
        assert_eq!(valid(9, 3, 1, 2), Ok(5)); // span 5: floor(4/1)+1
        assert_eq!(valid(5, 3, 1, 2), Ok(1));
        assert_eq!(valid(3, 3, 1, 1), Ok(1));
    }

    #[test]
    fn same_padding_with_stride_on_odd_inputs() {
        let same = |i, s| output_size(i, 3, s, 1, &Padding::Same, 0);
        assert_eq!(same(7, 2), Ok(4));
        assert_eq!(same(13, 2), Ok(7));
        assert_eq!(same(5, 3), Ok(2));
        assert_eq!(same(28, 1), Ok(28));
        assert_eq!(same(1, 2), Ok(1));
    }

    #[test]
    fn same_padding_matches_tensorflow() {
        // in 5, k 3, s 2: out 3, needed (3-1)*2+3 = 7, total 2 → (1, 1).
        assert_eq!(same_padding(5, 3, 2, 1), Ok((1, 1)));
        assert_eq!(same_padding(5, 3, 1, 1), Ok((1, 1)));
        // in 6, k 3, s 2: out 3, needed 7, total 1 → (0, 1): the extra goes after.
        assert_eq!(same_padding(6, 3, 2, 1), Ok((0, 1)));
        assert_eq!(same_padding(7, 2, 2, 1), Ok((0, 1)));
        // in 4, k 1, s 2: nothing needed.
        assert_eq!(same_padding(4, 1, 2, 1), Ok((0, 0)));
        // dilation 2 makes k 3 cover 5: in 7, s 1 → total 4; in 5 → (2, 2).
        assert_eq!(same_padding(7, 3, 1, 2), Ok((2, 2)));
        assert_eq!(same_padding(5, 3, 1, 2), Ok((2, 2)));
        assert_eq!(same_padding(4, 3, 0, 1), Err(WindowError::Overflow));
    }

    #[test]
    fn explicit_padding_adds_to_the_input() {
        let p = Padding::Explicit([1, 1, 2, 0]);
        assert_eq!(output_size(5, 3, 1, 1, &p, 0), Ok(5)); // 7 - 3 + 1
        assert_eq!(output_size(5, 3, 2, 1, &p, 1), Ok(3)); // 7: floor(4/2)+1
        let p = Padding::Explicit([1, 1, 0, 0]);
        assert_eq!(output_size(7, 3, 2, 1, &p, 0), Ok(4));
        assert_eq!(output_size(7, 3, 2, 1, &p, 1), Ok(3));
    }

    #[test]
    fn window_too_large_and_overflow() {
        assert_eq!(
            valid(1, 3, 1, 1),
            Err(WindowError::TooLarge(WindowTooLarge {
                input: 1,
                needed: 3
            }))
        );
        assert_eq!(
            valid(4, 3, 1, 2),
            Err(WindowError::TooLarge(WindowTooLarge {
                input: 4,
                needed: 5
            }))
        );
        assert_eq!(valid(4, usize::MAX, 1, 2), Err(WindowError::Overflow));
        assert_eq!(valid(5, 3, 0, 1), Err(WindowError::Overflow));
        assert_eq!(valid(5, 0, 1, 1), Err(WindowError::Overflow));
        assert_eq!(
            padded_output_size(usize::MAX, 3, 1, 1, (5, 0)),
            Err(WindowError::Overflow)
        );
    }
}
