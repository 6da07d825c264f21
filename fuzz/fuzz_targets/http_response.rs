//! HTTP_GET / SSL_GET response handling on arbitrary server answers: the
//! input is what the real sends (after one flags byte), over an in-memory
//! stream, into the same `xdpvs::health::http::check` the probes run (hyper).
//! The server then closes its side, so every input must get a verdict, never
//! a timeout, and never a panic.
//!
//! Flags: bit 0: the url has a digest (md5 of "ok"); bit 1: its accepted
//! status codes are 200 and 404 (else any 2xx).

#![no_main]

use std::{sync::OnceLock, time::Duration};

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use xdpvs::{
    config::Url,
    health::{
        http::check,
        probe::{Failure, Outcome, bounded},
    },
};

/// Far beyond any answer that has all its bytes; on the paused clock it
/// passes at once when the check waits for nothing but time.
const LIMIT: Duration = Duration::from_secs(30);

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a tokio runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, response)) = data.split_first() else {
        return;
    };
    let url = Url {
        path: "/health".into(),
        status_codes: if flags & 2 != 0 {
            vec![200, 404]
        } else {
            vec![]
        },
        digest: (flags & 1 != 0).then(|| "444bcb3a3fcf8389296c49467f27e1d6".into()),
        virtualhost: None,
        regex: None,
        protocol: Default::default(),
    };
    let response = response.to_vec();
    let outcome = runtime().block_on(async move {
        let (client, mut server) = tokio::io::duplex(16 << 10);
        // The real: reads the request, answers, closes its sending side and
        // reads on until the check hangs up.
        let real = async move {
            let mut request = [0u8; 4096];
            let _ = server.read(&mut request).await;
            let _ = server.write_all(&response).await;
            let _ = server.shutdown().await;
            while matches!(server.read(&mut request).await, Ok(n) if n > 0) {}
        };
        let (outcome, ()) = tokio::join!(bounded(LIMIT, check(client, &url, "fuzz.test")), real);
        outcome
    });
    match outcome {
        Outcome::Up | Outcome::Down(Failure::Status(_) | Failure::DigestMismatch) => {}
        Outcome::Down(Failure::BadResponse(m)) => assert!(!m.is_empty()),
        other => panic!("a complete, closed answer got {other:?}"),
    }
});
