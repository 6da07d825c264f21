//! `track_file`: the number in a file moves the priority of the instances
//! that track it (`vrrp::track::file_adjustment` has the arithmetic).
//!
//! The file is polled every `POLL` rather than watched with inotify: one
//! small read, and it sees a file replaced by rename, a directory created
//! late or a file on any file system alike. keepalived reacts to
//! inotify events; a change here is seen within `POLL`.

use std::{io, path::Path, time::Duration};

use log::{info, warn};
use tokio::{sync::watch, task::JoinHandle};

use crate::{config::TrackFile, vrrp::track::parse_file_value};

/// How often a tracked file is read.
pub const POLL: Duration = Duration::from_millis(200);

/// The file's number: 0 when it is missing or empty; `None` when it holds
/// one out of range (keepalived then keeps the previous value).
fn read(path: &Path) -> Option<i64> {
    match std::fs::read(path) {
        Ok(bytes) => parse_file_value(&bytes),
        Err(_) => Some(0),
    }
}

/// `init_file [VALUE] [overwrite]`: writes VALUE when the file is missing,
/// or with `overwrite` always (a regular file only), as keepalived does at
/// start. Returns whether it wrote.
pub fn init(t: &TrackFile) -> io::Result<bool> {
    let Some(init) = t.init else {
        return Ok(false);
    };
    let path = Path::new(&t.path);
    match std::fs::symlink_metadata(path) {
        Ok(_) if !init.overwrite => return Ok(false),
        Ok(m) if !m.file_type().is_file() => {
            return Err(io::Error::other(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        _ => {}
    }
    std::fs::write(path, format!("{}\n", init.value))?;
    Ok(true)
}

/// Follows one file's number; the first value is read before this returns.
pub fn spawn(t: &TrackFile) -> (watch::Receiver<i64>, JoinHandle<()>) {
    let (name, path) = (t.name.clone(), std::path::PathBuf::from(&t.path));
    let first = read(&path).unwrap_or_else(|| {
        warn!(
            "track_file {name}: {} holds a number out of range; read as 0",
            path.display()
        );
        0
    });
    info!("track_file {name}: {} reads {first}", path.display());
    let (tx, rx) = watch::channel(first);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match read(&path) {
                Some(v) if v != *tx.borrow() => {
                    info!("track_file {name}: {} now reads {v}", path.display());
                    let _ = tx.send(v);
                }
                Some(_) => {}
                None => warn!(
                    "track_file {name}: {} holds a number out of range; the previous value stays",
                    path.display()
                ),
            }
        }
    });
    (rx, task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Location, TrackFileInit};

    fn tf(path: &Path, init: Option<TrackFileInit>) -> TrackFile {
        TrackFile {
            name: "t".into(),
            path: path.to_string_lossy().into_owned(),
            weight: 1,
            reverse: false,
            init,
            location: Location::of(Path::new("k.conf")),
        }
    }

    #[test]
    fn init_file_writes_when_missing_or_told_to_overwrite() {
        let dir = std::env::temp_dir().join(format!("xdpvs-tf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let keep = Some(TrackFileInit {
            value: 5,
            overwrite: false,
        });
        assert!(!init(&tf(&path, None)).unwrap(), "no init_file: nothing");
        assert_eq!(read(&path), Some(0), "missing reads 0");
        assert!(init(&tf(&path, keep)).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "5\n");
        std::fs::write(&path, "9\n").unwrap();
        assert!(!init(&tf(&path, keep)).unwrap(), "present: kept");
        assert_eq!(read(&path), Some(9));
        let over = Some(TrackFileInit {
            value: -3,
            overwrite: true,
        });
        assert!(init(&tf(&path, over)).unwrap());
        assert_eq!(read(&path), Some(-3));
        assert!(
            init(&tf(&dir, over)).is_err(),
            "a directory is not overwritten"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
