//! `xdpvs ctl explain`: which real a flow goes to now, and why.

use std::net::{IpAddr, SocketAddr};

use anyhow::Result;
use lb_common::{CONFIG_PASS_NO_REAL, NO_REAL, PersistKey, REAL_NO_NEW, REAL_UP, RING_SIZE};

use super::state::State;
use crate::dataplane::{
    flow_scan::coarse_now_ns,
    keys::{Proto, addr_words, flow_key},
};

pub fn explain(
    state: &State,
    proto: Proto,
    client: (IpAddr, u16),
    vip: (IpAddr, u16),
) -> Result<String> {
    let exact = (vip.0, vip.1, proto);
    let any_port = (vip.0, 0, proto);
    let Some((id, index)) = [exact, any_port]
        .into_iter()
        .find_map(|id| state.reconciler.service_index(&id).map(|i| (id, i)))
    else {
        return Ok(format!(
            "{proto} {} is no service: the kernel gets it (XDP_PASS)",
            SocketAddr::new(vip.0, vip.1)
        ));
    };
    let name_of = |number: u32| {
        index
            .reals
            .iter()
            .find(|(_, n)| *n == number)
            .map(|((a, p), _)| SocketAddr::new(*a, *p).to_string())
            .unwrap_or_else(|| format!("real #{number} (not of this service)"))
    };
    // The data plane follows a flow or a binding only to a real that is up
    // and still this service's; otherwise it places the packet again.
    let usable = |number: u32, refused: u16| {
        state
            .maps
            .real(number)
            .is_some_and(|r| r.flags & (REAL_UP | refused) == REAL_UP && r.service == index.id)
    };
    // The same clock and timeouts the XDP program judges entries by.
    let (config, now) = (state.maps.config()?, coarse_now_ns());
    let key = flow_key(proto, client.0, client.1, vip.0, vip.1);
    let service = format!("service {proto} {}", SocketAddr::new(id.0, id.1));
    let mut passed_over = Vec::new();
    if let Some(flow) = state.maps.flow(&key) {
        let closed = flow.flags & lb_common::FLOW_CLOSING != 0;
        if config.idle_out(key.proto, flow.flags, flow.last_seen_ns, now) {
            passed_over.push(format!(
                "its flow table entry is idle beyond its timeout ({} s), so it is decided again",
                config.timeout_s(key.proto, closed)
            ));
        } else if usable(flow.real, 0) {
            let closing = if closed {
                ", closing (FIN/RST seen)"
            } else {
                ""
            };
            return Ok(format!(
                "{service}: flow table entry → {}{closing}",
                name_of(flow.real)
            ));
        } else {
            passed_over.push(format!(
                "its flow table entry names {}, which is down, so it is placed again",
                name_of(flow.real)
            ));
        }
    }
    let persist_timeout = state
        .table
        .services
        .get(&id)
        .map_or(0, |s| s.persistence_timeout);
    if persist_timeout > 0 {
        let (client_words, family) = addr_words(client.0);
        let pkey = PersistKey {
            client: client_words,
            service: index.id,
            family,
            _pad: [0; 3],
        };
        if let Some(p) = state.maps.persistence(&pkey) {
            let fresh =
                now.wrapping_sub(p.last_seen_ns) < u64::from(persist_timeout) * 1_000_000_000;
            if !fresh {
                passed_over.push(format!(
                    "client {}'s binding is older than persistence_timeout {persist_timeout}s",
                    client.0
                ));
            } else if usable(p.real, REAL_NO_NEW) {
                return Ok(format!(
                    "{service}: {}client {} is bound to {} (persistence_timeout {persist_timeout}s)",
                    prefix(&passed_over),
                    client.0,
                    name_of(p.real)
                ));
            } else {
                passed_over.push(format!(
                    "client {} is bound to {}, which is down or takes no new flows",
                    client.0,
                    name_of(p.real)
                ));
            }
        }
    }
    let slot = key.hash() % RING_SIZE;
    let real = state.maps.ring_slot(index.ring, slot)?;
    let why = prefix(&passed_over);
    Ok(if real == NO_REAL {
        let fate = if config.flags & CONFIG_PASS_NO_REAL != 0 {
            "the kernel gets it (--pass-without-real)"
        } else {
            "it is dropped"
        };
        format!("{service}: {why}ring slot {slot} is empty (no real up): {fate}")
    } else {
        format!(
            "{service}: {why}Maglev ring {} slot {slot} → {}",
            index.ring,
            name_of(real)
        )
    })
}

/// What the data plane looked at and passed over before the final step.
fn prefix(passed_over: &[String]) -> String {
    if passed_over.is_empty() {
        "no flow yet; ".to_string()
    } else {
        format!("{}; ", passed_over.join("; "))
    }
}
