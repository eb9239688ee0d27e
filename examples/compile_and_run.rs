//! Compiles a spec's model to an optimized inference plan, gives it fresh (seeded) weights and
//! runs it on a batch of zeros, printing the plan's pass log and the output's shape.
//!
//! `cargo run --example compile_and_run -- specs/seed_cnn.model`

use modelc::diag::FileId;
use modelc::passes::{Mode, PassOptions};
use modelc::runtime::interp::{Interpreter, TensorRef};
use modelc::runtime::weights::init_weights;
use modelc::syntax::{parse, Limits};
use ndarray::{ArrayD, IxDyn};
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: compile_and_run FILE.model");
        return ExitCode::from(2);
    };
    match run(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}

fn run(path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let parsed = parse(FileId::default(), &text, &Limits::default());
    let checked = modelc::check::check_file(FileId::default(), &parsed.file);
    if parsed.has_errors() || checked.has_errors() {
        return Err(format!("{path} has errors: run `modelc check {path}`"));
    }
    let model = checked.models.first().ok_or("the spec defines no model")?;
    let graph = modelc::ir::lower(model).map_err(|e| e.message)?;
    let hash = modelc::plan::spec_hash(text.as_bytes());
    let plan = modelc::plan::compile(graph, Mode::Infer, &PassOptions::default(), hash)
        .map_err(|e| e.to_string())?;
    for line in &plan.pass_log {
        println!("pass: {line}");
    }
    let weights = init_weights(&plan, 0).map_err(|e| e.to_string())?;
    let mut interp = Interpreter::new(&plan, weights).map_err(|e| e.to_string())?;
    // A batch of 2 zeros in the input's shape (symbols such as N become 2).
    let input = plan
        .values
        .get(*plan.inputs.first().ok_or("no input")? as usize)
        .ok_or("bad plan")?;
    let shape: Vec<usize> = input
        .fact
        .dims
        .iter()
        .map(|d| d.known().unwrap_or(2))
        .collect();
    let outputs = if input.fact.dtype == modelc::ir::DType::F32 {
        let x = ArrayD::<f32>::zeros(IxDyn(&shape));
        interp.run(&[TensorRef::F32(x.view())])
    } else {
        let x = ArrayD::<i32>::zeros(IxDyn(&shape));
        interp.run(&[TensorRef::I32(x.view())])
    }
    .map_err(|e| e.to_string())?;
    for out in &outputs {
        println!(
            "output shape {:?}, first row {:?}",
            out.shape(),
            out.iter().take(4).collect::<Vec<_>>()
        );
    }
    Ok(())
}
