//! Whisper ASR engine process (whisper-rs).
fn main() {}
