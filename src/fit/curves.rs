//! `curves.svg`: a run's loss and metric curves, drawn with plotters' SVG backend (text as SVG
//! `<text>` elements, so no font library or system font is needed).
//!
//! Input: the history (one [`EpochRecord`] per epoch, with its per-step batch losses) and a
//! title. Output: SVG text. Layout: a loss panel (the per-step training loss, smoothed as
//! TensorBoard smooths it, beside per-epoch training and validation points) and, when the run
//! has metrics, a metrics panel below it; each panel has real axes (ticks, gridlines, tick
//! labels, axis titles), its legend in a column to the right of the plotting rectangle (never
//! over the lines), and the best epoch (least `val_loss`, or least `loss` without validation)
//! marked by a dashed vertical line and a label. Invariant: the same history gives the same
//! bytes (no timing, no randomness).

use super::EpochRecord;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const WIDTH: u32 = 960;
const PANEL_HEIGHT: u32 = 360;
/// The legend column right of each panel's chart.
const LEGEND_WIDTH: u32 = 190;
/// The most per-step points one line holds (longer runs keep every k-th point).
const MAX_STEP_POINTS: usize = 2000;
const PALETTE: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];
const BEST_COLOUR: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// The best epoch: the least validation loss, or the least training loss without validation.
/// `(epoch, what was compared, its value)`.
pub fn best_epoch(history: &[EpochRecord]) -> Option<(u64, &'static str, f64)> {
    let with_val = !history.is_empty() && history.iter().all(|r| r.val_loss.is_some());
    let (name, value): (&'static str, fn(&EpochRecord) -> Option<f64>) = if with_val {
        ("val_loss", |r| r.val_loss)
    } else {
        ("loss", |r| Some(r.loss))
    };
    history
        .iter()
        .filter_map(|r| value(r).filter(|v| v.is_finite()).map(|v| (r.epoch, v)))
        // The first of equal values, as Keras's early stopping keeps it.
        .fold(None, |best: Option<(u64, f64)>, (e, v)| match best {
            Some((_, b)) if b <= v => best,
            _ => Some((e, v)),
        })
        .map(|(e, v)| (e, name, v))
}

/// TensorBoard's smoothing: an exponential moving average with weight `weight`, debiased so
/// that the first points are not pulled toward 0.
pub fn smooth(values: &[f32], weight: f64) -> Vec<f64> {
    let mut last = 0.0f64;
    let mut out = Vec::with_capacity(values.len());
    for (i, &v) in values.iter().enumerate() {
        last = last * weight + (1.0 - weight) * f64::from(v);
        let debias = 1.0 - weight.powi(i32::try_from(i + 1).unwrap_or(i32::MAX));
        out.push(if debias > 0.0 { last / debias } else { last });
    }
    out
}

/// One line or point set of a panel.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    /// Drawn as dots at each epoch (per-epoch values) or as a thin line (per-step values).
    dots: bool,
}

/// The run's curves as SVG text; `Err` only if plotting fails (a bug, not user input).
pub fn curves_svg(title: &str, history: &[EpochRecord]) -> Result<String, String> {
    let epochs = history.last().map_or(1, |r| r.epoch.max(1));
    let losses = loss_series(history);
    let metrics = metric_series(history);
    let panels = if metrics.is_empty() { 1 } else { 2 };
    let best = best_epoch(history);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, PANEL_HEIGHT * panels + 30))
            .into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(title, ("sans-serif", 18))
            .map_err(|e| e.to_string())?;
        let areas = root.split_evenly((panels as usize, 1));
        let mut areas = areas.iter();
        if let Some(area) = areas.next() {
            panel(area, "loss", &losses, epochs, best)?;
        }
        if let Some(area) = areas.next() {
            panel(area, "metric", &metrics, epochs, best)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// The per-step training loss (smoothed), then per-epoch `loss` and `val_loss`.
fn loss_series(history: &[EpochRecord]) -> Vec<Series> {
    let mut out = Vec::new();
    let mut steps = Vec::new();
    for r in history {
        let n = r.step_losses.len();
        // Half-life about a tenth of an epoch, never less smoothing than TensorBoard's 0.6.
        let weight = (1.0 - 10.0 / n.max(1) as f64).clamp(0.6, 0.99);
        let smoothed = smooth(&r.step_losses, weight);
        let stride = (n * history.len()).div_ceil(MAX_STEP_POINTS).max(1);
        for (k, v) in smoothed.into_iter().enumerate() {
            if (k + 1) % stride == 0 || k + 1 == n {
                let x = (r.epoch - 1) as f64 + (k + 1) as f64 / n as f64;
                steps.push((x, v));
            }
        }
    }
    if !steps.is_empty() {
        out.push(Series {
            name: "loss per step (smoothed)".into(),
            points: steps,
            dots: false,
        });
    }
    out.push(per_epoch("loss", history, |r| Some(r.loss)));
    if !history.is_empty() && history.iter().all(|r| r.val_loss.is_some()) {
        out.push(per_epoch("val_loss", history, |r| r.val_loss));
    }
    out
}

/// Each training metric, then each validation metric, per epoch.
fn metric_series(history: &[EpochRecord]) -> Vec<Series> {
    let Some(first) = history.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, (name, _)) in first.metrics.iter().enumerate() {
        out.push(per_epoch(name, history, |r| r.metrics.get(k).map(|m| m.1)));
    }
    for (k, (name, _)) in first.val_metrics.iter().enumerate() {
        let name = format!("val_{name}");
        out.push(per_epoch(&name, history, |r| {
            r.val_metrics.get(k).map(|m| m.1)
        }));
    }
    out
}

fn per_epoch(
    name: &str,
    history: &[EpochRecord],
    f: impl Fn(&EpochRecord) -> Option<f64>,
) -> Series {
    Series {
        name: name.to_string(),
        points: history
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect(),
        dots: true,
    }
}

/// The value range of a panel, padded by 5% so no point sits on the frame.
fn y_range(series: &[Series]) -> (f64, f64) {
    let finite = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 0.5 };
    (lo - pad, hi + pad)
}

fn tick_label(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e4 || v.abs() < 1e-3) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".into()
        } else {
            s.into()
        }
    }
}

/// One panel: the chart (frame, mesh, axis titles, series, best-epoch marker) on the left, the
/// legend in its own column on the right.
fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    what: &str,
    series: &[Series],
    epochs: u64,
    best: Option<(u64, &'static str, f64)>,
) -> Result<(), String> {
    let (chart_area, legend_area) = area.split_horizontally(WIDTH - LEGEND_WIDTH);
    let (lo, hi) = y_range(series);
    let x_max = epochs as f64;
    let mut chart = ChartBuilder::on(&chart_area)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, lo..hi)
        .map_err(|e| e.to_string())?;
    let x_ticks = usize::try_from(epochs.min(10)).unwrap_or(10) + 1;
    chart
        .configure_mesh()
        .x_labels(x_ticks)
        .y_labels(6)
        .x_desc("epoch")
        .y_desc(what)
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .plotting_area()
        .draw(&Rectangle::new(
            [(0.0, lo), (x_max, hi)],
            RGBColor(0x44, 0x44, 0x44).stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
    for (k, s) in series.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let points = s.points.iter().copied().filter(|p| p.1.is_finite());
        if s.dots {
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(points.map(|p| Circle::new(p, 3, colour.filled())))
                .map_err(|e| e.to_string())?;
        } else {
            chart
                .draw_series(LineSeries::new(points, colour.mix(0.6).stroke_width(1)))
                .map_err(|e| e.to_string())?;
        }
    }
    if let Some((epoch, name, value)) = best {
        let x = epoch as f64;
        chart
            .draw_series(DashedLineSeries::new(
                [(x, lo), (x, hi)],
                6,
                4,
                BEST_COLOUR.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
        let label = format!("best epoch {epoch} ({name} {})", tick_label(value));
        let (px, py) = chart.backend_coord(&(x, hi));
        let right = chart.plotting_area().get_pixel_range().0.end;
        // The label reads left of the line when it would leave the frame on the right.
        let (anchor, dx) = if px + 8 * label.len() as i32 > right {
            (Pos::new(HPos::Right, VPos::Top), -4)
        } else {
            (Pos::new(HPos::Left, VPos::Top), 4)
        };
        let (bx, by) = chart_area.get_base_pixel();
        chart_area
            .draw(&Text::new(
                label,
                (px + dx - bx, py + 4 - by),
                ("sans-serif", 12)
                    .into_font()
                    .color(&BEST_COLOUR)
                    .pos(anchor),
            ))
            .map_err(|e| e.to_string())?;
    }
    legend(&legend_area, series)
}

/// The legend column: a sample of each series' line (or dot) and its name, top to bottom.
fn legend(area: &DrawingArea<SVGBackend<'_>, Shift>, series: &[Series]) -> Result<(), String> {
    for (k, s) in series.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let y = 28 + 20 * i32::try_from(k).unwrap_or(0);
        area.draw(&PathElement::new(
            [(8, y), (32, y)],
            colour.stroke_width(if s.dots { 2 } else { 1 }),
        ))
        .map_err(|e| e.to_string())?;
        if s.dots {
            area.draw(&Circle::new((20, y), 3, colour.filled()))
                .map_err(|e| e.to_string())?;
        }
        area.draw(&Text::new(
            s.name.clone(),
            (38, y),
            TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(epoch: u64, loss: f64, val_loss: f64, acc: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            loss,
            metrics: vec![("accuracy".into(), acc)],
            val_loss: Some(val_loss),
            val_metrics: vec![("accuracy".into(), acc - 0.1)],
            lr: 1e-3,
            samples_per_sec: 1234.5,
            data_wait_fraction: 0.01,
            step_losses: vec![
                loss as f32 + 0.2,
                loss as f32 + 0.1,
                loss as f32,
                loss as f32 - 0.1,
            ],
        }
    }

    fn history() -> Vec<EpochRecord> {
        vec![
            record(1, 0.9, 0.8, 0.5),
            record(2, 0.6, 0.5, 0.7),
            record(3, 0.4, 0.45, 0.8),
            record(4, 0.3, 0.47, 0.85),
        ]
    }

    /// `(x, y, text)` of every `<text>` element.
    fn texts(svg: &str) -> Vec<(f64, f64, String)> {
        svg.split("<text ")
            .skip(1)
            .map(|t| {
                let attr = |name: &str| -> f64 {
                    let start = t.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                    let end = start + t[start..].find('"').unwrap();
                    t[start..end].parse().unwrap()
                };
                let body = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
                (attr("x"), attr("y"), body.trim().to_string())
            })
            .collect()
    }

    #[test]
    fn smoothing_is_tensorboards_debiased_moving_average() {
        // weight 0.5: 1 -> 0.5 / 0.5; 2 -> (0.25 + 1) / 0.75; 3 -> (0.625 + 1.5) / 0.875
        let s = smooth(&[1.0, 2.0, 3.0], 0.5);
        let want = [1.0, 1.25 / 0.75, 2.125 / 0.875];
        for (a, b) in s.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{s:?}");
        }
    }

    #[test]
    fn the_best_epoch_is_the_least_validation_loss_else_the_least_loss() {
        assert_eq!(best_epoch(&history()), Some((3, "val_loss", 0.45)));
        let mut no_val = history();
        for r in &mut no_val {
            r.val_loss = None;
        }
        assert_eq!(best_epoch(&no_val), Some((4, "loss", 0.3)));
        assert_eq!(best_epoch(&[]), None);
    }

    #[test]
    fn panels_have_axes_ticks_a_legend_outside_and_the_best_epoch_marked() {
        let svg = curves_svg("demo", &history()).unwrap();
        let texts = texts(&svg);
        let has = |s: &str| texts.iter().filter(|t| t.2 == s).count();
        assert_eq!(has("demo"), 1);
        assert_eq!(has("epoch"), 2, "an x axis title per panel");
        assert_eq!(
            (has("loss"), has("metric")),
            (2, 1),
            "y titles and the legend's loss"
        );
        // x tick labels are centred under their tick, y tick labels end left of the axis
        let centred: Vec<&str> = svg
            .split("<text ")
            .skip(1)
            .filter(|t| t.contains("text-anchor=\"middle\"") && !t.contains("rotate"))
            .map(|t| t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].trim())
            .collect();
        for tick in ["0", "1", "2", "3", "4"] {
            let n = centred.iter().filter(|t| **t == tick).count();
            assert_eq!(n, 2, "epoch tick {tick} on both panels");
        }
        for tick in ["0.4", "0.6", "0.8", "1"] {
            assert!(has(tick) >= 1, "loss tick {tick}");
        }
        assert_eq!(has("best epoch 3 (val_loss 0.45)"), 2);
        // the plotting frames: the two rectangles drawn without fill
        let frames: Vec<(f64, f64)> = svg
            .split("<rect ")
            .skip(1)
            .map(|r| format!(" {}", &r[..r.find('>').unwrap()]))
            .filter(|r| r.contains("fill=\"none\""))
            .map(|r| {
                let num = |name: &str| -> f64 {
                    let start = r.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
                    r[start..start + r[start..].find('"').unwrap()]
                        .parse()
                        .unwrap()
                };
                (num("x"), num("x") + num("width"))
            })
            .collect();
        assert_eq!(frames.len(), 2, "{svg}");
        let right = frames[0].1;
        for entry in [
            "loss per step (smoothed)",
            "val_loss",
            "accuracy",
            "val_accuracy",
        ] {
            let (x, _, _) = texts.iter().find(|t| t.2 == entry).unwrap();
            assert!(
                *x > right,
                "legend entry {entry} at x {x} is inside the plot (right edge {right})"
            );
        }
        // the dashed best-epoch line: vertical grey dashes at epoch 3's x, in both panels
        let x3 = frames[0].0 + (frames[0].1 - frames[0].0) * 3.0 / 4.0;
        let dashes = svg
            .lines()
            .filter(|l| l.starts_with("<polyline") && l.contains("stroke=\"#555555\""))
            .filter(|l| {
                let points = &l[l.find("points=\"").unwrap() + 8..];
                let points = &points[..points.find('"').unwrap()];
                points.split_whitespace().all(|p| {
                    (p.split(',').next().unwrap().parse::<f64>().unwrap() - x3).abs() <= 1.0
                })
            })
            .count();
        assert!(dashes >= 20, "{dashes} dashes at x {x3}");
        assert_eq!(
            svg,
            curves_svg("demo", &history()).unwrap(),
            "deterministic"
        );
    }
}
