//! What a classifier's output means to a reader: per row, the `k` most probable classes with
//! their probabilities; as a table, CSV rows and JSON.
//!
//! Input: the plan (a model is a classifier when its output is a softmax or sigmoid of
//! `[N, classes]`) and its output array. Output: [`Prediction`] rows, and their renderings.
//! Invariants: classes are ordered by probability, highest first, ties by class id; a one-unit
//! sigmoid is the binary case (class 1 with `p`, class 0 with `1 − p`); rows keep input order.

use crate::ir::{Activation, Op};
use crate::plan::ExecutionPlan;
use ndarray::ArrayD;
use std::fmt::Write as _;

/// How a classifier's output turns into class probabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Head {
    /// One probability per class, summing to 1.
    Softmax,
    /// Independent probabilities (one unit: the binary case).
    Sigmoid,
}

/// One class of a row's top `k`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Ranked {
    pub class: usize,
    pub probability: f32,
}

/// The classifier head of the plan's only output, when its last step is a softmax or sigmoid
/// (alone or fused into a dense layer) giving `[N, classes]`.
pub(super) fn classifier_head(plan: &ExecutionPlan) -> Option<Head> {
    let [out] = plan.outputs.as_slice() else {
        return None;
    };
    if plan.values.get(*out as usize)?.fact.rank() != 2 {
        return None;
    }
    let step = plan.steps.iter().rev().find(|s| s.output == *out)?;
    let activation = match &step.op {
        Op::Dense { activation, .. } => activation,
        Op::Activation(a) => a,
        _ => return None,
    };
    match activation {
        Activation::Softmax => Some(Head::Softmax),
        Activation::Sigmoid => Some(Head::Sigmoid),
        _ => None,
    }
}

/// Each row's `k` most probable classes (at most as many as there are).
pub(super) fn top_k(y: &ArrayD<f32>, head: Head, k: usize) -> Vec<Vec<Ranked>> {
    y.outer_iter()
        .map(|row| {
            let mut ranked: Vec<Ranked> = match (head, row.len()) {
                (Head::Sigmoid, 1) => {
                    let p = row.iter().next().copied().unwrap_or(0.0);
                    vec![
                        Ranked {
                            class: 1,
                            probability: p,
                        },
                        Ranked {
                            class: 0,
                            probability: 1.0 - p,
                        },
                    ]
                }
                _ => row
                    .iter()
                    .enumerate()
                    .map(|(class, &probability)| Ranked { class, probability })
                    .collect(),
            };
            ranked.sort_by(|a, b| {
                b.probability
                    .total_cmp(&a.probability)
                    .then(a.class.cmp(&b.class))
            });
            ranked.truncate(k);
            ranked
        })
        .collect()
}

/// The table people read: `row [file] class probability [class_2 probability_2 ...]`.
pub(super) fn table(rows: &[Vec<Ranked>], names: Option<&[String]>) -> String {
    let k = rows.iter().map(Vec::len).max().unwrap_or(1);
    let file_width = names.map_or(0, |n| n.iter().map(String::len).max().unwrap_or(4).max(4));
    let mut t = String::from("  row");
    if names.is_some() {
        let _ = write!(t, "  {:<file_width$}", "file");
    }
    for j in 1..=k {
        let (c, p) = if j == 1 {
            ("class".to_string(), "probability".to_string())
        } else {
            (format!("class_{j}"), format!("probability_{j}"))
        };
        let _ = write!(t, "  {c:>7}  {p:>13}");
    }
    t.push('\n');
    for (i, row) in rows.iter().enumerate() {
        let _ = write!(t, "{i:>5}");
        if let Some(n) = names {
            let name = n.get(i).map_or("", String::as_str);
            let _ = write!(t, "  {name:<file_width$}");
        }
        for r in row {
            let _ = write!(t, "  {:>7}  {:>13.6}", r.class, r.probability);
        }
        t.push('\n');
    }
    t
}

/// The same content as CSV: a header, then one line per row.
pub(super) fn csv(rows: &[Vec<Ranked>], names: Option<&[String]>) -> String {
    let k = rows.iter().map(Vec::len).max().unwrap_or(1);
    let mut t = String::from("row");
    if names.is_some() {
        t.push_str(",file");
    }
    for j in 1..=k {
        if j == 1 {
            t.push_str(",class,probability");
        } else {
            let _ = write!(t, ",class_{j},probability_{j}");
        }
    }
    t.push('\n');
    for (i, row) in rows.iter().enumerate() {
        let _ = write!(t, "{i}");
        if let Some(n) = names {
            let _ = write!(t, ",{}", csv_cell(n.get(i).map_or("", String::as_str)));
        }
        for r in row {
            let _ = write!(t, ",{},{}", r.class, r.probability);
        }
        t.push('\n');
    }
    t
}

/// A regressor's rows as CSV: `row [file] NAME_0 NAME_1 ...`, one column per value of a row.
pub(super) fn values_csv(name: &str, y: &ArrayD<f32>, names: Option<&[String]>) -> String {
    let width = y.shape().get(1..).map_or(1, |d| d.iter().product());
    let mut t = String::from("row");
    if names.is_some() {
        t.push_str(",file");
    }
    for j in 0..width {
        let _ = write!(t, ",{}_{j}", csv_cell(name));
    }
    t.push('\n');
    for (i, row) in y.outer_iter().enumerate() {
        let _ = write!(t, "{i}");
        if let Some(n) = names {
            let _ = write!(t, ",{}", csv_cell(n.get(i).map_or("", String::as_str)));
        }
        for v in &row {
            let _ = write!(t, ",{v}");
        }
        t.push('\n');
    }
    t
}

/// JSON: `[{"row": 0, "file": ..., "top": [{"class": 3, "probability": 0.9}, ...]}, ...]`.
pub(super) fn json(rows: &[Vec<Ranked>], names: Option<&[String]>) -> serde_json::Value {
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let top: Vec<serde_json::Value> = row
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "class": r.class,
                        "probability": serde_json::Number::from_f64(f64::from(r.probability))
                            .map_or(serde_json::Value::Null, Into::into),
                    })
                })
                .collect();
            let mut entry = serde_json::json!({ "row": i, "top": top });
            if let (Some(n), Some(map)) = (names, entry.as_object_mut()) {
                map.insert(
                    "file".into(),
                    n.get(i)
                        .map_or(serde_json::Value::Null, |s| s.clone().into()),
                );
            }
            entry
        })
        .collect()
}

/// A CSV cell: quoted when it holds a comma, quote or line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn top_k_orders_by_probability_then_class_and_handles_binary_sigmoid() {
        let y = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![0.2f32, 0.5, 0.3, 0.4, 0.2, 0.4])
            .unwrap_or_default();
        let rows = top_k(&y, Head::Softmax, 2);
        let pairs: Vec<Vec<(usize, f32)>> = rows
            .iter()
            .map(|r| r.iter().map(|x| (x.class, x.probability)).collect())
            .collect();
        assert_eq!(
            pairs,
            vec![vec![(1, 0.5), (2, 0.3)], vec![(0, 0.4), (2, 0.4)]]
        );
        let b = ArrayD::from_shape_vec(IxDyn(&[2, 1]), vec![0.25f32, 0.75]).unwrap_or_default();
        let rows = top_k(&b, Head::Sigmoid, 1);
        assert_eq!(rows[0][0].class, 0);
        assert!((rows[0][0].probability - 0.75).abs() < 1e-7);
        assert_eq!(rows[1][0].class, 1);
        assert_eq!(
            csv(&rows, Some(&["a,b.png".to_string(), "c.png".to_string()])),
            "row,file,class,probability\n0,\"a,b.png\",0,0.75\n1,c.png,1,0.75\n"
        );
    }
}
