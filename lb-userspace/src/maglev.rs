//! Weighted Maglev lookup tables.
