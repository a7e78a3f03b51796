//! Fuzz targets (not built yet).
