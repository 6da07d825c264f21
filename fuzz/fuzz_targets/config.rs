//! The keepalived.conf loader on arbitrary files: the input, split at its
//! first NUL byte, is a main file and a file it includes (`inc.conf`,
//! included again by a line appended to the main file), loaded from disk
//! with `xdpvs::config::load` as `xdpvs check` does. Any result is fine; a
//! panic, a hang or a blow-up in memory is a bug.

#![no_main]

use std::{path::PathBuf, sync::OnceLock};

use libfuzzer_sys::fuzz_target;

/// One directory per fuzzing process, rewritten for every input; in memory
/// where there is a tmpfs (rewriting a file on ext4 waits on its writeback).
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        // libFuzzer ends the process without unwinding: remove what earlier
        // runs, now gone, left behind.
        for old in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = old.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("xdpvs-fuzz-config-")
                && !std::path::Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        let dir = base.join(format!("xdpvs-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the fuzzing directory");
        dir
    })
}

/// Includes must stay in the fuzzing directory: an input naming `/dev/zero`
/// or `../..` tests this machine, not the parser (the loader's own limits on
/// such files have their unit tests). Relative names below it are kept.
fn leaves_the_directory(text: &[u8]) -> bool {
    text.split(|&b| b == b'\n').any(|line| {
        let Some(at) = line
            .windows(7)
            .position(|w| w.eq_ignore_ascii_case(b"include"))
        else {
            return false;
        };
        line[at..]
            .split(|b| b.is_ascii_whitespace() || b"\"'{},".contains(b))
            .any(|w| w.starts_with(b"/") || w.windows(2).any(|p| p == b"..") || w.contains(&b'~'))
    })
}

fuzz_target!(|data: &[u8]| {
    if leaves_the_directory(data) {
        return;
    }
    let (main, included) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let dir = dir();
    let main_path = dir.join("keepalived.conf");
    let mut text = main.to_vec();
    text.extend_from_slice(b"\ninclude inc.conf\n");
    std::fs::write(&main_path, &text).expect("writing the main file");
    std::fs::write(dir.join("inc.conf"), included).expect("writing the included file");
    match xdpvs::config::load(&main_path) {
        // What `xdpvs check --json` prints must render too.
        Ok(loaded) => drop(xdpvs::config::to_json(&loaded.config)),
        Err(e) => drop(e.to_string()),
    }
});
