//! `modelc export PLAN.ron|FILE.model --weights W.safetensors --to onnx -o model.onnx`: write a
//! model as an ONNX file that ONNX Runtime, TensorRT, Triton or onnxruntime-web can serve.
//!
//! Input: a plan file (validated as untrusted) or a `.model` spec (checked and compiled now,
//! inference mode, every pass), its weights (or `--random-weights SEED`), `--opset N` (13 to
//! 21, default 17). Output: the ONNX file, written atomically; `--to onnx-text` prints (or
//! writes) the graph's readable text form instead. A trained run's plan carries the data
//! pipeline's fitted preprocessing, which goes in front of the model unless
//! `--no-preprocessing`. Exit 0 on success, 1 when the spec, plan or weights are wrong or a
//! layer has no ONNX form (E1001, naming the layer and its line), 2 on usage and I/O errors.

use super::common::{diag_format, load_plan, read_bytes, report, same_file};
use super::options::{ColorWhen, SummaryFormat};
use super::output::Output;
use crate::diag::{codes, Diagnostic, SourceMap};
use crate::export::{self, ExportError, ExportOptions, DEFAULT_OPSET, OPSETS};
use crate::passes::Mode;
use crate::runtime::weights::{init_weights, load_weights};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// What `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// An ONNX model file (protobuf).
    Onnx,
    /// The ONNX graph as readable text (for reviews and bug reports).
    OnnxText,
    /// A PyTorch training package (model.py, data.py, train.py for torchrun) in the folder `-o`.
    Pytorch,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A plan (`modelc compile -o PLAN.ron`, or a trained run's `plan.ron`) or a `.model` spec.
    #[arg(value_name = "PLAN.ron|FILE.model")]
    pub file: PathBuf,
    /// The model to export, when a `.model` file defines several.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// The train block to export (`--to pytorch`), when the spec has several.
    #[arg(long, value_name = "NAME")]
    pub train: Option<String>,
    /// The weights (safetensors), as `modelc run` takes them.
    #[arg(long, value_name = "W.safetensors", conflicts_with = "random_weights")]
    pub weights: Option<PathBuf>,
    /// Export freshly initialized weights drawn from this seed instead of a weights file.
    #[arg(long, value_name = "SEED")]
    pub random_weights: Option<u64>,
    /// The format to write.
    #[arg(long, value_enum, default_value_t = Target::Onnx)]
    pub to: Target,
    /// Where to write it (atomically); `onnx-text` without it goes to stdout.
    #[arg(short, long, value_name = "model.onnx")]
    pub output: Option<PathBuf>,
    /// The ONNX opset to target (13 to 21).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_OPSET)]
    pub opset: i64,
    /// Leave the plan's fitted preprocessing out: the graph then takes what the model's
    /// declared input takes.
    #[arg(long)]
    pub no_preprocessing: bool,
    /// Output format for diagnostics and the summary line.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Human)]
    pub format: SummaryFormat,
}

/// Runs `export`; returns the exit status.
pub fn run(args: &ExportArgs, color: ColorWhen) -> u8 {
    let out = Output::new(color, diag_format(args.format));
    let mut map = SourceMap::new();
    match execute(args, &out, &mut map) {
        Ok(()) => 0,
        Err(diags) => report(&out, &map, diags),
    }
}

fn usage(message: String, help: &str) -> Vec<Diagnostic> {
    vec![Diagnostic::error(codes::IO_USAGE, message).help(help.to_string())]
}

fn execute(args: &ExportArgs, out: &Output, map: &mut SourceMap) -> Result<(), Vec<Diagnostic>> {
    if args.to == Target::Pytorch {
        return torch_package(args, out, map);
    }
    if !OPSETS.contains(&args.opset) {
        return Err(vec![ExportError::Opset(args.opset).to_diagnostic()]);
    }
    if args.weights.is_none() && args.random_weights.is_none() {
        return Err(usage(
            "`export` needs the model's weights".into(),
            "pass `--weights W.safetensors`, or `--random-weights SEED` to export fresh weights",
        ));
    }
    if args.to == Target::Onnx && args.output.is_none() {
        return Err(usage(
            "`--to onnx` writes a binary file and needs `-o`".into(),
            "name the file: `-o model.onnx` (or `--to onnx-text` to print the graph)",
        ));
    }
    if let Some(o) = &args.output {
        if let Some(clash) = args
            .weights
            .iter()
            .chain([&args.file])
            .find(|p| same_file(o, p))
        {
            return Err(vec![Diagnostic::error(
                codes::IO_SAME_PATH,
                format!(
                    "the output {} is also an input ({})",
                    o.display(),
                    clash.display()
                ),
            )
            .help("write the output to another path, e.g. `-o model.onnx`")]);
        }
    }
    let loaded = load_plan(map, &args.file, args.model.as_deref(), Mode::Infer)?;
    if loaded.plan.mode != Mode::Infer {
        return Err(usage(
            format!("{} is a training plan", args.file.display()),
            "export an inference plan: `modelc compile FILE -o plan.ron` (the default mode)",
        ));
    }
    let plan = loaded.plan;
    let weights = match (&args.weights, args.random_weights) {
        (Some(path), _) => load_weights(path, &plan)?,
        (None, seed) => init_weights(&plan, seed.unwrap_or(0))
            .map_err(|e| vec![e.to_diagnostic(&args.file.display().to_string())])?,
    };
    let spec_text = if loaded.layer_spans.is_empty() {
        None
    } else {
        let bytes = read_bytes(&args.file).map_err(|d| vec![d])?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    };
    let options = ExportOptions {
        opset: args.opset,
        preprocessing: !args.no_preprocessing,
        spec_text,
    };
    let located = |e: ExportError| {
        let d = e.to_diagnostic();
        let span = match &e {
            ExportError::Unsupported { layer, .. } => {
                let name = layer
                    .strip_prefix("layer `")
                    .and_then(|l| l.strip_suffix('`'));
                loaded
                    .layer_spans
                    .iter()
                    .find(|(n, _, _)| Some(n.as_str()) == name)
            }
            _ => None,
        };
        vec![match span {
            Some((_, file, span)) => d.primary(*file, *span, "this layer has no ONNX form"),
            None => d,
        }]
    };
    let model = export::build(&plan, &weights, &options).map_err(located)?;
    out.diagnostics(map, &loaded.warnings);
    let bytes = match args.to {
        Target::Onnx => export::encode_model(&model),
        Target::OnnxText | Target::Pytorch => export::text::render(&model).into_bytes(),
    };
    let Some(path) = &args.output else {
        Output::stdout(&String::from_utf8_lossy(&bytes));
        return Ok(());
    };
    crate::util::write_atomic(path, &bytes).map_err(|e| {
        vec![Diagnostic::error(
            codes::IO_WRITE,
            format!("cannot write {}: {e}", path.display()),
        )
        .at_external(path.display().to_string(), 0, 0)]
    })?;
    if args.format == SummaryFormat::Json {
        let json = serde_json::json!({
            "model": plan.model,
            "output": path.display().to_string(),
            "opset": args.opset,
            "bytes": bytes.len(),
            "nodes": model.graph.nodes.len(),
        });
        Output::stdout(&format!("{json}\n"));
    } else {
        out.status(
            "Exported",
            &format!(
                "{} → {} (ONNX opset {}, {} nodes, {} bytes)",
                plan.model,
                path.display(),
                args.opset,
                model.graph.nodes.len(),
                bytes.len()
            ),
        );
    }
    Ok(())
}

/// `--to pytorch`: checks the spec and writes the package's files into the folder `-o`.
fn torch_package(
    args: &ExportArgs,
    out: &Output,
    map: &mut SourceMap,
) -> Result<(), Vec<Diagnostic>> {
    let Some(dir) = &args.output else {
        return Err(usage(
            "`--to pytorch` writes a folder and needs `-o`".into(),
            "name the folder: `-o torch_pkg`",
        ));
    };
    if args.file.extension().is_none_or(|e| e != "model") {
        return Err(usage(
            format!(
                "`--to pytorch` exports a spec, and {} is not a `.model` file",
                args.file.display()
            ),
            "export the `.model` file the plan was compiled from",
        ));
    }
    if args.weights.is_some() || args.random_weights.is_some() {
        return Err(usage(
            "`--to pytorch` writes a training package, which takes no weights".into(),
            "leave out `--weights`; start training from them with `train.py --init W.safetensors`",
        ));
    }
    let limits = crate::syntax::Limits::default();
    let spec = super::source::load(map, &args.file, &limits).map_err(|d| vec![d])?;
    if spec.diagnostics.iter().any(Diagnostic::is_error) {
        return Err(spec.diagnostics);
    }
    let checked = crate::check::check_file(spec.file, &spec.ast);
    if checked.has_errors() {
        return Err(checked.diagnostics);
    }
    let pick = super::common::choose_train(
        &checked.trains,
        args.train.as_deref(),
        args.model.as_deref(),
    )
    .map_err(|d| vec![d])?;
    let (Some(model), Some(pipeline)) = (
        checked.models.iter().find(|m| m.name == pick.model),
        checked.pipelines.iter().find(|p| p.name == pick.data),
    ) else {
        return Err(vec![Diagnostic::error(
            codes::IO_USAGE,
            "the train block's model or data did not check",
        )]);
    };
    let text = String::from_utf8_lossy(&read_bytes(&args.file).map_err(|d| vec![d])?).into_owned();
    let spec_dir = args
        .file
        .parent()
        .unwrap_or(std::path::Path::new(""))
        .to_path_buf();
    let spec_name = args
        .file
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let data_root = export::pytorch::data_root(&spec_dir, dir);
    let inputs = export::pytorch::TorchInputs {
        model,
        train: pick,
        pipeline,
        spec_text: &text,
        spec_name: &spec_name,
        spec_dir: &spec_dir,
        data_root: &data_root,
        file: spec.file,
    };
    let files = export::pytorch::export(&inputs).map_err(|errors| {
        errors
            .iter()
            .map(|e| e.to_diagnostic(spec.file))
            .collect::<Vec<_>>()
    })?;
    let io = |p: &std::path::Path, e: std::io::Error| {
        vec![Diagnostic::error(
            codes::IO_WRITE,
            format!("cannot write {}: {e}", p.display()),
        )
        .at_external(p.display().to_string(), 0, 0)]
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    for (name, bytes) in &files {
        let path = dir.join(name);
        crate::util::write_atomic(&path, bytes).map_err(|e| io(&path, e))?;
    }
    out.status(
        "Exported",
        &format!(
            "{} ({} on {}) → {}/ ({} files: model.py, data.py, train.py, README.md{})",
            model.name,
            pick.name,
            pipeline.name,
            dir.display(),
            files.len(),
            if files.len() > 4 {
                ", the source's samples"
            } else {
                ""
            }
        ),
    );
    Ok(())
}
