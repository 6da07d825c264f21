//! End to end in network namespaces (root): static neighbour entries for the
//! reals, as production often has them, are used as they are and never
//! modified by the daemon's resolution requests.

use std::{net::SocketAddr, time::Duration};

use tests::topology::{DrLab, VIP, real_addr};

/// The MAC of `eth0` in namespace `ns`.
fn mac(lab: &DrLab, ns: &str) -> String {
    let link = lab.lab.ip(ns, &["link", "show", "eth0"]).expect("ip link");
    link.split("link/ether ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no MAC in {link}"))
        .to_string()
}

/// The LB's neighbour entry for real `i`, as `ip neigh` prints it.
fn entry(lab: &DrLab, i: usize) -> String {
    lab.lab
        .ip(
            &lab.lbs[0],
            // `nud all`: ip hides noarp entries otherwise.
            &[
                "neigh",
                "show",
                &real_addr(i).to_string(),
                "dev",
                "eth0",
                "nud",
                "all",
            ],
        )
        .expect("ip neigh")
}

#[test]
#[ignore = "needs root: run by `cargo xtask test`"]
fn static_neighbour_entries_are_left_alone_root() {
    let mut lab = DrLab::build("nb", 1, 2).expect("building the lab");
    lab.lab
        .ip(
            &lab.lbs[0],
            &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
        )
        .expect("VIP on lb1");
    // rs1 `nud permanent`, rs2 `nud noarp`, before the daemon starts.
    for (i, nud) in [(0, "permanent"), (1, "noarp")] {
        let m = mac(&lab, &lab.reals[i].clone());
        lab.lab
            .ip(
                &lab.lbs[0],
                &[
                    "neigh",
                    "replace",
                    &real_addr(i).to_string(),
                    "lladdr",
                    &m,
                    "nud",
                    nud,
                    "dev",
                    "eth0",
                ],
            )
            .expect("static neighbour entry");
    }
    let config = format!(
        "virtual_server {VIP} 80 {{\n  lb_kind DR\n  protocol TCP\n  \
         real_server {} 80 {{\n  }}\n  real_server {} 80 {{\n  }}\n}}\n",
        real_addr(0),
        real_addr(1)
    );
    lab.start_xdpvs(0, &config, "generic")
        .expect("starting xdpvs");
    // Past the start-up refresh and a few resolution retries.
    std::thread::sleep(Duration::from_secs(3));
    let counts = lab
        .answers(SocketAddr::from((VIP, 80)), 40)
        .expect("client");
    assert_eq!(counts.get("failed"), None, "{counts:?}");
    assert!(
        counts.contains_key("rs1") && counts.contains_key("rs2"),
        "both reals serve through their static entries: {counts:?}"
    );
    let (rs1, rs2) = (entry(&lab, 0), entry(&lab, 1));
    assert!(rs1.contains("PERMANENT"), "rs1's entry was changed: {rs1}");
    assert!(rs2.contains("NOARP"), "rs2's entry was changed: {rs2}");
}
