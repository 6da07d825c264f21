//! Files and their includes, read in order within the bounds of `limits`.
//!
//! Only regular files are read: anything else is refused on its path, then
//! each file is opened without blocking and checked with fstat before a
//! byte is read. `include PATTERN` is expanded where it stands, so every
//! later stage sees one stream with true locations; `params` reads each
//! line's conditions and parameters first.

use std::{
    collections::HashMap,
    fs::File,
    io::Read as _,
    os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{
    diag::{Diagnostics, Location},
    lexer::{Token, lex_line, line_at, push_split, warn_blank},
    limits::{MAX_FILE_BYTES, MAX_FILES, MAX_INCLUDE_DEPTH, MAX_TOTAL_BYTES},
};

/// Words that include other files (keepalived's variants only add checks).
fn is_include(t: &Token) -> bool {
    [
        "include", "includer", "includem", "includew", "includeb", "includea",
    ]
    .iter()
    .any(|w| t.is(w))
}

/// How lines are selected: keepalived's `--config-id`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    /// `None`: every `@ID` line is skipped and every `@^ID` line read.
    pub config_id: Option<&'a str>,
}

/// Reads files in order, following includes; holds what one load has read.
pub(super) struct Reader<'a> {
    pub(super) diags: &'a mut Diagnostics,
    pub(super) selection: Selection<'a>,
    /// The files being read, outermost first (canonical paths).
    stack: Vec<PathBuf>,
    files: usize,
    /// Bytes read, with what substitution added.
    pub(super) bytes: u64,
    /// A file-count or size limit was hit: further includes are not followed.
    pub(super) exhausted: bool,
    /// `$NAME=` definitions: the value's lines.
    pub(super) params: HashMap<String, Vec<String>>,
    /// Whether the next token starts a statement (where `include` counts).
    starts_statement: bool,
    out: Chunks,
}

/// Tokens in chunks of at most `CHUNK`: the tree drops each chunk once it
/// has read it, so a large file's tokens and blocks are not all held twice.
pub type Chunks = Vec<Vec<Token>>;

const CHUNK: usize = 1 << 16;

/// The chunk to append to.
fn sink(chunks: &mut Chunks) -> &mut Vec<Token> {
    if chunks.last().is_none_or(|c| c.len() >= CHUNK) {
        chunks.push(Vec::new());
    }
    let last = chunks.len() - 1;
    &mut chunks[last]
}

/// A line, after its condition: read, or a definition wanting more lines.
pub(super) enum Line {
    Done,
    /// `$NAME=...\`: the next lines continue the value of NAME.
    Continues(String),
}

/// Reads `path` and every file it includes, in order.
pub fn read_file(path: &Path, selection: Selection, diags: &mut Diagnostics) -> Chunks {
    let mut r = Reader::new(selection, diags);
    r.file(path, &Location::of(path));
    r.out
}

/// Splits `text`, which claims to be the file `name`. Includes are followed
/// relative to `name`'s directory when `name` is absolute; with a relative
/// name they would depend on the working directory, so they are not followed.
pub fn read_text(text: &str, name: &Path, selection: Selection, diags: &mut Diagnostics) -> Chunks {
    let mut r = Reader::new(selection, diags);
    let len = u64::try_from(text.len()).unwrap_or(u64::MAX);
    if len > MAX_FILE_BYTES {
        r.diags.error(
            &Location::of(name),
            format!("{len} bytes: more than {MAX_FILE_BYTES}, the limit for one file; not read"),
        );
        return r.out;
    }
    r.files = 1;
    r.bytes = len;
    r.stack
        .push(name.canonicalize().unwrap_or_else(|_| name.to_path_buf()));
    let base = name.parent().filter(|p| p.is_absolute());
    r.lines(text, name, base);
    r.out
}

/// What kind of file this is, for a refusal.
fn kind(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

impl<'a> Reader<'a> {
    fn new(selection: Selection<'a>, diags: &'a mut Diagnostics) -> Self {
        Self {
            diags,
            selection,
            stack: Vec::new(),
            files: 0,
            bytes: 0,
            exhausted: false,
            params: HashMap::new(),
            starts_statement: true,
            out: Vec::new(),
        }
    }

    /// Reads one file, checked against every limit before a byte is read;
    /// problems are reported at `from`, the include line.
    fn file(&mut self, path: &Path, from: &Location) {
        if self.exhausted {
            return;
        }
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if self.stack.contains(&canonical) {
            let chain: Vec<String> = self
                .stack
                .iter()
                .chain([&canonical])
                .map(|p| p.display().to_string())
                .collect();
            self.diags
                .error(from, format!("include loop: {}", chain.join(" includes ")));
            return;
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            self.diags.error(
                from,
                format!(
                    "include of {} nested more than {MAX_INCLUDE_DEPTH} files deep; not read",
                    path.display()
                ),
            );
            return;
        }
        if self.files >= MAX_FILES {
            self.diags.limit(
                from,
                format!(
                    "more than {MAX_FILES} files included: {} and the files after it not read",
                    path.display()
                ),
            );
            self.exhausted = true;
            return;
        }
        self.files += 1;
        let Some(bytes) = self.read(path, from) else {
            return;
        };
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                // Old files carry Latin-1 comments; keepalived reads bytes.
                self.diags.warn(
                    &Location::of(path),
                    "not valid UTF-8 (a Latin-1 comment?): the invalid bytes are read as U+FFFD",
                );
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        };
        self.stack.push(canonical);
        self.lines(&text, path, Some(path.parent().unwrap_or(Path::new("."))));
        self.stack.pop();
    }

    /// The bytes of a regular file within the limits. Anything else is
    /// refused on its path before it is opened; then the file is opened
    /// without blocking (a FIFO swapped in never hangs) and checked with
    /// fstat on that very descriptor, so what is checked is what is read.
    fn read(&mut self, path: &Path, from: &Location) -> Option<Vec<u8>> {
        let refuse = |d: &mut Diagnostics, why: String| {
            d.error(from, format!("{}: {why}; not read", path.display()));
            None
        };
        // Devices are never opened: opening one can act (a watchdog starts).
        if let Ok(m) = std::fs::metadata(path)
            && !m.file_type().is_file()
        {
            return refuse(
                self.diags,
                format!("{}, not a regular file", kind(m.file_type())),
            );
        }
        let file = match File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
        {
            Ok(f) => f,
            Err(e) => {
                self.diags
                    .error(from, format!("cannot read {}: {e}", path.display()));
                return None;
            }
        };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => return refuse(self.diags, format!("cannot stat: {e}")),
        };
        if !meta.file_type().is_file() {
            return refuse(
                self.diags,
                format!("{}, not a regular file", kind(meta.file_type())),
            );
        }
        let len = meta.len();
        if len > MAX_FILE_BYTES {
            return refuse(
                self.diags,
                format!("{len} bytes, more than {MAX_FILE_BYTES}, the limit for one file"),
            );
        }
        if self.bytes + len > MAX_TOTAL_BYTES {
            self.exhausted = true;
            self.diags.limit(
                from,
                format!(
                    "{}: {len} bytes would bring what is read to more than {MAX_TOTAL_BYTES} bytes, the limit for all files; it and the files after it are not read",
                    path.display()
                ),
            );
            return None;
        }
        // The file may grow after fstat: read one byte past the limit at most.
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        if let Err(e) = file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes) {
            self.diags
                .error(from, format!("cannot read {}: {e}", path.display()));
            return None;
        }
        let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if read > MAX_FILE_BYTES {
            return refuse(
                self.diags,
                format!("grew past {MAX_FILE_BYTES} bytes, the limit for one file, while read"),
            );
        }
        self.bytes += read;
        Some(bytes)
    }

    /// Reads a file's lines; `base` is its directory (None: includes not followed).
    fn lines(&mut self, text: &str, file: &Path, base: Option<&Path>) {
        let name: Arc<Path> = file.into();
        let mut warned = false;
        let mut lines = text.lines().enumerate();
        while let Some((n, line)) = lines.next() {
            let at = line_at(&name, n);
            warn_blank(line, &at, &mut warned, self.diags);
            let Line::Continues(param) = self.line(line, &at, base, 0) else {
                continue;
            };
            // A multi-line definition: every line but the last ends with `\`.
            for (_, more) in lines.by_ref() {
                let (text, goes_on) = match more.trim_end().strip_suffix('\\') {
                    Some(t) => (t, true),
                    None => (more, false),
                };
                self.bytes += u64::try_from(text.len()).unwrap_or(u64::MAX);
                self.params
                    .entry(param.clone())
                    .or_default()
                    .push(text.to_string());
                if !goes_on {
                    break;
                }
            }
        }
    }

    /// Splits a line into tokens and replaces an `include PATTERN` statement
    /// with the files it names.
    pub(super) fn tokens(&mut self, text: &str, at: &Location, base: Option<&Path>) {
        let mut iter = lex_line(text, at, self.diags).into_iter();
        while let Some(t) = iter.next() {
            let start = self.starts_statement;
            self.starts_statement = t.line_end || t.is("{") || t.is("}");
            if !(start && is_include(&t)) {
                push_split(t, start, sink(&mut self.out), self.diags);
                continue;
            }
            let Some(pattern) = iter.next() else {
                self.diags
                    .error(&t.at, format!("{} needs a file name or pattern", t.text));
                continue;
            };
            self.starts_statement = true;
            if !pattern.line_end {
                self.diags.warn(
                    &pattern.at,
                    format!(
                        "{}: only one pattern is read; the rest of the line is ignored",
                        t.text
                    ),
                );
                iter.by_ref().for_each(drop);
            }
            match base {
                Some(base) => self.pattern(base, &pattern),
                None => self.diags.warn(
                    &pattern.at,
                    format!(
                        "include {:?} not followed: the configuration was given as text with a relative name",
                        pattern.text
                    ),
                ),
            }
        }
    }

    fn pattern(&mut self, base: &Path, pattern: &Token) {
        if self.exhausted {
            return;
        }
        let mut full = base.join(&pattern.text).to_string_lossy().into_owned();
        // glob(3), as keepalived uses it, reads `**` as `*`; the glob crate
        // would walk every directory below, which a pattern could make the
        // whole file system.
        while full.contains("**") {
            full = full.replace("**", "*");
        }
        // GLOB_BRACE, as keepalived asks glob(3): each alternative in turn,
        // its own matches sorted.
        let Some(alternatives) = expand_braces(&full, MAX_FILES) else {
            self.diags.error(
                &pattern.at,
                format!(
                    "include {:?}: more than {MAX_FILES} patterns once its braces are expanded; not read",
                    pattern.text
                ),
            );
            return;
        };
        // glob(3)'s rule: a wildcard does not match a leading `.`.
        let options = glob::MatchOptions {
            require_literal_leading_dot: true,
            ..glob::MatchOptions::new()
        };
        let (mut dirs, mut matched) = (0, Vec::<PathBuf>::new());
        for alternative in alternatives {
            let wildcard = glob::Pattern::escape(&alternative) != alternative;
            let paths = match glob::glob_with(&alternative, options) {
                Ok(paths) => paths,
                Err(e) => {
                    self.diags.error(
                        &pattern.at,
                        format!("include {:?}: bad pattern: {e}", pattern.text),
                    );
                    return;
                }
            };
            // One past the limit is enough to know it is passed.
            let room = (MAX_FILES - self.files.min(MAX_FILES) + 1).saturating_sub(matched.len());
            let mut these: Vec<PathBuf> = paths
                .filter_map(Result::ok)
                .filter(|p| {
                    // A directory a wildcard matched is not meant; one named is refused on reading.
                    let skip = wildcard && p.is_dir();
                    if skip {
                        dirs += 1;
                        self.diags.warn(
                            &pattern.at,
                            format!(
                                "include {:?}: {} is a directory, skipped",
                                pattern.text,
                                p.display()
                            ),
                        );
                    }
                    !skip
                })
                .take(room)
                .collect();
            these.sort();
            matched.extend(these);
        }
        if matched.is_empty() && dirs == 0 {
            // keepalived carries on too.
            self.diags.warn(
                &pattern.at,
                format!("include {:?} matches no file", pattern.text),
            );
        }
        for m in matched {
            self.file(&m, &pattern.at);
        }
    }
}

/// glob(3)'s `GLOB_BRACE`, which keepalived passes: `a{b,c}d` is `abd`
/// then `acd`, nested groups too; a `{` without its `}`, and `{}`, stay as
/// they are. `None` past `limit` patterns (each group multiplies them).
fn expand_braces(pattern: &str, limit: usize) -> Option<Vec<String>> {
    let bytes = pattern.as_bytes();
    let mut from = 0;
    while let Some(open) = pattern[from..].find('{').map(|i| from + i) {
        if bytes.get(open + 1) == Some(&b'}') {
            from = open + 2;
            continue;
        }
        // The matching `}`, and the commas between at the group's own level.
        let (mut depth, mut cuts, mut close) = (0usize, vec![open], None);
        for (i, b) in bytes.iter().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(i);
                        break;
                    }
                }
                b',' if depth == 1 => cuts.push(i),
                _ => {}
            }
        }
        let Some(close) = close else {
            break;
        };
        cuts.push(close);
        let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
        let mut out = Vec::new();
        for cut in cuts.windows(2) {
            let one = format!("{head}{}{tail}", &pattern[cut[0] + 1..cut[1]]);
            out.extend(expand_braces(&one, limit - out.len())?);
            if out.len() > limit {
                return None;
            }
        }
        return Some(out);
    }
    (limit > 0).then(|| vec![pattern.to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::diag::Severity;

    #[test]
    fn braces_expand_as_glob_3_expands_them() {
        let all = |p: &str| expand_braces(p, 100).unwrap();
        assert_eq!(all("a/{b,c}.conf"), ["a/b.conf", "a/c.conf"]);
        assert_eq!(all("{x,y{1,2}}z"), ["xz", "y1z", "y2z"]);
        assert_eq!(all("{a,b}{1,2}"), ["a1", "a2", "b1", "b2"]);
        assert_eq!(all("{only}"), ["only"]);
        assert_eq!(all("a{}b{c,d}"), ["a{}bc", "a{}bd"]);
        assert_eq!(all("open{a,b"), ["open{a,b"]);
        assert_eq!(all("plain.conf"), ["plain.conf"]);
        // Twenty groups of two would be a million patterns.
        assert_eq!(expand_braces(&"{a,b}".repeat(20), 1024), None);
    }

    #[test]
    fn text_with_a_relative_name_does_not_follow_includes() {
        let mut d = Diagnostics::default();
        let t = read_text(
            "include other.conf\na 1\n",
            Path::new("k.conf"),
            Selection::default(),
            &mut d,
        );
        assert_eq!(
            t.iter()
                .flatten()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>(),
            ["a", "1"]
        );
        assert_eq!(
            d.rendered(Severity::Warning),
            [
                "k.conf:1: warning: include \"other.conf\" not followed: the configuration was given as text with a relative name"
            ]
        );
    }

    #[test]
    fn include_without_a_pattern_is_an_error() {
        let mut d = Diagnostics::default();
        read_text(
            "include\n",
            Path::new("/nonexistent/k.conf"),
            Selection::default(),
            &mut d,
        );
        assert_eq!(
            d.rendered(Severity::Error),
            ["/nonexistent/k.conf:1: error: include needs a file name or pattern"]
        );
    }
}
