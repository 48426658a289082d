//! Who the client is: the socket peer, or — only behind a trusted proxy — the address that proxy
//! wrote into `X-Forwarded-For` (issue 12, item 13).
//!
//! Each proxy appends the address it received the connection from, so the header reads
//! `client, proxy1, proxy2` and only the entries written by proxies we trust are believed. We walk
//! from the right (nearest hop first): trusted entries are skipped, the first untrusted one is the
//! client. An entry we cannot read (`unknown`, `_hidden`, garbage) stops the walk and the last
//! trusted hop is used — skipping it instead would let a client put any address it likes just left
//! of it. Entries may carry a port (`1.2.3.4:5678`, `[2001:db8::1]:443`, as HAProxy and some load
//! balancers write them) or brackets (`[2001:db8::1]`). IPv4-mapped IPv6 addresses
//! (`::ffff:1.2.3.4`) are the IPv4 address they carry, so one client is one key in the limits.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

/// `ip` with IPv4-mapped IPv6 (`::ffff:a.b.c.d`) replaced by the IPv4 address.
pub fn normalize(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// One `X-Forwarded-For` element: `ip`, `ipv4:port`, `[ipv6]` or `[ipv6]:port`, surrounding
/// whitespace ignored. `None` for anything else (`unknown`, obfuscated identifiers, junk).
pub fn parse_forwarded_element(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = ip.parse().ok()?;
        if !after.is_empty() {
            parse_port(after.strip_prefix(':')?)?;
        }
        return Some(normalize(IpAddr::V6(ip)));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(normalize(ip));
    }
    // `a.b.c.d:port`; a bare IPv6 address has several colons and parsed above.
    let (ip, port) = s.split_once(':')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    parse_port(port)?;
    Some(IpAddr::V4(ip))
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

/// The client address for a connection from `peer` carrying the `X-Forwarded-For` header values
/// `forwarded` (in order of appearance), believing only proxies in `trusted`.
pub fn resolve<'a>(
    peer: IpAddr,
    forwarded: impl IntoIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let peer = normalize(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let entries: Vec<&str> = forwarded.into_iter().flat_map(|v| v.split(',')).collect();
    let mut last_trusted = peer;
    for entry in entries.into_iter().rev() {
        match parse_forwarded_element(entry) {
            None => return last_trusted,
            Some(ip) if is_trusted(&ip) => last_trusted = ip,
            Some(ip) => return ip,
        }
    }
    last_trusted
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn elements_with_ports_and_brackets_parse() {
        let cases = [
            ("1.2.3.4", Some("1.2.3.4")),
            (" 1.2.3.4 ", Some("1.2.3.4")),
            ("1.2.3.4:5678", Some("1.2.3.4")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("[2001:db8::1]", Some("2001:db8::1")),
            ("[2001:db8::1]:443", Some("2001:db8::1")),
            ("::ffff:1.2.3.4", Some("1.2.3.4")),
            ("[::ffff:1.2.3.4]:80", Some("1.2.3.4")),
            ("unknown", None),
            ("_hidden", None),
            ("", None),
            ("1.2.3.4:", None),
            ("1.2.3.4:99999", None),
            ("1.2.3.4:+80", None),
            ("1.2.3.4:80:80", None),
            ("[2001:db8::1]443", None),
            ("[1.2.3.4]", None),
            ("[2001:db8::1", None),
            ("2001:db8::1:80x", None),
            ("fe80::1%eth0", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_forwarded_element(input), want.map(ip), "{input:?}");
        }
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_the_header_says() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(ip("203.0.113.5"), ["1.2.3.4"], &trusted),
            ip("203.0.113.5")
        );
        assert_eq!(
            resolve(ip("203.0.113.5"), ["1.2.3.4"], &[]),
            ip("203.0.113.5")
        );
        assert_eq!(
            resolve(ip("::ffff:203.0.113.5"), [], &[]),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn the_first_untrusted_entry_from_the_right_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        assert_eq!(
            resolve(peer, ["6.6.6.6, 198.51.100.7, 10.0.0.9"], &trusted),
            ip("198.51.100.7")
        );
        // Several header lines are one list, in order.
        assert_eq!(
            resolve(peer, ["6.6.6.6", "198.51.100.7:5000", "10.0.0.9"], &trusted),
            ip("198.51.100.7")
        );
        // A proxy that appends ip:port: the client cannot pick its address by writing one.
        assert_eq!(
            resolve(peer, ["6.6.6.6, 198.51.100.7:5678"], &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve(peer, ["6.6.6.6, [2001:db8::7]:443"], &trusted),
            ip("2001:db8::7")
        );
        assert_eq!(
            resolve(peer, ["::ffff:198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        // No header, or only trusted hops: the last trusted hop.
        assert_eq!(resolve(peer, [], &trusted), peer);
        assert_eq!(resolve(peer, ["10.0.0.9"], &trusted), ip("10.0.0.9"));
    }

    #[test]
    fn an_unreadable_entry_stops_the_walk_at_the_last_trusted_hop() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        // Today's code skipped these and believed 6.6.6.6, which the client wrote.
        for bad in ["unknown", "_hidden", "1.2.3.4:", "[2001:db8::1", "junk", ""] {
            assert_eq!(
                resolve(peer, [format!("6.6.6.6, {bad}").as_str()], &trusted),
                peer,
                "{bad:?}"
            );
            assert_eq!(
                resolve(
                    peer,
                    [format!("6.6.6.6, {bad}, 10.0.0.9").as_str()],
                    &trusted
                ),
                ip("10.0.0.9"),
                "{bad:?}"
            );
        }
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ]
    }

    proptest! {
        #[test]
        fn every_written_form_parses_back(addr in any_ip(), port in any::<u16>()) {
            let want = normalize(addr);
            let forms = match addr {
                IpAddr::V4(a) => vec![a.to_string(), format!("{a}:{port}")],
                IpAddr::V6(a) => vec![a.to_string(), format!("[{a}]"), format!("[{a}]:{port}")],
            };
            for f in forms {
                prop_assert_eq!(parse_forwarded_element(&f), Some(want), "{}", f);
            }
        }

        #[test]
        fn the_answer_is_the_peer_a_trusted_hop_or_the_entry_right_of_them(
            peer in any_ip(),
            entries in proptest::collection::vec(
                prop_oneof![any_ip().prop_map(|i| i.to_string()), "\\PC{0,12}"], 0..6),
            trust_peer in any::<bool>(),
        ) {
            let mut trusted: Vec<IpNet> = Vec::new();
            if trust_peer {
                trusted.push(IpNet::from(normalize(peer)));
            }
            let header = entries.join(",");
            let got = resolve(peer, [header.as_str()], &trusted);
            if !trust_peer {
                prop_assert_eq!(got, normalize(peer));
            } else {
                // Only the peer is trusted: the rightmost entry if it reads, else the peer.
                let last = header.split(',').next_back().and_then(parse_forwarded_element);
                let want = match last {
                    Some(ip) => ip,
                    None => normalize(peer),
                };
                prop_assert_eq!(got, want);
            }
        }
    }
}
