//! One SVG chart of a metric over epochs: a line per configuration (the mean over its repeats,
//! a dot per epoch) over a band from the repeats' min to max, real axes with "nice" ticks and
//! labels, and a legend. Plain SVG, no script, fixed-precision numbers: deterministic.

use super::html::escape;
use super::stats::Band;
use std::fmt::Write as _;

/// Ten colours that stay apart on white (a common categorical palette).
const COLOURS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];
/// After ten series the colours repeat with these dashes.
const DASHES: [&str; 3] = ["", "6 3", "2 2"];

const WIDTH: f64 = 640.0;
const PLOT_HEIGHT: f64 = 300.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 32.0;
const BOTTOM: f64 = 44.0;
const LEGEND_ROW: f64 = 18.0;

/// One configuration's curve.
pub(super) struct Series<'a> {
    pub label: &'a str,
    pub band: Band,
}

/// The colour and dash of the `k`-th series (the tables use the same colour for a configuration).
pub(super) fn style(k: usize) -> (&'static str, &'static str) {
    (
        COLOURS[k % COLOURS.len()],
        DASHES[(k / COLOURS.len()) % DASHES.len()],
    )
}

/// Round steps for about five ticks over `span`: 1, 2 or 5 times a power of ten.
fn nice_step(span: f64) -> f64 {
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let unit = if norm <= 1.5 {
        1.0
    } else if norm <= 3.0 {
        2.0
    } else if norm <= 7.0 {
        5.0
    } else {
        10.0
    };
    unit * magnitude
}

/// The ticks of an axis covering `lo..=hi` (finite): the rounded bounds and the ticks between.
fn ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - pad, hi + pad)
    };
    let step = nice_step(hi - lo);
    if !step.is_finite() || step <= 0.0 {
        return (lo, hi, vec![lo, hi]);
    }
    let first = (lo / step).floor();
    let last = (hi / step).ceil();
    let count = ((last - first) as usize).min(50);
    let marks: Vec<f64> = (0..=count).map(|i| (first + i as f64) * step).collect();
    (first * step, (first + count as f64) * step, marks)
}

/// A tick label with as many decimals as the step needs.
fn tick_label(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() >= 1e6 || step < 1e-4 {
        return format!("{v:.2e}");
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// The chart of `metric`, one series per configuration.
pub(super) fn chart_svg(metric: &str, series: &[Series]) -> String {
    let height = TOP + PLOT_HEIGHT + BOTTOM + LEGEND_ROW * series.len() as f64 + 8.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg class=\"chart\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{m} by epoch\" font-family=\"sans-serif\" font-size=\"12\">",
        m = escape(metric)
    );
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{}</text>",
        WIDTH / 2.0,
        escape(metric)
    );
    let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, TOP, TOP + PLOT_HEIGHT);
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.band.points.iter().flatten())
        .flat_map(|&(mean, lo, hi)| [mean, lo, hi])
        .filter(|v| v.is_finite())
        .collect();
    let epochs = series
        .iter()
        .map(|s| s.band.points.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let (Some(lo), Some(hi)) = (
        values.iter().copied().reduce(f64::min),
        values.iter().copied().reduce(f64::max),
    ) else {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no finite values</text>\n</svg>",
            WIDTH / 2.0,
            f64::midpoint(y0, y1)
        );
        return svg;
    };
    let (ylo, yhi, yticks) = ticks(lo, hi);
    let (xlo, xhi, xticks) = ticks(1.0, epochs as f64);
    let xticks: Vec<f64> = xticks
        .into_iter()
        .filter(|t| t.fract() == 0.0 && *t >= 1.0)
        .collect();
    let px = |e: f64| x0 + (x1 - x0) * (e - xlo) / (xhi - xlo);
    let py = |v: f64| y1 - (y1 - y0) * (v - ylo) / (yhi - ylo);
    axes(&mut svg, (x0, x1, y0, y1), &xticks, &yticks, &px, &py);
    for (k, s) in series.iter().enumerate() {
        let (colour, dash) = style(k);
        let points: Vec<(f64, (f64, f64, f64))> = s
            .band
            .points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.map(|p| ((i + 1) as f64, p)))
            .collect();
        if points.len() > 1 {
            let upper = points
                .iter()
                .map(|(e, (_, _, h))| format!("{:.1},{:.1}", px(*e), py(*h)));
            let lower = points
                .iter()
                .rev()
                .map(|(e, (_, l, _))| format!("{:.1},{:.1}", px(*e), py(*l)));
            let outline: Vec<String> = upper.chain(lower).collect();
            let _ = writeln!(
                svg,
                "<polygon class=\"band\" fill=\"{colour}\" fill-opacity=\"0.15\" stroke=\"none\" points=\"{}\"/>",
                outline.join(" ")
            );
        }
        let line: Vec<String> = points
            .iter()
            .map(|(e, (m, _, _))| format!("{:.1},{:.1}", px(*e), py(*m)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline class=\"mean\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"{dash}\" points=\"{}\"/>",
            line.join(" ")
        );
        for (e, (m, l, h)) in &points {
            let _ = writeln!(
                svg,
                "<line stroke=\"{colour}\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><circle fill=\"{colour}\" r=\"3\" cx=\"{x:.1}\" cy=\"{:.1}\"/>",
                py(*l),
                py(*h),
                py(*m),
                x = px(*e)
            );
        }
        let ly = y1 + BOTTOM + LEGEND_ROW * k as f64;
        let _ = writeln!(
            svg,
            "<g class=\"legend\"><line x1=\"{x0}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"3\" stroke-dasharray=\"{dash}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text></g>",
            x0 + 24.0,
            x0 + 30.0,
            ly + 4.0,
            escape(s.label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The frame, grid lines, tick labels and axis titles.
fn axes(
    svg: &mut String,
    (x0, x1, y0, y1): (f64, f64, f64, f64),
    xticks: &[f64],
    yticks: &[f64],
    px: &dyn Fn(f64) -> f64,
    py: &dyn Fn(f64) -> f64,
) {
    let ystep = match yticks {
        [a, b, ..] => b - a,
        _ => 1.0,
    };
    for &t in yticks {
        let y = py(t);
        let _ = writeln!(
            svg,
            "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            x0 - 6.0,
            y + 4.0,
            tick_label(t, ystep)
        );
    }
    for &t in xticks {
        let x = px(t);
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y1}\" y2=\"{:.1}\" stroke=\"#444\"/>\
             <text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            y1 + 5.0,
            y1 + 18.0,
            tick_label(t, 1.0)
        );
    }
    let _ = writeln!(
        svg,
        "<rect x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">epoch</text>",
        x1 - x0,
        y1 - y0,
        f64::midpoint(x0, x1),
        y1 + 34.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (lo, hi, marks) = ticks(0.23, 0.91);
        assert_eq!(marks.len(), 9, "{marks:?}");
        assert!(
            (lo - 0.2).abs() < 1e-12 && (hi - 1.0).abs() < 1e-12,
            "{lo} {hi}"
        );
        assert_eq!(tick_label(marks[1], 0.1), "0.3");
        let (lo, hi, marks) = ticks(1.0, 12.0);
        assert_eq!((lo, hi), (0.0, 12.0));
        assert_eq!(marks, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]);
        // A flat series still gets a range around it.
        let (lo, hi, _) = ticks(0.5, 0.5);
        assert!(lo < 0.5 && hi > 0.5);
    }
}
