//! Minimal `.npz` / `.npy` reader: just enough to load Whisper's `mel_filters.npz` as float32.

use std::io::Read;
use std::path::Path;

use crate::error::{ModelsError, Result};

/// A 2-D (or any-rank) float32 array in C order.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayF32 {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

fn bad(path: &Path, reason: impl Into<String>) -> ModelsError {
    ModelsError::Asset {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Read array `name` (without `.npy`) from an `.npz` file, converted to float32 like numpy's
/// `.astype(np.float32)` (float64 rounds to nearest).
pub fn read_npz_f32(path: &Path, name: &str) -> Result<ArrayF32> {
    let file = std::fs::File::open(path).map_err(|e| ModelsError::io("open", path, e))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| bad(path, format!("not a valid .npz (zip) file: {e}")))?;
    let member = format!("{name}.npy");
    let mut entry = zip
        .by_name(&member)
        .map_err(|_| bad(path, format!("has no array {name}")))?;
    let mut bytes = Vec::with_capacity(entry.size().min(1 << 28) as usize);
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| bad(path, format!("cannot decompress {member}: {e}")))?;
    parse_npy_f32(&bytes).map_err(|reason| bad(path, format!("{member}: {reason}")))
}

/// Parse an in-memory `.npy` holding little-endian float32 or float64 in C order.
pub fn parse_npy_f32(b: &[u8]) -> std::result::Result<ArrayF32, String> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err("not a .npy array (bad magic)".into());
    }
    let major = b[6];
    let (hlen, hstart) = match major {
        1 => (usize::from(u16::from_le_bytes([b[8], b[9]])), 10),
        2 | 3 => {
            if b.len() < 12 {
                return Err("truncated header".into());
            }
            (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = b.get(hstart..hstart + hlen).ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let descr = dict_value(header, "descr").ok_or("header has no descr")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(header, "fortran_order").ok_or("header has no fortran_order")?;
    if fortran != "False" {
        return Err("Fortran-ordered arrays are not supported".into());
    }
    let shape_s = dict_value(header, "shape").ok_or("header has no shape")?;
    let shape: Vec<usize> = shape_s
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape {shape_s}"))
        })
        .collect::<std::result::Result<_, _>>()?;
    let n: usize = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|n| n.checked_mul(8).is_some())
        .ok_or_else(|| format!("shape {shape_s} is too large"))?;
    let body = &b[hstart + hlen..];
    let data = match descr {
        "<f4" => {
            let need = n * 4;
            if body.len() < need {
                return Err(format!(
                    "truncated data: need {need} bytes, have {}",
                    body.len()
                ));
            }
            body[..need]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }
        "<f8" => {
            let need = n * 8;
            if body.len() < need {
                return Err(format!(
                    "truncated data: need {need} bytes, have {}",
                    body.len()
                ));
            }
            body[..need]
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect()
        }
        other => return Err(format!("dtype {other} is not float32/float64")),
    };
    Ok(ArrayF32 { shape, data })
}

/// The raw value text of `'key': value` in a numpy header dict (values here never contain `:`).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat1 = format!("'{key}':");
    let i = header.find(&pat1)? + pat1.len();
    let rest = header[i..].trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}'])?
    };
    Some(rest[..end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&(h.len() as u16).to_le_bytes());
        v.extend_from_slice(h.as_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn parses_f4_and_f8() {
        let body: Vec<u8> = [1.5f32, -2.0, 3.25, 0.0, 7.0, 8.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let a = parse_npy_f32(&npy("<f4", "(2, 3)", &body)).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![1.5, -2.0, 3.25, 0.0, 7.0, 8.0]);
        let body: Vec<u8> = [0.1f64, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let a = parse_npy_f32(&npy("<f8", "(2,)", &body)).unwrap();
        assert_eq!(a.shape, vec![2]);
        assert_eq!(a.data, vec![0.1f64 as f32, 2.0]);
    }

    #[test]
    fn rejects_truncated_and_wrong_dtype() {
        let body = [0u8; 8];
        assert!(parse_npy_f32(&npy("<f4", "(2, 3)", &body))
            .unwrap_err()
            .contains("truncated"));
        assert!(parse_npy_f32(&npy("<i4", "(2,)", &body))
            .unwrap_err()
            .contains("dtype"));
        assert!(parse_npy_f32(b"PK\x03\x04garbage")
            .unwrap_err()
            .contains("magic"));
    }
}
