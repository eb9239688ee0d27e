//! A multi-input pipeline's feature groups at run time: the source's feature vectors cut into
//! the groups of the `inputs` line, each group through its own `map` steps.
//!
//! Input: the source's features `[n, k]` and the pipeline's [`InputGroup`]s (positions resolved
//! when lowered). Output: [`Features::Groups`], one `[n, ...]` array per group in the `inputs`
//! line's order; each group's `standardize`/`normalize` fitted on the training rows of that
//! group alone, its numbers stored in the group's steps. Invariant: row `i` of every group comes
//! from row `i` of the source, so splits, shuffles and batches keep the groups aligned.

use super::samples::{with_count, Features, Group, Labels, Samples};
use super::spec::InputGroup;
use super::transform::apply_all;
use crate::diag::codes::DATA_SHAPE_MISMATCH;
use crate::diag::Diagnostic;
use ndarray::ArrayD;

/// The columns `positions` of every row of `a` (`[n, k]`), as `[n, positions.len()]`.
fn columns<T: Copy>(a: &ArrayD<T>, positions: &[usize]) -> Result<ArrayD<T>, Diagnostic> {
    let &[n, k] = a.shape() else {
        return Err(Diagnostic::error(
            DATA_SHAPE_MISMATCH,
            format!(
                "input groups split flat feature vectors, and these samples are {:?}",
                a.shape().get(1..).unwrap_or(&[])
            ),
        ));
    };
    if let Some(&p) = positions.iter().find(|&&p| p >= k) {
        return Err(Diagnostic::error(
            DATA_SHAPE_MISMATCH,
            format!("an input group takes feature {p}, and the samples have {k}"),
        ));
    }
    let a = a.as_standard_layout();
    let flat = a.as_slice().unwrap_or(&[]);
    let mut out = Vec::with_capacity(n.saturating_mul(positions.len()));
    for row in flat.chunks_exact(k.max(1)).take(n) {
        out.extend(positions.iter().filter_map(|&p| row.get(p).copied()));
    }
    ArrayD::from_shape_vec(with_count(n, &[positions.len()]), out)
        .map_err(|e| Diagnostic::error(DATA_SHAPE_MISMATCH, e.to_string()))
}

/// Cuts `features` into `groups` and applies each group's `map` steps, fitting unfitted
/// statistics on the rows `train_rows(n)` chooses (the same rows for every group).
pub fn split_into_groups(
    groups: &mut [InputGroup],
    features: &Features,
    train_rows: &dyn Fn(usize) -> Vec<usize>,
) -> Result<Features, Diagnostic> {
    let mut out = Vec::with_capacity(groups.len());
    for g in groups.iter_mut() {
        let cut = match features {
            Features::F32(a) => Features::F32(columns(a, &g.positions)?),
            Features::I64(a) => Features::I64(columns(a, &g.positions)?),
            Features::Groups(_) => {
                return Err(Diagnostic::error(
                    DATA_SHAPE_MISMATCH,
                    "input groups cannot be cut from input groups",
                ))
            }
        };
        let samples = Samples {
            features: cut,
            labels: Labels::None,
        };
        let done = apply_all(&mut g.preprocess, samples, train_rows).map_err(|d| {
            let message = format!("input group `{}`: {}", g.name, d.message);
            Diagnostic { message, ..d }
        })?;
        out.push(Group {
            name: g.name.clone(),
            features: done.features,
        });
    }
    Ok(Features::Groups(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::spec::{Fitted, Step, Transform};
    use crate::diag::Span;

    fn group(name: &str, positions: Vec<usize>, steps: Vec<Transform>) -> InputGroup {
        InputGroup {
            name: name.into(),
            span: Span::default(),
            positions,
            preprocess: steps
                .into_iter()
                .map(|op| Step {
                    op,
                    span: Span::default(),
                })
                .collect(),
            augment: Vec::new(),
        }
    }

    #[test]
    fn groups_take_their_columns_and_fit_on_the_training_rows_only() {
        // Rows [r, 10r + 1, 100r + 2] for r = 0..4.
        let rows: Vec<f32> = (0..4)
            .flat_map(|r| {
                let r = r as f32;
                [r, 10.0 * r + 1.0, 100.0 * r + 2.0]
            })
            .collect();
        let a = ArrayD::from_shape_vec(vec![4, 3], rows).unwrap();
        let mut groups = vec![
            group(
                "b",
                vec![2],
                vec![Transform::Scale {
                    factor: 0.5,
                    offset: 1.0,
                }],
            ),
            group(
                "a",
                vec![0, 1],
                vec![Transform::Standardize { fitted: None }],
            ),
        ];
        let out = split_into_groups(&mut groups, &Features::F32(a), &|_| vec![0, 1]).unwrap();
        let Features::Groups(g) = out else {
            panic!("groups")
        };
        assert_eq!(g[0].name, "b");
        let Features::F32(b) = &g[0].features else {
            panic!()
        };
        // 0.5 · (100r + 2) + 1
        assert_eq!(b.as_slice().unwrap(), &[2.0, 52.0, 102.0, 152.0]);
        // Fitted on rows 0 and 1 only: column 0 holds 0, 1 (mean 0.5, std 0.5); column 1 holds
        // 1, 11 (mean 6, std 5).
        assert_eq!(
            groups[1].preprocess[0].op,
            Transform::Standardize {
                fitted: Some(Fitted {
                    shift: vec![0.5, 6.0],
                    scale: vec![0.5, 5.0],
                })
            }
        );
        let Features::F32(a) = &g[1].features else {
            panic!()
        };
        assert_eq!(a.shape(), &[4, 2]);
        // Row 3: (3 - 0.5) / 0.5 = 5, (31 - 6) / 5 = 5.
        assert_eq!(
            a.as_slice().unwrap(),
            &[-1.0, -1.0, 1.0, 1.0, 3.0, 3.0, 5.0, 5.0]
        );
    }
}
