//! The client's address behind reverse proxies. `X-Forwarded-For` is a list each proxy appends to:
//! the client controls everything left of what our own proxies wrote, so the address is read from the
//! right, skipping only hops we trust — a configured number of proxies in front of us, or proxies
//! whose addresses are in configured networks. Without either, the peer address is the client and the
//! header is ignored. Per-IP limits and the IPs in the audit trail and the session list depend on it.

use std::net::IpAddr;

pub use crate::config::Proxies;

/// One `X-Forwarded-For` entry: an address, optionally with a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    entry.rsplit_once(':').and_then(|(ip, port)| port.parse::<u16>().ok().and(ip.parse().ok()))
}

/// The client address for a request from `peer` carrying these `X-Forwarded-For` header values (in
/// the order received; several headers count as one list).
pub fn client_address(peer: Option<IpAddr>, forwarded_for: &[&str], proxies: &Proxies) -> Option<IpAddr> {
    let entries: Vec<&str> = forwarded_for.iter().flat_map(|value| value.split(',')).map(str::trim).filter(|e| !e.is_empty()).collect();
    match proxies {
        Proxies::None => peer,
        Proxies::Hops(0) => peer,
        // Our first proxy (counting from the client) appended the client's address: the `hops`-th
        // entry from the right. Fewer entries means the request skipped some of our proxies; then
        // every entry was still written by one of ours, and the leftmost is the furthest we can see.
        Proxies::Hops(hops) => {
            let index = entries.len().saturating_sub(*hops);
            match entries.get(index) {
                Some(entry) => parse_entry(entry).or(peer),
                None => peer,
            }
        }
        Proxies::Networks(networks) => {
            let trusted = |ip: &IpAddr| networks.iter().any(|net| net.contains(ip));
            let mut current = peer?;
            for entry in entries.iter().rev() {
                if !trusted(&current) {
                    break;
                }
                // A malformed entry written (or passed on) by a trusted proxy: stop at that proxy.
                let Some(ip) = parse_entry(entry) else { break };
                current = ip;
            }
            Some(current)
        }
    }
}

/// Whether the request came through one of our proxies, so headers they set (a request id) are
/// theirs: with a hop count every request does; with networks, when the peer is in one.
pub fn from_our_proxy(peer: Option<IpAddr>, proxies: &Proxies) -> bool {
    match proxies {
        Proxies::None | Proxies::Hops(0) => false,
        Proxies::Hops(_) => true,
        Proxies::Networks(networks) => peer.is_some_and(|ip| networks.iter().any(|net| net.contains(&ip))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("ip"))
    }

    #[test]
    fn the_client_is_read_from_the_right_past_trusted_hops_only() {
        let peer = ip("10.0.0.2");
        let nets = Proxies::Networks(vec!["10.0.0.0/8".parse().expect("net"), "127.0.0.0/8".parse().expect("net")]);
        // (headers, proxies, expected)
        let cases: Vec<(Vec<&str>, Proxies, Option<IpAddr>)> = vec![
            // No proxies configured: the header is ignored, whatever it says.
            (vec!["203.0.113.9"], Proxies::None, peer),
            (vec!["203.0.113.9"], Proxies::Hops(0), peer),
            // One proxy: the entry it appended (rightmost); anything left of it is the client's.
            (vec!["6.6.6.6, 203.0.113.9"], Proxies::Hops(1), ip("203.0.113.9")),
            (vec!["6.6.6.6", "203.0.113.9"], Proxies::Hops(1), ip("203.0.113.9")),
            (vec!["203.0.113.9"], Proxies::Hops(1), ip("203.0.113.9")),
            // Two proxies: the second from the right.
            (vec!["6.6.6.6, 203.0.113.9, 10.1.1.1"], Proxies::Hops(2), ip("203.0.113.9")),
            (vec!["203.0.113.9"], Proxies::Hops(2), ip("203.0.113.9")),
            (vec![], Proxies::Hops(1), peer),
            (vec!["garbage"], Proxies::Hops(1), peer),
            (vec!["203.0.113.9:4711"], Proxies::Hops(1), ip("203.0.113.9")),
            (vec!["[2001:db8::7]:4711"], Proxies::Hops(1), ip("2001:db8::7")),
            // Trusted networks: skip trusted addresses from the right; the first other one is the client.
            (vec!["6.6.6.6, 203.0.113.9, 10.9.9.9"], nets.clone(), ip("203.0.113.9")),
            (vec!["6.6.6.6, 203.0.113.9"], nets.clone(), ip("203.0.113.9")),
            (vec!["10.9.9.9"], nets.clone(), ip("10.9.9.9")),
            (vec!["6.6.6.6, garbage, 10.9.9.9"], nets.clone(), ip("10.9.9.9")),
        ];
        for (headers, proxies, expected) in cases {
            assert_eq!(client_address(peer, &headers, &proxies), expected, "{headers:?} with {proxies:?}");
        }
        // A peer that is not one of our proxies is the client, whatever it sends.
        assert_eq!(client_address(ip("192.0.2.50"), &["6.6.6.6"], &nets), ip("192.0.2.50"));
    }
}
