//! The CLI's side of the admin socket.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

use super::protocol::{Request, Response};

pub fn call(socket: &Path, request: &Request) -> Result<Response> {
    call_waiting(socket, request, Duration::from_secs(10))
}

/// `call` for a request that takes long (`Upgrade`): waits up to `timeout`.
pub fn call_waiting(socket: &Path, request: &Request, timeout: Duration) -> Result<Response> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach the xdpvs daemon at {} (is `xdpvs run` running?)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(timeout))?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    // A daemon that refuses the client (credentials, too many clients) says
    // why and closes: read that even when the write failed.
    let sent = stream.write_all(line.as_bytes());
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| match e.kind() {
            // A read timeout is EAGAIN: say what it means.
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => anyhow::anyhow!(
                "the daemon at {} did not answer within {timeout:?} (busy or stuck: its log says \
                 which)",
                socket.display()
            ),
            _ => anyhow::Error::new(e).context("reading the daemon's answer"),
        })?;
    if answer.is_empty() {
        sent.context("sending the request")?;
        bail!("the daemon closed the connection without answering");
    }
    match serde_json::from_str(&answer).context("the daemon's answer is not understood")? {
        Response::Error { message } => bail!("{message}"),
        response => Ok(response),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    #[test]
    fn a_daemon_that_never_answers_is_said_to_be_silent() {
        let dir = std::env::temp_dir().join(format!("xdpvs-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let _ = std::fs::remove_file(&path);
        // Accepted (the backlog does it) and never read or answered.
        let _listener = UnixListener::bind(&path).unwrap();
        let e = call_waiting(&path, &Request::Status, Duration::from_millis(100)).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        let e = format!("{e:#}");
        assert!(e.contains("did not answer within 100ms"), "{e}");
    }
}
