//! Model format converters. Only Whisper needs one: registries ship CTranslate2 weights, whisper.cpp
//! loads its legacy ggml layout.

pub mod ct2;
pub mod npz;
pub mod whisper;

pub use whisper::{
    convert_whisper, convert_whisper_to_writer, WhisperAssets, WhisperHparams, CONVERTER_VERSION,
};
