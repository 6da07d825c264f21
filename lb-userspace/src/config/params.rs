//! keepalived.conf(5) "ADVANCED CONFIGURATION", read line by line before a
//! line becomes tokens: `@ID` / `@^ID` conditional lines, `$NAME=value`
//! definitions (multi-line with a trailing `\`), `${NAME}` / `$NAME`
//! substitution at use, recursive and bounded; `~SEQ`/`~LST` refused.

use std::path::Path;

use super::{
    diag::Location,
    lexer::is_blank,
    limits::{MAX_EXPANDED_LINE, MAX_SUBSTITUTION_DEPTH, MAX_TOTAL_BYTES},
    reader::{Line, Reader},
};

impl Reader<'_> {
    /// One line through conditions, definitions and substitution, then tokens.
    pub(super) fn line(
        &mut self,
        mut text: &str,
        at: &Location,
        base: Option<&Path>,
        depth: usize,
    ) -> Line {
        loop {
            let trimmed = text.trim_start_matches(is_blank);
            if !trimmed.starts_with(['@', '~']) && !trimmed.contains('$') {
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
        if self.exhausted {
            // Already refused at the limit: reading on would only repeat it.
            return Some(String::new());
        }
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
            if out.len() > MAX_EXPANDED_LINE {
                self.diags.error(
                    at,
                    format!(
                        "parameter substitution makes this line longer than {MAX_EXPANDED_LINE} bytes; line not read"
                    ),
                );
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

/// A definition's value without a trailing comment (a `#` or `!` outside
/// quotes and not escaped by `\`, as the lexer reads them).
fn without_comment(value: &str) -> &str {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            '"' if !escaped => quoted = !quoted,
            '#' | '!' if !escaped && !quoted => return &value[..i],
            _ => {}
        }
        escaped = c == '\\' && !escaped;
    }
    value
}
