//! `include` on disk: globs, relative directories, loops, missing files.

use super::*;

const VRRP: &str = "vrrp_instance V {\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n";

fn service(addr: &str) -> String {
    format!("virtual_server {addr} 80 {{\n real_server 10.9.0.1 80 {{\n }}\n}}\n")
}

/// The virtual servers' addresses, in the order they were read.
fn service_addrs(l: &Loaded) -> Vec<String> {
    l.config
        .virtual_servers
        .iter()
        .map(|v| v.addr.to_string())
        .collect()
}

#[test]
fn globs_expand_in_sorted_order_relative_to_the_including_file() {
    let t = TempDir::new("globs");
    let main = t.write(
        "etc/keepalived.conf",
        "include conf.d/*.conf\ninclude /nonexistent-xdpvs/*.conf\n",
    );
    t.write("etc/conf.d/20-b.conf", &service("10.0.0.2"));
    t.write(
        "etc/conf.d/10-a.conf",
        &format!("{}include ../more/*.conf\n", service("10.0.0.1")),
    );
    t.write("etc/conf.d/notes.txt", "garbage {\n");
    t.write("etc/more/x.conf", VRRP);
    let l = load_ok(&main);
    let addrs = service_addrs(&l);
    assert_eq!(addrs, ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(
        &*l.config.vrrp_instances[0].location.file,
        t.0.join("etc/conf.d/../more/x.conf").as_path()
    );
    assert_eq!(l.config.vrrp_instances[0].location.line, 1);
    assert_eq!(
        warnings(&l),
        [format!(
            "{}:2: warning: include \"/nonexistent-xdpvs/*.conf\" matches no file",
            main.display()
        )]
    );
}

#[test]
fn braces_are_read_in_turn_and_wildcards_skip_dotfiles_as_glob_3() {
    let t = TempDir::new("braces");
    // Quoted: unquoted, `{` and `}` are words of their own (keepalived's
    // lexer too).
    let main = t.write("k.conf", "include \"{vs,extra}/*.conf\"\n");
    t.write("vs/b.conf", &service("10.0.0.3"));
    t.write("vs/a.conf", &service("10.0.0.2"));
    t.write("extra/a.conf", &service("10.0.0.1"));
    // An editor's swap or backup file: glob(3)'s `*` does not match it.
    t.write("vs/.a.conf", "garbage {\n");
    let l = load_ok(&main);
    let addrs = service_addrs(&l);
    assert_eq!(
        addrs,
        ["10.0.0.2", "10.0.0.3", "10.0.0.1"],
        "vs/ first, then extra/"
    );
    assert!(warnings(&l).is_empty(), "{:?}", warnings(&l));
}

#[test]
fn include_inside_a_block() {
    let t = TempDir::new("inblock");
    let main = t.write(
        "k.conf",
        "virtual_server 10.0.0.1 80 {\n include reals/*.conf\n}\n",
    );
    t.write("reals/a.conf", "real_server 10.9.0.1 80 {\n}\n");
    t.write("reals/b.conf", "real_server 10.9.0.2 80 {\n weight 4\n}\n");
    let c = load_ok(&main).config;
    let weights: Vec<u32> = c.virtual_servers[0]
        .reals
        .iter()
        .map(|r| r.weight)
        .collect();
    assert_eq!(weights, [1, 4]);
}

#[test]
fn errors_in_included_files_name_the_included_file() {
    let t = TempDir::new("errloc");
    let main = t.write("k.conf", "\ninclude sub.conf\n");
    let sub = t.write(
        "sub.conf",
        "\n\nvirtual_server 10.0.0.1 80 {\n lb_kind TUN\n}\n",
    );
    let e = load(&main).err().unwrap_or_else(|| panic!("accepted"));
    assert_eq!(
        e.to_string(),
        format!(
            "{}:4: error: lb_kind TUN is not supported: xdpvs forwards in direct-routing mode (DR)",
            sub.display()
        )
    );
}

#[test]
fn include_loops_are_errors() {
    let t = TempDir::new("loop");
    let a = t.write("a.conf", "include b.conf\n");
    let b = t.write("b.conf", "\ninclude a.conf\n");
    let e = load(&a).err().unwrap_or_else(|| panic!("accepted"));
    let canon = |p: &Path| {
        p.canonicalize()
            .unwrap_or_else(|e| panic!("{e}"))
            .display()
            .to_string()
    };
    assert_eq!(
        e.to_string(),
        format!(
            "{}:2: error: include loop: {} includes {} includes {}",
            b.display(),
            canon(&a),
            canon(&b),
            canon(&a)
        )
    );
}

#[test]
fn a_glob_that_matches_its_own_file_is_a_loop() {
    let t = TempDir::new("selfglob");
    let main = t.write("k.conf", &format!("{VRRP}include *.conf\n"));
    let e = load(&main).err().unwrap_or_else(|| panic!("accepted"));
    assert!(
        e.to_string()
            .starts_with(&format!("{}:8: error: include loop:", main.display())),
        "{e}"
    );
}

#[test]
fn the_same_file_twice_is_not_a_loop() {
    let t = TempDir::new("twice");
    let main = t.write("k.conf", "include s.conf\ninclude s.conf\n");
    t.write("s.conf", "vrrp_script s {\n script /bin/true\n}\n");
    let e = load(&main).err().unwrap_or_else(|| panic!("accepted"));
    assert_eq!(
        rendered(&e.diagnostics, Severity::Error),
        [format!(
            "{0}:1: error: vrrp_script s is already defined at {0}:1",
            t.0.join("s.conf").display()
        )]
    );
}

#[test]
fn unreadable_files() {
    let t = TempDir::new("unreadable");
    let missing = t.0.join("none.conf");
    let e = load(&missing).err().unwrap_or_else(|| panic!("accepted"));
    assert!(
        e.to_string().starts_with(&format!(
            "{0}:0: error: cannot read {0}: ",
            missing.display()
        )),
        "{e}"
    );
    let main = t.write("k.conf", "include [\n");
    let e = load(&main).err().unwrap_or_else(|| panic!("accepted"));
    assert!(
        e.to_string().starts_with(&format!(
            "{}:1: error: include \"[\": bad pattern",
            main.display()
        )),
        "{e}"
    );
}

#[test]
fn parse_str_follows_includes_only_from_an_absolute_name() {
    let t = TempDir::new("parsestr");
    t.write("conf.d/v.conf", VRRP);
    let c = parse_str("include conf.d/*.conf\n", &t.0.join("virtual.conf"))
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    assert_eq!(c.vrrp_instances[0].name, "V");
    let l = ok("include conf.d/*.conf\n");
    assert!(l.config.vrrp_instances.is_empty());
    assert_eq!(
        warnings(&l),
        [
            "k.conf:1: warning: include \"conf.d/*.conf\" not followed: the configuration was given as text with a relative name"
        ]
    );
}

#[test]
fn latin1_comments_are_read_with_a_warning() {
    let t = TempDir::new("latin1");
    let main = t.0.join("k.conf");
    let mut bytes = b"# priorit\xe9 du ma\xeetre\n".to_vec();
    bytes.extend_from_slice(VRRP.as_bytes());
    std::fs::write(&main, bytes).unwrap_or_else(|e| panic!("{e}"));
    let l = load_ok(&main);
    assert_eq!(l.config.vrrp_instances[0].vrid, 7);
    assert_eq!(
        warnings(&l),
        [format!(
            "{}:0: warning: not valid UTF-8 (a Latin-1 comment?): the invalid bytes are read as U+FFFD",
            main.display()
        )]
    );
}
