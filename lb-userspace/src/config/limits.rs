//! Bounds on what one load may read, far above real files (the largest
//! keepalived.conf files seen in the wild are a few MB, a few levels deep and
//! a few hundred included files) and low enough that a hostile or broken
//! file is refused within a second and a few MB.

/// Blocks inside blocks: real files nest 4 deep
/// (`virtual_server` > `real_server` > `HTTP_GET` > `url`).
pub const MAX_DEPTH: usize = 32;
/// Files including files: the main file counts as 1.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Files read in one load, a file included twice counting twice.
pub const MAX_FILES: usize = 1024;
/// Bytes of one file.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// Bytes of all files read in one load, with what parameter substitution adds.
pub const MAX_TOTAL_BYTES: u64 = 32 << 20;
/// Bytes one line becomes by parameter substitution (a multi-line value
/// counting whole): a template of a virtual_server with its reals is a few KB.
pub const MAX_EXPANDED_LINE: usize = 1 << 20;
/// Parameters whose values use parameters: keepalived's examples nest 2.
pub const MAX_SUBSTITUTION_DEPTH: usize = 16;
