//! `data.py`: the spec's data block as plain Python data (the source, the `map` and `augment`
//! steps, split, shuffle and batch) over the fixed helpers of `data_prelude.py` (modelc's
//! ChaCha8 streams, so the split, the epoch order and the augmentation draws are modelc's).
//!
//! A synthetic source (`regression`, `tokens`, `sine`) is generated here by modelc's own
//! generator and written beside `data.py` as `source_features.npy` / `source_labels.npy`, so
//! the samples are modelc's bit for bit. A series (`moving_average`, `window`) is split in
//! order, its statistics fitted on the rows the split keeps for training at that step, as
//! modelc does.

use super::{DataRoot, TorchError, TorchInputs};
use crate::data::samples::{Features, Labels};
use crate::data::spec::{Augment, ColumnRef, FeatureColumns, LabelRead, SourceKind, Transform};
use crate::ops::torch::float;
use std::fmt::Write;

const PRELUDE: &str = include_str!("data_prelude.py");

/// Files of the package besides the Python: (name, bytes).
type Files = Vec<(String, Vec<u8>)>;

fn py_str(s: &str) -> String {
    format!("{s:?}")
}

fn column(c: &ColumnRef) -> String {
    match c {
        ColumnRef::Name(n) => py_str(n),
        ColumnRef::Index(i) => i.to_string(),
    }
}

fn py_bool(b: bool) -> &'static str {
    crate::ops::dense::py_bool(b)
}

fn shape_tuple(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    format!("({},)", dims.join(", "))
}

/// The Python lines that read the source into `x, y`; and the files a synthetic source needs.
fn source(inputs: &TorchInputs<'_>) -> Result<(String, Files), TorchError> {
    let p = inputs.pipeline;
    let join = |path: &str| format!("os.path.join(root, {})", py_str(path));
    let labels_class = |r: LabelRead| matches!(r, LabelRead::Class { .. });
    Ok(match &p.source.kind {
        SourceKind::Csv(c) => {
            let features = match &c.features {
                FeatureColumns::AllButLabel { .. } => "None".to_string(),
                FeatureColumns::Listed(cols) => {
                    let cols: Vec<String> = cols.iter().map(column).collect();
                    format!("[{}]", cols.join(", "))
                }
            };
            let label = c.label.as_ref().map_or("None".into(), column);
            (
                format!(
                    "    x, y = read_csv({}, label={label}, label_class={}, features={features}, header={})\n",
                    join(&c.path),
                    py_bool(labels_class(c.label_read)),
                    py_bool(c.header)
                ),
                Vec::new(),
            )
        }
        SourceKind::Npy(n) => {
            let mut s = format!(
                "    x = np.load({}).astype(np.float32)\n",
                join(&n.features)
            );
            if let Some(shape) = &n.shape {
                let _ = writeln!(s, "    x = x.reshape((len(x),) + {})", shape_tuple(shape));
            }
            match &n.labels {
                Some(l) if labels_class(n.label_read) => {
                    let _ = writeln!(
                        s,
                        "    y = np.load({}).astype(np.int64).reshape(-1)",
                        join(l)
                    );
                }
                Some(l) => {
                    let _ = writeln!(
                        s,
                        "    y = np.load({}).astype(np.float32).reshape(len(x), -1)",
                        join(l)
                    );
                }
                None => s.push_str("    y = None\n"),
            }
            (s, Vec::new())
        }
        SourceKind::Idx(i) => {
            let mut s = format!("    x = read_idx({}).astype(np.float32)\n", join(&i.images));
            let shape = i
                .shape
                .as_ref()
                .map_or("x.shape[1:]".into(), |s| shape_tuple(s));
            let _ = writeln!(s, "    x = x.reshape((len(x),) + {shape})");
            match &i.labels {
                Some(l) => {
                    let _ = writeln!(
                        s,
                        "    y = read_idx({}).astype(np.int64).reshape(-1)",
                        join(l)
                    );
                }
                None => s.push_str("    y = None\n"),
            }
            (s, Vec::new())
        }
        SourceKind::Regression(_) | SourceKind::Tokens(_) | SourceKind::Sine(_) => {
            synthetic(inputs)?
        }
    })
}

/// Generates a synthetic source with modelc's generator and stores it as `.npy` files.
fn synthetic(inputs: &TorchInputs<'_>) -> Result<(String, Files), TorchError> {
    let p = inputs.pipeline;
    let fail = |why: String| TorchError {
        what: "the data source".into(),
        why,
        span: p.source.span,
    };
    let samples = crate::data::source::load(&p.source, inputs.spec_dir)
        .map_err(|d| fail(format!("generating it failed: {}", d.message)))?;
    let mut files = Vec::new();
    let mut s = String::new();
    let (shape, values, ints) = match &samples.features {
        Features::F32(a) => (
            a.shape().to_vec(),
            a.iter().copied().collect::<Vec<_>>(),
            false,
        ),
        Features::I64(a) => {
            if a.iter().any(|&v| v.unsigned_abs() > 1 << 24) {
                return Err(fail(
                    "token ids past 2^24 do not fit the f32 .npy file".into(),
                ));
            }
            (
                a.shape().to_vec(),
                a.iter().map(|&v| v as f32).collect(),
                true,
            )
        }
        // A source yields one tensor; groups are cut later (and refused by `export`).
        Features::Groups(_) => return Err(fail("input groups have no PyTorch form".into())),
    };
    files.push((
        "source_features.npy".to_string(),
        crate::data::npy::npy_bytes(&shape, &values),
    ));
    let _ = writeln!(
        s,
        "    x = np.load(os.path.join(HERE, \"source_features.npy\")){}",
        if ints { ".astype(np.int64)" } else { "" }
    );
    match &samples.labels {
        Labels::None => s.push_str("    y = None\n"),
        Labels::Class(ids) => {
            let v: Vec<f32> = ids.iter().map(|&i| i as f32).collect();
            files.push((
                "source_labels.npy".to_string(),
                crate::data::npy::npy_bytes(&[v.len()], &v),
            ));
            s.push_str(
                "    y = np.load(os.path.join(HERE, \"source_labels.npy\")).astype(np.int64)\n",
            );
        }
        Labels::Values(a) => {
            let v: Vec<f32> = a.iter().copied().collect();
            files.push((
                "source_labels.npy".to_string(),
                crate::data::npy::npy_bytes(a.shape(), &v),
            ));
            s.push_str("    y = np.load(os.path.join(HERE, \"source_labels.npy\"))\n");
        }
        // A model with several outputs is refused before its data is written.
        Labels::Outputs(_) => {
            return Err(fail("a label set per output has no PyTorch form".into()))
        }
    }
    Ok((s, files))
}

fn fitted(f: Option<&crate::data::spec::Fitted>) -> String {
    f.map_or("None".into(), |f| {
        let list = |v: &[f32]| {
            let items: Vec<String> = v.iter().map(|x| float(f64::from(*x))).collect();
            format!("np.array([{}], np.float32)", items.join(", "))
        };
        format!("({}, {})", list(&f.shift), list(&f.scale))
    })
}

/// The `MAP` table.
fn map_steps(inputs: &TorchInputs<'_>) -> String {
    let mut s = String::from("MAP = [\n");
    for step in &inputs.pipeline.preprocess {
        let item = match &step.op {
            Transform::Standardize { fitted: f } => {
                format!("(\"standardize\", {})", fitted(f.as_ref()))
            }
            Transform::Normalize { fitted: f } => {
                format!("(\"normalize\", {})", fitted(f.as_ref()))
            }
            Transform::Scale { factor, offset } => {
                format!("(\"scale\", {}, {})", float(*factor), float(*offset))
            }
            Transform::OneHot { classes } => format!(
                "(\"one_hot\", {})",
                classes.map_or("None".into(), |c| c.to_string())
            ),
            Transform::Reshape { shape } => format!("(\"reshape\", {})", shape_tuple(shape)),
            Transform::Resize { height, width } => format!("(\"resize\", {height}, {width})"),
            Transform::Pad { length, value } => format!("(\"pad\", {length}, {value})"),
            Transform::MovingAverage { window } => format!("(\"moving_average\", {window})"),
            Transform::Window { size, horizon } => format!("(\"window\", {size}, {horizon})"),
        };
        let (line, text) = super::line_of(inputs.spec_text, step.span.start);
        let _ = writeln!(s, "    {item},  # line {line}: {text}");
    }
    s.push_str("]\n");
    s
}

fn augment_steps(inputs: &TorchInputs<'_>) -> String {
    let mut s = String::from("AUGMENT = [\n");
    for step in &inputs.pipeline.augment {
        let item = match step.op {
            Augment::Flip {
                horizontal,
                vertical,
                p,
            } => format!(
                "(\"flip\", {}, {}, {})",
                py_bool(horizontal),
                py_bool(vertical),
                float(p)
            ),
            Augment::Rotate { degrees } => format!("(\"rotate\", {})", float(degrees)),
            Augment::Zoom { range } => format!("(\"zoom\", {})", float(range)),
            Augment::Crop { size, padding } => format!("(\"crop\", {size}, {padding})"),
            Augment::Noise { std } => format!("(\"noise\", {})", float(std)),
        };
        let (line, text) = super::line_of(inputs.spec_text, step.span.start);
        let _ = writeln!(s, "    {item},  # line {line}: {text}");
    }
    s.push_str("]\n");
    s
}

/// The text of `data.py` and the files it reads from the package's folder.
pub fn render(inputs: &TorchInputs<'_>) -> Result<(String, Files), Vec<TorchError>> {
    let p = inputs.pipeline;
    let (read, files) = source(inputs).map_err(|e| vec![e])?;
    let map = map_steps(inputs);
    let mut s = format!(
        "\"\"\"The `{}` data block of {} as a torch Dataset, exported by modelc {}.\n\n\
         The split, the epoch order (`shuffle`) and the augmentation draws use modelc's own random\n\
         streams (ChaCha8, re-implemented below), so they pick the same rows as `modelc train`.\n\
         Image arithmetic is numpy's float32: equal to modelc's up to rounding.\n\"\"\"\n\n",
        p.name,
        inputs.spec_name,
        env!("CARGO_PKG_VERSION")
    );
    s.push_str(PRELUDE);
    s.push_str("\n\n# ---- the spec's data block ----\n\n");
    let root = match inputs.data_root {
        DataRoot::Relative(r) => format!("os.path.normpath(os.path.join(HERE, {}))", py_str(r)),
        DataRoot::Absolute(a) => py_str(a),
    };
    let _ = writeln!(
        s,
        "# The folder the spec's data paths are relative to (its folder, seen from this package's\n\
         # folder when they share one, else absolute); `--data-root` in train.py overrides it.\n\
         DATA_ROOT = {root}"
    );
    s.push_str(&map);
    s.push_str(&augment_steps(inputs));
    let _ = writeln!(
        s,
        "SPLIT = {}",
        p.split.as_ref().map_or("None".into(), |sp| format!(
            "({}, {}, {}, {})  # validation, test, stratify, seed",
            float(sp.validation),
            float(sp.test),
            py_bool(sp.stratify),
            sp.seed
        ))
    );
    let _ = writeln!(
        s,
        "SHUFFLE_SEED = {}",
        p.shuffle
            .as_ref()
            .map_or("None".into(), |sh| sh.seed.to_string())
    );
    let _ = writeln!(
        s,
        "BATCH = {}  # samples per step over all processes (0: the whole training split)",
        if p.batch.is_all() { 0 } else { p.batch.size }
    );
    let _ = writeln!(s, "DROP_REMAINDER = {}", py_bool(p.batch.drop_remainder));
    let _ = writeln!(s, "PIPELINE_SEED = {}", p.seed);
    let _ = writeln!(
        s,
        "ORDERED = {}  # a series: the validation split is its last samples",
        py_bool(p.is_series())
    );
    s.push_str(
        "\n\ndef load_splits(data_root=None):\n    \
         \"\"\"The `train`, `validation` and `test` splits (None when the spec has no such split).\"\"\"\n    \
         root = data_root or DATA_ROOT\n",
    );
    s.push_str(&read);
    s.push_str(
        "    \
         strata = strata_of(y)  # the source's classes, for `stratify`\n    \
         rows = lambda n: split_rows(n, SPLIT, ORDERED, strata)\n    \
         x, y, _ = apply_map(MAP, x, y, lambda n: rows(n)[0])\n    \
         train_rows, val_rows, test_rows = rows(len(x))\n    \
         pick = lambda r: None if y is None else y[r]\n    \
         split = lambda r: Split(x[r], pick(r), [], PIPELINE_SEED, r) if r else None\n    \
         return {\"train\": Split(x[train_rows], pick(train_rows), AUGMENT, PIPELINE_SEED, train_rows),\n            \
         \"validation\": split(val_rows), \"test\": split(test_rows)}\n\n\n\
         def load(data_root=None):\n    \
         \"\"\"The training and validation splits (validation None without `split validation:`).\"\"\"\n    \
         splits = load_splits(data_root)\n    \
         return splits[\"train\"], splits[\"validation\"]\n",
    );
    Ok((s, files))
}
