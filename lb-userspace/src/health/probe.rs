//! One kind of check behind one small trait, and what an attempt found.

use std::{future::Future, pin::Pin, time::Duration};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Up,
    /// MISC_CHECK with `misc_dynamic`: up, with this weight.
    UpWithWeight(u32),
    Down(Failure),
}

/// Why an attempt failed; the text goes to logs and `xdpvs ctl status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("connection refused")]
    Refused,
    #[error("timeout after {0:?}")]
    Timeout(Duration),
    #[error("status {0}")]
    Status(u16),
    #[error("digest mismatch")]
    DigestMismatch,
    #[error("bad response: {0}")]
    BadResponse(String),
    #[error("script exit {0}")]
    Exit(i32),
    #[error("script killed by a signal")]
    Signal,
    #[error("{0}")]
    Io(String),
    /// The check could not run for want of the daemon's own resources: it
    /// says nothing about the real, so it is retried and never counted.
    #[error("could not run the check (a local error, not the real's): {0}")]
    Local(String),
}

impl Failure {
    pub fn is_local(&self) -> bool {
        matches!(self, Failure::Local(_))
    }
}

/// Whether an error is the daemon's own lack of resources (descriptors,
/// memory, buffers, processes) rather than anything the real did. EAGAIN
/// is what socket() and fork() return when a kernel table is full; an
/// established connection never sees it (tokio retries it).
pub fn is_local_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS | libc::EAGAIN)
    ) || e.kind() == std::io::ErrorKind::OutOfMemory
}

/// The one place where an I/O error becomes a reason: every check that
/// connects or spawns goes through it, so a local error is never a real's.
impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        if is_local_error(&e) {
            return Failure::Local(e.to_string());
        }
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
    /// Why the check cannot run on this host at all (an ICMP socket
    /// refused), asked once at start; `None`: it can.
    fn unavailable(&self) -> Option<String> {
        None
    }
}

/// Runs `attempt` for at most `limit`.
pub async fn bounded(limit: Duration, attempt: impl Future<Output = Outcome>) -> Outcome {
    tokio::time::timeout(limit, attempt)
        .await
        .unwrap_or(Outcome::Down(Failure::Timeout(limit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_keepalived_logs_them() {
        assert_eq!(Failure::Refused.to_string(), "connection refused");
        assert_eq!(
            Failure::Timeout(Duration::from_secs(2)).to_string(),
            "timeout after 2s"
        );
        assert_eq!(
            Failure::Timeout(Duration::from_millis(200)).to_string(),
            "timeout after 200ms"
        );
        assert_eq!(Failure::Status(500).to_string(), "status 500");
        assert_eq!(Failure::Exit(1).to_string(), "script exit 1");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(Failure::from(refused), Failure::Refused);
        assert!(
            matches!(Failure::from(std::io::Error::other("boom")), Failure::Io(m) if m == "boom")
        );
    }

    #[test]
    fn the_daemons_own_shortages_are_local_errors() {
        for errno in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOMEM,
            libc::ENOBUFS,
            libc::EAGAIN,
        ] {
            let f = Failure::from(std::io::Error::from_raw_os_error(errno));
            assert!(f.is_local(), "errno {errno}: {f}");
        }
        assert_eq!(
            Failure::from(std::io::Error::from_raw_os_error(libc::EMFILE)).to_string(),
            "could not run the check (a local error, not the real's): \
             Too many open files (os error 24)"
        );
        assert!(Failure::from(std::io::Error::from(std::io::ErrorKind::OutOfMemory)).is_local());
        // What the network or the real answers stays the real's failure.
        for errno in [
            libc::ECONNREFUSED,
            libc::EHOSTUNREACH,
            libc::ENETUNREACH,
            libc::ETIMEDOUT,
            libc::ECONNRESET,
            libc::EADDRNOTAVAIL,
        ] {
            let f = Failure::from(std::io::Error::from_raw_os_error(errno));
            assert!(!f.is_local(), "errno {errno}: {f}");
        }
    }

    #[tokio::test]
    async fn bounded_stops_a_hung_attempt() {
        let hung = std::future::pending::<Outcome>();
        let limit = Duration::from_millis(50);
        assert_eq!(
            bounded(limit, hung).await,
            Outcome::Down(Failure::Timeout(limit))
        );
        assert_eq!(bounded(limit, async { Outcome::Up }).await, Outcome::Up);
    }
}
