//! A model's signature: input and output tensor types as written → [`Fact`]s.
//!
//! Input: `ast::TensorType`s. Output: facts, or diagnostics for unknown dtypes (with a
//! suggestion), zero sizes and per-sample element counts that overflow. Invariant: a returned
//! fact has no zero dims and its element count per sample fits in `usize`.

use super::types::{DType, Dim, Fact};
use crate::diag::suggest;
use crate::diag::{codes, Diagnostic, FileId};
use crate::syntax::ast;

/// Names people write for dtypes, and what modelc calls them.
const ALIASES: &[(&str, &str)] = &[
    ("float32", "f32"),
    ("float", "f32"),
    ("int32", "i32"),
    ("int64", "i64"),
    ("int", "i32"),
];

/// Resolves a dtype name, reporting an unknown one.
pub fn dtype(file: FileId, ident: &ast::Ident, diags: &mut Vec<Diagnostic>) -> Option<DType> {
    if let Some(d) = DType::from_name(&ident.name) {
        return Some(d);
    }
    let mut d = Diagnostic::error(
        codes::CHECK_UNKNOWN_DTYPE,
        format!("unknown dtype `{}`", ident.name),
    )
    .primary(file, ident.span, "not a dtype")
    .note("the dtypes are f32, i32 and i64");
    let alias = ALIASES
        .iter()
        .find(|(a, _)| *a == ident.name)
        .map(|(_, d)| *d);
    if let Some(a) =
        alias.or_else(|| suggest::closest(&ident.name, DType::ALL.iter().map(|(n, _)| *n)))
    {
        d = d.help(format!("did you mean `{a}`?"));
    }
    diags.push(d);
    None
}

/// Converts a written tensor type, reporting every problem in it.
pub fn tensor_type(
    file: FileId,
    ty: &ast::TensorType,
    diags: &mut Vec<Diagnostic>,
) -> Option<Fact> {
    let dtype = dtype(file, &ty.dtype, diags);
    let mut ok = true;
    let mut dims = Vec::with_capacity(ty.dims.len());
    let mut elements = Some(1usize);
    for (i, d) in ty.dims.iter().enumerate() {
        match d {
            ast::Dim::Fixed(n, span) => {
                let size = usize::try_from(*n).ok().filter(|&s| s > 0);
                if let Some(s) = size {
                    if i > 0 {
                        elements = elements.and_then(|e| e.checked_mul(s));
                    }
                    dims.push(Dim::Known(s));
                } else {
                    ok = false;
                    diags.push(
                        Diagnostic::error(codes::CHECK_SIZE_INVALID, format!("invalid size {n} in a shape"))
                            .primary(file, *span, "sizes must be at least 1")
                            .help("write a positive size, or a symbol such as `N` for a size known only at run time"),
                    );
                }
            }
            ast::Dim::Symbol(s) => dims.push(Dim::Symbol(s.name.clone())),
        }
    }
    if ok && elements.is_none() {
        ok = false;
        diags.push(
            Diagnostic::error(
                codes::CHECK_SIZE_INVALID,
                "one sample of this type has too many elements",
            )
            .primary(file, ty.span, "the element count overflows 64 bits")
            .help("use smaller sizes"),
        );
    }
    if ty.dims.is_empty() {
        ok = false;
        diags.push(
            Diagnostic::error(
                codes::CHECK_RANK,
                "a tensor type needs at least a batch axis",
            )
            .primary(file, ty.span, "no dims")
            .help("write e.g. `f32[N, 16]`"),
        );
    }
    Some(Fact {
        dtype: dtype?,
        dims,
    })
    .filter(|_| ok)
}
