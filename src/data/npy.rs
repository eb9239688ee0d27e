//! The NPY file format (NumPy's `np.save`), versions 1–3: a reader for `<f4`, `<f8`, `<i4`,
//! `<i8` and `|u1` arrays in C order, and a writer of `<f4` arrays.
//!
//! Input: the bytes of a file, never trusted. Output: the shape and values, or an [`NpyError`]
//! saying what is wrong. Invariant: the reader refuses Fortran order, object and big-endian
//! dtypes, shapes whose element count overflows, and data shorter or longer than the header says.

use std::path::Path;
use thiserror::Error;

/// The first six bytes of every NPY file.
pub const MAGIC: &[u8] = b"\x93NUMPY";

/// Why an NPY file could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NpyError {
    #[error("not an npy file (the magic string \\x93NUMPY is missing)")]
    BadMagic,
    #[error("unsupported npy format version {0}")]
    Version(u8),
    #[error("the npy header is malformed: {0}")]
    Header(String),
    #[error("dtype `{0}` is not supported (supported: <f4, <f8, <i4, <i8, |u1)")]
    Dtype(String),
    #[error("the array is stored in Fortran order; save it in C order")]
    FortranOrder,
    #[error("the array's shape {0:?} has too many elements")]
    TooLarge(Vec<usize>),
    #[error("the data is {found} bytes but the header describes {expected} bytes")]
    Length { expected: usize, found: usize },
}

/// The values of an array, in the dtype they were stored with.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
}

/// An array read from an NPY file (C order).
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

impl NpyArray {
    /// The values as `f32` (wider types are rounded to nearest).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            NpyData::F32(v) => v.clone(),
            NpyData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U8(v) => v.iter().map(|&x| f32::from(x)).collect(),
        }
    }

    /// The values as `f64`, exact for every supported dtype except very large `i64`.
    pub fn to_f64(&self) -> Vec<f64> {
        match &self.data {
            NpyData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::F64(v) => v.clone(),
            NpyData::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            NpyData::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
        }
    }
}

/// Parses the bytes of an NPY file.
pub fn read_npy(bytes: &[u8]) -> Result<NpyArray, NpyError> {
    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        return Err(NpyError::BadMagic);
    }
    let (header_len, header_start): (usize, usize) = match bytes[6] {
        1 => {
            let b = bytes.get(8..10).ok_or(NpyError::Length {
                expected: 10,
                found: bytes.len(),
            })?;
            (usize::from(u16::from_le_bytes([b[0], b[1]])), 10)
        }
        2 | 3 => {
            let b = bytes.get(8..12).ok_or(NpyError::Length {
                expected: 12,
                found: bytes.len(),
            })?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        v => return Err(NpyError::Version(v)),
    };
    let header_end = header_start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or(NpyError::Length {
            expected: header_start.saturating_add(header_len),
            found: bytes.len(),
        })?;
    let header = std::str::from_utf8(&bytes[header_start..header_end])
        .map_err(|_| NpyError::Header("not text".into()))?;
    let descr = dict_value(header, "descr")?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(header, "fortran_order")?;
    if fortran.trim() != "False" {
        return Err(if fortran.trim() == "True" {
            NpyError::FortranOrder
        } else {
            NpyError::Header(format!("fortran_order is `{}`", fortran.trim()))
        });
    }
    let shape = parse_shape(dict_value(header, "shape")?)?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| NpyError::TooLarge(shape.clone()))?;
    let width = match descr {
        "<f4" | "<i4" => 4,
        "<f8" | "<i8" => 8,
        "|u1" | "<u1" => 1,
        other => return Err(NpyError::Dtype(other.to_string())),
    };
    let expected = count
        .checked_mul(width)
        .ok_or_else(|| NpyError::TooLarge(shape.clone()))?;
    let body = &bytes[header_end..];
    if body.len() != expected {
        return Err(NpyError::Length {
            expected,
            found: body.len(),
        });
    }
    let data = match descr {
        "<f4" => NpyData::F32(
            body.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        "<i4" => NpyData::I32(
            body.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        "<f8" => NpyData::F64(
            body.chunks_exact(8)
                .map(|c| f64::from_le_bytes(eight(c)))
                .collect(),
        ),
        "<i8" => NpyData::I64(
            body.chunks_exact(8)
                .map(|c| i64::from_le_bytes(eight(c)))
                .collect(),
        ),
        _ => NpyData::U8(body.to_vec()),
    };
    Ok(NpyArray { shape, data })
}

fn eight(c: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(c);
    a
}

/// The text after `'key':` in a header dict, up to the next top-level comma or `}`.
fn dict_value<'a>(header: &'a str, key: &str) -> Result<&'a str, NpyError> {
    let quoted = format!("'{key}'");
    let at = header
        .find(&quoted)
        .ok_or_else(|| NpyError::Header(format!("no `{key}` entry")))?;
    let rest = &header[at + quoted.len()..];
    let rest = rest
        .trim_start()
        .strip_prefix(':')
        .ok_or_else(|| NpyError::Header(format!("no `:` after `{key}`")))?;
    let mut depth = 0usize;
    for (i, ch) in rest.char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            ',' | '}' if depth == 0 => return Ok(&rest[..i]),
            _ => {}
        }
    }
    Err(NpyError::Header(format!("`{key}` entry is not terminated")))
}

fn parse_shape(text: &str) -> Result<Vec<usize>, NpyError> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| NpyError::Header(format!("shape `{}` is not a tuple", text.trim())))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<usize>()
                .map_err(|_| NpyError::Header(format!("shape entry `{p}` is not a size")))
        })
        .collect()
}

/// The bytes of an NPY v1.0 file holding `values` (`<f4`, C order) with this shape; the
/// caller passes as many values as the shape has elements.
pub fn npy_bytes(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad with spaces so magic + version + length + header + '\n' is a multiple of 64.
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + values.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes `values` with this shape as an NPY file, atomically.
pub fn write_npy(path: &Path, shape: &[usize], values: &[f32]) -> std::io::Result<()> {
    crate::util::write_atomic(path, &npy_bytes(shape, values))
}
