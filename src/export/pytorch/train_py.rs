//! `train.py` (the train block's settings as constants over the fixed loop of
//! `train_body.py`: DDP under torchrun, modelc's loss definitions, schedule, clipping, metrics,
//! early stopping, checkpoint and resume, `metrics.csv` and `weights.safetensors` in modelc's
//! formats) and the package's `README.md`.

use super::{py_name, TorchError, TorchInputs};
use crate::check::train_types::{ClassWeight, LossKind};
use crate::check::{CheckedTrain, Metric, MonitorMode, OptimizerKind, Schedule, Target};
use crate::ops::dense::py_bool;
use crate::ops::torch::float;
use std::fmt::Write;

const PARTS: &str = include_str!("train_parts.py");
const BODY: &str = include_str!("train_body.py");

/// What `train_body.py` and `data.py` do not implement, as E1201s at the train block.
fn unsupported(inputs: &TorchInputs<'_>) -> Vec<TorchError> {
    let t = inputs.train;
    let mut errors = Vec::new();
    if !t.outputs.is_empty() {
        errors.push(TorchError {
            what: "a model with several outputs".into(),
            why: "model.py returns one tensor and train.py takes one loss; per-output losses \
                  and `loss_weights` are not written yet"
                .into(),
            span: t.span,
        });
    }
    if t.target == Target::Inputs {
        errors.push(TorchError {
            what: "the `target inputs` setting".into(),
            why: "train.py compares the output with the labels; an autoencoder's loop is not \
                  written yet"
                .into(),
            span: t.span,
        });
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

/// The `SCHEDULE` list: the chain's links in order, each with the epochs it lasts (`None`: to
/// the end of the run); a cosine without `epochs:` decays over the epochs the links before it
/// leave of the spec's epochs, as `fit::setup::schedule`.
fn schedule(t: &CheckedTrain) -> String {
    let mut links = Vec::new();
    let mut before = 0u64;
    for link in &t.schedule {
        let left = t.epochs.saturating_sub(before);
        let lasts = link.epochs().map_or("None".into(), |e| e.to_string());
        links.push(match link {
            Schedule::Step { every, factor } => format!(
                "{{\"kind\": \"step\", \"epochs\": {lasts}, \"every\": {every}, \"factor\": {}}}",
                float(*factor)
            ),
            Schedule::Exponential { rate, every } => format!(
                "{{\"kind\": \"exponential\", \"epochs\": {lasts}, \"rate\": {}, \"every\": {every}}}",
                float(*rate)
            ),
            Schedule::Cosine { epochs, min_lr } => format!(
                "{{\"kind\": \"cosine\", \"epochs\": {lasts}, \"decay\": {}, \"min_lr\": {}}}",
                epochs.unwrap_or(left),
                float(*min_lr)
            ),
            Schedule::Warmup { epochs } => {
                format!("{{\"kind\": \"warmup\", \"epochs\": {epochs}}}")
            }
            Schedule::ReduceOnPlateau(p) => format!(
                "{{\"kind\": \"plateau\", \"epochs\": None, \"monitor\": \"{}\", \"factor\": {}, \"patience\": {}, \"min_delta\": {}, \"min_lr\": {}, \"cooldown\": {}, \"mode\": \"{}\"}}",
                p.monitor,
                float(p.factor),
                p.patience,
                float(p.min_delta),
                float(p.min_lr),
                p.cooldown,
                mode(p.mode)
            ),
        });
        before = before.saturating_add(link.epochs().unwrap_or(0));
    }
    if links.is_empty() {
        return "[]".into();
    }
    format!("[\n    {},\n]", links.join(",\n    "))
}

fn mode(m: MonitorMode) -> &'static str {
    if m == MonitorMode::Min {
        "min"
    } else {
        "max"
    }
}

/// `CLASS_WEIGHT`: the list, `"balanced"` or `None`.
fn class_weight(w: Option<&ClassWeight>) -> String {
    match w {
        None => "None".into(),
        Some(ClassWeight::Balanced) => "\"balanced\"".into(),
        Some(ClassWeight::Given(v)) => {
            let items: Vec<String> = v.iter().map(|x| float(*x)).collect();
            format!("[{}]", items.join(", "))
        }
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
        "import argparse\nimport json\nimport math\nimport os\nimport sys\nimport time\n\n\
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
        "SCHEDULE = {}  # links in sequence, epochs counted in steps as modelc",
        schedule(t)
    );
    let metrics: Vec<String> = t
        .metrics
        .iter()
        .map(|m| format!("\"{}\"", m.name()))
        .collect();
    let _ = writeln!(s, "METRICS = [{}]", metrics.join(", "));
    let binary = t.loss.kind == LossKind::BinaryCrossentropy;
    let _ = writeln!(
        s,
        "BINARY = {}  # precision, recall, f1 and auc of the positive class (else macro)",
        py_bool(binary)
    );
    let threshold = if binary && t.loss.from_logits {
        "0.0"
    } else {
        "0.5"
    };
    let _ = writeln!(
        s,
        "THRESHOLD = {threshold}  # binary decisions: output > THRESHOLD"
    );
    let k = t.metrics.iter().find_map(|m| match m {
        Metric::TopKAccuracy { k } => Some(*k),
        _ => None,
    });
    let _ = writeln!(s, "TOP_K = {}", k.unwrap_or(5));
    let _ = writeln!(
        s,
        "CLASS_WEIGHT = {}  # training loss only",
        class_weight(t.class_weight.as_ref())
    );
    match &t.early_stopping {
        None => s.push_str("EARLY_STOPPING = None\n"),
        Some(e) => {
            let _ = writeln!(
                s,
                "EARLY_STOPPING = {{\"monitor\": \"{}\", \"patience\": {}, \"min_delta\": {}, \"mode\": \"{}\", \"restore_best\": {}}}",
                e.monitor,
                e.patience,
                float(e.min_delta),
                mode(e.mode),
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
    s.push_str(PARTS);
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
         `--epochs N` overrides the spec's epochs, `--init W.safetensors` starts from modelc's weights,\n\
         `--threads N` sets torch's threads per process. Rerunning with the same `--out` resumes from\n\
         `run/checkpoint.pt` (`--fresh` starts over). `python train.py --init W.safetensors --evaluate\n\
         validation` prints the loss and metrics of weights on a split (`train`, `validation`, `test`) as\n\
         JSON, as `modelc eval --format json` does.\n\n\
         The spec's data paths are read from `data.DATA_ROOT`: the spec's folder as seen from this\n\
         package's folder when the two share a folder below `/` (so `train.py` runs from any working\n\
         folder, and the package can move together with the data), else its absolute path at export\n\
         time. `--data-root R` reads them from `R` instead (e.g. on another machine).\n\n\
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
