//! Which client a request comes from, for the per-address limits of [`super::ratelimit`]: the
//! peer address of its connection (axum's `ConnectInfo<SocketAddr>`), or, when that peer is one
//! of the trusted proxies (`--trusted-proxies`), the address the proxies recorded in
//! `X-Forwarded-For`. The header is read right to left and the first address that is not a
//! trusted proxy is the client: entries to its left were written by the client itself and
//! prove nothing. Without trusted proxies (the default) the header is never read.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
pub use ipnet::IpNet;

/// The header proxies append the address they were reached from to.
const FORWARDED_FOR: &str = "x-forwarded-for";

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(networks)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client of `request`: None when the router is served without peer addresses.
    pub fn client(&self, request: &Request) -> Option<IpAddr> {
        let ConnectInfo(peer) = request.extensions().get::<ConnectInfo<SocketAddr>>()?;
        let mut client = canonical(peer.ip());
        if !self.trusts(client) {
            return Some(client);
        }
        let hops = request
            .headers()
            .get_all(FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(address) => {
                    client = address;
                    if !self.trusts(address) {
                        break;
                    }
                }
                // Garbage where a proxy writes: keep the last address a trusted hop gave.
                None => break,
            }
        }
        Some(client)
    }
}

/// An IPv4-mapped IPv6 address as IPv4, so that `10.0.0.0/8` covers `::ffff:10.0.0.1`.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

/// One entry of `X-Forwarded-For`: an address, possibly with a port (`1.2.3.4:5`,
/// `[2001:db8::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    hop.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// One `--trusted-proxies` entry: a network (`10.0.0.0/8`, `fd00::/8`) or one address.
pub fn parse_trusted_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("'{text}' is neither an address nor a network like 10.0.0.0/8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn request(peer: &str, forwarded: Option<&str>) -> Request {
        let peer = SocketAddr::new(peer.parse().unwrap(), 1234);
        let mut builder = Request::get("/").extension(ConnectInfo(peer));
        if let Some(value) = forwarded {
            builder = builder.header(FORWARDED_FOR, value);
        }
        builder.body(Body::empty()).unwrap()
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        let proxies = TrustedProxies::new(vec![
            parse_trusted_proxy("10.0.0.0/8").unwrap(),
            parse_trusted_proxy("192.0.2.1").unwrap(),
        ]);
        let spoofed = request("203.0.113.5", Some("198.51.100.1"));
        assert_eq!(none.client(&spoofed), ip("203.0.113.5"));
        assert_eq!(proxies.client(&spoofed), ip("203.0.113.5"));
        let proxied = request("10.1.2.3", Some("6.6.6.6, 198.51.100.1, 192.0.2.1"));
        assert_eq!(none.client(&proxied), ip("10.1.2.3"));
        assert_eq!(proxies.client(&proxied), ip("198.51.100.1"));
        assert_eq!(
            proxies.client(&request("::ffff:10.1.2.3", Some("[2001:db8::7]:443"))),
            ip("2001:db8::7")
        );
        assert_eq!(
            proxies.client(&request("10.1.2.3", Some("junk, 10.9.9.9"))),
            ip("10.9.9.9")
        );
        assert_eq!(proxies.client(&request("10.1.2.3", None)), ip("10.1.2.3"));
        let unserved = Request::get("/").body(Body::empty()).unwrap();
        assert_eq!(proxies.client(&unserved), None);
        assert!(parse_trusted_proxy("10.0.0.0/33").is_err());
        assert!(parse_trusted_proxy("proxy.local").is_err());
    }
}
