//! Deterministic front-desk dialogue policy (sans-IO).
