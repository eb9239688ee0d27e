//! TFRecord framing, the container of TensorBoard's event files: each record is its length
//! (u64, little-endian), the masked CRC32C of those 8 bytes (u32 LE), the data, and the masked
//! CRC32C of the data (u32 LE).
//!
//! Input: record payloads (or a file's bytes, to read back). Output: framed bytes (or the
//! payloads, every length and checksum verified). Invariant: reading never panics and never
//! allocates more than the bytes it was given.

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), one table of 256 entries.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// TFRecord's masked CRC: rotated right by 15 bits, plus a constant, so that a CRC of data
/// that holds CRCs stays well distributed.
pub fn masked_crc32c(bytes: &[u8]) -> u32 {
    crc32c(bytes).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// `data` as one framed record.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

/// The payloads of a file of framed records, each length and both checksums verified; `Err`
/// says which record is broken and how.
pub fn read_records(mut bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let k = out.len();
        let (header, rest) = bytes
            .split_first_chunk::<12>()
            .ok_or_else(|| format!("record {k}: truncated header"))?;
        let (len_bytes, len_crc) = header.split_at(8);
        if masked_crc32c(len_bytes) != u32_le(len_crc) {
            return Err(format!("record {k}: the length's checksum does not match"));
        }
        let len = u64_le(len_bytes);
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n.checked_add(4).is_some_and(|m| m <= rest.len()))
            .ok_or_else(|| format!("record {k}: {len} bytes announced, fewer present"))?;
        let (data, rest) = rest.split_at(len);
        let (crc, rest) = rest.split_at(4);
        if masked_crc32c(data) != u32_le(crc) {
            return Err(format!("record {k}: the data's checksum does not match"));
        }
        out.push(data);
        bytes = rest;
    }
    Ok(out)
}

fn u32_le(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b.get(..4).unwrap_or(&[0; 4]));
    u32::from_le_bytes(a)
}

fn u64_le(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_values() {
        // RFC 3720 (iSCSI) B.4 and the CRC catalogue's check value for "123456789".
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn frames_read_back_and_corruption_is_found() {
        let mut file = frame(b"first");
        file.extend(frame(b""));
        file.extend(frame(&[7u8; 300]));
        let records = read_records(&file).unwrap();
        assert_eq!(records, vec![&b"first"[..], &b""[..], &[7u8; 300][..]]);
        assert_eq!(&file[..8], &5u64.to_le_bytes());
        let mut bad = file.clone();
        bad[13] ^= 1;
        assert!(read_records(&bad).unwrap_err().contains("data's checksum"));
        let mut bad = file.clone();
        bad[0] = 6;
        assert!(read_records(&bad)
            .unwrap_err()
            .contains("length's checksum"));
        assert!(read_records(&file[..file.len() - 1]).is_err());
    }
}
