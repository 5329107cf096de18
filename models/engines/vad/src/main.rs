//! Silero VAD engine process (ONNX Runtime).
fn main() {}
