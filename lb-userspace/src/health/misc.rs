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
        Err(e) => return Outcome::Down(Failure::Io(format!("cannot run {command:?}: {e}"))),
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => match status.code() {
            Some(code) => verdict(code, dynamic),
            None => Outcome::Down(Failure::Signal),
        },
        Ok(Err(e)) => Outcome::Down(Failure::Io(e.to_string())),
        Err(_) => {
            if let Some(pid) = child.id() {
                // SAFETY: signals the process group we created for this script.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
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
        MiscProbe { command: command.into(), timeout: Duration::from_millis(300), dynamic }
    }

    #[tokio::test]
    async fn exit_codes() {
        assert_eq!(probe("exit 0", false).run().await, Outcome::Up);
        assert_eq!(probe("exit 1", false).run().await, Outcome::Down(Failure::Exit(1)));
        assert_eq!(probe("exit 7", false).run().await, Outcome::Down(Failure::Exit(7)));
        assert_eq!(probe("exit 7", true).run().await, Outcome::UpWithWeight(5));
        assert_eq!(probe("exit 1", true).run().await, Outcome::Down(Failure::Exit(1)));
        assert_eq!(probe("kill -9 $$", false).run().await, Outcome::Down(Failure::Signal));
    }

    #[tokio::test]
    async fn a_hanging_script_and_its_children_are_killed() {
        let marker = std::env::temp_dir().join(format!("xdpvs-misc-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        // The grandchild would create the marker after 1 s if it survived.
        let cmd = format!("(sleep 1; touch {}) & sleep 100", marker.display());
        let start = std::time::Instant::now();
        assert_eq!(probe(&cmd, false).run().await, Outcome::Down(Failure::Timeout(Duration::from_millis(300))));
        assert!(start.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(!marker.exists(), "the script's children outlived the timeout");
    }
}
