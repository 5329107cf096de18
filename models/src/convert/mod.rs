//! Model format converters: Whisper (registries ship CTranslate2 weights, whisper.cpp loads its
//! legacy ggml layout), and a CSV table's first column (name lists whose other columns must not ship).

pub mod ct2;
pub mod first_column;
pub mod npz;
pub mod whisper;

pub use first_column::{convert_first_column, first_column_of, FIRST_COLUMN_VERSION};
pub use whisper::{
    convert_whisper, convert_whisper_to_writer, WhisperAssets, WhisperHparams, CONVERTER_VERSION,
};
