//! What a run leaves for people: `metrics.csv` (one row per epoch) and `curves.svg` (loss and
//! metric curves, plain SVG that needs no font library to write).

use super::EpochRecord;
use std::fmt::Write;

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

const W: f64 = 720.0;
const H: f64 = 320.0;
const PAD: f64 = 48.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

/// Loss curves on the left, metric curves on the right, one polyline per series.
pub fn curves_svg(title: &str, history: &[EpochRecord]) -> String {
    let mut losses: Vec<(String, Vec<f64>)> =
        vec![("loss".into(), history.iter().map(|r| r.loss).collect())];
    if history.iter().all(|r| r.val_loss.is_some()) && !history.is_empty() {
        losses.push((
            "val_loss".into(),
            history.iter().filter_map(|r| r.val_loss).collect(),
        ));
    }
    let mut metrics: Vec<(String, Vec<f64>)> = Vec::new();
    if let Some(first) = history.first() {
        for (k, (name, _)) in first.metrics.iter().enumerate() {
            metrics.push((
                name.clone(),
                history
                    .iter()
                    .filter_map(|r| r.metrics.get(k).map(|m| m.1))
                    .collect(),
            ));
        }
        for (k, (name, _)) in first.val_metrics.iter().enumerate() {
            metrics.push((
                format!("val_{name}"),
                history
                    .iter()
                    .filter_map(|r| r.val_metrics.get(k).map(|m| m.1))
                    .collect(),
            ));
        }
    }
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        W * 2.0,
        H,
        W,
        escape(title)
    );
    panel(&mut svg, 0.0, "loss", &losses);
    panel(&mut svg, W, "metrics", &metrics);
    svg.push_str("</svg>\n");
    svg
}

fn panel(svg: &mut String, x0: f64, label: &str, series: &[(String, Vec<f64>)]) {
    let (left, right, top, bottom) = (x0 + PAD, x0 + W - PAD / 2.0, PAD, H - PAD);
    let _ = writeln!(
        svg,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>",
        right - left,
        bottom - top
    );
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">epoch</text>",
        f64::midpoint(left, right),
        H - 12.0
    );
    let _ = writeln!(svg, "<text x=\"{left}\" y=\"{}\">{label}</text>", top - 8.0);
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    let (Some(lo), Some(hi)) = (
        values.iter().copied().reduce(f64::min),
        values.iter().copied().reduce(f64::max),
    ) else {
        return;
    };
    let span = if hi > lo { hi - lo } else { 1.0 };
    let n = series
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(1)
        .max(2)
        - 1;
    for (tick, value) in [(bottom, lo), (top, hi)] {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            left - 4.0,
            tick + 4.0,
            short(value)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{right}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        bottom + 16.0,
        n + 1
    );
    let _ = writeln!(svg, "<text x=\"{left}\" y=\"{}\">1</text>", bottom + 16.0);
    for (k, (name, v)) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let points: Vec<String> = v
            .iter()
            .enumerate()
            .filter(|(_, y)| y.is_finite())
            .map(|(i, y)| {
                let px = left + (right - left) * i as f64 / n as f64;
                let py = bottom - (bottom - top) * (y - lo) / span;
                format!("{px:.1},{py:.1}")
            })
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
        let ly = top + 16.0 + 16.0 * k as f64;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{ly}\" fill=\"{colour}\" text-anchor=\"end\">{}</text>",
            right - 6.0,
            escape(name)
        );
    }
}

fn short(v: f64) -> String {
    if v.abs() >= 1000.0 || (v != 0.0 && v.abs() < 0.01) {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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

    #[test]
    fn svg_draws_one_polyline_per_series() {
        let svg = curves_svg("run", &[record(1, 0.5, 0.8), record(2, 0.25, 0.9)]);
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // Losses span 0.25..0.6 over a 224-pixel-high panel from y 48 to 272, x 48 to 696: the
        // training loss goes from 0.5 (y = 272 - 224 * 0.25 / 0.35 = 112) to 0.25 (the bottom).
        assert!(svg.contains("points=\"48.0,112.0 696.0,272.0\""), "{svg}");
    }
}
