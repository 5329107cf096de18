//! Piper TTS engine process (piper-rs; GPL espeak-ng stays in this process).
fn main() {}
