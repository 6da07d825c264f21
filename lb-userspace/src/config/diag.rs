//! Diagnostics with the file and line they concern.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Serialize;

/// Where a block or statement starts. Serialized as `"file:line"`.
/// Every token of a file shares its name: a clone costs a count, not a copy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    pub file: Arc<Path>,
    pub line: u32,
}

impl Location {
    /// A whole file (line 0), for problems that concern no line of it.
    pub fn of(path: &Path) -> Self {
        Self {
            file: path.into(),
            line: 0,
        }
    }
}

impl Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Information, e.g. how a keepalived setting is served by xdpvs.
    Note,
    /// Read past or read differently from keepalived; the file still loads.
    Warning,
    /// The file is refused.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Note => "note",
            Self::Warning => "warning",
            Self::Error => "error",
        })
    }
}

/// One finding. Displays as `file:line: severity: message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: u32,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (file, line, sev, msg) = (self.file.display(), self.line, self.severity, &self.message);
        write!(f, "{file}:{line}: {sev}: {msg}")
    }
}

/// Findings kept in full; a hostile file could otherwise make one per line.
pub const MAX_DIAGNOSTICS: usize = 1000;

/// What the stages have found so far, in the order they found it: the first
/// [`MAX_DIAGNOSTICS`], then only counted.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>, Dropped);

/// Findings past the cap, by severity.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dropped {
    errors: usize,
    others: usize,
}

impl Diagnostics {
    /// An error kept past the cap: a limit that stopped reading, which the
    /// findings before it may otherwise hide (it happens once a load).
    pub fn limit(&mut self, at: &Location, message: impl Into<String>) {
        self.0.push(Diagnostic {
            severity: Severity::Error,
            file: at.file.to_path_buf(),
            line: at.line,
            message: message.into(),
        });
    }

    fn push(&mut self, severity: Severity, at: &Location, message: impl Into<String>) {
        if self.0.len() >= MAX_DIAGNOSTICS {
            match severity {
                Severity::Error => self.1.errors += 1,
                _ => self.1.others += 1,
            }
            return;
        }
        self.0.push(Diagnostic {
            severity,
            file: at.file.to_path_buf(),
            line: at.line,
            message: message.into(),
        });
    }

    /// The findings, sorted, with one last line counting those not kept.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.sort();
        let Dropped { errors, others } = self.1;
        if errors + others > 0 {
            let last = self.0.last().map(|d| (d.file.clone(), d.line));
            let (file, line) = last.unwrap_or_default();
            self.0.push(Diagnostic {
                severity: if errors > 0 {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                file,
                line,
                message: format!(
                    "{} more findings not shown ({errors} errors, {} warnings and notes)",
                    errors + others,
                    others
                ),
            });
        }
        self.0
    }

    pub fn error(&mut self, at: &Location, message: impl Into<String>) {
        self.push(Severity::Error, at, message);
    }

    pub fn warn(&mut self, at: &Location, message: impl Into<String>) {
        self.push(Severity::Warning, at, message);
    }

    pub fn note(&mut self, at: &Location, message: impl Into<String>) {
        self.push(Severity::Note, at, message);
    }

    /// Orders findings by file (in the order files first appear) and line,
    /// keeping the order of findings on one line.
    pub fn sort(&mut self) {
        let mut files: Vec<PathBuf> = Vec::new();
        for d in &self.0 {
            if !files.contains(&d.file) {
                files.push(d.file.clone());
            }
        }
        let rank = |d: &Diagnostic| files.iter().position(|f| *f == d.file);
        self.0.sort_by_key(|d| (rank(d), d.line));
    }

    pub fn has_errors(&self) -> bool {
        self.1.errors > 0 || self.0.iter().any(|d| d.severity == Severity::Error)
    }

    #[cfg(test)]
    pub fn rendered(&self, severity: Severity) -> Vec<String> {
        self.0
            .iter()
            .filter(|d| d.severity == severity)
            .map(ToString::to_string)
            .collect()
    }
}
