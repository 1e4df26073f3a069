//! How clients are counted by address, for per-address limits and bans.

use std::net::{IpAddr, Ipv6Addr};

/// The key an address is counted under: an IPv4 address as is (IPv4-mapped
/// IPv6 included) and an IPv6 address by its /64, the block one subscriber
/// usually gets, so a single host cannot dodge a per-address limit by
/// rotating through its own addresses.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}
