//! Fuzz target: `modelc::fuzz_entry::load_plan` must return on every input, with no internal error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let outcome = modelc::fuzz_entry::load_plan(data);
    assert!(
        outcome.internal_errors.is_empty(),
        "internal errors: {:?}",
        outcome.internal_errors
    );
});
