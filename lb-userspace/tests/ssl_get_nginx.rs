//! SSL_GET against a real nginx with a self-signed certificate (OpenSSL on
//! the server side, rustls on ours), from config text to probe verdicts:
//! the check takes the certificate as keepalived does, sends SNI only with
//! `enable_sni`, the Host header from `virtualhost`, and judges status and
//! digest. nginx echoes the SNI name and Host it saw, and the digest covers
//! that body, so a digest match proves what was sent.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};

use xdpvs::{
    config::parse_str,
    dataplane::keys::Proto,
    health::{
        probe::{Failure, Outcome},
        spec_for,
    },
    script_runner::{Preparer, RealFs},
};

/// nginx serving TLS on `port` from a fresh directory; killed (by its PID)
/// and its directory removed on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Nginx {
    fn start(dir: PathBuf, tls_port: u16, plain_port: u16) -> Self {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("nginx dir");
        let cert = rcgen::generate_simple_self_signed(vec!["www.example.test".into()])
            .expect("certificate");
        std::fs::write(dir.join("cert.pem"), cert.cert.pem()).expect("cert.pem");
        std::fs::write(dir.join("key.pem"), cert.key_pair.serialize_pem()).expect("key.pem");
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  \
             fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n  \
             server {{\n    listen 127.0.0.1:{tls_port} ssl;\n    \
             ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n    \
             location /health {{ default_type text/plain; return 200 \"sni=$ssl_server_name host=$host\\n\"; }}\n    \
             location /down {{ return 503; }}\n  }}\n  \
             server {{\n    listen 127.0.0.1:{plain_port};\n    location / {{ return 200; }}\n  }}\n}}\n"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("nginx.conf");
        let child = Command::new("/usr/sbin/nginx")
            .arg("-c")
            .arg(&conf_path)
            .spawn()
            .expect("nginx (installed by `cargo xtask test`)");
        let nginx = Nginx { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        let tls = SocketAddr::from(([127, 0, 0, 1], tls_port));
        while TcpStream::connect_timeout(&tls, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                nginx.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn md5_hex(text: &str) -> String {
    use md5::Digest as _;
    md5::Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The verdict of the one SSL_GET check `check` (a block's body) on the
/// real at `port`.
async fn verdict(port: u16, check: &str) -> Outcome {
    let text = format!(
        "virtual_server 127.0.0.1 {port} {{\n real_server 127.0.0.1 {port} {{\n  {check}\n }}\n}}\n"
    );
    let loaded = parse_str(&text, Path::new("k.conf")).unwrap_or_else(|e| panic!("{e}"));
    let vs = &loaded.config.virtual_servers[0];
    let mut scripts = Preparer::new(&loaded.config, &RealFs);
    let auth = xdpvs::health::tls::ClientAuth::None;
    let spec = spec_for(vs, &vs.reals[0], Proto::Tcp, &mut scripts, &auth).expect("a check");
    spec.checkers[0].probe.run().await
}

#[tokio::test]
#[ignore = "needs nginx: run by `cargo xtask test`"]
async fn ssl_get_checks_nginx_over_tls() {
    let (tls_port, plain_port) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("xdpvs-ssl-get-{}", std::process::id()));
    let mut nginx = Nginx::start(dir, tls_port, plain_port);

    let sni = md5_hex("sni=www.example.test host=www.example.test\n");
    let check = format!(
        "SSL_GET {{\n url {{\n path /health\n digest {sni}\n virtualhost www.example.test\n }}\n enable_sni\n connect_timeout 2\n }}"
    );
    assert_eq!(
        verdict(tls_port, &check).await,
        Outcome::Up,
        "{}",
        nginx.log()
    );

    // Without enable_sni nginx sees no server name; Host is still the virtual host.
    let no_sni = md5_hex("sni= host=www.example.test\n");
    let check = format!(
        "SSL_GET {{\n url {{\n path /health\n digest {no_sni}\n virtualhost www.example.test\n }}\n connect_timeout 2\n }}"
    );
    assert_eq!(verdict(tls_port, &check).await, Outcome::Up);
    let check = format!(
        "SSL_GET {{\n url {{\n path /health\n digest {sni}\n virtualhost www.example.test\n }}\n connect_timeout 2\n }}"
    );
    assert_eq!(
        verdict(tls_port, &check).await,
        Outcome::Down(Failure::DigestMismatch),
        "no SNI without enable_sni"
    );

    assert_eq!(
        verdict(
            tls_port,
            "SSL_GET {\n url {\n path /down\n }\n connect_timeout 2\n }"
        )
        .await,
        Outcome::Down(Failure::Status(503))
    );
    let plain = verdict(
        plain_port,
        "SSL_GET {\n url {\n path /\n }\n connect_timeout 2\n }",
    )
    .await;
    assert!(
        matches!(&plain, Outcome::Down(Failure::BadResponse(m)) if m.starts_with("TLS handshake: ")),
        "{plain:?}"
    );
    // The same nginx over plain HTTP_GET answers.
    assert_eq!(
        verdict(
            plain_port,
            "HTTP_GET {\n url {\n path /\n }\n connect_timeout 2\n }"
        )
        .await,
        Outcome::Up
    );

    nginx.stop();
    assert_eq!(
        verdict(
            tls_port,
            "SSL_GET {\n url {\n path /health\n }\n connect_timeout 2\n }"
        )
        .await,
        Outcome::Down(Failure::Refused),
        "nginx stopped"
    );
}
