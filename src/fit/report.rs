//! What a run leaves for people: `metrics.csv` (one row per epoch) and `curves.svg` (loss and
//! metric curves, drawn in [`super::curves`]).

pub use super::curves::{best_epoch, curves_svg};
use super::EpochRecord;

/// The history as CSV: `epoch,loss,<metrics>,val_loss,<val metrics>,lr,samples_per_sec`.
pub fn metrics_csv(history: &[EpochRecord]) -> String {
    let Some(first) = history.first() else {
        return "epoch,loss\n".to_string();
    };
    let mut header = vec!["epoch".to_string(), "loss".to_string()];
    header.extend(first.metrics.iter().map(|(n, _)| n.clone()));
    if first.val_loss.is_some() {
        header.push("val_loss".to_string());
        header.extend(first.val_metrics.iter().map(|(n, _)| format!("val_{n}")));
    }
    header.extend(["lr".to_string(), "samples_per_sec".to_string()]);
    let mut out = header.join(",");
    out.push('\n');
    for r in history {
        let mut row = vec![r.epoch.to_string(), format!("{:.6}", r.loss)];
        row.extend(r.metrics.iter().map(|(_, v)| format!("{v:.6}")));
        if let Some(v) = r.val_loss {
            row.push(format!("{v:.6}"));
            row.extend(r.val_metrics.iter().map(|(_, v)| format!("{v:.6}")));
        }
        row.push(format!("{}", r.lr as f32));
        row.push(format!("{:.1}", r.samples_per_sec));
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: u64, loss: f64, acc: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            loss,
            metrics: vec![("accuracy".into(), acc)],
            val_loss: Some(loss + 0.1),
            val_metrics: vec![("accuracy".into(), acc - 0.1)],
            lr: 1e-3,
            samples_per_sec: 1234.5,
            data_wait_fraction: 0.01,
            step_losses: Vec::new(),
        }
    }

    #[test]
    fn csv_has_a_header_and_a_row_per_epoch() {
        let csv = metrics_csv(&[record(1, 0.5, 0.8), record(2, 0.25, 0.9)]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "epoch,loss,accuracy,val_loss,val_accuracy,lr,samples_per_sec"
        );
        assert_eq!(
            lines[2],
            "2,0.250000,0.900000,0.350000,0.800000,0.001,1234.5"
        );
    }
}
