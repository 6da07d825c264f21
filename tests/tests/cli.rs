//! `xdpvs check` as an operator runs it: no root, exit status and messages.

use std::{path::PathBuf, process::Command};

use tests::topology::Artifacts;

fn check(text: &str, json: bool) -> (i32, String, String) {
    let bin = Artifacts::from_env()
        .expect("run the tests with `cargo xtask test`")
        .xdpvs;
    let dir = std::env::temp_dir().join(format!("xdpvs-cli-{}-{json}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file: PathBuf = dir.join("keepalived.conf");
    std::fs::write(&file, text).expect("config");
    let mut cmd = Command::new(bin);
    cmd.arg("check").arg(&file);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("xdpvs check");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_refuses_with_every_error_and_its_line() {
    let (code, _, err) = check(
        "virtual_server 10.0.0.1 80 {\n  lb_kind NAT\n  real_server 10.0.0.2 80 {\n    weight 70000\n  }\n}\n",
        false,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("keepalived.conf:2: error: lb_kind NAT is not supported"),
        "{err}"
    );
    assert!(
        err.contains("keepalived.conf:4: error: weight 70000"),
        "{err}"
    );
    assert!(err.contains("refused: 2 errors"), "{err}");
}

#[test]
fn check_accepts_and_prints_the_model() {
    let (code, out, err) = check(
        "global_defs {\n  smtp_server 127.0.0.1\n}\nvirtual_server 10.0.0.1 80 {\n  lb_algo rr\n  real_server 10.0.0.2 80 {\n  }\n}\n",
        true,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("keepalived.conf:2: warning: smtp_server"),
        "{err}"
    );
    assert!(
        err.contains("note: lb_algo rr is served by weighted Maglev"),
        "{err}"
    );
    assert!(out.contains("\"scheduler\": \"rr\""), "{out}");
    assert!(out.contains("\"weight\": 1"), "{out}");
}
