//! keepalived.conf(5) "ADVANCED CONFIGURATION": `@ID` conditional lines with
//! `--config-id`, `$NAME=value` parameters; and older spellings read with a
//! warning that names the modern one.

use super::*;

fn with_id(text: &str, id: Option<&str>) -> Result<Loaded, ConfigError> {
    let options = Options {
        config_id: id.map(String::from),
    };
    parse_str_with(text, Path::new("k.conf"), &options)
}

fn ok_with(text: &str, id: Option<&str>) -> Loaded {
    with_id(text, id).unwrap_or_else(|e| panic!("refused:\n{e}"))
}

#[test]
fn conditional_lines_follow_the_config_id() {
    // keepalived.conf(5)'s example.
    let text = "global_defs {\n    @main   router_id main_router\n    @backup router_id backup_router\n}\nvrrp_instance V {\n interface eth0\n virtual_router_id 7\n @main priority 200\n @^main priority 100\n unicast_peer {\n  @^main    10.0.0.4\n  @^backup  10.0.0.5\n  @^backup2 10.0.0.6\n }\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n";
    let main = ok_with(text, Some("main"));
    let c = &main.config;
    assert_eq!(c.global.router_id.as_deref(), Some("main_router"));
    assert_eq!(c.vrrp_instances[0].priority, 200);
    assert_eq!(
        c.vrrp_instances[0].unicast_peers,
        [ip("10.0.0.5"), ip("10.0.0.6")]
    );
    assert_eq!(
        rendered(&main.diagnostics, Severity::Warning),
        Vec::<String>::new()
    );
    let backup = ok_with(text, Some("backup")).config;
    assert_eq!(backup.global.router_id.as_deref(), Some("backup_router"));
    assert_eq!(backup.vrrp_instances[0].priority, 100);
    let none = ok_with(text, None).config;
    assert_eq!(none.global.router_id, None);
    assert_eq!(none.vrrp_instances[0].unicast_peers.len(), 3);
}

#[test]
fn a_parameter_ends_at_a_comment_inside_a_word_unless_escaped() {
    let text = "$PASS=ab\\#cd#ef\nvrrp_instance V {\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  10.0.0.1\n }\n authentication {\n  auth_type PASS\n  auth_pass $PASS\n }\n}\n";
    let c = ok_with(text, None).config;
    assert_eq!(
        c.vrrp_instances[0].auth,
        Some(Auth::Pass("ab#cd".into())),
        "`\\#` is the character, `#` a comment, as keepalived reads them"
    );
}

#[test]
fn parameters_are_substituted_when_used() {
    let text = "$PRIO=240 # the master's\n$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}\n$ADDRESS_BASE_SUB=0\nvrrp_instance V {\n interface eth0\n virtual_router_id 7\n priority $PRIO\n virtual_ipaddress {\n  ${ADDRESS_BASE}.100/32\n  $NOT_DEFINED\n }\n notify_master \"/bin/echo $1 ${UNDEFINED} ${_PWD}\"\n}\n";
    let l = with_id(text, None);
    let e = l.err().unwrap_or_else(|| panic!("accepted"));
    // Undefined parameters stay as written, as in keepalived.
    assert_eq!(
        rendered(&e.diagnostics, Severity::Error),
        ["k.conf:10: error: virtual_ipaddress $NOT_DEFINED: not an IP address"]
    );
    let text = text.replace("  $NOT_DEFINED\n", "");
    let c = ok_with(&text, None).config;
    let i = &c.vrrp_instances[0];
    assert_eq!(i.priority, 240);
    assert_eq!(i.vips[0].addr, ip("10.2.0.100"));
    // `_PWD` is the file's directory: none for a relative name.
    assert_eq!(
        i.notify.master.as_ref().map(|s| s.command.as_str()),
        Some("/bin/echo $1 ${UNDEFINED} ")
    );
    let c = ok_with(
        "$P=@main priority 200\nvrrp_instance V {\n interface eth0\n virtual_router_id 7\n @main $IP=10.0.0.1\n @^main $IP=10.0.0.2\n $P\n virtual_ipaddress {\n  $IP\n }\n}\n",
        Some("main"),
    )
    .config;
    assert_eq!(
        (
            c.vrrp_instances[0].priority,
            c.vrrp_instances[0].vips[0].addr
        ),
        (200, ip("10.0.0.1"))
    );
}

#[test]
fn multi_line_parameters_expand_line_by_line() {
    // keepalived.conf(5)'s nested example, reduced: a definition inside a
    // value holds for the lines after it.
    let text = "$RS= \\\n real_server 192.168.${VS_NUM}.${RS_NUM} 80 { \\\n  weight ${RS_NUM} \\\n }\n$VS= \\\nvirtual_server 10.0.${VS_NUM}.4 80 { \\\n $RS_NUM=1 \\\n $RS \\\n $RS_NUM=2 \\\n $RS \\\n}\n$VS_NUM=0\n$VS\n$VS_NUM=1\n$VS\n";
    let c = ok_with(text, None).config;
    let got: Vec<(String, Vec<(String, u32)>)> = c
        .virtual_servers
        .iter()
        .map(|vs| {
            let reals = vs
                .reals
                .iter()
                .map(|r| (r.addr.to_string(), r.weight))
                .collect();
            (vs.addr.to_string(), reals)
        })
        .collect();
    let want = |vs: u8| {
        (
            format!("10.0.{vs}.4"),
            vec![
                (format!("192.168.{vs}.1"), 1),
                (format!("192.168.{vs}.2"), 2),
            ],
        )
    };
    assert_eq!(got, [want(0), want(1)]);
    // Every line an expansion makes is at the line that used it.
    assert_eq!(c.virtual_servers[1].location.line, 15);
}

#[test]
fn parameters_that_use_themselves_are_bounded() {
    assert_eq!(
        errors("$A=x ${A}\nrouter_id ${A}\n"),
        [
            "k.conf:2: error: parameters nested more than 16 deep (does a parameter use itself?); line not read"
        ]
    );
    // Quadrupling at each level stays within the bounds: one line, then all.
    let mut text = String::from("$A0=xxxxxxxxxxxxxxxx\n");
    for i in 1..16 {
        text.push_str(&format!(
            "$A{i}=${{A{0}}}${{A{0}}}${{A{0}}}${{A{0}}}\n",
            i - 1
        ));
    }
    text.push_str("x ${A15}\n");
    assert_eq!(
        errors(&text),
        [
            "k.conf:17: error: parameter substitution makes this line longer than 1048576 bytes; line not read"
        ]
    );
    let mut text = String::from("$A=");
    text.push_str(&"x".repeat(1 << 19));
    text.push('\n');
    text.push_str(&"${A}\n".repeat(70));
    assert_eq!(
        errors(&text),
        [
            "k.conf:64: error: parameter substitution brings what is read to more than 33554432 bytes; line not read"
        ]
    );
}

#[test]
fn sequences_are_refused() {
    assert_eq!(
        errors("~SEQ(N, 0, 3) 10.0.${N}.1\n"),
        [
            "k.conf:1: error: ~SEQ and ~LST lines are not supported by xdpvs: write out the lines they stand for"
        ]
    );
}

#[test]
fn unicode_blanks_in_quotes_are_spaces_with_the_same_warning() {
    let l = ok(
        "vrrp_script chk {\n script \"killall\u{a0}-0 nginx\"\n}\nvrrp_instance V {\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  10.0.0.1\n }\n track_script {\n  chk\n }\n}\n",
    );
    assert_eq!(l.config.vrrp_scripts[0].script, "killall -0 nginx");
    assert_eq!(
        warnings(&l),
        [
            "k.conf:2: warning: Unicode blank U+00A0 read as a space (keepalived would read it as part of a word); further ones in this file are read the same way"
        ]
    );
}

#[test]
fn old_style_sync_groups_are_read_with_a_warning() {
    let l = ok(&format!(
        "vrrp_sync_group G {{\n V\n notify_master /bin/true\n}}\n{}",
        instance("")
    ));
    assert_eq!(l.config.sync_groups[0].members, ["V"]);
    assert_eq!(
        warnings(&l),
        [
            "k.conf:2: warning: vrrp_sync_group G: V written directly in the group (older syntax) is read as a member; the modern form is `group { V }`"
        ]
    );
    // A word that names no instance is still an unknown keyword.
    let l = ok("vrrp_sync_group G {\n W\n}\n");
    assert_eq!(
        warnings(&l),
        ["k.conf:2: warning: unknown keyword W in vrrp_sync_group, ignored"]
    );
}

fn services(n: usize, reals: usize) -> String {
    let real = |j: usize| format!(" real_server 10.9.0.{j} 80 {{\n }}\n");
    (0..n)
        .map(|i| {
            let rs: String = (1..=reals).map(real).collect();
            format!("virtual_server 10.0.0.{} 80 {{\n{rs}}}\n", i + 1)
        })
        .collect()
}

#[test]
fn capacities_are_configured_and_checked_as_run_would() {
    let c = ok(&format!(
        "global_defs {{\n xdpvs_max_services 2\n xdpvs_max_reals 6\n xdpvs_max_flows 4096\n}}\n{}",
        services(2, 3)
    ))
    .config;
    assert_eq!(
        c.global.capacity,
        Capacity {
            services: 2,
            reals: 6,
            flows: 4096
        }
    );
    // The defaults: 64 services, as the data plane's tables.
    assert_eq!(
        errors(&services(65, 1)),
        [
            "k.conf:257: error: virtual_server 10.0.0.65 80: more than 64 virtual servers; raise xdpvs_max_services in global_defs (at most 4096)"
        ]
    );
    // The first real past the capacity is named.
    assert_eq!(
        errors(&format!(
            "global_defs {{\n xdpvs_max_reals 4\n}}\n{}",
            services(2, 3)
        )),
        [
            "k.conf:15: error: virtual_server 10.0.0.2 80: more than 4 real servers over all virtual servers (a sorry_server counts as one); raise xdpvs_max_reals in global_defs (at most 1048576)"
        ]
    );
    assert_eq!(
        errors("global_defs {\n xdpvs_max_services 5000\n xdpvs_max_flows 10\n}\n"),
        [
            "k.conf:2: error: xdpvs_max_services 5000: must be a whole number from 1 to 4096",
            "k.conf:3: error: xdpvs_max_flows 10: must be a whole number from 1024 to 67108864"
        ]
    );
}

#[test]
fn port_zero_services_serve_every_port() {
    let c = ok(
        "virtual_server 10.0.0.1 0 {\n real_server 10.0.0.2 0 {\n  TCP_CHECK {\n   connect_port 22\n  }\n }\n real_server 10.0.0.3 80 {\n  TCP_CHECK {\n  }\n }\n}\n",
    )
    .config;
    let vs = &c.virtual_servers[0];
    assert_eq!((vs.port, vs.reals[0].port, vs.reals[1].port), (0, 0, 80));
}
