//! The comparison as tables of text: the one table model of the trials (which `results.csv`,
//! the terminal table and the HTML report all print) and of the configurations
//! (`summary.csv`), and the JSON lines.

use super::{Comparison, ConfigSummary, Stat, TrialResult};
use serde_json::{json, Map, Value};

/// A table of text cells: a header and rows of as many cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// A metric value as the tables write it: six decimals as `metrics.csv` has them, `NaN`,
/// `inf`, or empty when not recorded.
pub(super) fn number(v: Option<f64>) -> String {
    match v {
        None => String::new(),
        Some(v) if v.is_nan() => "NaN".into(),
        Some(v) if v.is_infinite() => if v > 0.0 { "inf" } else { "-inf" }.into(),
        Some(v) => format!("{v:.6}"),
    }
}

fn seconds(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        String::new()
    }
}

fn setting<'a>(settings: &'a [(String, String)], name: &str) -> &'a str {
    settings
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// One row per trial, best first: rank, trial, configuration, each varied setting, seed,
/// epochs, best epoch, the final metrics, the metrics at the best epoch, seconds.
pub(super) fn results_table(c: &Comparison) -> Table {
    let mut header: Vec<String> = ["rank", "trial", "configuration"]
        .map(String::from)
        .to_vec();
    header.extend(c.settings.iter().cloned());
    header.extend(["seed", "epochs", "best_epoch"].map(String::from));
    header.extend(c.metrics.iter().map(|m| format!("final_{m}")));
    header.extend(c.metrics.iter().map(|m| format!("best_{m}")));
    header.push("seconds".into());
    let rows = c.trials.iter().map(|t| trial_row(c, t)).collect();
    Table { header, rows }
}

fn trial_row(c: &Comparison, t: &TrialResult) -> Vec<String> {
    let mut row = vec![
        t.rank.to_string(),
        t.info.name.clone(),
        t.info.configuration.clone(),
    ];
    row.extend(
        c.settings
            .iter()
            .map(|s| setting(&t.info.settings, s).to_string()),
    );
    row.push(t.info.seed.to_string());
    row.push(t.epochs.to_string());
    row.push(t.best_epoch.map(|e| e.to_string()).unwrap_or_default());
    row.extend(t.final_metrics.iter().map(|v| number(*v)));
    row.extend(t.best_metrics.iter().map(|v| number(*v)));
    row.push(seconds(t.info.seconds));
    row
}

/// One row per configuration, best mean first: rank, configuration, each varied setting, the
/// number of trials and their seeds, mean and std of the score (`best_METRIC`) and of each
/// final metric, mean seconds.
pub(super) fn summary_table(c: &Comparison) -> Table {
    let mut header: Vec<String> = ["rank", "configuration"].map(String::from).to_vec();
    header.extend(c.settings.iter().cloned());
    header.extend(["trials", "seeds"].map(String::from));
    header.push(format!("mean_best_{}", c.metric));
    header.push(format!("std_best_{}", c.metric));
    for m in &c.metrics {
        header.push(format!("mean_final_{m}"));
        header.push(format!("std_final_{m}"));
    }
    header.push("mean_seconds".into());
    let rows = c.configurations.iter().map(|g| summary_row(c, g)).collect();
    Table { header, rows }
}

fn stat_cells(s: &Stat) -> [String; 2] {
    let some = |v: f64| if s.n == 0 { None } else { Some(v) };
    [number(some(s.mean)), number(some(s.std))]
}

fn summary_row(c: &Comparison, g: &ConfigSummary) -> Vec<String> {
    let mut row = vec![g.rank.to_string(), g.configuration.clone()];
    row.extend(
        c.settings
            .iter()
            .map(|s| setting(&g.settings, s).to_string()),
    );
    row.push(g.trials.len().to_string());
    let seeds: Vec<String> = g.seeds.iter().map(u64::to_string).collect();
    row.push(seeds.join(" "));
    row.extend(stat_cells(&g.score));
    for s in &g.final_metrics {
        row.extend(stat_cells(s));
    }
    row.push(seconds(g.seconds.mean));
    row
}

/// A CSV cell, quoted when it holds a comma, a quote or a line break.
fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

fn csv(table: &Table) -> String {
    let mut out = String::new();
    for row in std::iter::once(&table.header).chain(&table.rows) {
        let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// `results.csv`: one row per trial, best first (see [`results_table`]'s columns).
pub fn results_csv(c: &Comparison) -> String {
    csv(&results_table(c))
}

/// `summary.csv`: one row per configuration, best mean first.
pub fn summary_csv(c: &Comparison) -> String {
    csv(&summary_table(c))
}

/// The ranked trials for a terminal: aligned columns (numbers to the right), the winning
/// configuration's trials marked `*`, then a line naming the winner. The metrics shown are
/// those at each trial's best epoch.
pub fn table_text(c: &Comparison) -> String {
    let full = results_table(c);
    let first_metric = 6 + c.settings.len();
    // rank, trial, the settings, seed, epochs, best epoch, then the best metrics and seconds.
    let keep: Vec<usize> = (0..full.header.len())
        .filter(|&k| k < 2 || (3..first_metric).contains(&k) || k >= first_metric + c.metrics.len())
        .collect();
    let winners: Vec<usize> = c.winning().map(|w| w.trials.clone()).unwrap_or_default();
    let mut lines: Vec<Vec<String>> = vec![std::iter::once(String::new())
        .chain(keep.iter().map(|&k| full.header[k].clone()))
        .collect()];
    for (i, row) in full.rows.iter().enumerate() {
        let mark = if winners.contains(&i) { "*" } else { "" };
        lines.push(
            std::iter::once(mark.to_string())
                .chain(keep.iter().map(|&k| row[k].clone()))
                .collect(),
        );
    }
    let numeric: Vec<bool> = (0..=keep.len())
        .map(|k| {
            k > 0
                && full.rows.iter().all(|r| {
                    let cell = &r[keep[k - 1]];
                    cell.is_empty() || cell.parse::<f64>().is_ok()
                })
        })
        .collect();
    let widths: Vec<usize> = (0..=keep.len())
        .map(|k| {
            lines
                .iter()
                .map(|l| l[k].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(k, cell)| {
                if numeric[k] {
                    format!("{cell:>w$}", w = widths[k])
                } else {
                    format!("{cell:<w$}", w = widths[k])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&winner_line(c));
    out.push('\n');
    out
}

/// `winner: adam (best val_loss 0.123456)`, or with repeats `winner: adam (best val_loss: mean
/// 0.123456, std 0.001000 over 2 trials)`.
pub(super) fn winner_line(c: &Comparison) -> String {
    match c.winning() {
        Some(w) if w.trials.len() > 1 => format!(
            "winner: {} (best {}: mean {}, std {} over {} trials)",
            w.configuration,
            c.metric,
            number(Some(w.score.mean)),
            number(Some(w.score.std)),
            w.trials.len()
        ),
        Some(w) => format!(
            "winner: {} (best {} {})",
            w.configuration,
            c.metric,
            number(Some(w.score.mean))
        ),
        None => format!("no winner: no run has a finite {}", c.metric),
    }
}

fn json_number(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

fn metric_map(names: &[String], values: impl Iterator<Item = Option<f64>>) -> Value {
    let map: Map<String, Value> = names
        .iter()
        .zip(values)
        .map(|(n, v)| (n.clone(), v.map_or(Value::Null, json_number)))
        .collect();
    Value::Object(map)
}

fn settings_map(settings: &[(String, String)]) -> Value {
    Value::Object(
        settings
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn stat_json(s: &Stat) -> Value {
    json!({"mean": json_number(s.mean), "std": json_number(s.std), "n": s.n})
}

/// One JSON object per trial (best first), then one with the summary:
/// `{"trial":..,"rank":..,"configuration":..,"settings":{..},"seed":..,"epochs":..,
/// "best_epoch":..,"final":{..},"best":{..},"seconds":..}` and `{"summary":[..],"select":
/// {"metric":..,"goal":..},"winner":..}`. Numbers that are not finite are `null`.
pub fn json_lines(c: &Comparison) -> String {
    let mut out = String::new();
    for t in &c.trials {
        let line = json!({
            "trial": t.info.name,
            "rank": t.rank,
            "configuration": t.info.configuration,
            "settings": settings_map(&t.info.settings),
            "seed": t.info.seed,
            "epochs": t.epochs,
            "best_epoch": t.best_epoch,
            "final": metric_map(&c.metrics, t.final_metrics.iter().copied()),
            "best": metric_map(&c.metrics, t.best_metrics.iter().copied()),
            "seconds": json_number(t.info.seconds),
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    let summary: Vec<Value> = c
        .configurations
        .iter()
        .map(|g| {
            let finals: Map<String, Value> = c
                .metrics
                .iter()
                .zip(&g.final_metrics)
                .map(|(m, s)| (m.clone(), stat_json(s)))
                .collect();
            json!({
                "rank": g.rank,
                "configuration": g.configuration,
                "settings": settings_map(&g.settings),
                "trials": g.trials.iter().filter_map(|&i| c.trials.get(i)).map(|t| t.info.name.clone()).collect::<Vec<_>>(),
                "seeds": g.seeds,
                "best": stat_json(&g.score),
                "final": finals,
                "seconds": stat_json(&g.seconds),
            })
        })
        .collect();
    let last = json!({
        "summary": summary,
        "select": {"metric": c.metric, "goal": c.goal.as_str()},
        "winner": c.winning().map(|w| w.configuration.clone()),
    });
    out.push_str(&last.to_string());
    out.push('\n');
    out
}
