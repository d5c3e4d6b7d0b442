//! Where the server may send requests that a client names: completion callbacks.
//!
//! A callback URL is parsed with the `url` crate (which also reads `2130706433`, `0x7f.1` and
//! `017700000001` as the IPv4 addresses they encode), its host is resolved, and every address it
//! resolves to must be public: loopback, private, link-local, unique-local, CGNAT, multicast,
//! broadcast, documentation and other special ranges, their IPv4-mapped and IPv4-compatible
//! IPv6 forms, and the cloud metadata addresses are refused ([`forbidden_range`]). An operator
//! may allow named hosts or ranges ([`CallbackPolicy`], `fresco serve --callback-allow`).
//!
//! The check runs at submission ([`check`]; a host that does not resolve yet passes there) and
//! again at each delivery ([`check_blocking`]), and a delivery connects to the addresses that
//! this check returned ([`CheckedTarget::addrs`]), never to a second lookup, so a host whose
//! name resolves differently the next time (DNS rebinding) gains nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

/// Hosts and ranges a callback may reach although their addresses are not public.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackPolicy {
    /// Host names (lowercase, as the URL spells them once parsed) allowed whatever they resolve to.
    pub hosts: Vec<String>,
    /// Address ranges allowed.
    pub nets: Vec<IpNet>,
}

impl CallbackPolicy {
    /// Adds one `--callback-allow` entry: a CIDR range, an IP address (a range of one), or a
    /// host name.
    pub fn allow(&mut self, entry: &str) -> Result<(), String> {
        let entry = entry.trim();
        if let Ok(net) = entry.parse::<IpNet>() {
            self.nets.push(net);
        } else if let Ok(ip) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
            self.nets.push(IpNet::from(ip));
        } else {
            let host = url::Host::parse(entry)
                .ok()
                .and_then(|host| match host {
                    url::Host::Domain(name) if !name.is_empty() => Some(name),
                    _ => None,
                })
                .ok_or_else(|| {
                    format!(
                        "--callback-allow {entry}: not a host name, an IP address or a CIDR range"
                    )
                })?;
            self.hosts.push(host);
        }
        Ok(())
    }

    fn allows_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h == host)
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(&ip))
    }
}

/// Why a callback URL is refused (400 `callback-url-not-allowed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("callback_url: {0}")]
pub struct NotAllowed(pub String);

/// A callback URL that passed the check, with the addresses to connect to.
#[derive(Debug, Clone)]
pub struct CheckedTarget {
    pub url: url::Url,
    pub addrs: Vec<SocketAddr>,
}

/// Parses `text` and checks its form (http or https, a host, no user name or password).
pub fn parse_callback(text: &str) -> Result<url::Url, NotAllowed> {
    let url = url::Url::parse(text)
        .map_err(|e| NotAllowed(format!("not a URL the server can use ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(NotAllowed("must be http:// or https://".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(NotAllowed("must not hold a user name or password".into()));
    }
    if url.host().is_none() {
        return Err(NotAllowed("has no host".into()));
    }
    Ok(url)
}

/// The URL's host and port, resolved: the addresses a request to it would go to. Blocking (a
/// DNS lookup): call it where blocking is allowed.
pub fn resolve_blocking(url: &url::Url) -> Result<Vec<SocketAddr>, NotAllowed> {
    let port = url
        .port_or_known_default()
        .ok_or_else(|| NotAllowed("has no port".into()))?;
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(url::Host::Domain(name)) => {
            use std::net::ToSocketAddrs as _;
            (name, port)
                .to_socket_addrs()
                .map_err(|_| NotAllowed(format!("its host {name} does not resolve")))?
                .collect()
        }
        None => return Err(NotAllowed("has no host".into())),
    };
    if addrs.is_empty() {
        return Err(NotAllowed("its host resolves to no address".into()));
    }
    Ok(addrs)
}

/// Refuses when any of `addrs` (what the URL's host resolved to) is one that callbacks may not
/// reach, unless the policy allows the host or the address.
pub fn check_addrs(
    url: &url::Url,
    addrs: &[SocketAddr],
    policy: &CallbackPolicy,
) -> Result<(), NotAllowed> {
    if url.host_str().is_some_and(|h| policy.allows_host(h)) {
        return Ok(());
    }
    for addr in addrs {
        if policy.allows_ip(addr.ip()) {
            continue;
        }
        if let Some(range) = forbidden_range(addr.ip()) {
            return Err(NotAllowed(format!(
                "its host resolves to {} ({range}), which callbacks may not reach; an operator may allow it with --callback-allow",
                addr.ip()
            )));
        }
    }
    Ok(())
}

/// Resolves and checks: what a delivery does before it connects. Blocking.
pub fn check_blocking(
    url: &url::Url,
    policy: &CallbackPolicy,
) -> Result<CheckedTarget, NotAllowed> {
    let addrs = resolve_blocking(url)?;
    check_addrs(url, &addrs, policy)?;
    Ok(CheckedTarget {
        url: url.clone(),
        addrs,
    })
}

impl CheckedTarget {
    /// An HTTP agent that connects only to the addresses checked, whatever a second lookup
    /// would say now, follows no redirect, uses no proxy from the environment (a proxy would
    /// resolve the host itself) and hands every status back as an answer.
    pub fn agent(&self, timeout: std::time::Duration) -> ureq::Agent {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .proxy(None)
            .http_status_as_error(false)
            .user_agent(concat!("fresco/", env!("CARGO_PKG_VERSION")))
            .build();
        ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::default(),
            PinnedResolver(self.addrs.clone()),
        )
    }
}

/// Answers every lookup with the addresses a check returned.
#[derive(Debug)]
struct PinnedResolver(Vec<SocketAddr>);

impl ureq::unversioned::resolver::Resolver for PinnedResolver {
    fn resolve(
        &self,
        _uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let mut out = self.empty();
        // ureq takes at most 16; the first are as good as any (all were checked).
        for addr in self.0.iter().take(16) {
            out.push(*addr);
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

/// The check at submission, off the runtime's threads and with a time limit on the lookup.
/// A host that does not resolve (yet) is let through: no request goes anywhere now, and each
/// delivery resolves and checks again before it connects.
///
/// A URL of the schema's form that the `url` crate cannot read (a port over 65535, a host that
/// looks numeric but is no IPv4 address) passes too, for the same reason: the schema says what
/// a request may hold, and its delivery, which cannot parse it either, fails without a request.
pub async fn check(text: &str, policy: &CallbackPolicy) -> Result<(), NotAllowed> {
    let url = match url::Url::parse(text) {
        Ok(_) => parse_callback(text)?,
        Err(e) => {
            tracing::debug!(error = %e, "callback URL not parsed at submission; its delivery will fail");
            return Ok(());
        }
    };
    let policy = policy.clone();
    let lookup = tokio::task::spawn_blocking(move || match resolve_blocking(&url) {
        Ok(addrs) => check_addrs(&url, &addrs, &policy),
        Err(unresolved) => {
            tracing::debug!(target = %redact(url.as_str()), reason = %unresolved, "callback host not resolved at submission; checked at delivery");
            Ok(())
        }
    });
    match tokio::time::timeout(std::time::Duration::from_secs(10), lookup).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(NotAllowed("the check of its host failed".into())),
        // Not resolved in time: as not resolved at all.
        Err(_) => Ok(()),
    }
}

/// `scheme://host` of a URL: all that logs show of a callback URL (its path, query and user
/// part may hold a receiver's secret).
pub fn redact(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(url) => format!("{}://{}", url.scheme(), url.host_str().unwrap_or("?")),
        Err(_) => "<unparsable URL>".into(),
    }
}

/// The special range `ip` lies in, if callbacks may not reach it.
pub fn forbidden_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let range = match (a, b, c) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => "cloud metadata",
        _ if ip.is_broadcast() => "broadcast",
        (0, _, _) => "unspecified or this network (0.0.0.0/8)",
        (10, _, _) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "carrier-grade NAT (100.64.0.0/10)",
        (127, _, _) => "loopback (127.0.0.0/8)",
        (169, 254, _) => "link-local (169.254.0.0/16)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay anycast (192.88.99.0/24)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast (224.0.0.0/4)",
        (240..=255, _, _) => "reserved (240.0.0.0/4)",
        _ => return None,
    };
    Some(range)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // Forms that carry an IPv4 address: judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4).map(|_| "an IPv4-mapped form of a forbidden IPv4 address");
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_unspecified() && !ip.is_loopback() {
        return Some("IPv4-compatible (::/96, deprecated)");
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return forbidden_v4(v4).map(|_| "a NAT64 form of a forbidden IPv4 address");
    }
    // Local-use NAT64 (RFC 8215) and SIIT's IPv4-translated addresses reach whatever IPv4
    // address a translator on the operator's own network maps them to: never a public host.
    if s[..3] == [0x64, 0xff9b, 0x0001] {
        return Some("local-use NAT64 (64:ff9b:1::/48)");
    }
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return Some("IPv4-translated (::ffff:0:0:0/96)");
    }
    let range = match s[0] {
        _ if ip.is_unspecified() => "unspecified (::)",
        _ if ip.is_loopback() => "loopback (::1)",
        _ if s[..4] == [0xfd00, 0x0ec2, 0, 0] => "cloud metadata (fd00:ec2::/64)",
        0x0100 if s[1..4] == [0, 0, 0] => "discard-only (100::/64)",
        0x2001 if s[1] == 0 => "Teredo (2001::/32)",
        0x2001 if s[1] == 0x0db8 => "documentation (2001:db8::/32)",
        0x2002 => "6to4 (2002::/16)",
        x if x & 0xfe00 == 0xfc00 => "unique-local (fc00::/7)",
        x if x & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        x if x & 0xffc0 == 0xfec0 => "site-local (fec0::/10, deprecated)",
        x if x & 0xff00 == 0xff00 => "multicast (ff00::/8)",
        _ => return None,
    };
    Some(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        let url = parse_callback(text).unwrap();
        check_blocking(&url, &CallbackPolicy::default()).is_err()
    }

    #[test]
    fn special_ranges_are_refused_in_every_spelling() {
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://017700000001/",
            "http://0177.0.0.1/",
            "http://0/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[::]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[64:ff9b:1::a9fe:a9fe]/",
            "http://[::ffff:0:7f00:1]/",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://[fc00::1]/",
            "http://[ff02::1]/",
            "http://[2001:db8::1]/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://192.0.2.1/",
            "http://198.51.100.7/",
            "http://203.0.113.9/",
            "http://localhost/",
            "http://LOCALHOST./",
        ] {
            assert!(refused(url), "{url} was allowed");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for url in [
            "http://93.184.216.34/",
            "https://8.8.8.8:8443/hook",
            "http://[2606:2800:220:1:248:1893:25c8:1946]/",
            "http://172.32.0.1/",
        ] {
            assert!(!refused(url), "{url} was refused");
        }
    }

    #[test]
    fn user_info_and_other_schemes_are_refused() {
        for url in [
            "http://user@93.184.216.34/",
            "http://user:pw@93.184.216.34/",
            "ftp://93.184.216.34/",
            "file:///etc/passwd",
        ] {
            assert!(parse_callback(url).is_err(), "{url}");
        }
    }

    #[test]
    fn the_operator_may_allow_hosts_and_ranges() {
        let mut policy = CallbackPolicy::default();
        policy.allow("127.0.0.1").unwrap();
        policy.allow("10.0.0.0/8").unwrap();
        policy.allow("Hooks.Internal").unwrap();
        let ok = |text: &str| check_blocking(&parse_callback(text).unwrap(), &policy).is_ok();
        assert!(ok("http://127.0.0.1:9000/"));
        assert!(ok("http://2130706433:9000/"));
        assert!(ok("http://10.9.8.7/"));
        assert!(!ok("http://127.0.0.2/"));
        assert!(!ok("http://192.168.0.1/"));
        assert_eq!(policy.hosts, vec!["hooks.internal".to_string()]);
        assert!(policy.allow("not a host!").is_err());
    }

    #[test]
    fn logs_see_the_scheme_and_host_only() {
        assert_eq!(
            redact("https://hooks.example:8443/t/SECRET?sig=abc"),
            "https://hooks.example"
        );
        assert_eq!(redact("http://u:p@h.example/x"), "http://h.example");
    }
}
