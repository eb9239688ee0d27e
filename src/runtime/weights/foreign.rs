//! Weight files of other frameworks, recognized by their first bytes, so that a Keras or
//! PyTorch file given as `--weights` is answered with what it is and how to convert it
//! (E0816, E0817) instead of "not a valid safetensors file".
//!
//! Input: the first bytes of a file that already failed to read as safetensors (at most
//! [`SNIFF_BYTES`]). Output: the [`Foreign`] format it is, if any. Invariant: only asked about
//! files that are not safetensors, so a valid weights file is never refused for looking like
//! something else; nothing is parsed, only searched (no unpickling, no HDF5 reading).

use std::io::Read;

/// How many leading bytes are searched: enough for the first entries of a zip archive (a
/// `.keras` archive's `metadata.json`, then `config.json`; a PyTorch archive's `data.pkl`).
pub const SNIFF_BYTES: usize = 64 * 1024;

/// The HDF5 signature (the file's first 8 bytes, without a user block).
const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";
/// A zip archive's local file header signature.
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// A weights format modelc does not read, but can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Foreign {
    /// HDF5: Keras's `.h5` (`save_weights`, or a whole model saved as HDF5).
    KerasHdf5,
    /// A Keras 3 `.keras` archive (a zip of `config.json` and `model.weights.h5`).
    KerasArchive,
    /// A `torch.save` zip archive (`data.pkl` inside; PyTorch 1.6 and later).
    TorchArchive,
    /// A bare pickle (`torch.save` before PyTorch 1.6, or `pickle.dump`).
    Pickle,
    /// A NumPy `.npz` archive (a zip of `.npy` files).
    NumpyArchive,
    /// Some other zip archive.
    Zip,
}

impl Foreign {
    /// What the file is, for the diagnostic's message.
    pub fn describe(self) -> &'static str {
        match self {
            Foreign::KerasHdf5 => "an HDF5 file (Keras `.h5` weights)",
            Foreign::KerasArchive => "a Keras 3 archive (`.keras`)",
            Foreign::TorchArchive => "a PyTorch file (a `torch.save` zip archive)",
            Foreign::Pickle => "a Python pickle (`torch.save` before PyTorch 1.6)",
            Foreign::NumpyArchive => "a NumPy `.npz` archive",
            Foreign::Zip => "a zip archive",
        }
    }

    /// The converter in `tools/` that turns this format into modelc's safetensors, if any.
    pub fn converter(self) -> Option<&'static str> {
        match self {
            Foreign::KerasHdf5 | Foreign::KerasArchive => Some("tools/keras_to_safetensors.py"),
            Foreign::TorchArchive | Foreign::Pickle => Some("tools/torch_to_safetensors.py"),
            Foreign::NumpyArchive | Foreign::Zip => None,
        }
    }
}

/// The format of a file that begins with `head`.
pub fn identify(head: &[u8]) -> Option<Foreign> {
    if head.starts_with(HDF5_MAGIC) {
        return Some(Foreign::KerasHdf5);
    }
    if head.starts_with(ZIP_MAGIC) {
        let has = |name: &[u8]| head.windows(name.len()).any(|w| w == name);
        return Some(if has(b"data.pkl") {
            Foreign::TorchArchive
        } else if has(b"model.weights.h5") || (has(b"config.json") && has(b"metadata.json")) {
            Foreign::KerasArchive
        } else if has(b".npy") {
            Foreign::NumpyArchive
        } else {
            Foreign::Zip
        });
    }
    // Pickle protocol 2 to 5 starts with PROTO and its number; a safetensors header, which
    // can start with the same two bytes, is JSON from byte 8 on.
    let pickle = matches!(head, [0x80, 2..=5, ..]) && head.get(8) != Some(&b'{');
    pickle.then_some(Foreign::Pickle)
}

/// [`identify`] on `prefix` (what was already read) followed by up to [`SNIFF_BYTES`] more
/// bytes of `rest`; a read error is no answer.
pub fn identify_stream(prefix: &[u8], rest: impl Read) -> Option<Foreign> {
    let mut head = prefix.get(..SNIFF_BYTES).unwrap_or(prefix).to_vec();
    let more = SNIFF_BYTES.saturating_sub(head.len()) as u64;
    rest.take(more).read_to_end(&mut head).ok()?;
    identify(&head)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip local file header for an entry named `name` (sizes zero: only the name matters).
    fn zip_entry(name: &str) -> Vec<u8> {
        let mut b = ZIP_MAGIC.to_vec();
        b.extend_from_slice(&[
            20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        b.extend_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(name.as_bytes());
        b
    }

    #[test]
    fn keras_pytorch_and_numpy_files_are_named() {
        let mut h5 = HDF5_MAGIC.to_vec();
        h5.extend_from_slice(&[0; 32]);
        assert_eq!(identify(&h5), Some(Foreign::KerasHdf5));
        let keras = [zip_entry("metadata.json"), zip_entry("config.json")].concat();
        assert_eq!(identify(&keras), Some(Foreign::KerasArchive));
        let torch = [zip_entry("linreg/data.pkl"), zip_entry("linreg/byteorder")].concat();
        assert_eq!(identify(&torch), Some(Foreign::TorchArchive));
        assert_eq!(identify(&zip_entry("w.npy")), Some(Foreign::NumpyArchive));
        assert_eq!(identify(&zip_entry("notes.txt")), Some(Foreign::Zip));
        // torch.save's legacy format: PROTO 2, then LONG1 with its magic number.
        let legacy = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
        assert_eq!(identify(legacy), Some(Foreign::Pickle));
    }

    #[test]
    fn a_safetensors_header_of_640_bytes_is_not_a_pickle() {
        // 640 = 0x280: the length's first two bytes are PROTO 2's, but byte 8 opens the JSON.
        let mut st = 640_u64.to_le_bytes().to_vec();
        st.push(b'{');
        assert_eq!(identify(&st), None);
        assert_eq!(identify(b"epoch,loss\n"), None);
    }

    #[test]
    fn the_stream_is_searched_past_what_was_read() {
        let torch = zip_entry("archive/data.pkl");
        let (head, rest) = torch.split_at(8);
        assert_eq!(identify_stream(head, rest), Some(Foreign::TorchArchive));
    }
}
