//! `train.py` (the train block's settings as constants over the fixed loop of
//! `train_body.py`: DDP under torchrun, modelc's loss definitions, schedule, clipping, metrics,
//! early stopping, checkpoint and resume, `metrics.csv` and `weights.safetensors` in modelc's
//! formats) and the package's `README.md`.

use super::{py_name, TorchError, TorchInputs};
use crate::check::{Metric, MonitorMode, OptimizerKind, Schedule, Target};
use crate::ops::dense::py_bool;
use crate::ops::torch::float;
use std::fmt::Write;

const BODY: &str = include_str!("train_body.py");

/// What `train_body.py` and `data.py` do not implement yet, as E1201s at the train block.
fn unsupported(inputs: &TorchInputs<'_>) -> Vec<TorchError> {
    let t = inputs.train;
    let refuse = |what: &str, why: &str| TorchError {
        what: what.to_string(),
        why: why.to_string(),
        span: t.span,
    };
    let mut errors = Vec::new();
    let chain = t.schedule.len() > 1;
    if chain
        || t.schedule
            .iter()
            .any(|s| matches!(s, Schedule::ReduceOnPlateau(_)))
    {
        errors.push(refuse(
            "the `schedule` setting",
            "train.py runs one schedule (step, exponential, cosine or warmup); chains and \
             reduce_on_plateau are not written yet",
        ));
    }
    for m in &t.metrics {
        if !matches!(m, Metric::Accuracy | Metric::Mae | Metric::Mse) {
            errors.push(refuse(
                &format!("metric `{}`", m.name()),
                "train.py computes accuracy, mae and mse; the class metrics are not written yet",
            ));
        }
    }
    if t.target == Target::Inputs {
        errors.push(refuse(
            "the `target inputs` setting",
            "train.py compares the output with the labels; an autoencoder's loop is not written yet",
        ));
    }
    if t.class_weight.is_some() {
        errors.push(refuse(
            "the `class_weight` setting",
            "train.py does not weight the loss by class yet",
        ));
    }
    if let Some(split) = &inputs.pipeline.split {
        if split.test > 0.0 || split.stratify {
            errors.push(refuse(
                "the data block's `split test:`/`stratify:`",
                "data.py splits as modelc does for `validation:` alone",
            ));
        }
    }
    errors
}

fn optimizer(kind: OptimizerKind) -> String {
    match kind {
        OptimizerKind::Gd => "(\"gd\", {})".into(),
        OptimizerKind::Sgd { momentum, nesterov } => format!(
            "(\"sgd\", {{\"momentum\": {}, \"nesterov\": {}}})",
            float(momentum),
            py_bool(nesterov)
        ),
        OptimizerKind::Adam {
            beta1,
            beta2,
            epsilon,
        }
        | OptimizerKind::AdamW {
            beta1,
            beta2,
            epsilon,
        } => format!(
            "(\"{}\", {{\"beta1\": {}, \"beta2\": {}, \"epsilon\": {}}})",
            if matches!(kind, OptimizerKind::Adam { .. }) {
                "adam"
            } else {
                "adamw"
            },
            float(beta1),
            float(beta2),
            float(epsilon)
        ),
        OptimizerKind::RmsProp {
            rho,
            momentum,
            centered,
            epsilon,
        } => format!(
            "(\"rmsprop\", {{\"rho\": {}, \"momentum\": {}, \"centered\": {}, \"epsilon\": {}}})",
            float(rho),
            float(momentum),
            py_bool(centered),
            float(epsilon)
        ),
    }
}

fn schedule(s: Option<&Schedule>) -> String {
    match s.cloned() {
        None => "None".into(),
        Some(Schedule::Step { every, factor }) => format!("(\"step\", {every}, {})", float(factor)),
        Some(Schedule::Exponential { rate, every }) => {
            format!("(\"exponential\", {}, {every})", float(rate))
        }
        Some(Schedule::Cosine { epochs, min_lr }) => format!(
            "(\"cosine\", {}, {})",
            epochs.map_or("None".into(), |e| e.to_string()),
            float(min_lr)
        ),
        Some(Schedule::Warmup { epochs }) => format!("(\"warmup\", {epochs})"),
        // Refused by `unsupported` before any text is written.
        Some(Schedule::ReduceOnPlateau(_)) => "None".into(),
    }
}

fn opt_float(v: Option<f64>) -> String {
    v.map_or("None".into(), float)
}

/// The text of `train.py`, or what it cannot express.
pub fn render(inputs: &TorchInputs<'_>) -> Result<String, Vec<TorchError>> {
    let errors = unsupported(inputs);
    if !errors.is_empty() {
        return Err(errors);
    }
    let t = inputs.train;
    let mut s = format!(
        "\"\"\"Trains `{}` as the `{}` train block of {} says, under torchrun (DDP).\n\n\
         Exported by modelc {}. Run: torchrun --nproc_per_node=K train.py [--epochs N] [--out OUT]\n\
         [--data-root R] [--device cpu|cuda]. Rank 0 writes OUT/weights.safetensors (modelc's names\n\
         and layouts) and OUT/metrics.csv (modelc's columns); OUT/checkpoint.pt resumes a run.\n\"\"\"\n\n",
        t.model,
        t.name,
        inputs.spec_name,
        env!("CARGO_PKG_VERSION")
    );
    s.push_str(
        "import argparse\nimport math\nimport os\nimport sys\nimport time\n\n\
         import numpy as np\nimport torch\nimport torch.distributed as dist\n\
         import torch.nn.functional as F\nfrom torch.nn.parallel import DistributedDataParallel as DDP\n\
         from torch.utils.data import DataLoader\n\n\
         sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\n\
         import data  # noqa: E402\n",
    );
    let _ = writeln!(
        s,
        "from model import {} as Model  # noqa: E402\n",
        py_name(&t.model)
    );
    s.push_str("# ---- the spec's train block ----\n");
    let (line, text) = super::line_of(inputs.spec_text, t.span.start);
    let _ = writeln!(s, "# line {line}: {text}");
    let _ = writeln!(s, "EPOCHS = {}", t.epochs);
    let _ = writeln!(s, "LOSS = \"{}\"", t.loss.kind.name());
    let _ = writeln!(s, "FROM_LOGITS = {}", py_bool(t.loss.from_logits));
    let _ = writeln!(s, "DELTA = {}", float(t.loss.delta));
    let _ = writeln!(s, "LABEL_SMOOTHING = {}", float(t.loss.label_smoothing));
    let c = t.optimizer.common;
    let _ = writeln!(s, "OPTIMIZER = {}", optimizer(t.optimizer.kind));
    let _ = writeln!(s, "LR = {}", float(c.lr));
    let _ = writeln!(s, "WEIGHT_DECAY = {}", float(c.weight_decay));
    let _ = writeln!(
        s,
        "CLIPNORM = {}  # of all gradients together",
        opt_float(c.clipnorm)
    );
    let _ = writeln!(s, "CLIPVALUE = {}", opt_float(c.clipvalue));
    let _ = writeln!(
        s,
        "SCHEDULE = {}  # epochs counted in steps, as modelc",
        schedule(t.schedule.first())
    );
    let metrics: Vec<String> = t
        .metrics
        .iter()
        .map(|m| format!("\"{}\"", m.name()))
        .collect();
    let _ = writeln!(s, "METRICS = [{}]", metrics.join(", "));
    match &t.early_stopping {
        None => s.push_str("EARLY_STOPPING = None\n"),
        Some(e) => {
            let _ = writeln!(
                s,
                "EARLY_STOPPING = {{\"monitor\": \"{}\", \"patience\": {}, \"min_delta\": {}, \"mode\": \"{}\", \"restore_best\": {}}}",
                e.monitor,
                e.patience,
                float(e.min_delta),
                if e.mode == MonitorMode::Min { "min" } else { "max" },
                py_bool(e.restore_best)
            );
        }
    }
    let _ = writeln!(s, "SEED = {}", t.seed);
    let _ = writeln!(s, "CHECKPOINT_EVERY = {}", t.checkpoint_every.unwrap_or(1));
    let _ = writeln!(
        s,
        "INIT = {}  # `init` of the train block, relative to the data root",
        t.init.as_ref().map_or("None".into(), |p| format!(
            "os.path.join(data.DATA_ROOT, {p:?})"
        ))
    );
    s.push_str("\n\n");
    s.push_str(BODY);
    Ok(s)
}

/// The text of `README.md`.
pub fn readme(inputs: &TorchInputs<'_>, synthetic: bool) -> String {
    let t = inputs.train;
    let mut s = format!(
        "# {} — PyTorch training package\n\n\
         Exported by modelc {} from `{}` (model `{}`, data `{}`, train block `{}`).\n\
         Needs Python with `torch`, `numpy` and `safetensors` only.\n\n",
        t.model,
        env!("CARGO_PKG_VERSION"),
        inputs.spec_name,
        t.model,
        t.data,
        t.name
    );
    s.push_str(
        "| file | what |\n|---|---|\n\
         | `model.py` | the model as an `nn.Module`, one line per spec layer; `load_weights`/`save_weights` read and write modelc's safetensors |\n\
         | `data.py` | the data block as a `Dataset`: same source, `map` steps (statistics fitted on the training split), split, epoch order and augmentation draws as modelc |\n\
         | `train.py` | the train block under DistributedDataParallel |\n",
    );
    if synthetic {
        s.push_str("| `source_*.npy` | the synthetic source's samples, generated by modelc |\n");
    }
    s.push_str(
        "\n## One machine\n\n```sh\n\
         torchrun --nproc_per_node=2 train.py --out run            # CPU: gloo\n\
         torchrun --nproc_per_node=4 train.py --out run --device cuda  # one process per GPU: nccl\n\
         python train.py --out run                                  # one process, no torchrun\n```\n\n\
         `--epochs N` overrides the spec's epochs, `--data-root R` the folder the spec's data paths are\n\
         relative to, `--init W.safetensors` starts from modelc's weights. Rerunning with the same `--out`\n\
         resumes from `run/checkpoint.pt` (`--fresh` starts over).\n\n\
         ## Several machines\n\n```sh\n\
         torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --rdzv_backend=c10d \\\n    \
         --rdzv_endpoint=HOST:29400 train.py --device cuda --out run   # node_rank=1 on the other\n```\n\n\
         The spec's batch is the global batch: each of K processes takes `ceil(batch / K)` samples per step,\n\
         and the epoch order is modelc's, shared out round-robin.\n\n\
         ## Back to modelc\n\n\
         Rank 0 writes `run/weights.safetensors` (modelc's `LAYER.PARAM` names and Keras layouts) and\n\
         `run/metrics.csv` (modelc's columns):\n\n```sh\n",
    );
    let _ = writeln!(
        s,
        "modelc eval {spec} --weights run/weights.safetensors\n\
         modelc run {spec} --weights run/weights.safetensors --input x.npy\n\
         modelc compare run\n```\n\n\
         ## Differences from `modelc train`\n\n\
         - Initial weights: Keras's initializers drawn by numpy from the spec's seed (the same\n  \
           distributions, not the same numbers); pass `--init` to start from modelc's.\n\
         - Floating point: PyTorch's kernels sum in their own order; Adam's epsilon is applied as\n  \
           PyTorch does (after the bias correction), batch norm's running variance is unbiased.\n\
         - With K processes the split, epoch order and augmentation draws are modelc's; a last partial\n  \
           batch is padded by DistributedSampler with samples from the start of the epoch.",
        spec = inputs.spec_name
    );
    s
}
