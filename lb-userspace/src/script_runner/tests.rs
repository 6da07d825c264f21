use std::collections::HashMap;

use super::*;

#[test]
fn words_and_quotes() {
    assert_eq!(split_command("/bin/true"), ["/bin/true"]);
    assert_eq!(
        split_command("  /x.sh  a 'b c' \"d\"\"e\" ''"),
        ["/x.sh", "a", "b c", "de", ""]
    );
    assert!(split_command("   ").is_empty());
}

/// A filesystem from a table: path -> (uid, gid, mode); no symlinks.
struct Table(HashMap<PathBuf, Meta>);

impl Table {
    fn new(entries: &[(&str, u32, u32, u32)]) -> Table {
        Table(
            entries
                .iter()
                .map(|&(p, uid, gid, mode)| (PathBuf::from(p), Meta { uid, gid, mode }))
                .collect(),
        )
    }
}

impl Fs for Table {
    fn lstat(&self, path: &Path) -> io::Result<Meta> {
        self.0
            .get(path)
            .copied()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    fn stat(&self, path: &Path) -> io::Result<Meta> {
        self.lstat(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.lstat(path).map(|_| path.to_path_buf())
    }
}

const DIR: u32 = 0o040_000;
const REG: u32 = 0o100_000;

fn machine() -> Table {
    Table::new(&[
        ("/", 0, 0, DIR | 0o755),
        ("/etc", 0, 0, DIR | 0o755),
        ("/etc/ok.sh", 0, 0, REG | 0o755),
        ("/etc/open.sh", 0, 0, REG | 0o777),
        ("/etc/noexec.sh", 0, 0, REG | 0o644),
        ("/usr", 0, 0, DIR | 0o755),
        ("/usr/bin", 0, 0, DIR | 0o755),
        ("/usr/bin/pidof", 0, 0, REG | 0o755),
    ])
}

fn config(text: &str) -> Config {
    crate::config::parse_str(text, Path::new("/k.conf"))
        .unwrap()
        .config
}

fn at() -> Location {
    Location {
        file: std::path::Path::new("/k.conf").into(),
        line: 1,
    }
}

fn rendered(notes: &[Diagnostic]) -> Vec<String> {
    notes.iter().map(ToString::to_string).collect()
}

const ROOT: &str = "script_user root\n";

#[test]
fn world_writable_root_script_is_refused_with_security() {
    let fs = machine();
    let cfg = config(&format!(
        "global_defs {{\n enable_script_security\n {ROOT}}}\n"
    ));
    let mut p = Preparer::new(&cfg, &fs);
    assert!(
        p.prepare(Kind::Track("chk"), "/etc/open.sh", None, &at())
            .is_none()
    );
    let ok = p.prepare(Kind::Track("chk2"), "/etc/ok.sh arg", None, &at());
    assert_eq!(
        ok.map(|s| s.argv),
        Some(vec!["/etc/ok.sh".into(), "arg".into()])
    );
    assert_eq!(
        rendered(&p.finish(&at())),
        [
            "/k.conf:1: error: Unsafe permissions found for script '/etc/open.sh' - disabling.",
            "/k.conf:1: error: Disabling track script chk due to insecure",
        ]
    );
}

/// `Table`, counting what it is asked.
struct Counted(Table, std::cell::Cell<usize>);

impl Fs for Counted {
    fn lstat(&self, path: &Path) -> io::Result<Meta> {
        self.1.set(self.1.get() + 1);
        self.0.lstat(path)
    }

    fn stat(&self, path: &Path) -> io::Result<Meta> {
        self.1.set(self.1.get() + 1);
        self.0.stat(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.1.set(self.1.get() + 1);
        self.0.canonicalize(path)
    }
}

#[test]
fn one_preparer_asks_the_filesystem_once_per_path() {
    let fs = Counted(machine(), Default::default());
    let cfg = config(&format!(
        "global_defs {{\n enable_script_security\n {ROOT}}}\n"
    ));
    let mut p = Preparer::new(&cfg, &fs);
    let script = p.prepare(Kind::Track("a"), "/etc/ok.sh", None, &at());
    assert!(script.is_some());
    // realpath, stat, and lstat of /, /etc, /etc/ok.sh.
    assert_eq!(fs.1.get(), 5);
    for i in 0..100 {
        let again = p.prepare(Kind::Track(&format!("b{i}")), "/etc/ok.sh x", None, &at());
        assert_eq!(again.map(|s| s.argv[0].clone()), Some("/etc/ok.sh".into()));
        assert!(
            p.prepare(Kind::Misc, "/etc/missing.sh", None, &at())
                .is_none()
        );
    }
    assert_eq!(fs.1.get(), 6, "and once for the missing script");
    // The answers given again are the same: every missing script refused
    // with strerror's words.
    let notes = rendered(&p.finish(&at()));
    assert_eq!(notes.len(), 200, "{notes:?}");
    assert_eq!(
        notes[0],
        "/k.conf:1: error: Script /etc/missing.sh cannot be accessed - No such file or directory"
    );
    assert!(notes.chunks(2).all(|n| n == &notes[..2]), "{notes:?}");
    // A new Preparer (a reload) asks again.
    let mut p = Preparer::new(&cfg, &fs);
    p.prepare(Kind::Track("a"), "/etc/ok.sh", None, &at());
    assert_eq!(fs.1.get(), 11);
}

#[test]
fn without_security_it_runs_with_keepalived_warnings() {
    let fs = machine();
    let cfg = config(&format!("global_defs {{\n {ROOT}}}\n"));
    let mut p = Preparer::new(&cfg, &fs);
    assert!(p.prepare(Kind::Misc, "/etc/open.sh", None, &at()).is_some());
    assert_eq!(
        rendered(&p.finish(&at())),
        [
            "/k.conf:1: warning: Unsafe permissions found for script '/etc/open.sh'.",
            "/k.conf:1: warning: SECURITY VIOLATION - scripts are being executed but script_security not enabled. There are insecure scripts.",
        ]
    );
}

#[test]
fn scripts_run_by_others_than_root_are_not_path_checked() {
    let fs = machine();
    let cfg = config("global_defs {\n enable_script_security\n script_user nobody\n}\n");
    let mut p = Preparer::new(&cfg, &fs);
    let s = p
        .prepare(Kind::Notify, "/etc/open.sh", None, &at())
        .unwrap();
    assert_eq!(s.identity().user, "nobody");
    assert_ne!(s.identity().uid, 0);
    let root = ScriptUser {
        user: "root".into(),
        group: None,
    };
    assert!(
        p.prepare(Kind::Notify, "/etc/open.sh", Some(&root), &at())
            .is_none(),
        "a per-script `user root` is checked"
    );
    assert_eq!(
        rendered(&p.finish(&at())),
        [
            "/k.conf:1: error: Unsafe permissions found for script '/etc/open.sh' - disabling.",
            "/k.conf:1: error: Disabling notify script /etc/open.sh due to insecure",
        ]
    );
}

#[test]
fn bare_names_missing_scripts_and_users() {
    let fs = machine();
    let cfg = config(&format!("global_defs {{\n {ROOT}}}\n"));
    let mut p = Preparer::new(&cfg, &fs);
    let s = p
        .prepare(Kind::Track("p"), "pidof nginx", None, &at())
        .unwrap();
    assert_eq!(s.argv(), ["/usr/bin/pidof", "nginx"]);
    assert!(
        p.prepare(Kind::Track("m"), "/etc/none.sh", None, &at())
            .is_none()
    );
    assert!(
        p.prepare(Kind::Track("x"), "/etc/noexec.sh", None, &at())
            .is_none()
    );
    let ghost = ScriptUser {
        user: "xdpvs-no-such-user".into(),
        group: None,
    };
    assert!(
        p.prepare(Kind::Misc, "/etc/ok.sh", Some(&ghost), &at())
            .is_none()
    );
    let notes = rendered(&p.finish(&at()));
    assert_eq!(
        notes,
        [
            "/k.conf:1: warning: WARNING - script `pidof` resolved by path search to `/usr/bin/pidof`. Please specify full path.",
            "/k.conf:1: error: Script /etc/none.sh cannot be accessed - No such file or directory",
            "/k.conf:1: error: Disabling track script m since not found/accessible",
            "/k.conf:1: error: WARNING - script '/etc/noexec.sh' is not executable for uid:gid 0:0 - disabling.",
            "/k.conf:1: error: Script user 'xdpvs-no-such-user' does not exist",
            "/k.conf:1: error: Invalid user/group for misc script /etc/ok.sh - ignoring",
            "/k.conf:1: warning: SECURITY VIOLATION - scripts are being executed but script_security not enabled.",
        ]
    );
}

#[test]
fn check_downgrades_what_may_exist_elsewhere() {
    let cfg = config(
        "global_defs {\n enable_script_security\n script_user root\n}\nvrrp_script chk {\n script /nonexistent/xdpvs.sh\n}\nvrrp_script open {\n script /etc/open.sh\n}\n",
    );
    let notes = rendered(&audit(&cfg, &at(), &machine()));
    assert_eq!(
        notes,
        [
            "/k.conf:5: warning: Script /nonexistent/xdpvs.sh cannot be accessed - No such file or directory",
            "/k.conf:5: warning: Disabling track script chk since not found/accessible",
            "/k.conf:8: error: Unsafe permissions found for script '/etc/open.sh' - disabling.",
            "/k.conf:8: error: Disabling track script open due to insecure",
        ]
    );
}

#[tokio::test]
async fn environment_is_only_path() {
    let out = std::env::temp_dir().join(format!("xdpvs-env-{}", std::process::id()));
    let script = Script::new(
        vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("env > {}; pwd >> {}", out.display(), out.display()),
        ],
        Identity::current(),
    );
    let ours: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| !["PATH", "PWD", "SHLVL", "_"].contains(&k.as_str()))
        .collect();
    assert!(
        !ours.is_empty(),
        "the test process has an environment to leak"
    );
    assert!(script.run(Duration::from_secs(5)).await.success());
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    // sh itself adds PWD (and maybe SHLVL, _); nothing of ours passes.
    assert!(
        lines.contains(&"PATH=/usr/sbin:/usr/bin:/sbin:/bin"),
        "{text}"
    );
    assert!(lines.contains(&"/"), "runs in /: {text}");
    for k in ours {
        assert!(!text.contains(&format!("{k}=")), "{k} leaked: {text}");
    }
}

#[tokio::test]
#[ignore = "needs root: run by `cargo xtask test`"]
async fn runs_as_nobody_with_no_capabilities_root() {
    let out = Path::new("/tmp").join(format!("xdpvs-id-{}", std::process::id()));
    let _ = std::fs::remove_file(&out);
    // The script may not create files in /tmp as nobody if protected_regular
    // bites; let it write to a file root created for it.
    std::fs::write(&out, "").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o666)).unwrap();
    let who = Identity::lookup("nobody", None).unwrap();
    let script = Script::new(
        vec![
            "/bin/sh".into(),
            "-c".into(),
            format!(
                "id -u >> {0}; id -g >> {0}; grep ^CapEff /proc/self/status >> {0}",
                out.display()
            ),
        ],
        who.clone(),
    );
    let outcome = script.run(Duration::from_secs(5)).await;
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert!(outcome.success(), "{outcome:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            who.uid.to_string().as_str(),
            who.gid.to_string().as_str(),
            "CapEff:\t0000000000000000"
        ]
    );
}

#[test]
fn check_audits_sync_group_notify_scripts() {
    let cfg = config(
        "global_defs {\n enable_script_security\n script_user root\n}\n\
         vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n\
         vrrp_sync_group G {\n group {\n  A\n }\n notify_master /etc/open.sh\n notify /etc/none.sh\n}\n",
    );
    let notes = rendered(&audit(&cfg, &at(), &machine()));
    assert_eq!(
        notes,
        [
            "/k.conf:12: error: Unsafe permissions found for script '/etc/open.sh' - disabling.",
            "/k.conf:12: error: Disabling notify script /etc/open.sh due to insecure",
            "/k.conf:12: warning: Script /etc/none.sh cannot be accessed - No such file or directory",
            "/k.conf:12: warning: Disabling notify script /etc/none.sh since not found/accessible",
        ]
    );
}

#[test]
fn check_audits_quorum_and_lower_priority_scripts() {
    // `xdpvs check` reads every script the daemon would run, these too.
    let cfg = config(
        "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n \
         notify_master_rx_lower_pri /etc/none.sh\n}\n\
         virtual_server 10.0.0.1 80 {\n quorum_up /etc/gone.sh\n real_server 10.0.0.2 80 {\n }\n}\n",
    );
    let notes = rendered(&audit(&cfg, &at(), &machine()));
    assert!(
        notes
            .iter()
            .any(|n| n.contains("/etc/none.sh cannot be accessed"))
            && notes
                .iter()
                .any(|n| n.contains("/etc/gone.sh cannot be accessed")),
        "{notes:#?}"
    );
}
