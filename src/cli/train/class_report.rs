//! `modelc eval`'s per-class report of a classifier: precision, recall, f1 and support per
//! class, their macro and support-weighted averages, the accuracy (scikit-learn's
//! `classification_report`), and the confusion matrix (rows the true class, columns the
//! predicted one).
//!
//! Input: a [`ConfusionMatrix`] counted over the evaluated split. Output: text for the
//! terminal (the matrix only up to [`MAX_MATRIX_CLASSES`] classes, a line saying so beyond) or
//! a JSON value that always holds everything.

use std::fmt::Write as _;

use crate::runtime::metrics::{ClassScores, ConfusionMatrix};

/// The most classes whose confusion matrix the terminal report prints.
pub const MAX_MATRIX_CLASSES: usize = 20;

/// Averages over classes weighted by their support (scikit-learn's `weighted avg`).
fn weighted(m: &ConfusionMatrix) -> ClassScores {
    let total = m.total();
    let mut sums = (0.0, 0.0, 0.0);
    for c in 0..m.classes() {
        let s = m.class_scores(c);
        let w = s.support as f64;
        sums.0 += w * s.precision;
        sums.1 += w * s.recall;
        sums.2 += w * s.f1;
    }
    let over = |x: f64| if total == 0 { 0.0 } else { x / total as f64 };
    ClassScores {
        precision: over(sums.0),
        recall: over(sums.1),
        f1: over(sums.2),
        support: total,
    }
}

/// The terminal report.
pub fn human(m: &ConfusionMatrix) -> String {
    let mut out = String::new();
    let row = |out: &mut String, name: &str, s: ClassScores| {
        let _ = writeln!(
            out,
            "{name:>12} {:>9.4} {:>9.4} {:>9.4} {:>9}",
            s.precision, s.recall, s.f1, s.support
        );
    };
    if m.is_binary() {
        out.push_str("per class (binary: each output element, class 1 = above the threshold)\n");
    }
    let _ = writeln!(
        out,
        "{:>12} {:>9} {:>9} {:>9} {:>9}",
        "class", "precision", "recall", "f1", "support"
    );
    for c in 0..m.classes() {
        row(&mut out, &c.to_string(), m.class_scores(c));
    }
    let _ = writeln!(
        out,
        "{:>12} {:>9} {:>9} {:>9.4} {:>9}",
        "accuracy",
        "",
        "",
        m.accuracy(),
        m.total()
    );
    row(&mut out, "macro avg", m.macro_scores());
    row(&mut out, "weighted avg", weighted(m));
    if m.classes() > MAX_MATRIX_CLASSES {
        let _ = writeln!(
            out,
            "\nconfusion matrix not shown: {} classes (more than {MAX_MATRIX_CLASSES}); `--format json` has it",
            m.classes()
        );
        return out;
    }
    let width = (0..m.classes())
        .flat_map(|t| (0..m.classes()).map(move |p| (t, p)))
        .map(|(t, p)| m.get(t, p).to_string().len())
        .chain([m.classes().saturating_sub(1).to_string().len(), 4])
        .max()
        .unwrap_or(4);
    out.push_str("\nconfusion matrix (rows: true class, columns: predicted class)\n");
    let _ = write!(out, "{:>6}", "");
    for p in 0..m.classes() {
        let _ = write!(out, " {p:>width$}");
    }
    out.push('\n');
    for t in 0..m.classes() {
        let _ = write!(out, "{t:>6}");
        for p in 0..m.classes() {
            let _ = write!(out, " {:>width$}", m.get(t, p));
        }
        out.push('\n');
    }
    out
}

fn scores_json(s: ClassScores) -> serde_json::Value {
    serde_json::json!({
        "precision": s.precision,
        "recall": s.recall,
        "f1": s.f1,
        "support": s.support,
    })
}

/// The JSON report: every class, the averages and the whole matrix.
pub fn json(m: &ConfusionMatrix) -> serde_json::Value {
    let classes: Vec<serde_json::Value> = (0..m.classes())
        .map(|c| {
            let mut v = scores_json(m.class_scores(c));
            if let Some(o) = v.as_object_mut() {
                o.insert("class".into(), c.into());
            }
            v
        })
        .collect();
    let matrix: Vec<Vec<u64>> = (0..m.classes())
        .map(|t| (0..m.classes()).map(|p| m.get(t, p)).collect())
        .collect();
    serde_json::json!({
        "binary": m.is_binary(),
        "classes": classes,
        "accuracy": m.accuracy(),
        "macro_avg": scores_json(m.macro_scores()),
        "weighted_avg": scores_json(weighted(m)),
        "confusion_matrix": matrix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::loss::{SparseLabels, Targets};
    use crate::runtime::metrics::Task;
    use ndarray::{array, ArrayD, IxDyn};

    /// true → predicted: 0→0, 0→1, 1→1, 1→2, 2→2, 2→1, 2→2 (as in the metrics' tests).
    fn matrix() -> ConfusionMatrix {
        let predicted = [0_usize, 1, 1, 2, 2, 1, 2];
        let output = ArrayD::from_shape_fn(IxDyn(&[7, 3]), |i| {
            if predicted[i[0]] == i[1] {
                1.0_f32
            } else {
                0.0
            }
        });
        let labels = array![0_i64, 0, 1, 1, 2, 2, 2].into_dyn();
        let targets = Targets::Sparse(SparseLabels::I64(labels.view()));
        let task = Task::MultiClass { from_logits: false };
        ConfusionMatrix::of_batch(task, &output.view(), &targets).unwrap()
    }

    #[test]
    fn the_report_has_every_class_the_averages_and_the_matrix() {
        let text = human(&matrix());
        let expected = "       class precision    recall        f1   support
           0    1.0000    0.5000    0.6667         2
           1    0.3333    0.5000    0.4000         2
           2    0.6667    0.6667    0.6667         3
    accuracy                        0.5714         7
   macro avg    0.6667    0.5556    0.5778         7
weighted avg    0.6667    0.5714    0.5905         7

confusion matrix (rows: true class, columns: predicted class)
          0    1    2
     0    1    1    0
     1    0    1    1
     2    0    1    2
";
        assert_eq!(text, expected);
        // weighted avg by hand: precision (2·1 + 2·⅓ + 3·⅔)/7 = (14/3)/7 = ⅔;
        // recall (2·½ + 2·½ + 3·⅔)/7 = 4/7; f1 (2·⅔ + 2·0.4 + 3·⅔)/7 = 0.59048
        let v = json(&matrix());
        assert_eq!(
            v["confusion_matrix"],
            serde_json::json!([[1, 1, 0], [0, 1, 1], [0, 1, 2]])
        );
        assert_eq!(v["classes"][1]["support"], 2);
        assert!((v["weighted_avg"]["recall"].as_f64().unwrap() - 4.0 / 7.0).abs() < 1e-12);
        assert!((v["macro_avg"]["f1"].as_f64().unwrap() - 26.0 / 45.0).abs() < 1e-12);
    }

    #[test]
    fn large_class_counts_skip_the_matrix_in_text_only() {
        let classes = MAX_MATRIX_CLASSES + 1;
        let output = ArrayD::from_shape_fn(IxDyn(&[classes, classes]), |i| {
            f32::from(u8::from(i[0] == i[1]))
        });
        let labels = ArrayD::from_shape_fn(IxDyn(&[classes]), |i| i[0] as i64);
        let targets = Targets::Sparse(SparseLabels::I64(labels.view()));
        let task = Task::MultiClass { from_logits: false };
        let m = ConfusionMatrix::of_batch(task, &output.view(), &targets).unwrap();
        let text = human(&m);
        assert!(text.contains("confusion matrix not shown: 21 classes (more than 20)"));
        assert!(!text.contains("rows: true class"));
        assert_eq!(text.lines().count(), 1 + classes + 3 + 2);
        let v = json(&m);
        assert_eq!(v["confusion_matrix"].as_array().unwrap().len(), classes);
        assert_eq!(v["accuracy"], 1.0);
    }
}
