//! The report: one self-contained HTML page (inline CSS and SVG, nothing fetched, no script)
//! with the winner, the ranked trials (the cells of `results.csv`, the winning configuration's
//! rows marked), the configurations' means and stds (the cells of `summary.csv`), a chart per
//! metric overlaying every configuration's curve, and the spec text. Every text is escaped.

use super::chart::{chart_svg, style, Series};
use super::stats::band;
use super::tables::{results_table, summary_table, winner_line, Table};
use super::{Comparison, TrialResult};
use std::fmt::Write as _;

/// Text made safe for HTML content and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}\
table{border-collapse:collapse;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em}\
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}\
tr.winner td{background:#e8f5e9;font-weight:bold}\
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.3em}\
.charts{display:flex;flex-wrap:wrap;gap:1em}pre{background:#f7f7f7;padding:1em;overflow:auto}\
p.winner{font-size:1.1em}";

/// The whole page. `title` heads it; `spec_text`, when given, is shown at the end.
pub fn report_html(c: &Comparison, title: &str, spec_text: Option<&str>) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"generator\" content=\"modelc\">\n<title>{t}</title>\n<style>{STYLE}</style>\n\
         </head>\n<body>\n<h1>{t}</h1>\n",
        t = escape(title)
    );
    let _ = writeln!(
        page,
        "<p class=\"winner\">{}</p>\n<p>{} trials in {} configurations, ranked by the {} {} \
         over each trial's epochs; marked rows belong to the winning configuration.</p>",
        escape(&winner_line(c)),
        c.trials.len(),
        c.configurations.len(),
        if c.goal == super::Goal::Min {
            "lowest"
        } else {
            "highest"
        },
        escape(&c.metric)
    );
    page.push_str("<h2>Trials</h2>\n");
    let winners: Vec<usize> = c.winning().map(|w| w.trials.clone()).unwrap_or_default();
    table_html(&mut page, "results", &results_table(c), |i| {
        winners.contains(&i)
    });
    page.push_str("<h2>Configurations (mean and std over repeats)</h2>\n");
    table_html(&mut page, "summary", &summary_table(c), |i| {
        c.winner == Some(i)
    });
    legend_html(&mut page, c);
    page.push_str(
        "<h2>Curves (mean over repeats; band and bars: min to max)</h2>\n<div class=\"charts\">\n",
    );
    for metric in &c.metrics {
        let series: Vec<Series> = c
            .configurations
            .iter()
            .map(|g| {
                let members: Vec<&TrialResult> =
                    g.trials.iter().filter_map(|&i| c.trials.get(i)).collect();
                Series {
                    label: &g.configuration,
                    band: band(&members, metric),
                }
            })
            .collect();
        page.push_str(&chart_svg(metric, &series));
    }
    page.push_str("</div>\n");
    if let Some(spec) = spec_text {
        let _ = writeln!(
            page,
            "<h2>Spec</h2>\n<pre id=\"spec\">{}</pre>",
            escape(spec)
        );
    }
    page.push_str("</body>\n</html>\n");
    page
}

/// A table: header cells, then rows (numbers right-aligned), rows `marked` given class `winner`.
fn table_html(page: &mut String, id: &str, table: &Table, marked: impl Fn(usize) -> bool) {
    let _ = writeln!(page, "<table id=\"{id}\">\n<thead><tr>");
    for h in &table.header {
        let _ = write!(page, "<th>{}</th>", escape(h));
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    for (i, row) in table.rows.iter().enumerate() {
        page.push_str(if marked(i) {
            "<tr class=\"winner\">"
        } else {
            "<tr>"
        });
        for cell in row {
            let numeric = !cell.is_empty() && cell.parse::<f64>().is_ok();
            let class = if numeric { " class=\"num\"" } else { "" };
            let _ = write!(page, "<td{class}>{}</td>", escape(cell));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody>\n</table>\n");
}

/// The configurations' colours, as the charts draw them.
fn legend_html(page: &mut String, c: &Comparison) {
    page.push_str("<p class=\"legend\">");
    for (k, g) in c.configurations.iter().enumerate() {
        let (colour, _) = style(k);
        let _ = write!(
            page,
            "<span class=\"swatch\" style=\"background:{colour}\"></span>{} &nbsp; ",
            escape(&g.configuration)
        );
    }
    page.push_str("</p>\n");
}
