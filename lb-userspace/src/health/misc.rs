//! MISC_CHECK: a script decides. Exit 0 = up; with `misc_dynamic`, exit 1 =
//! down and 2-255 = up with weight `code - 2` (keepalived). The script runs
//! through `script_runner` (its user, a fixed PATH, its own process group,
//! killed whole when it outlives `misc_timeout` or the check is dropped).

use std::time::Duration;

use super::probe::{Attempt, Failure, Outcome, Probe};
use crate::script_runner::{self, Script};

pub struct MiscProbe {
    pub script: Script,
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

async fn run_script(script: &Script, timeout: Duration, dynamic: bool) -> Outcome {
    match script.run(timeout).await {
        script_runner::Outcome::Exited(code) => verdict(code, dynamic),
        script_runner::Outcome::Signalled => Outcome::Down(Failure::Signal),
        script_runner::Outcome::TimedOut => Outcome::Down(Failure::Timeout(timeout)),
        // Out of descriptors, processes or memory is the daemon's own
        // trouble (a local error, retried); a missing script is the real's.
        script_runner::Outcome::Spawn(e) => {
            let what = format!("cannot run {:?}: {e}", script.argv());
            Outcome::Down(if super::probe::is_local_error(&e) {
                Failure::Local(what)
            } else {
                Failure::Io(what)
            })
        }
        script_runner::Outcome::Wait(e) => Outcome::Down(Failure::Io(e.to_string())),
    }
}

impl Probe for MiscProbe {
    fn run(&self) -> Attempt<'_> {
        Box::pin(run_script(&self.script, self.timeout, self.dynamic))
    }

    fn describe(&self) -> String {
        format!("MISC_CHECK {:?}", self.script.argv().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::script_runner::{Identity, split_command};

    /// `command` run by `sh -c`, as the daemon's own user.
    fn sh(command: &str) -> Script {
        Script::new(
            vec!["/bin/sh".into(), "-c".into(), command.into()],
            Identity::current(),
        )
    }

    fn probe(command: &str, dynamic: bool) -> MiscProbe {
        MiscProbe {
            script: sh(command),
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
            script: sh(&cmd),
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
        let sh_says = probe("/nonexistent/xdpvs-check", false).run().await;
        assert_eq!(
            sh_says,
            Outcome::Down(Failure::Exit(127)),
            "sh reports a missing command as 127"
        );
        let direct = MiscProbe {
            script: Script::new(
                split_command("/nonexistent/xdpvs-check a"),
                Identity::current(),
            ),
            timeout: Duration::from_secs(1),
            dynamic: false,
        };
        let Outcome::Down(Failure::Io(why)) = direct.run().await else {
            panic!("a script that cannot start is an I/O failure");
        };
        assert!(why.contains("No such file"), "{why}");
    }
}
