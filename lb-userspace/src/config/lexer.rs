//! Tokens of keepalived.conf, each with the file and line it came from.
//!
//! Words split on any whitespace, Unicode blanks included (files pasted from
//! web pages carry non-breaking spaces); `{` and `}` are tokens even when
//! glued to a word; `#` and `!` start a comment wherever a token could start
//! (keepalived itself misses some of these, which is why xdpvs warns);
//! `"..."` is one token. `include PATTERN` is expanded here, so every later
//! stage sees one stream with true locations.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::Arc,
};

use super::diag::{Diagnostics, Location};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    /// Came from a quoted string: never a brace or a keyword.
    pub quoted: bool,
    /// Ends its line: lets statements end at end of line, as keepalived reads them.
    pub line_end: bool,
    pub at: Location,
}

/// keepalived splits on ASCII blanks only; these are what web pages add.
fn is_blank(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200b}' | '\u{feff}' | '\u{2060}')
}

fn unusual_blank(c: char) -> bool {
    is_blank(c) && !matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Splits one file's text.
pub fn lex(text: &str, file: &Arc<Path>, diags: &mut Diagnostics) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut warned_blank = false;
    for (n, line) in text.lines().enumerate() {
        let at = Location {
            file: file.clone(),
            line: n as u32 + 1,
        };
        if !warned_blank && line.chars().any(unusual_blank) {
            diags.warn(
                &at,
                "non-ASCII blank (e.g. a non-breaking space) read as a space; keepalived would not",
            );
            warned_blank = true;
        }
        let mut chars = line.chars().peekable();
        let mut word = String::new();
        let push = |out: &mut Vec<Token>, word: &mut String, quoted: bool| {
            if !word.is_empty() || quoted {
                out.push(Token {
                    text: std::mem::take(word),
                    quoted,
                    line_end: false,
                    at: at.clone(),
                });
            }
        };
        while let Some(c) = chars.next() {
            match c {
                c if is_blank(c) => push(&mut out, &mut word, false),
                '#' | '!' if word.is_empty() => {
                    if out
                        .last()
                        .is_some_and(|t| t.text == "{" && !t.quoted && t.at.line == at.line)
                    {
                        diags.warn(
                            &at,
                            "comment right after `{`: keepalived may misread this line",
                        );
                    }
                    break;
                }
                '{' | '}' => {
                    push(&mut out, &mut word, false);
                    out.push(Token {
                        text: c.to_string(),
                        quoted: false,
                        line_end: false,
                        at: at.clone(),
                    });
                }
                '"' if word.is_empty() => {
                    let mut s = String::new();
                    let mut closed = false;
                    for q in chars.by_ref() {
                        if q == '"' {
                            closed = true;
                            break;
                        }
                        s.push(q);
                    }
                    if !closed {
                        diags.error(&at, "unterminated quoted string");
                    }
                    out.push(Token {
                        text: s,
                        quoted: true,
                        line_end: false,
                        at: at.clone(),
                    });
                }
                c => word.push(c),
            }
        }
        push(&mut out, &mut word, false);
        if let Some(last) = out.last_mut() {
            last.line_end = true;
        }
    }
    out
}

/// Reads `path` and every file it includes, in order.
pub fn lex_file(path: &Path, diags: &mut Diagnostics) -> Vec<Token> {
    let mut stack = HashSet::new();
    lex_with_includes(path, None, &mut stack, diags)
}

fn lex_with_includes(
    path: &Path,
    from: Option<&Location>,
    stack: &mut HashSet<PathBuf>,
    diags: &mut Diagnostics,
) -> Vec<Token> {
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if !stack.insert(canonical.clone()) {
        let at = from.cloned().unwrap_or_else(|| Location::of(path));
        diags.error(
            &at,
            format!("include loop: {} includes itself", path.display()),
        );
        return Vec::new();
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let at = from.cloned().unwrap_or_else(|| Location::of(path));
            diags.error(&at, format!("cannot read {}: {e}", path.display()));
            stack.remove(&canonical);
            return Vec::new();
        }
    };
    let file: Arc<Path> = Arc::from(path);
    let tokens = lex(&text, &file, diags);
    let mut out = Vec::with_capacity(tokens.len());
    let mut iter = tokens.into_iter().peekable();
    while let Some(t) = iter.next() {
        let starts_statement = out
            .last()
            .is_none_or(|p: &Token| p.line_end || p.text == "{" || p.text == "}");
        if t.text == "include" && !t.quoted && starts_statement {
            let Some(pattern) = iter.next() else {
                diags.error(&t.at, "include needs a file or pattern");
                break;
            };
            let base = path.parent().unwrap_or(Path::new("."));
            let full = base.join(&pattern.text);
            let mut matched: Vec<PathBuf> = match glob::glob(&full.to_string_lossy()) {
                Ok(paths) => paths.filter_map(Result::ok).collect(),
                Err(e) => {
                    diags.error(
                        &pattern.at,
                        format!("bad include pattern {:?}: {e}", pattern.text),
                    );
                    continue;
                }
            };
            matched.sort();
            if matched.is_empty() {
                diags.warn(
                    &pattern.at,
                    format!("include {:?} matches no file", pattern.text),
                );
            }
            for m in matched {
                out.extend(lex_with_includes(&m, Some(&pattern.at), stack, diags));
            }
            continue;
        }
        out.push(t);
    }
    stack.remove(&canonical);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> (Vec<String>, Diagnostics) {
        let mut d = Diagnostics::default();
        let t = lex(text, &Arc::from(Path::new("t.conf")), &mut d);
        (t.into_iter().map(|t| t.text).collect(), d)
    }

    #[test]
    fn braces_split_from_words_and_comments_anywhere() {
        let (w, d) = words("real_server 10.0.0.1 80{ # main\n  weight 2 ! two\n}\n");
        assert_eq!(
            w,
            ["real_server", "10.0.0.1", "80", "{", "weight", "2", "}"]
        );
        assert_eq!(d.warnings().count(), 1, "comment after {{ is warned about");
    }

    #[test]
    fn unicode_blanks_and_crlf_are_spaces() {
        let (w, d) = words("priority\u{a0}100\r\nstate\u{3000}MASTER\r\n");
        assert_eq!(w, ["priority", "100", "state", "MASTER"]);
        assert_eq!(d.warnings().count(), 1);
    }

    #[test]
    fn quoted_strings_keep_spaces_and_braces() {
        let (w, _) = words("script \"/bin/check --x {y}\"\n");
        assert_eq!(w, ["script", "/bin/check --x {y}"]);
    }

    #[test]
    fn unterminated_quote_is_an_error_with_its_line() {
        let (_, d) = words("a\nscript \"/bin/x\n");
        let e: Vec<String> = d.errors().map(|e| e.to_string()).collect();
        assert_eq!(e, ["t.conf:2: error: unterminated quoted string"]);
    }
}
