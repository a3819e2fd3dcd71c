//! Where callbacks may go: never to this mock's own listeners, and only where
//! `--callback-allow` lets them.
//!
//! A `callbackUrl` is the app's to choose, so without this any provider client could make the
//! mock call its own admin API (`http://<mock>/__admin/reset`). Before every attempt the URL's
//! host is resolved (an IP literal needs no lookup) and each address it gives is compared with
//! the listeners the server bound:
//!
//! - a listener on a specific address (`127.0.0.1:8080`) is reached by that address and port,
//!   so `http://localhost:8080/` (which resolves to 127.0.0.1) is refused, `127.0.0.2:8080`
//!   is not;
//! - a listener on an unspecified address (`0.0.0.0:8080`, `[::]:8080`) is reached on that port
//!   by every address of this host: loopback, and any address the kernel would send from
//!   itself (found by "connecting" a UDP socket, which sends nothing); either family is
//!   treated as both, since `[::]` also takes IPv4 on Linux;
//! - a destination of `0.0.0.0` or `::` reaches this host, whatever the listener's address.
//!
//! The one exception is the callback inbox (`http://<mock>/__admin/inbox/<name>`), which keeps
//! what it receives and does nothing else, so that a tester without a server can see what
//! their app would receive.
//!
//! Every address must pass, since the client may connect to any of them. The lookup here and
//! the client's own are two lookups: a name whose answer changes in between (DNS rebinding)
//! is not caught. A proxy or a published port in front of the mock is not known either.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use hyper::Uri;
use ipnet::IpNet;

/// One `--callback-allow` entry: a CIDR block or address, a host name, or `*.` and a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowRule {
    /// Callbacks may go to addresses in this block.
    Net(IpNet),
    /// Callbacks may go to this host name (lower case).
    Host(String),
    /// Callbacks may go to any name under this domain (stored with its leading dot).
    Domain(String),
}

impl std::str::FromStr for AllowRule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(AllowRule::Net(net.trunc()));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(AllowRule::Net(IpNet::from(ip)));
        }
        let (domain, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return Err(format!(
                "{text:?} is neither a CIDR block (10.0.0.0/8, fd00::/8), an IP address, a host \
                 name (callbacks.example.test) nor *.<domain>"
            ));
        }
        let name = name.to_ascii_lowercase();
        Ok(if domain {
            AllowRule::Domain(format!(".{name}"))
        } else {
            AllowRule::Host(name)
        })
    }
}

impl std::fmt::Display for AllowRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllowRule::Net(net) => write!(f, "{net}"),
            AllowRule::Host(name) => f.write_str(name),
            AllowRule::Domain(domain) => write!(f, "*{domain}"),
        }
    }
}

/// A listener of this mock, which callbacks never reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnListener {
    /// The address bound (with its real port).
    pub addr: SocketAddr,
    /// What it serves, for the log: `provider API`, `admin API`.
    pub name: &'static str,
}

/// Why a callback was not sent to its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The URL reaches one of this mock's listeners.
    SelfCallback(String),
    /// The URL is outside `--callback-allow`.
    NotAllowed(String),
}

impl Refusal {
    /// The error kind the callback log shows.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::SelfCallback(_) => "self_callback",
            Refusal::NotAllowed(_) => "not_allowed",
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Refusal::SelfCallback(d) | Refusal::NotAllowed(d) => d,
        }
    }
}

/// The path under which the mock keeps callbacks sent to itself (`crate::inbox`).
pub const INBOX_PREFIX: &str = "/__admin/inbox/";

/// The listeners to avoid and the destinations allowed.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    pub own: Vec<OwnListener>,
    /// Empty: any destination (but this mock's own listeners).
    pub allow: Vec<AllowRule>,
}

impl Destinations {
    /// Whether a callback may be sent to `url`. A URL that does not parse or does not resolve
    /// passes: the client fails on it with its own error kind (`invalid_url`, `dns`).
    pub async fn check(&self, url: &str) -> Result<(), Refusal> {
        if self.own.is_empty() && self.allow.is_empty() {
            return Ok(());
        }
        let Ok(uri) = url.parse::<Uri>() else {
            return Ok(());
        };
        let Some(host) = uri.host() else {
            return Ok(());
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let by_name = self.allow.iter().any(|rule| match rule {
            AllowRule::Host(name) => *name == host,
            AllowRule::Domain(domain) => host.ends_with(domain.as_str()),
            AllowRule::Net(_) => false,
        });
        let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(found) => found.collect(),
                Err(_) => return Ok(()),
            },
        };
        // The one self-addressed callback allowed: to the inbox, which only keeps requests.
        let to_inbox = uri
            .path()
            .strip_prefix(INBOX_PREFIX)
            .is_some_and(|name| crate::inbox::check_name(name).is_ok());
        for address in &addresses {
            if to_inbox {
                break;
            }
            if let Some(own) = self.own.iter().find(|own| reaches(*address, own.addr)) {
                return Err(Refusal::SelfCallback(format!(
                    "{url} reaches {address}, where this mock's {} listens ({}): callbacks never \
                     go to the mock itself",
                    own.name, own.addr
                )));
            }
        }
        if self.allow.is_empty() || by_name {
            return Ok(());
        }
        match addresses.iter().find(|a| {
            !self.allow.iter().any(|rule| match rule {
                AllowRule::Net(net) => net.contains(&canonical(a.ip())),
                _ => false,
            })
        }) {
            None => Ok(()),
            Some(outside) => Err(Refusal::NotAllowed(format!(
                "{url} reaches {outside}, which --callback-allow does not list ({})",
                self.allow
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// Whether a connection to `dest` would reach a socket listening on `listener`.
fn reaches(dest: SocketAddr, listener: SocketAddr) -> bool {
    if dest.port() != listener.port() {
        return false;
    }
    let (dest, listener) = (canonical(dest.ip()), canonical(listener.ip()));
    if dest.is_unspecified() {
        return true;
    }
    if listener.is_unspecified() {
        return dest.is_loopback() || is_local_address(dest);
    }
    dest == listener
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they map.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Whether `ip` is an address of this host: the kernel picks it as the source to reach it.
/// A UDP "connect" only chooses a route; nothing is sent.
fn is_local_address(ip: IpAddr) -> bool {
    let any = match ip {
        IpAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        IpAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    UdpSocket::bind(any)
        .and_then(|socket| {
            socket.connect(SocketAddr::new(ip, 9))?;
            socket.local_addr()
        })
        .is_ok_and(|local| local.ip() == ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(addr: &str) -> Destinations {
        Destinations {
            own: vec![OwnListener {
                addr: addr.parse().unwrap(),
                name: "provider API",
            }],
            allow: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_specific_bind_is_reached_by_its_address_and_by_localhost() {
        let d = own("127.0.0.1:8080");
        for url in [
            "http://127.0.0.1:8080/__admin/reset",
            "http://localhost:8080/x",
            "http://0.0.0.0:8080/x",
            "http://[::ffff:127.0.0.1]:8080/x",
        ] {
            let refusal = d.check(url).await.unwrap_err();
            assert_eq!(refusal.kind(), "self_callback", "{url}");
            assert!(refusal.detail().contains("provider API"), "{refusal:?}");
        }
        for url in [
            "http://127.0.0.1:8081/x",
            "http://127.0.0.2:8080/x",
            "http://192.0.2.1:8080/x",
        ] {
            assert_eq!(d.check(url).await, Ok(()), "{url}");
        }
    }

    #[tokio::test]
    async fn an_unspecified_bind_is_reached_by_every_local_address() {
        let d = own("0.0.0.0:8080");
        for url in [
            "http://127.0.0.1:8080/x",
            "http://127.9.9.9:8080/x",
            "http://[::1]:8080/x",
            "http://localhost:8080/x",
        ] {
            assert!(d.check(url).await.is_err(), "{url}");
        }
        assert_eq!(d.check("http://192.0.2.1:8080/x").await, Ok(()));
        assert_eq!(d.check("http://127.0.0.1:9090/x").await, Ok(()));
    }

    #[test]
    fn allow_rules_parse_blocks_addresses_names_and_domains() {
        assert_eq!(
            "10.1.2.3/8".parse(),
            Ok(AllowRule::Net("10.0.0.0/8".parse().unwrap()))
        );
        assert_eq!(
            "::1".parse(),
            Ok(AllowRule::Net("::1/128".parse().unwrap()))
        );
        assert_eq!(
            "Hooks.Example.test".parse(),
            Ok(AllowRule::Host("hooks.example.test".into()))
        );
        assert_eq!(
            "*.example.test".parse(),
            Ok(AllowRule::Domain(".example.test".into()))
        );
        for bad in ["", "http://x", "a b", "10.0.0.0/99", "*."] {
            assert!(bad.parse::<AllowRule>().is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_allow_list_admits_listed_blocks_and_names_only() {
        let d = Destinations {
            own: Vec::new(),
            allow: vec![
                "10.0.0.0/8".parse().unwrap(),
                "hooks.example.test".parse().unwrap(),
                "*.corp.test".parse().unwrap(),
            ],
        };
        assert_eq!(d.check("http://10.2.3.4:3000/cb").await, Ok(()));
        // Names are matched as names, without a lookup.
        assert_eq!(d.check("https://hooks.example.test/cb").await, Ok(()));
        assert_eq!(d.check("https://a.b.corp.test/cb").await, Ok(()));
        let refusal = d.check("http://192.0.2.7/cb").await.unwrap_err();
        assert_eq!(refusal.kind(), "not_allowed");
        assert!(refusal.detail().contains("10.0.0.0/8"), "{refusal:?}");
        assert!(d.check("http://127.0.0.1:3000/cb").await.is_err());
    }

    #[tokio::test]
    async fn an_allowed_name_still_never_reaches_the_mock() {
        let mut d = own("127.0.0.1:8080");
        d.allow = vec!["localhost".parse().unwrap()];
        assert_eq!(
            d.check("http://localhost:8080/x").await.unwrap_err().kind(),
            "self_callback"
        );
        assert_eq!(d.check("http://localhost:3000/x").await, Ok(()));
    }
}
