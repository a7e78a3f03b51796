//! Benchmarks (not built yet).
