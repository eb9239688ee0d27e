//! Encoding a built [`OnnxModel`] as ONNX protobuf bytes.
//!
//! Input: the plain-data graph. Output: `ModelProto` bytes. Invariants: deterministic (nodes,
//! initializers and metadata in the order built, attributes sorted by name, numbers
//! little-endian in `raw_data`); the IR version is the one the opset belongs to.

use super::proto::{
    attribute_type, data_type, AttributeProto, DimensionProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TensorTypeProto,
    TypeProto, ValueInfoProto,
};
use super::OnnxModel;
use crate::ops::onnx::{onnx_dtype, Attr, Initializer, OnnxNode, TensorData};
use crate::ops::types::{Dim, Fact};
use prost::Message;

/// The ONNX IR version that goes with `opset` (IR 7: opsets 13–14, 8: 15–18, 9: 19–20, 10: 21).
pub fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        _ => 10,
    }
}

/// The model's bytes.
pub fn encode(model: &OnnxModel) -> Vec<u8> {
    to_proto(model).encode_to_vec()
}

fn to_proto(model: &OnnxModel) -> ModelProto {
    let graph = GraphProto {
        node: model.graph.nodes.iter().map(node).collect(),
        name: Some(model.name.clone()),
        initializer: model.graph.initializers.iter().map(tensor).collect(),
        doc_string: None,
        input: model.inputs.iter().map(|(n, f)| value_info(n, f)).collect(),
        output: model
            .outputs
            .iter()
            .map(|(n, f)| value_info(n, f))
            .collect(),
    };
    ModelProto {
        ir_version: Some(ir_version(model.opset)),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(model.opset),
        }],
        producer_name: Some("modelc".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(format!("model `{}` exported by modelc", model.name)),
        graph: Some(graph),
        metadata_props: model
            .metadata
            .iter()
            .map(|(k, v)| StringStringEntryProto {
                key: Some(k.clone()),
                value: Some(v.clone()),
            })
            .collect(),
    }
}

fn node(n: &OnnxNode) -> NodeProto {
    let mut attributes: Vec<&(&str, Attr)> = n.attributes.iter().collect();
    attributes.sort_by_key(|(name, _)| *name);
    NodeProto {
        input: n.inputs.clone(),
        output: n.outputs.clone(),
        name: Some(n.name.clone()),
        op_type: Some(n.op_type.to_string()),
        attribute: attributes
            .into_iter()
            .map(|(k, v)| attribute(k, v))
            .collect(),
    }
}

fn attribute(name: &str, value: &Attr) -> AttributeProto {
    let mut a = AttributeProto {
        name: Some(name.to_string()),
        ..AttributeProto::default()
    };
    match value {
        Attr::Int(i) => {
            a.r#type = Some(attribute_type::INT);
            a.i = Some(*i);
        }
        Attr::Float(f) => {
            a.r#type = Some(attribute_type::FLOAT);
            a.f = Some(*f);
        }
        Attr::Ints(v) => {
            a.r#type = Some(attribute_type::INTS);
            a.ints.clone_from(v);
        }
        Attr::Text(s) => {
            a.r#type = Some(attribute_type::STRING);
            a.s = Some(s.as_bytes().to_vec());
        }
    }
    a
}

fn tensor(t: &Initializer) -> TensorProto {
    let (kind, raw) = match &t.data {
        TensorData::F32(v) => (
            data_type::FLOAT,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ),
        TensorData::I64(v) => (
            data_type::INT64,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ),
    };
    TensorProto {
        dims: t.dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(kind),
        name: Some(t.name.clone()),
        raw_data: Some(raw),
    }
}

fn value_info(name: &str, fact: &Fact) -> ValueInfoProto {
    let dim = |d: &Dim| match d {
        Dim::Known(n) => DimensionProto {
            dim_value: Some(*n as i64),
            dim_param: None,
        },
        Dim::Symbol(s) => DimensionProto {
            dim_value: None,
            dim_param: Some(s.clone()),
        },
    };
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: Some(onnx_dtype(fact.dtype)),
                shape: Some(TensorShapeProto {
                    dim: fact.dims.iter().map(dim).collect(),
                }),
            }),
        }),
    }
}
