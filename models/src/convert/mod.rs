//! Model format converters: Whisper (registries ship CTranslate2 weights, whisper.cpp loads its
//! legacy ggml layout), a CSV table's first column (name lists whose other columns must not ship),
//! and Census name lists into a homophone table (runs the espeak-ng program; links nothing).

pub mod ct2;
pub mod first_column;
pub mod homophones;
pub mod npz;
pub mod whisper;

pub use first_column::{convert_first_column, first_column_of, FIRST_COLUMN_VERSION};
pub use homophones::{convert_homophones, espeak_version, HOMOPHONES_VERSION};
pub use whisper::{
    convert_whisper, convert_whisper_to_writer, WhisperAssets, WhisperHparams, CONVERTER_VERSION,
};

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::error::{ModelsError, Result};

/// `data` as UTF-8 text, or why not (the first invalid byte's offset), for a converter's error
/// naming its input.
pub(crate) fn utf8_text(data: &[u8]) -> std::result::Result<&str, String> {
    std::str::from_utf8(data).map_err(|e| format!("it is not UTF-8 text (invalid byte at offset {})", e.valid_up_to()))
}

/// Writes a converted file whole: `write` fills `<out>.partial`, which is then synced and renamed
/// to `out`, so a crash never leaves a half-written file under the final name. On a failure the
/// partial file is removed.
pub(crate) fn write_whole<T>(out: &Path, write: impl FnOnce(&mut BufWriter<File>) -> Result<T>) -> Result<T> {
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let f = File::create(&tmp).map_err(|e| ModelsError::io("create", &tmp, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let res = write(&mut w).and_then(|ok| {
        let f = w.into_inner().map_err(|e| ModelsError::io("write", &tmp, e.into_error()))?;
        f.sync_all().map_err(|e| ModelsError::io("sync", &tmp, e))?;
        std::fs::rename(&tmp, out).map_err(|e| ModelsError::io("rename into place", out, e))?;
        Ok(ok)
    });
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}
