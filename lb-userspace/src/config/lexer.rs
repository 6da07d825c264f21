//! Tokens of keepalived.conf, each with the file and line it came from.
//!
//! Words split on any whitespace, Unicode blanks included (files pasted from
//! web pages carry non-breaking spaces, inside quoted strings too); `{` and
//! `}` are tokens even when glued to a word; `#` and `!` start a comment
//! wherever a token could start (keepalived.conf(5): "Comments start with '#'
//! or '!' to the end of the line and can start anywhere in a line");
//! `"..."` is one token; `keyword=value` is read as `keyword value`, with a
//! warning. `reader` feeds this one line at a time.

use std::{path::Path, sync::Arc};

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
pub(super) fn is_blank(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200b}' | '\u{feff}' | '\u{2060}')
}

/// keepalived splits on ASCII blanks only; these are what web pages add.
pub(super) fn unusual_blank(c: char) -> bool {
    is_blank(c) && !matches!(c, ' ' | '\t' | '\r' | '\n' | '\u{b}' | '\u{c}')
}

/// Warns about the first Unicode blank of a file, in code or in quotes alike.
pub(super) fn warn_blank(line: &str, at: &Location, warned: &mut bool, diags: &mut Diagnostics) {
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
pub(super) fn push_split(t: Token, start: bool, out: &mut Vec<Token>, diags: &mut Diagnostics) {
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

pub(super) fn line_at(file: &Arc<Path>, index: usize) -> Location {
    Location {
        file: Arc::clone(file),
        line: u32::try_from(index + 1).unwrap_or(u32::MAX),
    }
}

/// The tokens of one line, the last marked as ending it.
pub(super) fn lex_line(line: &str, at: &Location, diags: &mut Diagnostics) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut chars = line.char_indices().peekable();
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
            // keepalived's `\#` and `\!`: the character itself, no comment.
            '\\' if matches!(chars.peek(), Some((_, '#' | '!'))) => {
                word.extend(chars.next().map(|(_, c)| c));
            }
            // A comment starts at any `#` or `!` outside quotes, inside a
            // word too (keepalived's `decomment`): `auth_pass Secr3t!` is
            // `Secr3t` to keepalived, so to its peer as well.
            '#' | '!' => {
                if !word.is_empty() {
                    diags.warn(
                        at,
                        format!(
                            "`{c}` in `{word}{c}...` starts a comment, as in keepalived: the rest of the \
                             line is ignored (write `\\{c}` for the character)"
                        ),
                    );
                } else if out.last().is_some_and(|t| t.is("{")) {
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
        let (w, d) = words("# top\n! bang\na 1 # tail\nb 2 ! tail\n  # indented\n");
        assert_eq!(w, ["a", "1", "b", "2"]);
        assert!(d.0.is_empty());
    }

    #[test]
    fn a_comment_starts_inside_a_word_too_unless_escaped() {
        // keepalived's decomment: `Secr3t!` is `Secr3t` to a keepalived peer.
        let (w, d) = words("auth_pass Secr3t!\nc x#y z\nd a\\#b c\\!\ne \"q#r\"\n");
        assert_eq!(
            w,
            [
                "auth_pass",
                "Secr3t",
                "c",
                "x",
                "d",
                "a#b",
                "c!",
                "e",
                "q#r"
            ]
        );
        let warnings: Vec<String> = d.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "t.conf:1: warning: `!` in `Secr3t!...` starts a comment, as in keepalived: the rest of the line is ignored (write `\\!` for the character)",
                "t.conf:2: warning: `#` in `x#...` starts a comment, as in keepalived: the rest of the line is ignored (write `\\#` for the character)",
            ]
        );
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
}
