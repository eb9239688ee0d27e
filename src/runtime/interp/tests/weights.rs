//! Weights through the interpreter: fresh initialization, the safetensors round trip, every
//! problem of a handmade or malformed file reported by name, and plan and recipe errors mapped
//! to their codes.

use super::*;

#[test]
fn fresh_weights_are_deterministic_per_parameter_name() {
    let plan = compile_with(zoo::seed_cnn().unwrap(), true);
    let a = init_weights(&plan, 42).unwrap();
    let b = init_weights(&plan, 42).unwrap();
    let c = init_weights(&plan, 43).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.by_name("conv2d.kernel"), c.by_name("conv2d.kernel"));
    // Glorot limit for [3,3,1,32]: sqrt(6 / (9 + 288)).
    let limit = (6.0f32 / 297.0).sqrt();
    let k = a.by_name("conv2d.kernel").unwrap();
    assert!(k.iter().all(|v| v.abs() <= limit) && k.iter().any(|v| v.abs() > limit / 2.0));
    assert!(a.by_name("conv2d.bias").unwrap().iter().all(|&v| v == 0.0));
}

#[test]
fn weights_round_trip_through_safetensors() {
    let g = chain(&["in:8,8,3", "conv:4", "bn", "relu", "flatten", "dense:5"]);
    let plan = compile_with(g, true);
    let w = random_weights(&plan, 5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    save_weights(&path, &w).unwrap();
    let back = crate::runtime::weights::load_weights(&path, &plan).unwrap();
    assert_eq!(back, w);
    // Derived (folded) tensors are not written.
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "bn.beta",
            "bn.gamma",
            "bn.moving_mean",
            "bn.moving_variance",
            "conv.bias",
            "conv.kernel",
            "dense.bias",
            "dense.kernel"
        ]
    );
}

/// Writes a safetensors file by hand: `(name, dtype, shape, data bytes)`.
fn handmade(tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let mut header = String::from("{");
    let mut offset = 0;
    let mut data = Vec::new();
    for (i, (name, dtype, shape, bytes)) in tensors.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        let _ = write!(
            header,
            "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{offset},{}]}}",
            offset + bytes.len()
        );
        offset += bytes.len();
        data.extend_from_slice(bytes);
    }
    header.push('}');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    out
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn every_weights_problem_is_reported_by_name() {
    let g = chain(&["in:2", "dense:2", "dense:3"]);
    let plan = compile_with(g, true);
    let bytes = handmade(&[
        ("dense.kernel", "F64", vec![2, 2], vec![0; 32]),
        ("dense.bias", "F32", vec![3], f32_bytes(&[0.0; 3])),
        (
            "dense_1.kernel",
            "F32",
            vec![2, 3],
            f32_bytes(&[0.0, 1.0, f32::NAN, 2.0, f32::INFINITY, 0.0]),
        ),
        ("extra.kernel", "F32", vec![1], f32_bytes(&[0.0])),
    ]);
    let errors = weights_from_bytes(&bytes, &plan).unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "tensor `dense.bias` has shape [3], expected [2]",
            "tensor `dense.kernel` has dtype F64, expected F32",
            "tensor `dense_1.kernel` holds 2 NaN or infinite value(s), the first at flat index 2",
            "tensor `extra.kernel` is not a parameter of this model",
            "tensor `dense_1.bias` is missing (expected f32[3])",
        ]
    );
    let codes: Vec<&str> = errors
        .iter()
        .map(|e| e.to_diagnostic("w.safetensors").code.as_str())
        .collect();
    assert_eq!(codes, ["E0714", "E0713", "E0715", "E0712", "E0711"]);
    let d = errors[0].to_diagnostic("w.safetensors");
    assert_eq!(d.external.unwrap().path, "w.safetensors");
}

#[test]
fn malformed_weight_files_are_errors_not_panics() {
    let plan = compile_with(chain(&["in:2", "dense:2"]), true);
    let good = weights_to_bytes(&random_weights(&plan, 1)).unwrap();
    let lying = handmade(&[("dense.kernel", "F32", vec![2, 2], f32_bytes(&[0.0; 2]))]);
    let huge_header = {
        let mut b = u64::MAX.to_le_bytes().to_vec();
        b.extend_from_slice(b"{}");
        b
    };
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![1, 2, 3],
        huge_header,
        good[..good.len() - 3].to_vec(),
        lying,
        b"\x05\0\0\0\0\0\0\0{nope".to_vec(),
    ];
    for bytes in cases {
        let errors = weights_from_bytes(&bytes, &plan).unwrap_err();
        assert!(
            errors.iter().all(|e| matches!(e, WeightsError::Format(_))),
            "{errors:?}"
        );
        assert_eq!(errors[0].to_diagnostic("w").code.as_str(), "E0710");
    }
    // Every prefix of a good file fails cleanly.
    for cut in 0..good.len() {
        assert!(weights_from_bytes(&good[..cut], &plan).is_err());
    }
}

#[test]
fn plan_errors_map_to_e07_codes() {
    let d = plan_error_diagnostic(&crate::plan::PlanError::Syntax("x".into()), "p.plan");
    assert_eq!(d.code.as_str(), "E0700");
    let d = plan_error_diagnostic(
        &crate::plan::PlanError::Version {
            found: 0,
            expected: 1,
        },
        "p.plan",
    );
    assert_eq!(d.code.as_str(), "E0701");
    let d = plan_error_diagnostic(&crate::plan::PlanError::Inconsistent("x".into()), "p.plan");
    assert_eq!(d.code.as_str(), "E0702");
    assert_eq!(d.external.unwrap().path, "p.plan");
}

#[test]
fn derived_recipe_mismatch_is_e0716() {
    let g = chain(&["in:4,4,2", "conv:3", "bn"]);
    let mut plan = compile_with(g, true);
    let stored: Vec<(String, ArrayD<f32>)> = random_weights(&plan, 2)
        .entries()
        .iter()
        .filter(|e| e.stored)
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    // A hand-edited plan: the folded bias claims 4 channels, its recipe computes 3.
    let folded = plan
        .params
        .iter_mut()
        .find(|p| p.name == "conv.bias+bn")
        .unwrap();
    folded.shape = vec![4];
    let errors = Weights::from_named(&plan, stored).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_diagnostic("w").code.as_str(),
        "E0716",
        "{}",
        errors[0]
    );
}
