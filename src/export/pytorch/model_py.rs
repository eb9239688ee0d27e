//! `model.py`: the model as an `nn.Module` named as the spec's model, one constructor line and
//! one forward line per layer (each with a comment naming its spec line), the `PARAMS` table
//! that maps modelc's `LAYER.PARAM` tensors onto the module's, and the fixed helpers
//! (`model_prelude.py`).

use super::{line_of, py_name, TorchError, TorchInputs};
use crate::check::ValueId;
use crate::ops::param::Init;
use crate::ops::torch::{to_pytorch, TorchLayer};
use std::fmt::Write;

const PRELUDE: &str = include_str!("model_prelude.py");

fn init_name(init: Init) -> String {
    match init {
        Init::GlorotUniform => "glorot_uniform".into(),
        Init::Zeros => "zeros".into(),
        Init::Ones => "ones".into(),
        Init::Orthogonal => "orthogonal".into(),
        Init::Uniform { limit } => format!("uniform:{limit}"),
        Init::UnitForgetBias => "unit_forget_bias".into(),
    }
}

fn value_name(inputs: &TorchInputs<'_>, id: ValueId) -> String {
    py_name(&inputs.model.value_name(id))
}

/// The `, keep=...` argument of a layer reading the padding mask of the ids `mask` (a step is
/// kept when any of them is non-zero), or nothing.
fn keep(inputs: &TorchInputs<'_>, mask: &[ValueId]) -> String {
    let ids: Vec<String> = mask
        .iter()
        .map(|&id| format!("({} != 0)", value_name(inputs, id)))
        .collect();
    match ids.len() {
        0 => String::new(),
        1 => format!(", keep={}", ids.join("")),
        _ => format!(", keep=({})", ids.join(" | ")),
    }
}

/// Each layer's PyTorch form, or every layer that has none.
fn layers(inputs: &TorchInputs<'_>) -> Result<Vec<TorchLayer>, Vec<TorchError>> {
    let model = inputs.model;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for layer in &model.layers {
        let facts: Vec<_> = layer.inputs.iter().filter_map(|&i| model.fact(i)).collect();
        match to_pytorch(&layer.op, &facts) {
            Ok(t) if !layer.mask_inputs.is_empty() && !t.forward.contains("{mask}") => {
                errors.push(TorchError {
                    what: format!("layer `{}`", layer.name),
                    why: "it reads a padding mask (`mask_zero: true`), which its PyTorch form does not"
                        .into(),
                    span: layer.span,
                });
            }
            Ok(t) => out.push(t),
            Err(why) => errors.push(TorchError {
                what: format!("layer `{}`", layer.name),
                why,
                span: layer.span,
            }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The text of `model.py`.
pub fn render(inputs: &TorchInputs<'_>) -> Result<String, Vec<TorchError>> {
    let model = inputs.model;
    let torch = layers(inputs)?;
    let class = py_name(&model.name);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\"\"\"`{}` of {}, exported by modelc {} (`modelc export --to pytorch`).\n\n\
         Inputs are laid out as the spec declares them (channels-last images, integer token ids);\n\
         `load_weights`/`save_weights` read and write modelc's safetensors.\n\"\"\"\n",
        model.name,
        inputs.spec_name,
        env!("CARGO_PKG_VERSION")
    );
    s.push_str(PRELUDE);
    let _ = writeln!(s, "\n\nclass {class}(_ModelcWeights, nn.Module):");
    let _ = writeln!(
        s,
        "    # modelc tensor, module, module tensors, layout, (Keras initializer, Keras shape)"
    );
    s.push_str("    PARAMS = [\n");
    for (layer, t) in model.layers.iter().zip(&torch) {
        for p in &t.params {
            let Some(info) = layer.params.iter().find(|i| i.name == p.keras) else {
                continue;
            };
            let targets: Vec<String> = p.torch.iter().map(|n| format!("\"{n}\"")).collect();
            let shape: Vec<String> = info.shape.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                s,
                "        (\"{}.{}\", \"{}\", [{}], \"{}\", (\"{}\", [{}])),",
                layer.name,
                p.keras,
                py_name(&layer.name),
                targets.join(", "),
                p.layout,
                init_name(info.init),
                shape.join(", ")
            );
        }
    }
    s.push_str("    ]\n");
    s.push_str("    # input name, dtype, shape after the batch axis (as the spec declares it)\n");
    s.push_str("    INPUTS = [\n");
    for input in &model.inputs {
        let dims: Vec<String> = input.fact.dims[1..]
            .iter()
            .map(|d| d.known().map_or("None".into(), |k| k.to_string()))
            .collect();
        let _ = writeln!(
            s,
            "        (\"{}\", \"{}\", [{}]),",
            input.name,
            input.fact.dtype.name(),
            dims.join(", ")
        );
    }
    s.push_str("    ]\n\n    def __init__(self):\n        super().__init__()\n");
    for (layer, t) in model.layers.iter().zip(&torch) {
        if let Some(module) = &t.module {
            let (line, text) = line_of(inputs.spec_text, layer.span.start);
            let _ = writeln!(
                s,
                "        self.{} = {module}  # line {line}: {text}",
                py_name(&layer.name)
            );
            for p in t.params.iter().filter(|p| p.layout == "rnn_bias") {
                if let Some(hh) = p.torch.get(1) {
                    let _ = writeln!(
                        s,
                        "        self.{}.{hh}.requires_grad_(False)  # Keras has one bias: this one stays zero",
                        py_name(&layer.name)
                    );
                }
            }
        }
    }
    let args: Vec<String> = model.inputs.iter().map(|i| py_name(&i.name)).collect();
    let _ = writeln!(s, "\n    def forward(self, {}):", args.join(", "));
    for (layer, t) in model.layers.iter().zip(&torch) {
        let mut expr = t
            .forward
            .replace("{m}", &format!("self.{}", py_name(&layer.name)));
        for (k, &id) in layer.inputs.iter().enumerate() {
            expr = expr.replace(&format!("{{x{k}}}"), &value_name(inputs, id));
        }
        if let Some(&first) = layer.inputs.first() {
            expr = expr.replace("{x}", &value_name(inputs, first));
        }
        expr = expr.replace("{mask}", &keep(inputs, &layer.mask_inputs));
        let (line, text) = line_of(inputs.spec_text, layer.span.start);
        let _ = writeln!(
            s,
            "        {} = {expr}  # line {line}: {text}",
            py_name(&layer.name)
        );
    }
    let _ = writeln!(s, "        return {}", value_name(inputs, model.output));
    Ok(s)
}
