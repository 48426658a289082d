//! Which send-limit buckets a client IP hits (issue 12, item 11).
//!
//! A bucket keyed on the address text counted `::ffff:203.0.113.7` apart from `203.0.113.7` and
//! gave every IPv6 address its own budget, while one subscriber holds a whole /64 (RFC 6177,
//! RFC 7421: 2^64 addresses to rotate through). So:
//! - IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is the IPv4 address;
//! - IPv4 is counted per address (`send:ip:203.0.113.7`, the key used before);
//! - IPv6 is counted per /64 (`send:ip6/64:2001:db8:1:2::`) with the per-IP limit, and per /48
//!   (`send:ip6/48:2001:db8:1::`, a site: RFC 6177 allocates /48 to /56 per customer) with a
//!   looser limit, so an attacker holding a /48 cannot multiply the budget by 65,536 /64s.
//!
//! Pure: no I/O. The keys are the same in every market database, so the service can read the
//! other markets' counts of the same client (see [`crate::Elsewhere`]).

use std::net::{IpAddr, Ipv6Addr};

/// How wide a bucket is, which decides the limit that applies to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpScope {
    /// One IPv4 address, one IPv6 /64, or (if it does not parse) the text as given: the
    /// per-IP limit (`IP_SEND_LIMIT`).
    Subscriber,
    /// One IPv6 /48: the looser site limit (`IPV6_48_SEND_LIMIT`).
    Site,
}

/// A send-limit bucket of a client IP.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpBucket {
    /// Storage key, e.g. `send:ip:203.0.113.7`, `send:ip6/64:2001:db8::`.
    pub key: String,
    /// Which limit applies.
    pub scope: IpScope,
}

/// The address as counted: IPv4-mapped IPv6 becomes IPv4; anything else unchanged.
pub fn normalize(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// `v6` with all but its first `bits` bits zeroed.
fn network(v6: Ipv6Addr, bits: u32) -> Ipv6Addr {
    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
    Ipv6Addr::from(u128::from(v6) & mask)
}

/// The buckets a send-code from `ip` (the resolved client IP, as text) hits: one for IPv4, two
/// for IPv6 (/64 and /48). Text that is not an IP address (not produced by the api, which
/// resolves addresses) is bucketed as given, so it is still limited.
pub fn send_buckets(ip: &str) -> Vec<IpBucket> {
    // Accept a zone id (`fe80::1%eth0`) by dropping it: it names an interface of ours.
    let bare = ip.split('%').next().unwrap_or(ip).trim();
    let parsed = bare.parse::<IpAddr>().ok().map(normalize);
    match parsed {
        Some(IpAddr::V4(v4)) => vec![IpBucket {
            key: format!("send:ip:{v4}"),
            scope: IpScope::Subscriber,
        }],
        Some(IpAddr::V6(v6)) => vec![
            IpBucket {
                key: format!("send:ip6/64:{}", network(v6, 64)),
                scope: IpScope::Subscriber,
            },
            IpBucket {
                key: format!("send:ip6/48:{}", network(v6, 48)),
                scope: IpScope::Site,
            },
        ],
        None => vec![IpBucket {
            key: format!("send:ip:{ip}"),
            scope: IpScope::Subscriber,
        }],
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::*;

    fn keys(ip: &str) -> Vec<String> {
        send_buckets(ip).into_iter().map(|b| b.key).collect()
    }

    #[test]
    fn examples() {
        assert_eq!(keys("203.0.113.7"), ["send:ip:203.0.113.7"]);
        assert_eq!(keys("::ffff:203.0.113.7"), ["send:ip:203.0.113.7"]);
        assert_eq!(keys("::FFFF:cb00:7107"), ["send:ip:203.0.113.7"]);
        assert_eq!(
            keys("2001:db8:1:2:3:4:5:6"),
            ["send:ip6/64:2001:db8:1:2::", "send:ip6/48:2001:db8:1::"]
        );
        assert_eq!(keys("2001:0DB8:0001:0002::ffff"), keys("2001:db8:1:2::1"));
        assert_eq!(keys("not-an-ip"), ["send:ip:not-an-ip"]);
        // IPv4-compatible (deprecated `::a.b.c.d`) is not mapped: it is an IPv6 address.
        assert_eq!(keys("::1.2.3.4")[0], "send:ip6/64:::");
    }

    proptest! {
        /// Every IPv4 address and its IPv4-mapped IPv6 form share one bucket.
        #[test]
        fn mapped_ipv4_is_ipv4(a in any::<u32>()) {
            let v4 = Ipv4Addr::from(a);
            let mapped = v4.to_ipv6_mapped();
            prop_assert_eq!(keys(&v4.to_string()), keys(&mapped.to_string()));
            prop_assert_eq!(send_buckets(&mapped.to_string())[0].scope, IpScope::Subscriber);
        }

        /// Every address of a /64 shares its /64 and /48 buckets, whatever the interface id
        /// and however it is spelled.
        #[test]
        fn one_bucket_per_64(net in any::<u64>(), a in any::<u64>(), b in any::<u64>()) {
            prop_assume!(Ipv6Addr::from((u128::from(net) << 64) | u128::from(a)).to_ipv4_mapped().is_none());
            let x = Ipv6Addr::from((u128::from(net) << 64) | u128::from(a));
            let y = Ipv6Addr::from((u128::from(net) << 64) | u128::from(b));
            let (kx, ky) = (keys(&x.to_string()), keys(&y.to_string()));
            prop_assert_eq!(&kx, &ky);
            prop_assert_eq!(kx.len(), 2);
            // The full (uncompressed, uppercase) spelling lands in the same buckets.
            let seg = x.segments().iter().map(|s| format!("{s:04X}")).collect::<Vec<_>>().join(":");
            prop_assert_eq!(keys(&seg), kx);
        }

        /// Two /64s share a /48 bucket exactly when their first 48 bits agree, and never a /64
        /// bucket when they differ.
        #[test]
        fn site_bucket_is_the_48(x in any::<u128>(), y in any::<u128>()) {
            let (x, y) = (Ipv6Addr::from(x), Ipv6Addr::from(y));
            prop_assume!(x.to_ipv4_mapped().is_none() && y.to_ipv4_mapped().is_none());
            let (bx, by) = (send_buckets(&x.to_string()), send_buckets(&y.to_string()));
            let same48 = (u128::from(x) >> 80) == (u128::from(y) >> 80);
            let same64 = (u128::from(x) >> 64) == (u128::from(y) >> 64);
            prop_assert_eq!(bx[1].key == by[1].key, same48);
            prop_assert_eq!(bx[0].key == by[0].key, same64);
            prop_assert_eq!(bx[1].scope, IpScope::Site);
        }

        /// IPv4 and IPv6 keys never collide.
        #[test]
        fn families_apart(a in any::<u32>(), x in any::<u128>()) {
            let v6 = Ipv6Addr::from(x);
            prop_assume!(v6.to_ipv4_mapped().is_none());
            let k4 = keys(&Ipv4Addr::from(a).to_string());
            let k6 = keys(&v6.to_string());
            prop_assert!(k6.iter().all(|k| !k4.contains(k)));
        }
    }
}
