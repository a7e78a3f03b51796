//! The mio reference server (not built yet).
