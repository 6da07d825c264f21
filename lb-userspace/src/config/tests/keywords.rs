//! The keyword table against the parser: every row's probe is read and the
//! parser must do what the row says; the README's table is the table.

use super::*;
use crate::config::keywords::{Class, KEYWORDS, Keyword, TOP, readme_table};

const INSTANCE: &str = "track_file f {\n file /run/xdpvs-f\n}\ntrack_process p {\n process nginx\n}\nvrrp_script s {\n script /bin/true\n}\nvrrp_instance V {\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  10.0.0.1\n }\n";
const REAL: &str = "track_file f {\n file /run/xdpvs-f\n}\nvirtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n";

/// The text around a probe of `block`: (before, after).
fn context(block: &str) -> (String, String) {
    let (before, after) = match block {
        TOP => (String::new(), format!("{INSTANCE}}}\n")),
        "global_defs" => ("global_defs {\n".into(), "}\n".into()),
        "vrrp_script" => ("vrrp_script t {\n script /bin/true\n".into(), "}\n".into()),
        "vrrp_instance" => (INSTANCE.into(), "}\n".into()),
        "authentication" => (
            format!("{INSTANCE} authentication {{\n  auth_type PASS\n  auth_pass x\n"),
            " }\n}\n".into(),
        ),
        "vrrp_sync_group" => (
            format!("{INSTANCE}}}\nvrrp_sync_group G {{\n group {{\n  V\n }}\n"),
            "}\n".into(),
        ),
        "virtual_server" => ("virtual_server 10.0.0.1 80 {\n".into(), "}\n".into()),
        "real_server" => (REAL.into(), " }\n}\n".into()),
        "TCP_CHECK" => (format!("{REAL}  TCP_CHECK {{\n"), "  }\n }\n}\n".into()),
        "HTTP_GET" => (
            format!("{REAL}  HTTP_GET {{\n   url {{\n    path /\n   }}\n"),
            "  }\n }\n}\n".into(),
        ),
        "url" => (
            format!("{REAL}  HTTP_GET {{\n   url {{\n    path /\n"),
            "   }\n  }\n }\n}\n".into(),
        ),
        "FILE_CHECK" => (
            format!("{REAL}  FILE_CHECK {{\n   track_file f\n"),
            "  }\n }\n}\n".into(),
        ),
        "MISC_CHECK" => (
            format!("{REAL}  MISC_CHECK {{\n   misc_path /bin/true\n"),
            "  }\n }\n}\n".into(),
        ),
        "virtual_server_group" => ("virtual_server_group g {\n".into(), "}\n".into()),
        "garp_group" => (
            "garp_group {\n garp_interval 0.1\n interface eth9\n".into(),
            "}\n".into(),
        ),
        "track_file" => ("track_file f {\n".into(), "}\n".into()),
        "SSL" => ("SSL {\n".into(), "}\n".into()),
        "vrrp_track_process" => ("vrrp_track_process p {\n".into(), "}\n".into()),
        check @ ("UDP_CHECK" | "PING_CHECK" | "DNS_CHECK" | "SMTP_CHECK") => {
            (format!("{REAL}  {check} {{\n"), "  }\n }\n}\n".into())
        }
        other => panic!("no context for block {other}"),
    };
    (before, after)
}

/// What the parser said about the probe's lines.
fn probe(k: &Keyword) -> Vec<Diagnostic> {
    let statement = if k.probe.starts_with(k.name) || k.probe.starts_with("virtual_server ") {
        k.probe.to_string()
    } else {
        format!("{} {}", k.name, k.probe)
    };
    let (before, after) = if statement.starts_with("virtual_server ") && k.block != TOP {
        (String::new(), String::new())
    } else {
        context(k.block)
    };
    let first = u32::try_from(before.lines().count() + 1).unwrap_or(0);
    let last = first + u32::try_from(statement.lines().count()).unwrap_or(0) - 1;
    let text = format!("{before}{statement}\n{after}");
    let diagnostics = match parse_str(&text, Path::new("/nonexistent-xdpvs-dir/k.conf")) {
        Ok(l) => l.diagnostics,
        Err(e) => e.diagnostics,
    };
    diagnostics
        .into_iter()
        .filter(|d| (first..=last).contains(&d.line))
        .collect()
}

fn class_of(said: &[Diagnostic]) -> Result<Class, String> {
    let has = |words: &[&str]| {
        said.iter()
            .any(|d| words.iter().any(|w| d.message.contains(w)))
    };
    if has(&["unknown keyword"]) {
        return Err("read as an unknown keyword".into());
    }
    if said.iter().any(|d| d.severity == Severity::Error) {
        return Ok(Class::Refused);
    }
    if has(&["ignored", "not acted on", "not supported"]) {
        return Ok(Class::Ignored);
    }
    Ok(Class::Acted)
}

#[test]
fn every_keyword_does_what_the_table_says() {
    let mut wrong = Vec::new();
    for k in KEYWORDS {
        let said = probe(k);
        match class_of(&said) {
            Ok(c) if c == k.class => {}
            got => wrong.push(format!(
                "{} `{}` ({:?}): table says {}, parser: {got:?}; {:?}",
                k.block,
                k.name,
                k.probe,
                k.class.name(),
                said.iter().map(ToString::to_string).collect::<Vec<_>>()
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_readme_table_is_generated_from_the_keywords() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let (begin, end) = ("<!-- keywords:begin -->\n", "<!-- keywords:end -->");
    let (Some(b), Some(e)) = (readme.find(begin), readme.find(end)) else {
        panic!("README.md has no {begin:?} ... {end:?} markers");
    };
    let want = readme_table();
    let have = &readme[b + begin.len()..e];
    if have != want {
        if std::env::var_os("XDPVS_BLESS").is_some() {
            let new = format!("{}{want}{}", &readme[..b + begin.len()], &readme[e..]);
            std::fs::write(&path, new).unwrap_or_else(|e| panic!("{e}"));
        } else {
            panic!(
                "README.md's keyword table differs from config::keywords; rewrite it with XDPVS_BLESS=1 cargo test -p lb-userspace the_readme_table"
            );
        }
    }
}

#[test]
fn every_keepalived_keyword_is_classified() {
    let list = include_str!("../keepalived_keywords.txt");
    let missing: Vec<&str> = list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter(|l| {
            let (block, name) = l.split_once('\t').unwrap_or((l, ""));
            !KEYWORDS.iter().any(|k| k.block == block && k.name == name)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "keepalived keywords with no row in config::keywords:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_row_ignored_or_refused_says_why() {
    let silent: Vec<String> = KEYWORDS
        .iter()
        // Refused by value (`lb_kind NAT` beside `lb_kind DR`): the parser says why.
        .filter(|k| {
            k.class != Class::Acted
                && !KEYWORDS
                    .iter()
                    .any(|o| o.block == k.block && o.name == k.name && o.class == Class::Acted)
        })
        .filter(|k| crate::config::keywords::why(k.block, k.name).is_none())
        .map(|k| format!("{} {}", k.block, k.name))
        .collect();
    assert!(
        silent.is_empty(),
        "rows with no reason in WHY:\n{}",
        silent.join("\n")
    );
}
