//! One kind of check behind one small trait, and what an attempt found.

use std::{fmt, future::Future, pin::Pin, time::Duration};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Up,
    /// MISC_CHECK with `misc_dynamic`: up, with this weight.
    UpWithWeight(u32),
    Down(Failure),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Refused,
    Timeout(Duration),
    Status(u16),
    DigestMismatch,
    BadResponse(String),
    Exit(i32),
    Signal,
    Io(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused => f.write_str("connection refused"),
            Failure::Timeout(d) => write!(f, "timeout after {d:?}"),
            Failure::Status(s) => write!(f, "status {s}"),
            Failure::DigestMismatch => f.write_str("digest mismatch"),
            Failure::BadResponse(w) => write!(f, "bad response: {w}"),
            Failure::Exit(c) => write!(f, "script exit {c}"),
            Failure::Signal => f.write_str("script killed by a signal"),
            Failure::Io(e) => f.write_str(e),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::ConnectionRefused => Failure::Refused,
            _ => Failure::Io(e.to_string()),
        }
    }
}

pub type Attempt<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

pub trait Probe: Send + Sync {
    /// One attempt, bounded by the probe's own timeout.
    fn run(&self) -> Attempt<'_>;
    /// For logs: "TCP_CHECK 10.0.0.11:80".
    fn describe(&self) -> String;
}

/// Runs `attempt` for at most `limit`.
pub async fn bounded(limit: Duration, attempt: impl Future<Output = Outcome>) -> Outcome {
    tokio::time::timeout(limit, attempt).await.unwrap_or(Outcome::Down(Failure::Timeout(limit)))
}
