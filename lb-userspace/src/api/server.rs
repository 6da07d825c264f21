//! The admin Unix socket: reads requests, hands them to the daemon's main
//! loop, writes the answers.
//!
//! `bind_admin_socket` makes the socket, which is 0600 (0660 with a socket
//! group) from its first instant: it is bound inside a fresh 0700 directory,
//! its mode set there, then renamed into place. It replaces only a stale
//! socket (one nobody answers on), never a live daemon's nor a file,
//! directory or link. `spawn` serves a bound listener: every client's
//! credentials are checked (root, or the socket group), a request line is at
//! most `MAX_REQUEST_LINE` bytes, a client that does not finish one in time
//! is dropped, and only so many clients are served at once.

use std::{
    fs, io,
    os::unix::{
        fs::{DirBuilderExt as _, FileTypeExt as _, PermissionsExt as _},
        net::UnixListener as StdUnixListener,
    },
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixListener, UnixStream},
    sync::{Semaphore, mpsc, oneshot},
};

use super::protocol::{Request, Response};

pub type ApiCall = (Request, oneshot::Sender<Response>);

/// A request line (its JSON) may be this long; the longest real one is
/// a few hundred bytes.
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "{path} is a {kind}, not a socket: refusing to replace it (remove it yourself, or pick another --socket)"
    )]
    NotASocket { path: PathBuf, kind: &'static str },
    #[error(
        "another daemon is serving {path}: two daemons never share a socket (stop it first, or pick another --socket)"
    )]
    Live { path: PathBuf },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("--socket-group {0}: no such group")]
    NoSuchGroup(String),
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BindError {
    let path = path.to_path_buf();
    move |source| BindError::Io { what, path, source }
}

/// The group whose members may use the socket, besides root.
#[derive(Debug, Clone)]
pub struct SocketGroup {
    pub name: String,
    pub gid: u32,
    /// Its members by name (from the group database at start).
    members: Vec<String>,
}

impl SocketGroup {
    pub fn lookup(name: &str) -> Result<Self, BindError> {
        let group = nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .ok_or_else(|| BindError::NoSuchGroup(name.to_string()))?;
        Ok(Self {
            name: name.to_string(),
            gid: group.gid.as_raw(),
            members: group.mem,
        })
    }

    /// Whether a peer with these credentials is in the group: by its
    /// primary group, or as a listed member.
    fn admits(&self, uid: u32, gid: u32) -> bool {
        gid == self.gid
            || nix::unistd::User::from_uid(uid.into())
                .ok()
                .flatten()
                .is_some_and(|u| self.members.contains(&u.name))
    }
}

fn kind(t: fs::FileType) -> &'static str {
    if t.is_file() {
        "regular file"
    } else if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symbolic link"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_block_device() {
        "block device"
    } else {
        "character device"
    }
}

/// Whether something answers on the socket at `path`. Non-blocking, so a
/// wedged daemon with a full backlog counts as alive, not as a hang.
fn answers(path: &Path) -> io::Result<bool> {
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    match socket.connect(&socket2::SockAddr::unix(path)?) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes what `bind_admin_socket` left in its private directory.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Binds the admin socket at `path`, mode 0600 (0660 and owned by `group`
/// when set) from the moment it exists there.
pub fn bind_admin_socket(
    path: &Path,
    group: Option<&SocketGroup>,
) -> Result<StdUnixListener, BindError> {
    let stale = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_error("cannot inspect", path)(e)),
        Ok(m) if !m.file_type().is_socket() => {
            return Err(BindError::NotASocket {
                path: path.to_path_buf(),
                kind: kind(m.file_type()),
            });
        }
        Ok(_) => match answers(path) {
            Ok(true) => {
                return Err(BindError::Live {
                    path: path.to_path_buf(),
                });
            }
            Ok(false) => true,
            Err(e) => return Err(io_error("cannot tell whether a daemon serves", path)(e)),
        },
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = parent.join(format!(".xdpvs-{}-{nonce:x}", std::process::id()));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(io_error("cannot create", &dir))?;
    let scratch = Scratch(dir);
    let private = scratch.0.join("s");
    let listener = StdUnixListener::bind(&private).map_err(io_error("cannot bind", &private))?;
    let mode = match group {
        Some(g) => {
            std::os::unix::fs::chown(&private, None, Some(g.gid))
                .map_err(io_error("cannot give the socket group to", &private))?;
            0o660
        }
        None => 0o600,
    };
    fs::set_permissions(&private, fs::Permissions::from_mode(mode))
        .map_err(io_error("cannot set the mode of", &private))?;
    if stale {
        fs::remove_file(path).map_err(io_error("cannot remove the stale socket", path))?;
    }
    rename_no_replace(&private, path)?;
    Ok(listener)
}

/// rename(2) that fails rather than replace what appeared at `to` since it
/// was checked (another daemon starting at the same moment).
fn rename_no_replace(from: &Path, to: &Path) -> Result<(), BindError> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| BindError::Io {
            what: "a NUL byte in",
            path: p.to_path_buf(),
            source: io::ErrorKind::InvalidInput.into(),
        })
    };
    let (cf, ct) = (c(from)?, c(to)?);
    // SAFETY: two NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            cf.as_ptr(),
            libc::AT_FDCWD,
            ct.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    match rc {
        0 => Ok(()),
        _ => match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::EEXIST) => Err(BindError::Live {
                path: to.to_path_buf(),
            }),
            e => Err(io_error("cannot put the socket at", to)(e)),
        },
    }
}

/// How much the socket serves: set once, at start.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_line: usize,
    /// A client must send a whole request line within this, and take the
    /// answer within it too.
    pub timeout: Duration,
    pub max_clients: usize,
}

impl Limits {
    /// The defaults, with at most 1/64 of `open_files` for clients.
    pub fn within(open_files: u64) -> Self {
        Self {
            max_clients: crate::accept::connection_cap(open_files, 64, 16),
            ..Self::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: MAX_REQUEST_LINE,
            timeout: Duration::from_secs(10),
            max_clients: 16,
        }
    }
}

struct Server {
    calls: mpsc::Sender<ApiCall>,
    group: Option<SocketGroup>,
    limits: Limits,
    clients: Arc<Semaphore>,
}

/// Serves the bound `listener` until the daemon ends.
pub fn spawn(
    listener: StdUnixListener,
    calls: mpsc::Sender<ApiCall>,
    group: Option<SocketGroup>,
    limits: Limits,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = UnixListener::from_std(listener)?;
    let server = Arc::new(Server {
        calls,
        group,
        clients: Arc::new(Semaphore::new(limits.max_clients)),
        limits,
    });
    // Connections held at once, refused ones included: twice the clients
    // served, so the refusals can be told why but a flood of them cannot
    // take the descriptors (the rest wait in the kernel's backlog).
    let held = Arc::new(Semaphore::new(server.limits.max_clients * 2));
    tokio::spawn(async move {
        let mut backoff = crate::accept::Backoff::default();
        loop {
            let Ok(slot) = held.clone().acquire_owned().await else {
                return;
            };
            match listener.accept().await {
                Ok((stream, _)) => {
                    backoff.reset();
                    let server = server.clone();
                    tokio::spawn(async move {
                        server.serve(stream).await;
                        drop(slot);
                    });
                }
                Err(e) => backoff.wait("admin socket", &e).await,
            }
        }
    });
    Ok(())
}

/// What reading one request line found.
enum Line {
    Request(Vec<u8>),
    TooLong,
    End,
}

impl Server {
    async fn serve(self: Arc<Self>, stream: UnixStream) {
        if let Some(refusal) = self.refusal(&stream) {
            return self.refuse(stream, &refusal).await;
        }
        let Ok(_permit) = self.clients.clone().try_acquire_owned() else {
            let busy = format!(
                "the daemon is serving {} admin clients already: try again later",
                self.limits.max_clients
            );
            return self.refuse(stream, &busy).await;
        };
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        loop {
            let line = tokio::time::timeout(self.limits.timeout, self.read_line(&mut reader));
            // A client that is too slow or too long is answered, then dropped.
            let (response, close) = match line.await {
                Err(_) => (
                    error(format!(
                        "no complete request within {:?}: closing",
                        self.limits.timeout
                    )),
                    true,
                ),
                Ok(Err(_) | Ok(Line::End)) => return,
                Ok(Ok(Line::TooLong)) => (
                    error(format!(
                        "request line longer than {} bytes: refused",
                        self.limits.max_line
                    )),
                    true,
                ),
                Ok(Ok(Line::Request(bytes))) => (self.answer(&bytes).await, false),
            };
            let Ok(mut text) = serde_json::to_string(&response) else {
                return;
            };
            text.push('\n');
            let sent = tokio::time::timeout(self.limits.timeout, write.write_all(text.as_bytes()));
            if !matches!(sent.await, Ok(Ok(()))) || close {
                return;
            }
        }
    }

    async fn answer(&self, line: &[u8]) -> Response {
        match serde_json::from_slice::<Request>(line) {
            Ok(request) => {
                let (tx, rx) = oneshot::channel();
                if self.calls.send((request, tx)).await.is_err() {
                    return error("the daemon is stopping".into());
                }
                rx.await
                    .unwrap_or_else(|_| error("the daemon is stopping".into()))
            }
            Err(e) => error(format!("bad request: {e}")),
        }
    }

    /// Why the peer may not use the socket, if it may not.
    fn refusal(&self, stream: &UnixStream) -> Option<String> {
        let cred = match stream.peer_cred() {
            Ok(c) => c,
            Err(e) => return Some(format!("cannot read the client's credentials: {e}")),
        };
        let (uid, gid) = (cred.uid(), cred.gid());
        if uid == 0 || self.group.as_ref().is_some_and(|g| g.admits(uid, gid)) {
            return None;
        }
        let allowed = match &self.group {
            Some(g) => format!("root and group {}", g.name),
            None => "root".to_string(),
        };
        Some(format!(
            "permission denied: the admin socket serves {allowed} only, not uid {uid} (gid {gid})"
        ))
    }

    /// Answers `message` and closes. The client's request is read (up to a
    /// line, briefly) first, so it is not refused a write before it can
    /// read why.
    async fn refuse(&self, stream: UnixStream, message: &str) {
        let (read, mut write) = stream.into_split();
        let mut sink = [0u8; 4096];
        let mut read = read.take(self.limits.max_line as u64);
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            while let Ok(n @ 1..) = read.read(&mut sink).await {
                if sink[..n].contains(&b'\n') {
                    break;
                }
            }
        })
        .await;
        let Ok(mut text) = serde_json::to_string(&error(message.to_string())) else {
            return;
        };
        text.push('\n');
        let _ = tokio::time::timeout(self.limits.timeout, write.write_all(text.as_bytes())).await;
    }

    async fn read_line(
        &self,
        reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    ) -> io::Result<Line> {
        let mut bytes = Vec::new();
        let n = (&mut *reader)
            .take(self.limits.max_line as u64 + 1)
            .read_until(b'\n', &mut bytes)
            .await?;
        if n == 0 {
            return Ok(Line::End);
        }
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        } else if bytes.len() > self.limits.max_line {
            return Ok(Line::TooLong);
        }
        Ok(Line::Request(bytes))
    }
}

fn error(message: String) -> Response {
    Response::Error { message }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use tokio::io::AsyncBufReadExt as _;

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xdpvs-server-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_file_directory_or_link_at_the_path_is_never_replaced() {
        let dir = scratch("kinds");
        let path = dir.join("xdpvs.sock");
        fs::write(&path, b"precious").unwrap();
        let e = bind_admin_socket(&path, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{} is a regular file, not a socket: refusing to replace it \
                 (remove it yourself, or pick another --socket)",
                path.display()
            )
        );
        assert_eq!(fs::read(&path).unwrap(), b"precious");
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        let e = bind_admin_socket(&path, None).unwrap_err();
        assert!(
            e.to_string().contains(" is a directory, not a socket"),
            "{e}"
        );
        assert!(path.is_dir());
        fs::remove_dir(&path).unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), &path).unwrap();
        let e = bind_admin_socket(&path, None).unwrap_err();
        assert!(
            e.to_string().contains(" is a symbolic link, not a socket"),
            "{e}"
        );
        assert!(
            fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(
            !dir.join("elsewhere").exists(),
            "nothing bound through the link"
        );
        // No scratch directory is left behind.
        let left: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_live_socket_is_an_error_a_stale_one_is_replaced() {
        let dir = scratch("live");
        let path = dir.join("xdpvs.sock");
        let first = bind_admin_socket(&path, None).unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o777, 0o600);
        let e = bind_admin_socket(&path, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "another daemon is serving {}: two daemons never share a socket \
                 (stop it first, or pick another --socket)",
                path.display()
            )
        );
        // The first daemon's socket is still the one there.
        assert_eq!(fs::symlink_metadata(&path).unwrap().ino(), meta.ino());
        drop(first);
        let second = bind_admin_socket(&path, None).expect("a stale socket is replaced");
        assert_ne!(fs::symlink_metadata(&path).unwrap().ino(), meta.ino());
        std::os::unix::net::UnixStream::connect(&path).expect("the new socket answers");
        drop(second);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unknown_group_is_refused() {
        let e = SocketGroup::lookup("xdpvs-no-such-group").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--socket-group xdpvs-no-such-group: no such group"
        );
    }

    /// A served socket whose control loop answers every request with its name.
    fn served(name: &str, limits: Limits) -> (PathBuf, PathBuf) {
        let dir = scratch(name);
        let path = dir.join("xdpvs.sock");
        let listener = bind_admin_socket(&path, None).unwrap();
        let (tx, mut rx) = mpsc::channel::<ApiCall>(4);
        tokio::spawn(async move {
            while let Some((request, reply)) = rx.recv().await {
                let _ = reply.send(Response::Done {
                    message: format!("{request:?}"),
                });
            }
        });
        spawn(listener, tx, None, limits).unwrap();
        (dir, path)
    }

    async fn ask(stream: &mut UnixStream, bytes: &[u8]) -> String {
        let (read, mut write) = stream.split();
        // The server may stop reading (and close) before all is written.
        let _ = write.write_all(bytes).await;
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(5),
            BufReader::new(read).read_line(&mut line),
        )
        .await
        .expect("an answer within 5 s")
        .expect("read");
        line
    }

    #[tokio::test]
    async fn request_lines_are_capped() {
        let (dir, path) = served("lines", Limits::default());
        let mut s = UnixStream::connect(&path).await.unwrap();
        // Exactly the cap: served.
        let mut line = br#"{"request":"list"}"#.to_vec();
        line.resize(MAX_REQUEST_LINE, b' ');
        line.push(b'\n');
        assert_eq!(
            ask(&mut s, &line).await,
            "{\"response\":\"done\",\"message\":\"List\"}\n"
        );
        // One byte more: refused, and the connection closed.
        let mut s = UnixStream::connect(&path).await.unwrap();
        let long = vec![b' '; MAX_REQUEST_LINE + 1];
        assert_eq!(
            ask(&mut s, &long).await,
            "{\"response\":\"error\",\"message\":\"request line longer than 65536 bytes: refused\"}\n"
        );
        assert_eq!(ask(&mut s, b"").await, "", "closed");
        let _ = fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_slow_client_is_dropped() {
        let limits = Limits {
            timeout: Duration::from_millis(200),
            ..Limits::default()
        };
        let (dir, path) = served("slow", limits);
        let mut s = UnixStream::connect(&path).await.unwrap();
        let start = std::time::Instant::now();
        assert_eq!(
            ask(&mut s, br#"{"requ"#).await,
            "{\"response\":\"error\",\"message\":\"no complete request within 200ms: closing\"}\n"
        );
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert_eq!(ask(&mut s, b"").await, "", "closed");
        let _ = fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn clients_are_capped() {
        let limits = Limits {
            max_clients: 2,
            ..Limits::default()
        };
        let (dir, path) = served("cap", limits);
        let list = b"{\"request\":\"list\"}\n";
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut s = UnixStream::connect(&path).await.unwrap();
            assert!(ask(&mut s, list).await.contains("done"));
            held.push(s);
        }
        let mut third = UnixStream::connect(&path).await.unwrap();
        assert_eq!(
            ask(&mut third, list).await,
            "{\"response\":\"error\",\"message\":\"the daemon is serving 2 admin clients already: try again later\"}\n"
        );
        drop(held.pop());
        // The freed slot is taken again once the server has seen the close.
        let mut served = false;
        for _ in 0..50 {
            let mut s = UnixStream::connect(&path).await.unwrap();
            if ask(&mut s, list).await.contains("done") {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(served, "a slot was never freed");
        let _ = fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn bad_json_is_answered_and_the_connection_kept() {
        let (dir, path) = served("json", Limits::default());
        let mut s = UnixStream::connect(&path).await.unwrap();
        assert!(ask(&mut s, b"{nonsense}\n").await.contains("bad request: "));
        assert!(
            ask(&mut s, b"{\"request\":\"status\"}\n")
                .await
                .contains("Status")
        );
        let _ = fs::remove_dir_all(dir);
    }
}
