//! keepalived's `startup_script` and `shutdown_script`: run once when the
//! daemon starts (before it touches the interface) and once when it stops
//! (after the VRRP handover), each waited for up to its timeout, through the
//! one script runner (its user, no capabilities, its own process group). A
//! failing script is logged and changes nothing else, as in keepalived. An
//! upgrade runs neither: the node does not stop or start then.

use log::{info, warn};

use crate::{
    config::{Config, HostScript},
    script_runner::{Outcome, prepare_one},
};

/// Runs `startup_script`, if any.
pub async fn startup(config: &Config) {
    run(
        "startup_script",
        config.global.startup_script.as_ref(),
        config,
    )
    .await;
}

/// Runs `shutdown_script`, if any.
pub async fn shutdown(config: &Config) {
    run(
        "shutdown_script",
        config.global.shutdown_script.as_ref(),
        config,
    )
    .await;
}

async fn run(word: &str, script: Option<&HostScript>, config: &Config) {
    let Some(s) = script else {
        return;
    };
    let Some(prepared) = prepare_one(config, &s.command, s.user.as_ref(), &s.location) else {
        warn!("{word} {}: not run", s.command);
        return;
    };
    info!("running {word} {} (at most {:?})", s.command, s.timeout);
    match prepared.run(s.timeout).await {
        Outcome::Exited(0) => info!("{word} {}: done", s.command),
        Outcome::Exited(code) => warn!("{word} {}: exited with {code}", s.command),
        Outcome::TimedOut => warn!(
            "{word} {}: still running after {:?}, killed",
            s.command, s.timeout
        ),
        other => warn!("{word} {}: {other:?}", s.command),
    }
}
