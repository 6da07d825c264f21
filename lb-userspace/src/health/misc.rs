//! MISC_CHECK: a script decides. Exit 0 = up; with `misc_dynamic`, exit 1 =
//! down and 2-255 = up with weight `code - 2` (keepalived). The script runs
//! in its own process group, killed whole when it outlives `misc_timeout`.

use std::{process::Stdio, time::Duration};

use tokio::process::Command;

use super::probe::{Attempt, Failure, Outcome, Probe};

pub struct MiscProbe {
    pub command: String,
    pub timeout: Duration,
    pub dynamic: bool,
}

fn verdict(code: i32, dynamic: bool) -> Outcome {
    match code {
        0 => Outcome::Up,
        2..=255 if dynamic => Outcome::UpWithWeight(code as u32 - 2),
        c => Outcome::Down(Failure::Exit(c)),
    }
}

/// SIGKILLs the script's process group when dropped armed: on timeout, and
/// when the attempt itself is dropped (runner stopped, reload), because
/// `kill_on_drop` reaches only `sh`, not what the script started.
struct GroupGuard(Option<i32>);

impl GroupGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // SAFETY: plain syscall. The group leader is our child and not yet
            // reaped (the guard is disarmed once it is), so the id is ours.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

async fn run_script(command: &str, timeout: Duration, dynamic: bool) -> Outcome {
    let mut child = match Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        // Failing to start /bin/sh is the daemon's own trouble (descriptors,
        // processes, memory): a script that is missing exits 127 instead.
        Err(e) => return Outcome::Down(Failure::Local(format!("cannot run {command:?}: {e}"))),
    };
    // Declared after `child`, so dropped (and the group killed) before it.
    let mut group = GroupGuard(child.id().and_then(|pid| i32::try_from(pid).ok()));
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => {
            group.disarm();
            match status {
                Ok(status) => match status.code() {
                    Some(code) => verdict(code, dynamic),
                    None => Outcome::Down(Failure::Signal),
                },
                Err(e) => Outcome::Down(Failure::Io(e.to_string())),
            }
        }
        Err(_) => {
            drop(group);
            let _ = child.wait().await;
            Outcome::Down(Failure::Timeout(timeout))
        }
    }
}

impl Probe for MiscProbe {
    fn run(&self) -> Attempt<'_> {
        Box::pin(run_script(&self.command, self.timeout, self.dynamic))
    }

    fn describe(&self) -> String {
        format!("MISC_CHECK {:?}", self.command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(command: &str, dynamic: bool) -> MiscProbe {
        MiscProbe {
            command: command.into(),
            timeout: Duration::from_millis(300),
            dynamic,
        }
    }

    #[tokio::test]
    async fn exit_codes() {
        assert_eq!(probe("exit 0", false).run().await, Outcome::Up);
        assert_eq!(
            probe("exit 1", false).run().await,
            Outcome::Down(Failure::Exit(1))
        );
        assert_eq!(
            probe("exit 7", false).run().await,
            Outcome::Down(Failure::Exit(7))
        );
        assert_eq!(probe("exit 7", true).run().await, Outcome::UpWithWeight(5));
        assert_eq!(
            probe("exit 1", true).run().await,
            Outcome::Down(Failure::Exit(1))
        );
        assert_eq!(probe("exit 2", true).run().await, Outcome::UpWithWeight(0));
        assert_eq!(
            probe("exit 255", true).run().await,
            Outcome::UpWithWeight(253)
        );
        assert_eq!(probe("exit 0", true).run().await, Outcome::Up);
        assert_eq!(
            probe("kill -9 $$", false).run().await,
            Outcome::Down(Failure::Signal)
        );
    }

    fn marker(name: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("xdpvs-misc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    /// True while `pid` names a process (or an unreaped zombie).
    fn alive(pid: i32) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    }

    #[tokio::test]
    async fn a_hanging_script_and_its_children_are_killed() {
        let (late, pid_file) = (marker("late"), marker("pid"));
        // The grandchild would create `late` after 0.6 s if it survived.
        let cmd = format!(
            "echo $$ > {}; (sleep 0.6; touch {}) & sleep 100",
            pid_file.display(),
            late.display()
        );
        let start = std::time::Instant::now();
        assert_eq!(
            probe(&cmd, false).run().await,
            Outcome::Down(Failure::Timeout(Duration::from_millis(300)))
        );
        assert!(start.elapsed() < Duration::from_secs(1));
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let _ = std::fs::remove_file(&pid_file);
        assert!(!alive(pid), "the script outlived its timeout");
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(!late.exists(), "the script's children outlived the timeout");
    }

    #[tokio::test]
    async fn dropping_a_running_check_kills_its_process_group() {
        let late = marker("dropped");
        let cmd = format!("(sleep 0.5; touch {}) & sleep 100", late.display());
        let slow = MiscProbe {
            command: cmd,
            timeout: Duration::from_secs(60),
            dynamic: false,
        };
        // The attempt is dropped mid-run, as when the runner stops.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), slow.run())
                .await
                .is_err()
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(!late.exists(), "the script's children outlived the check");
    }

    #[tokio::test]
    async fn a_missing_script_is_down() {
        let outcome = probe("/nonexistent/xdpvs-check", false).run().await;
        assert_eq!(
            outcome,
            Outcome::Down(Failure::Exit(127)),
            "sh reports a missing command as 127"
        );
    }
}
