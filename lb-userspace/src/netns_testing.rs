//! For root tests: a thread in a network namespace of its own.

/// Runs `f` on a thread of its own in a new, empty network namespace
/// (only `lo`, down), gone with the thread.
pub fn in_empty_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: plain syscall; it moves only this thread.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
        f()
    })
    .join()
    .unwrap()
}

/// `ip ARGS` in the calling thread's namespace; panics if it fails.
pub fn ip(args: &[&str]) {
    let ok = std::process::Command::new("ip")
        .args(args)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ip {args:?}");
}
