//! Which events make a mail, as keepalived decides: each block's
//! `smtp_alert` in force, `no_email_faults`, one mail per state change
//! (keepalived's `last_email_state`), a group's state followed from its
//! members. Pure: events in, alerts out.

use std::collections::HashMap;

use super::message::{Alert, VrrpState, check_line, group_service, group_state, quorum_line, trio};
use crate::{
    config::{Config, Protocol},
    dataplane::{
        keys::Proto,
        reconcile::{RealId, ServiceId},
    },
};

struct Group {
    name: String,
    members: Vec<String>,
    on: bool,
    last: Option<VrrpState>,
}

struct Service {
    /// keepalived's name for it, shared by a virtual_server_group's members.
    label: String,
    protocol: Protocol,
    on: bool,
    quorum: u32,
    hysteresis: u32,
}

struct Real {
    on: bool,
    /// The body lines of its checks, when it goes (up, down).
    lines: (String, String),
}

/// The mail rules of one configuration, and what was last mailed.
#[derive(Default)]
pub struct Policy {
    no_email_faults: bool,
    instances: HashMap<String, bool>,
    states: HashMap<String, VrrpState>,
    mailed: HashMap<String, VrrpState>,
    groups: Vec<Group>,
    services: HashMap<ServiceId, Service>,
    reals: HashMap<(ServiceId, RealId), Real>,
    /// Last up/down mailed per (service label, real): the members of a
    /// virtual_server_group share one mail, as keepalived sends one.
    real_mailed: HashMap<(String, RealId), bool>,
    /// Reals start up unless the virtual server has `alpha`.
    starts_up: HashMap<String, bool>,
}

impl Policy {
    /// The rules of `config`; what was mailed before (a reload) is kept.
    pub fn reconfigure(&mut self, config: &Config) {
        let m = &config.global.mail;
        self.no_email_faults = m.no_email_faults;
        self.instances = config
            .vrrp_instances
            .iter()
            .map(|i| (i.name.clone(), m.vrrp(i.smtp_alert)))
            .collect();
        let old: HashMap<String, Option<VrrpState>> =
            self.groups.drain(..).map(|g| (g.name, g.last)).collect();
        self.groups = config
            .sync_groups
            .iter()
            .map(|g| Group {
                name: g.name.clone(),
                members: g.members.clone(),
                on: m.vrrp(g.smtp_alert),
                last: old.get(&g.name).copied().flatten(),
            })
            .collect();
        self.services.clear();
        self.reals.clear();
        for vs in &config.virtual_servers {
            let id = (vs.addr, vs.port, Proto::from(vs.protocol));
            let label = match &vs.group {
                Some(g) => group_service(g, vs.port),
                None => trio(vs.addr, vs.protocol, vs.port),
            };
            self.starts_up.insert(label.clone(), !vs.alpha);
            for r in &vs.reals {
                let lines = |up| {
                    let mut words: Vec<&str> = r.checks.iter().map(|c| check_line(c, up)).collect();
                    words.dedup();
                    words.join("\n")
                };
                self.reals.insert(
                    (id, (r.addr, r.port)),
                    Real {
                        on: m.real_server(r.smtp_alert),
                        lines: (lines(true), lines(false)),
                    },
                );
            }
            self.services.insert(
                id,
                Service {
                    label,
                    protocol: vs.protocol,
                    on: m.virtual_server(vs.smtp_alert),
                    quorum: vs.quorum.quorum,
                    hysteresis: vs.quorum.hysteresis,
                },
            );
        }
    }

    fn wanted(&self, state: VrrpState) -> bool {
        !(self.no_email_faults && state == VrrpState::Fault)
    }

    /// An instance entered `state`: its mail and its groups'.
    pub fn instance(&mut self, name: &str, state: VrrpState) -> Vec<Alert> {
        let mut out = Vec::new();
        self.states.insert(name.to_string(), state);
        if self.instances.get(name) == Some(&true)
            && self.wanted(state)
            && self.mailed.get(name) != Some(&state)
        {
            self.mailed.insert(name.to_string(), state);
            out.push(Alert::Instance {
                name: name.to_string(),
                state,
            });
        }
        for g in self
            .groups
            .iter_mut()
            .filter(|g| g.members.iter().any(|m| m == name))
        {
            let members: Vec<Option<VrrpState>> = g
                .members
                .iter()
                .map(|m| self.states.get(m).copied())
                .collect();
            let Some(now) = group_state(&members) else {
                continue;
            };
            if g.last == Some(now) {
                continue;
            }
            g.last = Some(now);
            if g.on && !(self.no_email_faults && now == VrrpState::Fault) {
                out.push(Alert::Group {
                    name: g.name.clone(),
                    state: now,
                });
            }
        }
        out
    }

    /// A health verdict on a real of a service.
    pub fn real(&mut self, service: ServiceId, real: RealId, up: bool) -> Option<Alert> {
        let s = self.services.get(&service)?;
        let r = self.reals.get(&(service, real))?;
        let key = (s.label.clone(), real);
        let before = self
            .real_mailed
            .get(&key)
            .copied()
            .unwrap_or_else(|| self.starts_up.get(&s.label).copied().unwrap_or(true));
        self.real_mailed.insert(key, up);
        if !r.on || before == up {
            return None;
        }
        let body = if up { &r.lines.0 } else { &r.lines.1 };
        Some(Alert::Real {
            service: s.label.clone(),
            real: trio(real.0, s.protocol, real.1),
            up,
            body: body.clone(),
        })
    }

    /// A service gained or lost its quorum.
    pub fn quorum(
        &self,
        service: ServiceId,
        up: bool,
        threshold: u64,
        weight: u64,
    ) -> Option<Alert> {
        let s = self.services.get(&service).filter(|s| s.on)?;
        Some(Alert::Quorum {
            service: s.label.clone(),
            up,
            body: quorum_line(up, s.quorum, s.hysteresis, threshold, weight),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn policy(text: &str) -> Policy {
        let c = crate::config::parse_str(text, Path::new("k.conf"))
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
        let mut p = Policy::default();
        p.reconfigure(&c);
        p
    }

    const VRRP: &str = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n smtp_alert\n virtual_ipaddress {\n  10.0.0.1\n }\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n  10.0.0.2\n }\n}\nvrrp_sync_group G {\n group {\n  A\n  B\n }\n smtp_alert\n}\n";

    #[test]
    fn instances_mail_each_state_once_and_groups_follow() {
        use VrrpState::*;
        let mut p = policy(VRRP);
        let names =
            |alerts: Vec<Alert>| -> Vec<String> { alerts.iter().map(|a| a.subject("r")).collect() };
        assert_eq!(
            names(p.instance("A", Backup)),
            [
                "[r] VRRP Instance A - Entering BACKUP state",
                "[r] VRRP Group G - Entering BACKUP state"
            ]
        );
        assert_eq!(
            names(p.instance("A", Backup)),
            [] as [String; 0],
            "once a state"
        );
        // B has no smtp_alert (the default is off); the group waits for both.
        assert_eq!(names(p.instance("B", Master)), [] as [String; 0]);
        assert_eq!(
            names(p.instance("A", Master)),
            [
                "[r] VRRP Instance A - Entering MASTER state",
                "[r] VRRP Group G - Entering MASTER state"
            ]
        );
        assert_eq!(
            names(p.instance("B", Fault)),
            ["[r] VRRP Group G - Entering FAULT state"]
        );
    }

    #[test]
    fn no_email_faults_and_global_defaults() {
        let mut p = policy(&format!(
            "global_defs {{\n smtp_alert_vrrp\n no_email_faults\n}}\n{VRRP}"
        ));
        assert!(
            p.instance("B", VrrpState::Fault).is_empty(),
            "no FAULT mail"
        );
        let a = p.instance("B", VrrpState::Backup);
        assert_eq!(
            a[0].subject("r"),
            "[r] VRRP Instance B - Entering BACKUP state"
        );
    }

    #[test]
    fn reals_mail_their_changes_and_groups_share_one() {
        let mut p = policy(
            "virtual_server_group web {\n 10.0.0.1 80\n 10.0.0.2 80\n}\nvirtual_server group web {\n real_server 10.0.1.1 80 {\n  TCP_CHECK {\n  }\n }\n}\nvirtual_server 10.0.0.9 80 {\n alpha\n smtp_alert\n real_server 10.0.1.2 80 {\n  HTTP_GET {\n   url {\n    path /\n   }\n  }\n }\n}\n",
        );
        let ip = |s: &str| s.parse().unwrap();
        let real = (ip("10.0.1.1"), 80);
        // Reals start up: the first up is no news.
        assert_eq!(p.real((ip("10.0.0.1"), 80, Proto::Tcp), real, true), None);
        let down = p
            .real((ip("10.0.0.1"), 80, Proto::Tcp), real, false)
            .unwrap();
        assert_eq!(
            down.subject("r"),
            "[r] Realserver [10.0.1.1]:tcp:80 of virtual server [web]:80 - DOWN"
        );
        assert_eq!(down.body(), "=> TCP CHECK failed on service <=");
        assert_eq!(
            p.real((ip("10.0.0.2"), 80, Proto::Tcp), real, false),
            None,
            "the group's other member: one mail"
        );
        // alpha: reals start down, so the first up is mailed.
        let vs = (ip("10.0.0.9"), 80, Proto::Tcp);
        let up = p.real(vs, (ip("10.0.1.2"), 80), true).unwrap();
        assert_eq!(up.body(), "=> CHECK succeed on service <=");
        let q = p.quorum(vs, true, 1, 1).unwrap();
        assert_eq!(q.subject("r"), "[r] Virtualserver [10.0.0.9]:tcp:80 - UP");
        assert_eq!(q.body(), "=> Gained quorum 1+0=1 <= 1 <=");
        assert_eq!(
            p.quorum((ip("10.0.0.1"), 80, Proto::Tcp), false, 1, 0),
            None,
            "virtual servers mail nothing by default"
        );
    }

    #[test]
    fn smtp_alert_off_on_a_real() {
        let mut p = policy(
            "global_defs {\n smtp_alert_checker off\n}\nvirtual_server 10.0.0.9 80 {\n real_server 10.0.1.2 80 {\n  smtp_alert on\n  TCP_CHECK {\n  }\n }\n real_server 10.0.1.3 80 {\n  TCP_CHECK {\n  }\n }\n}\n",
        );
        let vs = ("10.0.0.9".parse().unwrap(), 80, Proto::Tcp);
        assert!(
            p.real(vs, ("10.0.1.2".parse().unwrap(), 80), false)
                .is_some()
        );
        assert!(
            p.real(vs, ("10.0.1.3".parse().unwrap(), 80), false)
                .is_none()
        );
    }
}
