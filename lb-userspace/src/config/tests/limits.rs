//! The bounds of `limits`: each refusal with its exact message, at the
//! include line, quickly; and a refusal is what the daemon keeps its last
//! good configuration on.

use std::{ffi::CString, os::unix::ffi::OsStrExt as _, time::Instant};

use super::*;
use crate::config::limits::{
    MAX_DEPTH, MAX_FILE_BYTES, MAX_FILES, MAX_INCLUDE_DEPTH, MAX_TOTAL_BYTES,
};

fn refused(path: &Path) -> Vec<String> {
    match load(path) {
        Ok(_) => panic!("{} accepted", path.display()),
        Err(e) => rendered(&e.diagnostics, Severity::Error),
    }
}

#[test]
fn nesting_is_bounded_without_recursion() {
    let n = 100_000;
    let text = format!("{}{}", "a {\n".repeat(n), "}\n".repeat(n));
    let started = Instant::now();
    assert_eq!(
        errors(&text),
        [format!(
            "k.conf:{}: error: blocks nested more than {MAX_DEPTH} deep; the block opened here is skipped",
            MAX_DEPTH + 1
        )]
    );
    // Braces alone, never closed: two errors a level, within the bound.
    let e = errors(&"{\n".repeat(n));
    assert_eq!(e.len(), 2 * (MAX_DEPTH + 1), "{e:?}");
    assert_eq!(
        e.last().map(String::as_str),
        Some("k.conf:33: error: blocks nested more than 32 deep; the block opened here is skipped")
    );
    // A debug build on a shared machine: the CLI test bounds the release binary.
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
}

#[test]
fn only_regular_files_are_read() {
    let t = TempDir::new("special");
    let fifo = t.0.join("fifo.conf");
    let c = CString::new(fifo.as_os_str().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    std::fs::create_dir(t.0.join("sub.d")).unwrap_or_else(|e| panic!("{e}"));
    let main = t.write(
        "k.conf",
        "include fifo.conf\ninclude /dev/zero\ninclude sub.d\ninclude s*.d\n",
    );
    let started = Instant::now();
    let e = load(&main).err().unwrap_or_else(|| panic!("accepted"));
    assert!(started.elapsed().as_secs() < 2, "{:?}", started.elapsed());
    let m = main.display();
    assert_eq!(
        rendered(&e.diagnostics, Severity::Error),
        [
            format!(
                "{m}:1: error: {}: a FIFO, not a regular file; not read",
                fifo.display()
            ),
            format!("{m}:2: error: /dev/zero: a character device, not a regular file; not read"),
            format!(
                "{m}:3: error: {}: a directory, not a regular file; not read",
                t.0.join("sub.d").display()
            ),
        ]
    );
    assert_eq!(
        rendered(&e.diagnostics, Severity::Warning),
        [format!(
            "{m}:4: warning: include \"s*.d\": {} is a directory, skipped",
            t.0.join("sub.d").display()
        )]
    );
}

#[test]
fn sizes_are_checked_before_reading() {
    let t = TempDir::new("sizes");
    let big = t.0.join("big.conf");
    let f = std::fs::File::create(&big).unwrap_or_else(|e| panic!("{e}"));
    // Sparse: refused on its size alone, never read.
    f.set_len(MAX_FILE_BYTES + 1)
        .unwrap_or_else(|e| panic!("{e}"));
    let main = t.write("k.conf", "\ninclude big.conf\n");
    assert_eq!(
        refused(&main),
        [format!(
            "{}:2: error: {}: {} bytes, more than {MAX_FILE_BYTES}, the limit for one file; not read",
            main.display(),
            big.display(),
            MAX_FILE_BYTES + 1
        )]
    );
    let too_big = load(&big).err().unwrap_or_else(|| panic!("accepted"));
    assert_eq!(
        too_big.to_string(),
        format!(
            "{0}:0: error: {0}: {1} bytes, more than {MAX_FILE_BYTES}, the limit for one file; not read",
            big.display(),
            MAX_FILE_BYTES + 1
        )
    );
}

#[test]
fn total_size_is_bounded() {
    let t = TempDir::new("total");
    let part = MAX_TOTAL_BYTES * 3 / 8;
    let comment = format!("#{}\n", "x".repeat(1023));
    let body = comment.repeat(usize::try_from(part / 1024).unwrap_or(0));
    for name in ["a", "b", "c"] {
        t.write(&format!("{name}.conf"), &body);
    }
    let main = t.write(
        "k.conf",
        "include a.conf\ninclude b.conf\ninclude c.conf\ninclude a.conf\n",
    );
    assert_eq!(
        refused(&main),
        [format!(
            "{}:3: error: {}: {} bytes would bring what is read to more than {MAX_TOTAL_BYTES} bytes, the limit for all files; it and the files after it are not read",
            main.display(),
            t.0.join("c.conf").display(),
            body.len()
        )]
    );
}

#[test]
fn include_depth_is_bounded() {
    let t = TempDir::new("depth");
    for i in 0..=MAX_INCLUDE_DEPTH {
        t.write(&format!("f{i}.conf"), &format!("include f{}.conf\n", i + 1));
    }
    let main = t.0.join("f0.conf");
    assert_eq!(
        refused(&main),
        [format!(
            "{}:1: error: include of {} nested more than {MAX_INCLUDE_DEPTH} files deep; not read",
            t.0.join(format!("f{}.conf", MAX_INCLUDE_DEPTH - 1))
                .display(),
            t.0.join(format!("f{MAX_INCLUDE_DEPTH}.conf")).display()
        )]
    );
}

#[test]
fn included_files_are_counted() {
    let t = TempDir::new("count");
    t.write("s.conf", "# nothing\n");
    let main = t.write("k.conf", &"include s.conf\n".repeat(MAX_FILES + 100));
    assert_eq!(
        refused(&main),
        [format!(
            "{}:{MAX_FILES}: error: more than {MAX_FILES} files included: {} and the files after it not read",
            main.display(),
            t.0.join("s.conf").display()
        )]
    );
}

#[test]
fn a_fan_out_of_includes_ends_quickly() {
    // Ten files that each include all ten: 10! paths without the file count.
    let t = TempDir::new("fanout");
    for i in 0..10 {
        t.write(&format!("d/{i}.conf"), "include *.conf\n");
    }
    let main = t.write("k.conf", "include d/*.conf\n");
    let started = Instant::now();
    let e = refused(&main);
    assert!(started.elapsed().as_secs() < 2, "{:?}", started.elapsed());
    let limit: Vec<&String> = e
        .iter()
        .filter(|m| m.contains(&format!("error: more than {MAX_FILES} files included")))
        .collect();
    assert_eq!(limit.len(), 1, "{:?}", &e[e.len().saturating_sub(3)..]);
}

#[test]
fn too_many_findings_are_counted_not_kept() {
    let text = "x\n".repeat(3000);
    let l = ok(&text);
    assert_eq!(
        l.diagnostics.len(),
        crate::config::diag::MAX_DIAGNOSTICS + 1
    );
    assert_eq!(
        l.diagnostics.last().map(ToString::to_string),
        Some("k.conf:1000: warning: 2000 more findings not shown (0 errors, 2000 warnings and notes)".into())
    );
    // An error past the cap still refuses the file.
    let e = errors(&format!(
        "{text}virtual_server 10.0.0.1 80 {{\n lb_kind NAT\n}}\n"
    ));
    assert_eq!(
        e,
        ["k.conf:1000: error: 2001 more findings not shown (1 errors, 2000 warnings and notes)"]
    );
}

#[test]
fn the_daemon_refuses_a_file_over_a_limit() {
    // `xdpvs run` and every reload read through this: an Err keeps the
    // running configuration (daemon::state::State::reload).
    let t = TempDir::new("daemon");
    let main = t.write("k.conf", "include /dev/zero\n");
    let e = crate::daemon::load_config(&main)
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    assert_eq!(
        e.to_string(),
        format!(
            "configuration refused:\n{}:1: error: /dev/zero: a character device, not a regular file; not read",
            main.display()
        )
    );
}

#[test]
fn a_double_star_does_not_walk_the_file_system() {
    // glob(3) reads `**` as `*`: one level, not every directory below `/`.
    let started = Instant::now();
    let l = parse_str(
        "include /**/nonexistent-xdpvs.conf\n",
        Path::new("/nonexistent-xdpvs-dir/k.conf"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(started.elapsed().as_secs() < 2, "{:?}", started.elapsed());
    assert_eq!(
        warnings(&l),
        [
            "/nonexistent-xdpvs-dir/k.conf:1: warning: include \"/**/nonexistent-xdpvs.conf\" matches no file"
        ]
    );
}

#[test]
fn a_million_reals_are_checked_for_duplicates_in_linear_time() {
    let reals: String = (0..200_000u32)
        .map(|i| {
            format!(
                " real_server 10.{}.{}.{} 80 {{ }}\n",
                i >> 16,
                (i >> 8) & 255,
                i & 255
            )
        })
        .collect();
    let started = Instant::now();
    let e = errors(&format!(
        "virtual_server 10.0.0.1 80 {{\n{reals} real_server 10.0.0.0 80 {{ }}\n}}\n"
    ));
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    assert_eq!(
        e,
        [
            "k.conf:4098: error: virtual_server 10.0.0.1 80: more than 4096 real servers over all virtual servers (a sorry_server counts as one); raise xdpvs_max_reals in global_defs (at most 1048576)".to_string(),
            "k.conf:200002: error: real_server 10.0.0.0 80 is listed twice in this virtual_server".to_string(),
        ]
    );
}
