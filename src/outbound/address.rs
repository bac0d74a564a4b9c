//! Which addresses the outbound client may connect to. A URL is user
//! input, so before connecting, every address its host resolves to is held
//! against the IANA special-purpose registries (IPv4 and IPv6): loopback,
//! private, shared (carrier-grade NAT), link-local (the cloud metadata
//! address `169.254.169.254` and `fd00:ec2::254` included), multicast,
//! unspecified, documentation, benchmarking, reserved, and every IPv6 address
//! outside global unicast `2000::/3` (which refuses the IPv4-mapped
//! `::ffff:0:0/96` and IPv4-compatible forms of every address, NAT64's
//! `64:ff9b::/96` and the unique-local `fc00::/7`); inside it, the IETF
//! protocol assignments `2001::/23` (Teredo among them), documentation
//! `2001:db8::/32` and `3fff::/20`, and 6to4 `2002::/16`, whose embedded
//! IPv4 address could be any of the above. A host that resolves to one
//! refused address is refused, whatever else it resolves to.
//!
//! A deployment may allow some hosts anyway (`PROVIDER_ALLOWED_HOSTS`: a
//! private JIRA installation, a test's stand-in): a host name listed there
//! is not checked, and an address listed there is allowed.

use std::net::IpAddr;

use ipnet::IpNet;

/// Blocks that `std`'s stable predicates do not name, with why they are
/// refused (IANA IPv4 and IPv6 special-purpose address registries).
const SPECIAL: &[(&str, &str)] = &[
    ("0.0.0.0/8", "an unspecified (\"this network\") address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("192.0.0.0/24", "an IETF protocol assignment"),
    ("192.88.99.0/24", "a deprecated 6to4 relay address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("240.0.0.0/4", "a reserved address"),
    ("2001::/23", "an IETF protocol assignment (Teredo, ORCHID, benchmarking, ...)"),
    ("2001:db8::/32", "a documentation address"),
    ("2002::/16", "a 6to4 address (it embeds an IPv4 address)"),
    ("3fff::/20", "a documentation address"),
];

/// Why the check must not connect to `ip`, or `None` when it may.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    if ip.is_multicast() {
        return Some("a multicast address");
    }
    match ip {
        IpAddr::V4(v4) if v4.is_private() => return Some("a private address"),
        IpAddr::V4(v4) if v4.is_link_local() => return Some("a link-local address (the metadata service's included)"),
        IpAddr::V4(v4) if v4.is_broadcast() => return Some("the broadcast address"),
        IpAddr::V4(v4) if v4.is_documentation() => return Some("a documentation address"),
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => return Some("an IPv4-mapped IPv6 address"),
        IpAddr::V6(v6) if v6.is_unique_local() => return Some("a private (unique-local) address"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => return Some("a link-local address"),
        IpAddr::V6(v6) if (v6.segments()[0] & 0xe000) != 0x2000 => {
            return Some("an IPv6 address outside global unicast (2000::/3)")
        }
        _ => {}
    }
    SPECIAL.iter().find(|(net, _)| net.parse::<IpNet>().is_ok_and(|n| n.contains(&ip))).map(|(_, why)| *why)
}

/// The deployment's exceptions: host names not checked, addresses allowed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllowList {
    hosts: Vec<String>,
    addresses: Vec<IpAddr>,
}

impl AllowList {
    /// A comma-separated list of host names and IP addresses.
    pub fn parse(text: &str) -> Self {
        let mut allow = AllowList::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                Ok(ip) => allow.addresses.push(ip),
                Err(_) => allow.hosts.push(entry.trim_end_matches('.').to_ascii_lowercase()),
            }
        }
        allow
    }

    pub fn host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    pub fn address(&self, ip: IpAddr) -> bool {
        self.addresses.contains(&ip)
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.addresses.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_special_purpose_class_is_refused_in_both_families_and_mapped_forms() {
        for refused in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "192.0.0.170",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.251",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "192.88.99.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "2001::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "3fff::1",
            "100::1",
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(refusal(ip).is_some(), "{refused} must be refused");
        }
        for allowed in ["8.8.8.8", "104.192.141.1", "13.52.5.96", "2606:4700::6810:84e5", "2a00:1450:4001::200e"] {
            assert_eq!(refusal(allowed.parse().unwrap()), None, "{allowed}");
        }
    }

    #[test]
    fn the_allow_list_names_hosts_and_addresses() {
        let allow = AllowList::parse(" localhost, JIRA.internal. ,10.1.2.3, [fd00::5] ,");
        assert!(allow.host("LOCALHOST") && allow.host("jira.internal") && allow.host("jira.internal."));
        assert!(!allow.host("jira.internal.evil.com"));
        assert!(allow.address("10.1.2.3".parse().unwrap()) && allow.address("fd00::5".parse().unwrap()));
        assert!(!allow.address("10.1.2.4".parse().unwrap()));
        assert!(AllowList::parse(" , ").is_empty());
    }
}
