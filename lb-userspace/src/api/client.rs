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
        .context("reading the daemon's answer")?;
    if answer.is_empty() {
        sent.context("sending the request")?;
        bail!("the daemon closed the connection without answering");
    }
    match serde_json::from_str(&answer).context("the daemon's answer is not understood")? {
        Response::Error { message } => bail!("{message}"),
        response => Ok(response),
    }
}
