//! `xdpvs`: the daemon (`run`), configuration checks (`check`), the
//! ipvsadm-style admin CLI (`adm`) and the control CLI (`ctl`).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match cli::dispatch(cli::Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xdpvs: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
