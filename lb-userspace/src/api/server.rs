//! The admin Unix socket (mode 0600): reads requests, hands them to the
//! daemon's main loop, writes the answers.

use std::{fs, os::unix::fs::PermissionsExt as _, path::Path};

use anyhow::{Context as _, Result};
use log::warn;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
};

use super::protocol::{Request, Response};

pub type ApiCall = (Request, oneshot::Sender<Response>);

/// Binds `path`, replacing a stale socket.
pub fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener> {
    if path.exists() {
        fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("binding {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves `listener` (bound here, or inherited from the daemon this one
/// upgraded) until the daemon ends.
pub fn spawn(
    listener: std::os::unix::net::UnixListener,
    calls: mpsc::Sender<ApiCall>,
) -> Result<()> {
    listener.set_nonblocking(true)?;
    let listener = UnixListener::from_std(listener)?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, calls.clone()));
                }
                Err(e) => warn!("admin socket: {e}"),
            }
        }
    });
    Ok(())
}

async fn serve(stream: UnixStream, calls: mpsc::Sender<ApiCall>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(request) => {
                let (tx, rx) = oneshot::channel();
                if calls.send((request, tx)).await.is_err() {
                    return;
                }
                rx.await.unwrap_or(Response::Error {
                    message: "the daemon is stopping".into(),
                })
            }
            Err(e) => Response::Error {
                message: format!("bad request: {e}"),
            },
        };
        let Ok(mut text) = serde_json::to_string(&response) else {
            return;
        };
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}
