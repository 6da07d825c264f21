//! Reading one statement's value, with a precise error when it is wrong.

use std::{net::IpAddr, str::FromStr, time::Duration};

use super::{
    diag::Diagnostics,
    lexer::Token,
    model::{NotifyScript, ScriptUser},
    tree::Node,
};

/// The statement's single argument; an error names the keyword when missing.
pub fn one<'n>(n: &'n Node, d: &mut Diagnostics) -> Option<&'n str> {
    match n.args.as_slice() {
        [v] => Some(v.text.as_str()),
        [] => {
            d.error(&n.at, format!("{} needs a value", n.keyword));
            None
        }
        [v, ..] => {
            d.warn(
                &n.at,
                format!("{}: extra values after {:?} ignored", n.keyword, v.text),
            );
            Some(v.text.as_str())
        }
    }
}

/// An integer within `lo..=hi`.
pub fn int<T>(n: &Node, lo: T, hi: T, d: &mut Diagnostics) -> Option<T>
where
    T: FromStr + PartialOrd + Copy + std::fmt::Display,
{
    let v = one(n, d)?;
    match v.parse::<T>() {
        Ok(x) if x >= lo && x <= hi => Some(x),
        _ => {
            d.error(
                &n.at,
                format!(
                    "{} {v}: must be a whole number from {lo} to {hi}",
                    n.keyword
                ),
            );
            None
        }
    }
}

/// Seconds, whole or decimal (`advert_int 0.5`), at least `min_ms` ms.
pub fn secs(n: &Node, min_ms: u64, d: &mut Diagnostics) -> Option<Duration> {
    let v = one(n, d)?;
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && s * 1000.0 >= min_ms as f64 && s < 1e9 => {
            Some(Duration::from_secs_f64(s))
        }
        _ => {
            let floor = if min_ms == 0 {
                "0".to_string()
            } else {
                format!("{}", min_ms as f64 / 1000.0)
            };
            d.error(
                &n.at,
                format!(
                    "{} {v}: must be a number of seconds, at least {floor}",
                    n.keyword
                ),
            );
            None
        }
    }
}

pub fn ip_text(text: &str) -> Option<IpAddr> {
    text.parse().ok()
}

pub fn ip(n: &Node, d: &mut Diagnostics) -> Option<IpAddr> {
    let v = one(n, d)?;
    let parsed = ip_text(v);
    if parsed.is_none() {
        d.error(&n.at, format!("{} {v}: not an IP address", n.keyword));
    }
    parsed
}

pub fn port_text(text: &str) -> Option<u16> {
    text.parse().ok()
}

/// The script or command of `script`, `notify_*`, `misc_path`: all arguments.
pub fn command(n: &Node, d: &mut Diagnostics) -> Option<String> {
    if n.args.is_empty() {
        d.error(&n.at, format!("{} needs a command", n.keyword));
        return None;
    }
    Some(
        n.args
            .iter()
            .map(|a| a.text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The words of `WORD [USER [GROUP]]`, keepalived's form for a script to
/// run as a user of its own (`notify_script_init`) and for a FIFO's owner:
/// the first, and the user and group after it. `Err` holds how many words
/// there were when that is not one to three, for the caller to say what
/// its keyword needs.
pub fn word_and_user(n: &Node) -> Result<(String, Option<ScriptUser>), usize> {
    let user = |u: &Token, g: Option<&Token>| ScriptUser {
        user: u.text.clone(),
        group: g.map(|g| g.text.clone()),
    };
    let (word, user) = match &n.args[..] {
        [word] => (word, None),
        [word, u] => (word, Some(user(u, None))),
        [word, u, g] => (word, Some(user(u, Some(g)))),
        args => return Err(args.len()),
    };
    Ok((word.text.clone(), user))
}

/// A `notify*` or `quorum_*` keyword: `SCRIPT [USER [GROUP]]`, the script
/// one word or one quoted string holding the command and its arguments.
pub fn notify_command(n: &Node, d: &mut Diagnostics) -> Option<NotifyScript> {
    match word_and_user(n) {
        Ok((command, user)) => Some(NotifyScript { command, user }),
        Err(0) => {
            d.error(&n.at, format!("{} needs a command", n.keyword));
            None
        }
        Err(_) => {
            d.error(
                &n.at,
                format!(
                    "{} needs SCRIPT [USER [GROUP]]: put the arguments inside the quotes: \
                     \"{} ARGS\"",
                    n.keyword, n.args[0].text
                ),
            );
            None
        }
    }
}

/// A flag keyword takes no value.
pub fn flag(n: &Node, d: &mut Diagnostics) -> bool {
    if !n.args.is_empty() {
        d.warn(
            &n.at,
            format!(
                "{} takes no value; the rest of the line is ignored",
                n.keyword
            ),
        );
    }
    true
}

/// A keepalived switch: the keyword alone is on, else `true`/`false`,
/// `yes`/`no` or `on`/`off` (keepalived's words, case and all); `None` after
/// an error.
pub fn switch(n: &Node, d: &mut Diagnostics) -> Option<bool> {
    let Some(v) = n.arg(0) else {
        return Some(true);
    };
    if n.args.len() > 1 {
        d.warn(
            &n.at,
            format!("{}: extra values after {v:?} ignored", n.keyword),
        );
    }
    match v {
        "true" | "yes" | "on" => Some(true),
        "false" | "no" | "off" => Some(false),
        other => {
            d.error(
                &n.at,
                format!(
                    "{} {other}: expected on/off, true/false or yes/no",
                    n.keyword
                ),
            );
            None
        }
    }
}

/// `ip` scope names (iproute2's rt_scopes) or a number.
pub fn scope(text: &str) -> Option<u8> {
    match text {
        "global" | "universe" => Some(0),
        "site" => Some(200),
        "link" => Some(253),
        "host" => Some(254),
        "nowhere" => Some(255),
        n => n.parse().ok(),
    }
}
