//! Tokens of keepalived.conf, each with the file and line it came from.
//!
//! Words split on any whitespace, Unicode blanks included (files pasted from
//! web pages carry non-breaking spaces, inside quoted strings too); `{` and
//! `}` are tokens even when glued to a word; `#` and `!` start a comment
//! wherever a token could start (keepalived.conf(5): "Comments start with '#'
//! or '!' to the end of the line and can start anywhere in a line");
//! `"..."` is one token; `keyword=value` is read as `keyword value`, with a
//! warning.
//!
//! Each line is first read as keepalived.conf(5) "ADVANCED CONFIGURATION"
//! says: `@ID` / `@^ID` conditional lines, `$NAME=value` definitions
//! (multi-line with a trailing `\`) and `${NAME}` / `$NAME` substitution.
//! `include PATTERN` is expanded here, in file order, so every later stage
//! sees one stream with true locations. Every bound in `limits` holds here:
//! files are opened without blocking and checked before they are read.

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
    limits::{
        MAX_FILE_BYTES, MAX_FILES, MAX_INCLUDE_DEPTH, MAX_SUBSTITUTION_DEPTH, MAX_TOTAL_BYTES,
    },
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    /// Came from a quoted string: never a brace or a keyword.
    pub quoted: bool,
    /// Ends its line: statements end at end of line, as keepalived reads them.
    pub line_end: bool,
    pub at: Location,
}

impl Token {
    pub fn is(&self, word: &str) -> bool {
        !self.quoted && self.text == word
    }
}

/// Zero-width blanks are not `char::is_whitespace` but split words all the same.
fn is_blank(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200b}' | '\u{feff}' | '\u{2060}')
}

/// keepalived splits on ASCII blanks only; these are what web pages add.
fn unusual_blank(c: char) -> bool {
    is_blank(c) && !matches!(c, ' ' | '\t' | '\r' | '\n' | '\u{b}' | '\u{c}')
}

/// Warns about the first Unicode blank of a file, in code or in quotes alike.
fn warn_blank(line: &str, at: &Location, warned: &mut bool, diags: &mut Diagnostics) {
    if *warned {
        return;
    }
    if let Some(c) = line.chars().find(|&c| unusual_blank(c)) {
        let msg = format!(
            "Unicode blank U+{:04X} read as a space (keepalived would read it as part of a word); further ones in this file are read the same way",
            u32::from(c)
        );
        diags.warn(at, msg);
        *warned = true;
    }
}

/// Splits one file's text as it stands: no includes, conditions or parameters.
#[cfg(test)]
pub fn lex(text: &str, file: &Path, diags: &mut Diagnostics) -> Vec<Token> {
    let mut out = Vec::new();
    let mut warned = false;
    let file: Arc<Path> = file.into();
    let mut start = true;
    for (n, line) in text.lines().enumerate() {
        let at = line_at(&file, n);
        warn_blank(line, &at, &mut warned, diags);
        for t in lex_line(line, &at, diags) {
            let s = start;
            start = t.line_end || t.is("{") || t.is("}");
            push_split(t, s, &mut out, diags);
        }
    }
    out
}

/// `keyword=value` starting a statement is read as `keyword value`, with a warning.
fn push_split(t: Token, start: bool, out: &mut Vec<Token>, diags: &mut Diagnostics) {
    match t.text.split_once('=') {
        Some((k, v)) if start && !t.quoted && !k.is_empty() => {
            diags.warn(&t.at, format!("`{}` read as `{k} {v}`", t.text));
            let line_end = t.line_end && v.is_empty();
            out.push(Token {
                text: k.to_string(),
                quoted: false,
                line_end,
                at: t.at.clone(),
            });
            if !v.is_empty() {
                out.push(Token {
                    text: v.to_string(),
                    quoted: false,
                    line_end: t.line_end,
                    at: t.at,
                });
            }
        }
        _ => out.push(t),
    }
}

fn line_at(file: &Arc<Path>, index: usize) -> Location {
    Location {
        file: Arc::clone(file),
        line: u32::try_from(index + 1).unwrap_or(u32::MAX),
    }
}

/// The tokens of one line, the last marked as ending it.
fn lex_line(line: &str, at: &Location, diags: &mut Diagnostics) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut chars = line.char_indices();
    let mut word = String::new();
    let token = |text: String, quoted: bool| Token {
        text,
        quoted,
        line_end: false,
        at: at.clone(),
    };
    let flush = |out: &mut Vec<Token>, word: &mut String| {
        if !word.is_empty() {
            out.push(token(std::mem::take(word), false));
        }
    };
    while let Some((col, c)) = chars.next() {
        match c {
            c if is_blank(c) => flush(&mut out, &mut word),
            '#' | '!' if word.is_empty() => {
                if out.last().is_some_and(|t| t.is("{")) {
                    diags.warn(
                        at,
                        "comment right after `{`: read as a comment; some keepalived versions read it as a keyword",
                    );
                }
                break;
            }
            '{' | '}' => {
                flush(&mut out, &mut word);
                out.push(token(c.to_string(), false));
            }
            '"' if word.is_empty() => {
                let mut s = String::new();
                let mut closed = false;
                for (_, q) in chars.by_ref() {
                    match q {
                        '"' => {
                            closed = true;
                            break;
                        }
                        // A pasted `killall\u{a0}-0 nginx` is a command with arguments.
                        q if unusual_blank(q) => s.push(' '),
                        q => s.push(q),
                    }
                }
                if !closed {
                    let column = line[..col].chars().count() + 1;
                    diags.error(
                        at,
                        format!("unterminated quoted string starting at column {column}"),
                    );
                }
                out.push(token(s, true));
            }
            c => word.push(c),
        }
    }
    flush(&mut out, &mut word);
    if let Some(last) = out.last_mut() {
        last.line_end = true;
    }
    out
}

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
struct Reader<'a> {
    diags: &'a mut Diagnostics,
    selection: Selection<'a>,
    /// The files being read, outermost first (canonical paths).
    stack: Vec<PathBuf>,
    files: usize,
    bytes: u64,
    /// A file-count or size limit was hit: further includes are not followed.
    exhausted: bool,
    /// `$NAME=` definitions: the value's lines.
    params: HashMap<String, Vec<String>>,
    /// Whether the next token starts a statement (where `include` counts).
    starts_statement: bool,
    out: Vec<Token>,
}

/// A line, after its condition: read, or a definition wanting more lines.
enum Line {
    Done,
    /// `$NAME=...\`: the next lines continue the value of NAME.
    Continues(String),
}

/// Reads `path` and every file it includes, in order.
pub fn read_file(path: &Path, selection: Selection, diags: &mut Diagnostics) -> Vec<Token> {
    let mut r = Reader::new(selection, diags);
    r.file(path, &Location::of(path));
    r.out
}

/// Splits `text`, which claims to be the file `name`. Includes are followed
/// relative to `name`'s directory when `name` is absolute; with a relative
/// name they would depend on the working directory, so they are not followed.
pub fn read_text(
    text: &str,
    name: &Path,
    selection: Selection,
    diags: &mut Diagnostics,
) -> Vec<Token> {
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

    /// One line through conditions, definitions and substitution, then tokens.
    fn line(&mut self, mut text: &str, at: &Location, base: Option<&Path>, depth: usize) -> Line {
        loop {
            let trimmed = text.trim_start_matches(is_blank);
            if !trimmed.starts_with(['@', '$', '~']) && !trimmed.contains('$') {
                self.tokens(text, at, base);
                return Line::Done;
            }
            if let Some(rest) = trimmed.strip_prefix('@') {
                let (negated, rest) = match rest.strip_prefix('^') {
                    Some(r) => (true, r),
                    None => (false, rest),
                };
                let end = rest.find(is_blank).unwrap_or(rest.len());
                let (id, rest) = rest.split_at(end);
                if (self.selection.config_id == Some(id)) == negated {
                    return Line::Done;
                }
                text = rest;
                continue;
            }
            if trimmed.starts_with("~SEQ") || trimmed.starts_with("~LST") {
                self.diags.error(
                    at,
                    "~SEQ and ~LST lines are not supported by xdpvs: write out the lines they stand for",
                );
                return Line::Done;
            }
            if let Some((name, value)) = definition(trimmed) {
                let value = without_comment(value).trim();
                return match value.strip_suffix('\\') {
                    Some(first) => {
                        let first = first.trim();
                        let lines = if first.is_empty() {
                            Vec::new()
                        } else {
                            vec![first.to_string()]
                        };
                        self.params.insert(name.to_string(), lines);
                        Line::Continues(name.to_string())
                    }
                    None => {
                        self.params
                            .insert(name.to_string(), vec![value.to_string()]);
                        Line::Done
                    }
                };
            }
            let Some(replaced) = self.substitute(text, at) else {
                self.tokens(text, at, base);
                return Line::Done;
            };
            if depth >= MAX_SUBSTITUTION_DEPTH {
                self.diags.error(
                    at,
                    format!(
                        "parameters nested more than {MAX_SUBSTITUTION_DEPTH} deep (does a parameter use itself?); line not read"
                    ),
                );
                return Line::Done;
            }
            // Each line of a multi-line value is read in turn, so a definition
            // within it holds for the lines after it.
            for piece in replaced.split('\n') {
                if let Line::Continues(name) = self.line(piece, at, base, depth + 1) {
                    self.diags.warn(
                        at,
                        format!("${name}=...\\ inside a parameter's value: read as one line"),
                    );
                }
            }
            return Line::Done;
        }
    }

    /// A parameter's value, its lines joined by newlines; `_PWD` and
    /// `_INSTANCE` are keepalived's predefined ones.
    fn value(&self, name: &str, at: &Location) -> Option<String> {
        match name {
            "_PWD" => Some(at.file.parent()?.display().to_string()),
            "_INSTANCE" => self.selection.config_id.map(String::from),
            _ => self.params.get(name).map(|lines| lines.join("\n")),
        }
    }

    /// One pass of `${NAME}` and `$NAME` (followed by a blank or the end)
    /// replacements; None when nothing is defined to replace. Undefined
    /// names stay as written, so a script's `$1` is left alone.
    fn substitute(&mut self, text: &str, at: &Location) -> Option<String> {
        let mut out = String::new();
        let mut changed = false;
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let found = if let Some(inner) = after.strip_prefix('{') {
                inner
                    .find('}')
                    .and_then(|end| Some((self.value(&inner[..end], at)?, &inner[end + 1..])))
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                let (name, tail) = after.split_at(end);
                let ends = tail.chars().next().is_none_or(is_blank);
                (is_name(name) && ends)
                    .then(|| self.value(name, at).map(|v| (v, tail)))
                    .flatten()
            };
            match found {
                Some((value, tail)) => {
                    out.push_str(&value);
                    rest = tail;
                    changed = true;
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
            if self.bytes + u64::try_from(out.len()).unwrap_or(u64::MAX) > MAX_TOTAL_BYTES {
                self.diags.limit(
                    at,
                    format!(
                        "parameter substitution brings what is read to more than {MAX_TOTAL_BYTES} bytes; line not read"
                    ),
                );
                self.exhausted = true;
                return Some(String::new());
            }
        }
        if !changed {
            return None;
        }
        out.push_str(rest);
        self.bytes += u64::try_from(out.len()).unwrap_or(u64::MAX);
        Some(out)
    }

    /// Splits a line into tokens and replaces an `include PATTERN` statement
    /// with the files it names.
    fn tokens(&mut self, text: &str, at: &Location, base: Option<&Path>) {
        let mut iter = lex_line(text, at, self.diags).into_iter();
        while let Some(t) = iter.next() {
            let start = self.starts_statement;
            self.starts_statement = t.line_end || t.is("{") || t.is("}");
            if !(start && is_include(&t)) {
                push_split(t, start, &mut self.out, self.diags);
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
        let wildcard = glob::Pattern::escape(&full) != full;
        let mut dirs = 0;
        let mut matched: Vec<PathBuf> = match glob::glob(&full) {
            // One past the limit is enough to know it is passed.
            Ok(paths) => paths
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
                .take(MAX_FILES - self.files.min(MAX_FILES) + 1)
                .collect(),
            Err(e) => {
                self.diags.error(
                    &pattern.at,
                    format!("include {:?}: bad pattern: {e}", pattern.text),
                );
                return;
            }
        };
        matched.sort();
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

/// `$NAME=value` with only blanks before it: the name and the value.
fn definition(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.strip_prefix('$')?.split_once('=')?;
    is_name(name).then_some((name, value))
}

/// keepalived.conf(5): "any combination of A-Za-z0-9 and _, but cannot start with a digit".
fn is_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| !c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A definition's value without a trailing comment (a `#` or `!` that
/// starts a word outside quotes, as the lexer reads them).
fn without_comment(value: &str) -> &str {
    let mut quoted = false;
    let mut word_start = true;
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' | '!' if word_start && !quoted => return &value[..i],
            _ => {}
        }
        word_start = is_blank(c);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::diag::Severity;

    fn words(text: &str) -> (Vec<String>, Diagnostics) {
        let mut d = Diagnostics::default();
        let t = lex(text, Path::new("t.conf"), &mut d);
        (t.into_iter().map(|t| t.text).collect(), d)
    }

    fn lines(text: &str) -> Vec<(u32, bool)> {
        let mut d = Diagnostics::default();
        lex(text, Path::new("t.conf"), &mut d)
            .iter()
            .map(|t| (t.at.line, t.line_end))
            .collect()
    }

    #[test]
    fn braces_split_from_words() {
        let (w, d) = words("real_server 10.0.0.1 80{\nweight 2}\n}{\n");
        assert_eq!(
            w,
            [
                "real_server",
                "10.0.0.1",
                "80",
                "{",
                "weight",
                "2",
                "}",
                "}",
                "{"
            ]
        );
        assert!(d.0.is_empty());
    }

    #[test]
    fn comments_anywhere_a_token_starts() {
        let (w, d) = words("# top\n! bang\na 1 # tail\nb 2 ! tail\nc x#y\n  # indented\n");
        assert_eq!(w, ["a", "1", "b", "2", "c", "x#y"]);
        assert!(d.0.is_empty());
    }

    #[test]
    fn comment_right_after_brace_is_a_comment_with_a_warning() {
        let (w, d) = words("vrrp_instance VI_1 { # main\n}\nx {! bang\n}\n");
        assert_eq!(w, ["vrrp_instance", "VI_1", "{", "}", "x", "{", "}"]);
        assert_eq!(
            d.rendered(Severity::Warning),
            [
                "t.conf:1: warning: comment right after `{`: read as a comment; some keepalived versions read it as a keyword",
                "t.conf:3: warning: comment right after `{`: read as a comment; some keepalived versions read it as a keyword"
            ]
        );
    }

    #[test]
    fn comments_in_any_language() {
        let (w, _) = words("priority 100 # 优先级,主节点 — für den Master\n! Конфигурация\n");
        assert_eq!(w, ["priority", "100"]);
    }

    #[test]
    fn unicode_blanks_crlf_and_tabs_are_spaces() {
        let (w, d) = words(
            "priority\u{a0}100\r\nstate\u{3000}MASTER\r\n\tinterface\u{2003}eth0\u{200b}\r\n\u{feff}x\n",
        );
        assert_eq!(
            w,
            [
                "priority",
                "100",
                "state",
                "MASTER",
                "interface",
                "eth0",
                "x"
            ]
        );
        assert_eq!(
            d.rendered(Severity::Warning),
            [
                "t.conf:1: warning: Unicode blank U+00A0 read as a space (keepalived would read it as part of a word); further ones in this file are read the same way"
            ]
        );
    }

    #[test]
    fn plain_tabs_and_crlf_say_nothing() {
        let (w, d) = words("\tpriority\t100\r\n");
        assert_eq!(w, ["priority", "100"]);
        assert!(d.0.is_empty());
    }

    #[test]
    fn quoted_strings_keep_spaces_braces_and_comment_signs() {
        let (w, _) = words("script \"/bin/check --x {y} # z\" 2\nnotify \"\"\n");
        assert_eq!(w, ["script", "/bin/check --x {y} # z", "2", "notify", ""]);
    }

    #[test]
    fn unterminated_quote_is_an_error_with_line_and_column() {
        let (_, d) = words("a\n  script \"/bin/x\n");
        assert_eq!(
            d.rendered(Severity::Error),
            ["t.conf:2: error: unterminated quoted string starting at column 10"]
        );
    }

    #[test]
    fn tokens_know_their_line_and_whether_they_end_it() {
        assert_eq!(
            lines("a b\n\n# c\nd {\n}\n"),
            [(1, false), (1, true), (4, false), (4, true), (5, true)]
        );
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
            t.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(),
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
