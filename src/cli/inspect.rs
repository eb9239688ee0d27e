//! `modelc inspect PLAN.ron [--batch B] [--format json]`: a plan, readably.
//!
//! Input: a plan file (untrusted: validated on load, E070x and exit 1 when it is malformed;
//! E0900 and exit 2 when it cannot be read) or a `.model` spec, compiled now for inference.
//! Output on stdout: the model, mode, generator and spec hash; what `modelc run` takes (the raw
//! input, the pipeline's steps, the model input: one rule for plans from `train`, `compile` and
//! `.model` files alike, see `run_input`); the inputs and outputs with their facts; one line per step (name, op, input names → output fact, buffer, `in-place` /
//! `view` markers); the parameter table; the buffer table; the memory figures (peak activation
//! bytes per sample and for a batch, next to one buffer per value); the pass log. With
//! `--format json`, one JSON object with the same content.

use super::common::{diag_format, load_plan, report};
use super::options::{ColorWhen, SummaryFormat};
use super::output::Output;
use super::run_input::input_rule;
use crate::diag::{human_bytes, SourceMap};
use crate::ir::ParamSource;
use crate::passes::Mode;
use crate::plan::ExecutionPlan;
use clap::Args;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A plan (`modelc compile -o PLAN.ron`), or a `.model` spec compiled now for inference.
    #[arg(value_name = "PLAN.ron")]
    pub file: PathBuf,
    /// The batch size the memory figures are given for.
    #[arg(long, value_name = "B", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// The model to compile, when a `.model` file defines several.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Human)]
    pub format: SummaryFormat,
}

/// Runs `inspect`; returns the exit status.
pub fn run(args: &InspectArgs, color: ColorWhen) -> u8 {
    let out = Output::new(color, diag_format(args.format));
    let mut map = SourceMap::new();
    let plan = match load_plan(&mut map, &args.file, args.model.as_deref(), Mode::Infer) {
        Ok(l) => {
            let mut plan = l.plan;
            if let Some(p) = &l.pipeline {
                super::run_input::attach(&mut plan, p);
            }
            plan
        }
        Err(diags) => return report(&out, &map, diags),
    };
    let text = match args.format {
        SummaryFormat::Human => render_human(&plan, args.batch),
        SummaryFormat::Json => format!("{}\n", render_json(&plan, args.batch)),
    };
    Output::stdout(&text);
    0
}

fn value_name(plan: &ExecutionPlan, v: u32) -> String {
    plan.values
        .get(v as usize)
        .map_or_else(|| format!("#{v}"), |p| p.name.clone())
}

fn value_fact(plan: &ExecutionPlan, v: u32) -> String {
    plan.values
        .get(v as usize)
        .map_or_else(|| "?".to_string(), |p| p.fact.to_string())
}

fn buffer_of(plan: &ExecutionPlan, v: u32) -> Option<u32> {
    plan.values.get(v as usize).map(|p| p.buffer)
}

/// `in-place`, `view` (shares its input's buffer without computing), `fused` (a conv run with
/// the pool after it), or nothing.
fn marker(plan: &ExecutionPlan, step: &crate::plan::Step) -> &'static str {
    if step.in_place {
        "in-place"
    } else if step.fused_with_next {
        "fused"
    } else if step.op.is_view()
        && step
            .inputs
            .first()
            .is_some_and(|&i| buffer_of(plan, i) == buffer_of(plan, step.output))
    {
        "view"
    } else {
        ""
    }
}

fn param_kind(p: &crate::ir::Param) -> &'static str {
    match (&p.source, p.trainable) {
        (ParamSource::Derived(_), _) => "derived",
        (ParamSource::Stored, true) => "stored",
        (ParamSource::Stored, false) => "state",
    }
}

/// Exact bytes, with binary units beside them from 1 KiB on.
fn exact_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else {
        format!("{bytes} bytes ({})", human_bytes(bytes))
    }
}

fn render_human(plan: &ExecutionPlan, batch: u64) -> String {
    let mut t = String::new();
    let mode = match plan.mode {
        Mode::Infer => "inference",
        Mode::Train => "training",
    };
    let _ = writeln!(t, "model      {}", plan.model);
    let _ = writeln!(t, "mode       {mode}");
    let _ = writeln!(
        t,
        "generator  {} (format {})",
        plan.generator, plan.format_version
    );
    let _ = writeln!(t, "spec hash  {}", plan.spec_hash);
    let rule = input_rule(plan);
    let _ = writeln!(
        t,
        "\nrun input (raw data; `modelc run --model-input` skips the steps):"
    );
    let _ = writeln!(t, "  raw input      {}", rule.raw);
    if let Some(source) = &rule.source {
        let _ = writeln!(t, "  read as        {source}");
    }
    if rule.steps.is_empty() {
        let _ = writeln!(t, "  preprocessing  none");
    }
    for (i, step) in rule.steps.iter().enumerate() {
        let title = if i == 0 { "preprocessing" } else { "" };
        let _ = writeln!(t, "  {title:<14} {}. {step}", i + 1);
    }
    let _ = writeln!(t, "  model input    {}", rule.model);
    for (title, list) in [("inputs", &plan.inputs), ("outputs", &plan.outputs)] {
        let _ = writeln!(t, "\n{title}:");
        for &v in list {
            let _ = writeln!(t, "  {:<20} {}", value_name(plan, v), value_fact(plan, v));
        }
    }
    let _ = writeln!(t, "\nsteps ({}):", plan.steps.len());
    let width = plan.steps.iter().map(|s| s.name.len()).max().unwrap_or(4);
    let unstored = plan.unstored_values();
    for (i, s) in plan.steps.iter().enumerate() {
        let inputs: Vec<String> = s.inputs.iter().map(|&v| value_name(plan, v)).collect();
        let buffer = if unstored.get(s.output as usize).copied().unwrap_or(false) {
            "tile".to_string()
        } else {
            buffer_of(plan, s.output).map_or_else(|| "?".into(), |b| format!("b{b}"))
        };
        let line = format!(
            "  {i:>3} {:<width$} {:<18} {} → {}  [{buffer}] {}",
            s.name,
            s.op.kind(),
            inputs.join(", "),
            value_fact(plan, s.output),
            marker(plan, s)
        );
        let _ = writeln!(t, "{}", line.trim_end());
    }
    let total: usize = plan.params.iter().map(crate::ir::Param::elements).sum();
    let _ = writeln!(t, "\nparameters ({}, {total} values):", plan.params.len());
    let width = plan.params.iter().map(|p| p.name.len()).max().unwrap_or(4);
    for p in &plan.params {
        let _ = writeln!(
            t,
            "  {:<width$} {:<20} {:<8} {:>10}",
            p.name,
            format!("{:?}", p.shape),
            param_kind(p),
            p.elements()
        );
    }
    let _ = writeln!(t, "\nbuffers ({}):", plan.buffers.len());
    let mut users: Vec<Vec<&str>> = vec![Vec::new(); plan.buffers.len()];
    for (v, _) in plan.values.iter().zip(&unstored).filter(|(_, &u)| !u) {
        if let Some(list) = users.get_mut(v.buffer as usize) {
            list.push(v.name.as_str());
        }
    }
    for (b, (spec, users)) in plan.buffers.iter().zip(&users).enumerate() {
        let _ = writeln!(
            t,
            "  b{b:<3} {:>10} per sample  {}",
            human_bytes(spec.bytes_per_sample),
            users.join(", ")
        );
    }
    let m = &plan.memory;
    let _ = writeln!(t, "\nmemory (activations):");
    let _ = writeln!(
        t,
        "  planned:               {} per sample, {} for batch {batch}",
        exact_bytes(m.peak_bytes_per_sample),
        exact_bytes(m.peak_bytes_per_sample.saturating_mul(batch))
    );
    let _ = writeln!(
        t,
        "  one buffer per value:  {} per sample, {} for batch {batch}",
        exact_bytes(m.one_buffer_per_value_bytes_per_sample),
        exact_bytes(
            m.one_buffer_per_value_bytes_per_sample
                .saturating_mul(batch)
        )
    );
    if m.scratch_bytes_per_thread > 0 {
        let _ = writeln!(
            t,
            "  scratch (fused steps): {} per thread; buffers and scratch on 2 threads: {} for batch {batch}",
            exact_bytes(m.scratch_bytes_per_thread),
            exact_bytes(m.total_bytes(batch, 2))
        );
    }
    let _ = writeln!(t, "  {} in-place step(s), {} view(s)", m.in_place, m.views);
    let _ = writeln!(t, "\npass log:");
    if plan.pass_log.is_empty() {
        let _ = writeln!(t, "  (no pass changed anything)");
    }
    for line in &plan.pass_log {
        let _ = writeln!(t, "  - {line}");
    }
    t
}

fn render_json(plan: &ExecutionPlan, batch: u64) -> serde_json::Value {
    let signature = |list: &[u32]| -> Vec<serde_json::Value> {
        list.iter()
            .map(|&v| serde_json::json!({"name": value_name(plan, v), "fact": value_fact(plan, v)}))
            .collect()
    };
    let steps: Vec<serde_json::Value> = plan
        .steps
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "op": s.op.kind(),
                "inputs": s.inputs.iter().map(|&v| value_name(plan, v)).collect::<Vec<_>>(),
                "output": value_fact(plan, s.output),
                "buffer": buffer_of(plan, s.output),
                "in_place": s.in_place,
                "view": marker(plan, s) == "view",
            })
        })
        .collect();
    let params: Vec<serde_json::Value> = plan
        .params
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name, "shape": p.shape, "kind": param_kind(p), "count": p.elements()
            })
        })
        .collect();
    let m = &plan.memory;
    let rule = input_rule(plan);
    serde_json::json!({
        "model": plan.model,
        "mode": plan.mode,
        "generator": plan.generator,
        "format_version": plan.format_version,
        "spec_hash": plan.spec_hash,
        "run_input": {
            "raw": rule.raw,
            "source": rule.source,
            "preprocessing": rule.steps,
            "model": rule.model,
        },
        "inputs": signature(&plan.inputs),
        "outputs": signature(&plan.outputs),
        "steps": steps,
        "params": params,
        "param_count": plan.params.iter().map(crate::ir::Param::elements).sum::<usize>(),
        "buffers": plan.buffers.iter().map(|b| b.bytes_per_sample).collect::<Vec<_>>(),
        "memory": {
            "batch": batch,
            "peak_bytes_per_sample": m.peak_bytes_per_sample,
            "peak_bytes_batch": m.peak_bytes_per_sample.saturating_mul(batch),
            "one_buffer_per_value_bytes_per_sample": m.one_buffer_per_value_bytes_per_sample,
            "one_buffer_per_value_bytes_batch": m.one_buffer_per_value_bytes_per_sample.saturating_mul(batch),
            "scratch_bytes_per_thread": m.scratch_bytes_per_thread,
            "in_place": m.in_place,
            "views": m.views,
        },
        "pass_log": plan.pass_log,
    })
}
