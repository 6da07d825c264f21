//! Background client load through the VIP: one request every 20 ms on a
//! fresh connection, until told to stop; counts what succeeded and failed.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use crate::{
    netns::in_netns,
    topology::{DrLab, VIP, http_get},
};

pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    thread: thread::JoinHandle<()>,
}

impl Load {
    pub fn start(lab: &DrLab) -> Self {
        let (stop, ok, failed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (s, o, f, ns) = (stop.clone(), ok.clone(), failed.clone(), lab.client.clone());
        let thread = thread::spawn(move || {
            let run = in_netns(&ns, move || {
                while !s.load(Ordering::Relaxed) {
                    match http_get(SocketAddr::from((VIP, 80))) {
                        Ok(_) => o.fetch_add(1, Ordering::Relaxed),
                        Err(_) => f.fetch_add(1, Ordering::Relaxed),
                    };
                    thread::sleep(Duration::from_millis(20));
                }
            });
            if let Err(e) = run {
                eprintln!("load: {e:#}");
            }
        });
        Load {
            stop,
            ok,
            failed,
            thread,
        }
    }

    /// Stops the load; (succeeded, failed).
    pub fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}
