//! `smtp_alert` end to end (root): two xdpvs nodes in namespaces mail a
//! real SMTP server (aiosmtpd) on a VRRP takeover, a real going down and
//! the quorum lost, in keepalived's words; a mail server that accepts and
//! never answers delays neither a takeover nor a stop.

use std::{
    net::{SocketAddr, SocketAddrV4},
    thread,
    time::{Duration, Instant},
};

use tests::{
    keepalived::{master_down_interval, wait_vip},
    smtp::{Silent, Sink},
    topology::{CLIENT, DrLab, VIP, real_addr},
};

/// Scheduling, polling and process start-up on a loaded 2-core runner.
const SLACK: Duration = Duration::from_millis(1500);
/// A mail reaches the sink this soon after its event.
const MAIL_WAIT: Duration = Duration::from_secs(10);
const XDP_MODE: &str = "native";

/// Node `id` (`lb1`...) at `priority`, mailing `server`; with `real`, a
/// TCP-checked virtual server whose quorum mails too.
fn conf(id: &str, priority: u8, server: SocketAddr, timeout: Option<u32>, real: bool) -> String {
    let mut c = format!(
        "global_defs {{\n    script_user root\n    enable_script_security\n    router_id {id}\n    \
         notification_email {{\n        ops@example.com\n        oncall@example.com\n    }}\n    \
         notification_email_from xdpvs@{id}.example.com\n    smtp_server {} {}\n",
        server.ip(),
        server.port()
    );
    if let Some(t) = timeout {
        c += &format!("    smtp_connect_timeout {t}\n");
    }
    c += &format!(
        "}}\nvrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
         priority {priority}\n    advert_int 1\n    smtp_alert\n    virtual_ipaddress {{\n        \
         {VIP}/32 dev eth0\n    }}\n}}\n"
    );
    if real {
        c += &format!(
            "virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    \
             protocol TCP\n    smtp_alert\n    real_server {} 80 {{\n        TCP_CHECK {{\n            \
             connect_timeout 1\n        }}\n    }}\n}}\n",
            real_addr(0)
        );
    }
    c
}

fn metric(text: &str, line_start: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn alert_mails_on_takeover_real_down_and_stop_root() {
    let mut lab = DrLab::build("ma", 2, 1).expect("building the lab");
    let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
    let server = SocketAddr::V4(SocketAddrV4::new(CLIENT, 2525));
    let client = lab.client.clone();
    let sink = Sink::start(&mut lab.lab, &client, server).expect("aiosmtpd");

    lab.start_xdpvs(0, &conf("lb1", 100, server, Some(5), true), XDP_MODE)
        .expect("xdpvs lb1");
    let startup = master_down_interval(2, 100) + SLACK;
    wait_vip(&lb1, true, startup).expect("lb1 becomes master");
    let mail = sink
        .wait_subject(
            "[lb1] VRRP Instance VI_1 - Entering MASTER state",
            MAIL_WAIT,
        )
        .expect("lb1's MASTER mail");
    for header in [
        "From: xdpvs@lb1.example.com\n",
        "To: ops@example.com, oncall@example.com\n",
        "X-MailFrom: xdpvs@lb1.example.com\n",
        "X-RcptTo: ops@example.com, oncall@example.com\n",
    ] {
        assert!(mail.contains(header), "{header:?} missing in:\n{mail}");
    }
    for header in ["Date: ", "Message-ID: <"] {
        assert!(
            mail.lines().any(|l| l.starts_with(header)),
            "no {header} in:\n{mail}"
        );
    }
    assert!(
        mail.trim_end()
            .ends_with("\n\n=> VRRP Instance is now owning VRRP VIPs <="),
        "{mail}"
    );
    sink.wait_subject(
        "[lb1] VRRP Instance VI_1 - Entering BACKUP state",
        MAIL_WAIT,
    )
    .expect("lb1 started as BACKUP, as keepalived does");

    lab.start_xdpvs(1, &conf("lb2", 90, server, Some(5), true), XDP_MODE)
        .expect("xdpvs lb2");
    sink.wait_subject(
        "[lb2] VRRP Instance VI_1 - Entering BACKUP state",
        MAIL_WAIT,
    )
    .expect("lb2's BACKUP mail");

    lab.lab
        .stop("xdpvs-lb1", libc::SIGKILL)
        .expect("kill -9 lb1");
    let took = wait_vip(&lb2, true, master_down_interval(2, 90) + SLACK).expect("lb2 takes over");
    let since = Instant::now();
    let mail = sink
        .wait_subject(
            "[lb2] VRRP Instance VI_1 - Entering MASTER state",
            MAIL_WAIT,
        )
        .expect("lb2's MASTER mail");
    println!(
        "takeover {:.2} s; its mail in the sink {:.2} s after the VIP",
        took.as_secs_f64(),
        since.elapsed().as_secs_f64()
    );
    assert!(mail.contains("From: xdpvs@lb2.example.com\n"), "{mail}");

    // The real goes down: lb2's TCP_CHECK (delay_loop 1, retry 1) mails it,
    // and the service's lost quorum.
    lab.stop_nginx(0).expect("stopping nginx");
    let real = format!(
        "[lb2] Realserver [{}]:tcp:80 of virtual server [{VIP}]:tcp:80 - DOWN",
        real_addr(0)
    );
    let mail = sink
        .wait_subject(&real, MAIL_WAIT)
        .expect("the real's DOWN mail");
    assert!(
        mail.trim_end()
            .ends_with("\n\n=> TCP CHECK failed on service <="),
        "{mail}"
    );
    let mail = sink
        .wait_subject(
            &format!("[lb2] Virtualserver [{VIP}]:tcp:80 - DOWN"),
            MAIL_WAIT,
        )
        .expect("the quorum's DOWN mail");
    assert!(
        mail.trim_end()
            .ends_with("\n\n=> Lost quorum 1+0=1 <= 0 <="),
        "{mail}"
    );

    let from_lb2 = || {
        sink.mails()
            .iter()
            .filter(|m| m.contains("From: xdpvs@lb2.example.com\n"))
            .count() as u64
    };
    let text = lab.metrics(1).expect("lb2's metrics");
    assert_eq!(
        metric(&text, "xdpvs_alert_mails_total{result=\"sent\"} "),
        Some(from_lb2()),
        "{text}"
    );
    assert_eq!(
        metric(&text, "xdpvs_alert_mails_total{result=\"failed\"} "),
        Some(0)
    );

    // A planned stop says so before the daemon exits.
    lab.lab
        .stop("xdpvs-lb2", libc::SIGTERM)
        .expect("stopping lb2");
    sink.wait_subject(
        "[lb2] VRRP Instance VI_1 - Stopping",
        Duration::from_secs(1),
    )
    .expect("the Stopping mail was sent before exit");
    let log = lab.lab.log("xdpvs-lb2");
    assert!(
        log.contains("alert mail sent via 10.100.0.10:2525: [lb2] VRRP Instance VI_1 - Stopping"),
        "{log}"
    );
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn a_mail_server_that_never_answers_delays_nothing_root() {
    let mut lab = DrLab::build("mh", 2, 0).expect("building the lab");
    let (lb1, lb2) = (lab.lbs[0].clone(), lab.lbs[1].clone());
    let server = SocketAddr::V4(SocketAddrV4::new(CLIENT, 2526));
    let silent = Silent::start(&lab.client, server).expect("a silent listener");

    // keepalived's default smtp_connect_timeout, 30 s: far longer than any
    // VRRP timer, so a mail in the way would show.
    lab.start_xdpvs(0, &conf("lb1", 100, server, None, false), XDP_MODE)
        .expect("xdpvs lb1");
    // A mail in the way would hold the takeover for the 30 s connect: the
    // wait allows a loaded machine's start (the other tests of this file run
    // beside it), not that.
    wait_vip(&lb1, true, master_down_interval(2, 100) + 3 * SLACK).expect("lb1 becomes master");
    lab.start_xdpvs(1, &conf("lb2", 90, server, None, false), XDP_MODE)
        .expect("xdpvs lb2");
    // lb1's BACKUP and MASTER mails and lb2's BACKUP one hang in connect.
    let deadline = Instant::now() + MAIL_WAIT;
    while silent.connections() < 3 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        silent.connections() >= 3,
        "{} connections",
        silent.connections()
    );

    lab.lab
        .stop("xdpvs-lb1", libc::SIGKILL)
        .expect("kill -9 lb1");
    let bound = master_down_interval(2, 90);
    let took = wait_vip(&lb2, true, bound + SLACK).expect("lb2 takes over with its mail hanging");
    println!(
        "takeover with a silent mail server: {:.2} s (RFC Master_Down_Interval(90) {:.2} s)",
        took.as_secs_f64(),
        bound.as_secs_f64()
    );
    let deadline = Instant::now() + MAIL_WAIT;
    while silent.connections() < 4 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(silent.connections() >= 4, "lb2's MASTER mail was tried");

    // lb1 back (it preempts): lb2 is a backup, whose stop is at once but
    // for its Stopping mail, waited for a bounded time (2 s), then left.
    lab.start_xdpvs(0, &conf("lb1", 100, server, None, false), XDP_MODE)
        .expect("restarting lb1");
    let preempted =
        wait_vip(&lb2, false, master_down_interval(2, 100) + SLACK).expect("lb1 preempts lb2");
    println!(
        "lb1 restarted and preempted lb2 in {:.2} s (RFC Master_Down_Interval(100) {:.2} s)",
        preempted.as_secs_f64(),
        master_down_interval(2, 100).as_secs_f64()
    );
    let started = Instant::now();
    lab.lab
        .stop("xdpvs-lb2", libc::SIGTERM)
        .expect("stopping lb2");
    let stop = started.elapsed();
    println!(
        "backup's stop with its mails hanging: {:.2} s",
        stop.as_secs_f64()
    );
    let log = lab.lab.log("xdpvs-lb2");
    assert!(stop < Duration::from_millis(4000), "{stop:?}:\n{log}");
    assert!(
        log.contains("VI_1: stopped"),
        "a clean stop, not a kill:\n{log}"
    );
    assert!(!log.contains("alert mail sent"), "{log}");
}

/// `notify_fifo` with its `notify_fifo_script`: the reader started with the
/// FIFO's path gets keepalived's lines for the instance and the real, and
/// the FIFO xdpvs created is gone after a stop.
#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn notify_fifo_lines_reach_its_reader_root() {
    let mut lab = DrLab::build("nf", 1, 1).expect("lab");
    let dir = lab.lab.dir.clone();
    let (fifo, out, reader) = (dir.join("events"), dir.join("read"), dir.join("reader.sh"));
    std::fs::write(
        &reader,
        format!("#!/bin/sh\nexec cat \"$1\" >> {}\n", out.display()),
    )
    .expect("reader");
    std::fs::set_permissions(&reader, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let config = format!(
        "global_defs {{\n    script_user root\n    notify_fifo {}\n    notify_fifo_script {}\n}}\n\
         vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n    priority 255\n    \
         virtual_ipaddress {{\n        {VIP}/32 dev eth0\n    }}\n}}\n\
         virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_kind DR\n    protocol TCP\n    \
         real_server {} 80 {{\n        TCP_CHECK {{\n            connect_timeout 1\n        }}\n    }}\n}}\n",
        fifo.display(),
        reader.display(),
        real_addr(0)
    );
    lab.start_xdpvs(0, &config, XDP_MODE).expect("xdpvs");
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    let log = lab.lab.log_path("xdpvs-lb1");
    let wait = |want: &str| {
        tests::netns::wait_for(Duration::from_secs(10), || {
            if read().contains(want) {
                Ok(())
            } else {
                anyhow::bail!("no {want:?} yet")
            }
        })
        .unwrap_or_else(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("{e}:\n{}\n{log}", read())
        });
    };
    wait("INSTANCE \"VI_1\" MASTER 255\n");
    lab.stop_nginx(0).expect("stop nginx");
    let rs = format!("RS [{}]:tcp:80 [{VIP}]:tcp:80 DOWN\n", real_addr(0));
    wait(&rs);
    wait(&format!("VS [{VIP}]:tcp:80 DOWN\n"));
    assert!(fifo.exists(), "the FIFO is there while xdpvs runs");
    lab.lab.stop("xdpvs-lb1", libc::SIGTERM).expect("SIGTERM");
    assert!(!fifo.exists(), "the FIFO xdpvs created is removed at stop");
    println!("{}", read());
}
