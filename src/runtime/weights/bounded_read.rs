//! Reading a safetensors file without trusting its size.
//!
//! A safetensors file is an 8-byte little-endian header length, a JSON header naming each
//! tensor's byte range, then the tensors' bytes. This reader takes the file in that order and
//! decides before each allocation whether to go on: the header length must be plausible (what
//! `/dev/zero` or a text file gives is refused after 8 bytes), the header must be a JSON object,
//! and the data it declares must fit the caller's limit; then exactly the declared bytes are
//! read, and a byte more is an error (as the safetensors crate itself refuses it). Nothing is
//! read or allocated beyond `8 + header + declared data`, whatever the file or device is. A file
//! refused before its data is read is first compared with other frameworks' formats
//! (`foreign`: at most 64 KiB more), so a Keras or PyTorch file is named as such.

use std::io::Read;

use super::foreign::identify_stream;
use super::WeightsError;

/// The safetensors format's own limit on the header's length.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Reads a whole safetensors file from `reader`, refusing it as soon as its own header says it
/// is not one or holds more than `max_bytes` bytes in all.
pub fn read_safetensors(reader: impl Read, max_bytes: u64) -> Result<Vec<u8>, WeightsError> {
    let mut reader = reader;
    let mut length = [0_u8; 8];
    let got = read_up_to(&mut reader, &mut length)?;
    if got < 8 {
        return Err(WeightsError::Format(format!(
            "the file is {got} bytes long, too short to hold a safetensors header"
        )));
    }
    let header_len = u64::from_le_bytes(length);
    if !(2..=MAX_HEADER_BYTES).contains(&header_len) {
        return Err(foreign_or(
            &length,
            &mut reader,
            format!(
            "its first 8 bytes give a header of {header_len} bytes; a safetensors header is 2 to \
             {MAX_HEADER_BYTES} bytes of JSON"
        ),
        ));
    }
    let mut bytes = length.to_vec();
    (&mut reader)
        .take(header_len)
        .read_to_end(&mut bytes)
        .map_err(WeightsError::Read)?;
    let header = &bytes[8..];
    if (header.len() as u64) < header_len {
        let message = format!(
            "the file ends inside its header ({} of {header_len} bytes)",
            header.len()
        );
        return Err(foreign_or(&bytes, &mut reader, message));
    }
    if header.first() != Some(&b'{') {
        return Err(foreign_or(
            &bytes,
            &mut reader,
            "its header is not a JSON object".to_string(),
        ));
    }
    let data_len = declared_data_bytes(header).map_err(|e| match e {
        WeightsError::Format(m) => foreign_or(&bytes, &mut reader, m),
        other => other,
    })?;
    let total = 8_u64
        .checked_add(header_len)
        .and_then(|n| n.checked_add(data_len));
    if total.is_none_or(|t| t > max_bytes) {
        return Err(WeightsError::Format(format!(
            "its header declares {data_len} bytes of tensors, more than the limit of {max_bytes} \
             bytes for parameters (--max-param-bytes)"
        )));
    }
    let data_start = bytes.len();
    (&mut reader)
        .take(data_len)
        .read_to_end(&mut bytes)
        .map_err(WeightsError::Read)?;
    let found = (bytes.len() - data_start) as u64;
    if found < data_len {
        return Err(WeightsError::Format(format!(
            "the file ends after {found} of the {data_len} bytes of tensors its header declares"
        )));
    }
    let mut one = [0_u8; 1];
    if read_up_to(&mut reader, &mut one)? > 0 {
        return Err(WeightsError::Format(
            "the file goes on after the last tensor its header declares".to_string(),
        ));
    }
    Ok(bytes)
}

/// The other framework's format the file is in, else [`WeightsError::Format`] with `message`.
fn foreign_or(read: &[u8], rest: &mut impl Read, message: String) -> WeightsError {
    identify_stream(read, rest).map_or(WeightsError::Format(message), WeightsError::Foreign)
}

/// Fills `buf` as far as the reader goes; returns how many bytes were read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize, WeightsError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(WeightsError::Read(e)),
        }
    }
    Ok(filled)
}

/// The end of the last tensor's byte range, from the header's `data_offsets`. The header is
/// checked in full later by the safetensors crate; here only the figure that bounds the read.
fn declared_data_bytes(header: &[u8]) -> Result<u64, WeightsError> {
    let entries: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header)
        .map_err(|e| WeightsError::Format(format!("its header is not valid JSON: {e}")))?;
    let mut end = 0_u64;
    for (name, entry) in &entries {
        if name == "__metadata__" {
            continue;
        }
        let stop = entry
            .get("data_offsets")
            .and_then(|o| o.get(1))
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| {
                WeightsError::Format(format!("tensor `{name}` has no valid `data_offsets`"))
            })?;
        end = end.max(stop);
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::super::foreign::Foreign;
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    const ONE: &str = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;

    fn message(r: Result<Vec<u8>, WeightsError>) -> String {
        match r {
            Err(e) => e.to_string(),
            Ok(b) => format!("read {} bytes", b.len()),
        }
    }

    #[test]
    fn a_valid_file_is_read_whole() {
        let bytes = file(ONE, &[0; 8]);
        assert_eq!(read_safetensors(bytes.as_slice(), 1 << 20).unwrap(), bytes);
    }

    #[test]
    fn an_endless_stream_of_zeros_is_refused_after_eight_bytes() {
        // `std::io::repeat` never ends: the reader must stop on the header length alone.
        let e = message(read_safetensors(std::io::repeat(0), u64::MAX));
        assert!(e.contains("header of 0 bytes"), "{e}");
    }

    #[test]
    fn an_endless_stream_after_a_valid_header_stops_at_the_declared_data() {
        let head = file(ONE, &[]);
        let e = message(read_safetensors(head.chain(std::io::repeat(1)), u64::MAX));
        assert!(e.contains("goes on after the last tensor"), "{e}");
    }

    #[test]
    fn data_declared_beyond_the_limit_is_refused_before_reading_it() {
        let header =
            r#"{"w":{"dtype":"F32","shape":[250000000000],"data_offsets":[0,1000000000000]}}"#;
        let e = message(read_safetensors(file(header, &[]).as_slice(), 4 << 30));
        assert!(e.contains("declares 1000000000000 bytes"), "{e}");
        assert!(e.contains("--max-param-bytes"), "{e}");
    }

    #[test]
    fn short_and_malformed_files_say_what_is_wrong() {
        let short = message(read_safetensors(&[1_u8, 2, 3][..], 1 << 20));
        assert!(short.contains("3 bytes long"), "{short}");
        let text = message(read_safetensors(&b"epoch,loss\n1,0.5\n"[..], 1 << 20));
        assert!(text.contains("header of"), "{text}");
        let cut = file(ONE, &[0; 4]);
        let e = message(read_safetensors(cut.as_slice(), 1 << 20));
        assert!(e.contains("after 4 of the 8 bytes"), "{e}");
        let not_json = file("[1, 2]", &[]);
        let e = message(read_safetensors(not_json.as_slice(), 1 << 20));
        assert!(e.contains("not a JSON object"), "{e}");
        let no_offsets = file(r#"{"w":{"dtype":"F32","shape":[2]}}"#, &[]);
        let e = message(read_safetensors(no_offsets.as_slice(), 1 << 20));
        assert!(e.contains("no valid `data_offsets`"), "{e}");
    }

    #[test]
    fn keras_and_pytorch_files_are_named_as_such() {
        let mut h5 = b"\x89HDF\r\n\x1a\n".to_vec();
        h5.extend_from_slice(&[0; 100]);
        let e = read_safetensors(h5.as_slice(), 1 << 20).unwrap_err();
        assert!(
            matches!(e, WeightsError::Foreign(Foreign::KerasHdf5)),
            "{e}"
        );
        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend_from_slice(&[0; 26]);
        zip.extend_from_slice(b"archive/data.pkl");
        let e = read_safetensors(zip.as_slice(), 1 << 20).unwrap_err();
        assert!(
            matches!(e, WeightsError::Foreign(Foreign::TorchArchive)),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "the weights file is a PyTorch file (a `torch.save` zip archive), not a safetensors file"
        );
    }
}
