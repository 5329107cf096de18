//! LLM engine process (llama-cpp-2).
fn main() {}
