//! Tokens of keepalived.conf, each with the file and line it came from.
//!
//! Words split on any whitespace, Unicode blanks included (files pasted from
//! web pages carry non-breaking spaces); `{` and `}` are tokens even when
//! glued to a word; `#` and `!` start a comment wherever a token could start
//! (keepalived.conf(5): "Comments start with '#' or '!' to the end of the
//! line and can start anywhere in a line"); `"..."` is one token.
//! `include PATTERN` is expanded here, so every later stage sees one stream
//! with true locations.

use std::path::{Path, PathBuf};

use super::diag::{Diagnostics, Location};

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

/// Splits one file's text; `include` is left as a word.
pub fn lex(text: &str, file: &Path, diags: &mut Diagnostics) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut warned_blank = false;
    for (n, line) in text.lines().enumerate() {
        let at = Location {
            file: file.to_path_buf(),
            line: u32::try_from(n + 1).unwrap_or(u32::MAX),
        };
        if let Some(c) = line
            .chars()
            .find(|&c| unusual_blank(c))
            .filter(|_| !warned_blank)
        {
            let msg = format!(
                "Unicode blank U+{:04X} read as a space (keepalived would read it as part of a word); further ones in this file are read the same way",
                u32::from(c)
            );
            diags.warn(&at, msg);
            warned_blank = true;
        }
        lex_line(line, &at, &mut out, diags);
        if let Some(last) = out
            .last_mut()
            .filter(|t| t.at.line == at.line && t.at.file == at.file)
        {
            last.line_end = true;
        }
    }
    out
}

fn lex_line(line: &str, at: &Location, out: &mut Vec<Token>, diags: &mut Diagnostics) {
    let mut chars = line.char_indices().peekable();
    let mut word = String::new();
    let line_start = out.len();
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
            c if is_blank(c) => flush(out, &mut word),
            '#' | '!' if word.is_empty() => {
                if out.len() > line_start && out.last().is_some_and(|t| t.is("{")) {
                    diags.warn(
                        at,
                        "comment right after `{`: read as a comment; some keepalived versions read it as a keyword",
                    );
                }
                break;
            }
            '{' | '}' => {
                flush(out, &mut word);
                out.push(token(c.to_string(), false));
            }
            '"' if word.is_empty() => {
                let mut s = String::new();
                let mut closed = false;
                for (_, q) in chars.by_ref() {
                    if q == '"' {
                        closed = true;
                        break;
                    }
                    s.push(q);
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
    flush(out, &mut word);
}

/// Words that include other files (keepalived's variants only add checks).
fn is_include(t: &Token) -> bool {
    [
        "include", "includer", "includem", "includew", "includeb", "includea",
    ]
    .iter()
    .any(|w| t.is(w))
}

/// Follows includes; `stack` holds the files being read, outermost first.
struct Includer<'d> {
    stack: Vec<PathBuf>,
    diags: &'d mut Diagnostics,
}

/// Reads `path` and every file it includes, in order.
pub fn read_file(path: &Path, diags: &mut Diagnostics) -> Vec<Token> {
    let mut inc = Includer {
        stack: Vec::new(),
        diags,
    };
    inc.file(path, &Location::of(path))
}

/// Splits `text`, which claims to be the file `name`. Includes are followed
/// relative to `name`'s directory when `name` is absolute; with a relative
/// name they would depend on the working directory, so they are not followed.
pub fn read_text(text: &str, name: &Path, diags: &mut Diagnostics) -> Vec<Token> {
    let tokens = lex(text, name, diags);
    let mut inc = Includer {
        stack: vec![name.canonicalize().unwrap_or_else(|_| name.to_path_buf())],
        diags,
    };
    let base = name.parent().filter(|p| p.is_absolute());
    inc.expand(tokens, base)
}

impl Includer<'_> {
    fn file(&mut self, path: &Path, from: &Location) -> Vec<Token> {
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
            return Vec::new();
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.diags
                    .error(from, format!("cannot read {}: {e}", path.display()));
                return Vec::new();
            }
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
        let tokens = lex(&text, path, self.diags);
        self.stack.push(canonical);
        let out = self.expand(tokens, Some(path.parent().unwrap_or(Path::new("."))));
        self.stack.pop();
        out
    }

    /// Replaces each `include PATTERN` statement with the files it names;
    /// `base` is the including file's directory (None: includes not followed).
    fn expand(&mut self, tokens: Vec<Token>, base: Option<&Path>) -> Vec<Token> {
        let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
        let mut iter = tokens.into_iter();
        let mut starts_statement = true;
        while let Some(t) = iter.next() {
            let start = starts_statement;
            starts_statement = t.line_end || t.is("{") || t.is("}");
            if !(start && is_include(&t)) {
                out.push(t);
                continue;
            }
            let pattern = match iter.next() {
                Some(p) if !t.line_end => p,
                other => {
                    self.diags
                        .error(&t.at, format!("{} needs a file name or pattern", t.text));
                    // A brace that happened to follow stays in the stream.
                    out.extend(other);
                    continue;
                }
            };
            starts_statement = pattern.line_end;
            if !pattern.line_end {
                self.diags.warn(
                    &pattern.at,
                    format!(
                        "{}: only one pattern is read; the rest of the line is ignored",
                        t.text
                    ),
                );
                for rest in iter.by_ref() {
                    if rest.line_end {
                        starts_statement = true;
                        break;
                    }
                }
            }
            match base {
                Some(base) => self.pattern(base, &pattern, &mut out),
                None => self.diags.warn(
                    &pattern.at,
                    format!(
                        "include {:?} not followed: the configuration was given as text with a relative name",
                        pattern.text
                    ),
                ),
            }
        }
        out
    }

    fn pattern(&mut self, base: &Path, pattern: &Token, out: &mut Vec<Token>) {
        let full = base.join(&pattern.text);
        let mut matched: Vec<PathBuf> = match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => paths
                .filter_map(Result::ok)
                .filter(|p| !p.is_dir())
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
        if matched.is_empty() {
            // keepalived carries on too.
            self.diags.warn(
                &pattern.at,
                format!("include {:?} matches no file", pattern.text),
            );
        }
        for m in matched {
            out.extend(self.file(&m, &pattern.at));
        }
    }
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
        let t = read_text("include other.conf\na 1\n", Path::new("k.conf"), &mut d);
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
        read_text("include\n", Path::new("/nonexistent/k.conf"), &mut d);
        assert_eq!(
            d.rendered(Severity::Error),
            ["/nonexistent/k.conf:1: error: include needs a file name or pattern"]
        );
    }
}
