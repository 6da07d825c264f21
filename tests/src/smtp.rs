//! Mail servers for the `smtp_alert` tests: a real one (aiosmtpd, Debian's
//! python3-aiosmtpd, storing each mail in a maildir) and one that accepts
//! connections and never says a word.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

use crate::netns::{Lab, in_netns, wait_for};

/// aiosmtpd serving `addr` in `ns`, every mail a file in its maildir.
pub struct Sink {
    dir: PathBuf,
}

impl Sink {
    pub fn start(lab: &mut Lab, ns: &str, addr: SocketAddr) -> Result<Self> {
        let dir = lab.dir.join("maildir");
        let listen = addr.to_string();
        lab.spawn(
            "aiosmtpd",
            ns,
            "/usr/bin/python3".as_ref(),
            &[
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &listen,
                "-c",
                "aiosmtpd.handlers.Mailbox",
                &dir.to_string_lossy(),
            ],
        )?;
        let ns = ns.to_string();
        wait_for(Duration::from_secs(10), || {
            lab.alive("aiosmtpd")?;
            in_netns(&ns, move || {
                TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            })?
            .map(drop)
            .context("aiosmtpd not listening")
        })
        .with_context(|| format!("aiosmtpd did not start:\n{}", lab.log("aiosmtpd")))?;
        Ok(Self { dir })
    }

    /// Every mail received so far, in arrival order (maildir names start
    /// with the time).
    pub fn mails(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("new")) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        paths
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|m| unfold(&m))
            .collect()
    }

    /// Waits for a mail with this exact subject; returns it whole.
    pub fn wait_subject(&self, subject: &str, timeout: Duration) -> Result<String> {
        let line = format!("Subject: {subject}\n");
        wait_for(timeout, || {
            match self.mails().into_iter().find(|m| m.contains(&line)) {
                Some(m) => Ok(m),
                None => bail!(
                    "no mail {subject:?}; received:\n{}",
                    self.subjects().join("\n")
                ),
            }
        })
    }

    pub fn subjects(&self) -> Vec<String> {
        self.mails()
            .iter()
            .filter_map(|m| m.lines().find_map(|l| l.strip_prefix("Subject: ")))
            .map(String::from)
            .collect()
    }
}

/// The mail with its folded header lines (RFC 5322 2.2.3: a long Subject
/// goes on over lines that start with a blank) made one line each again.
fn unfold(mail: &str) -> String {
    let (head, body) = mail.split_once("\n\n").unwrap_or((mail, ""));
    format!(
        "{}\n\n{body}",
        head.replace("\n ", " ").replace("\n\t", "\t")
    )
}

/// A listening socket in `ns` whose connections are accepted, held and
/// never answered: a mail server that hangs after the TCP handshake.
pub struct Silent {
    pub accepted: Arc<AtomicUsize>,
}

impl Silent {
    pub fn start(ns: &str, addr: SocketAddr) -> Result<Self> {
        let listener = in_netns(ns, move || TcpListener::bind(addr))??;
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        // Ends with the test process; the connections stay open till then.
        thread::spawn(move || {
            let mut held = Vec::new();
            for s in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(s);
            }
        });
        Ok(Self { accepted })
    }

    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}
