//! The node's RPC API address: a multiaddr (as `--ipfs-api` takes, like Powergate) or a URL.

use super::IpfsError;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Where a node's RPC API listens: plain HTTP on `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiAddr {
    host: String,
    port: u16,
    /// `Some(true)` for `/dns4`, `Some(false)` for `/dns6`: which address family to connect to.
    ipv4_only: Option<bool>,
}

impl ApiAddr {
    /// Parses `/ip4/A/tcp/P`, `/ip6/A/tcp/P`, `/dns4|dns6|dns/H/tcp/P` (each optionally ending
    /// in `/http`), or `http://host:port` (an optional trailing `/` is allowed).
    pub fn parse(value: &str) -> Result<Self, IpfsError> {
        let bad = |reason: &str| IpfsError::BadAddr { value: value.to_string(), reason: reason.to_string() };
        let v = value.trim();
        if let Some(rest) = v.strip_prefix("http://") {
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            if rest.contains('/') || rest.contains('?') || rest.contains('@') {
                return Err(bad("a URL must be just http://host:port"));
            }
            let (host, port) = if let Some(r) = rest.strip_prefix('[') {
                let (h, p) = r.split_once("]:").ok_or_else(|| bad("expected http://[ipv6]:port"))?;
                h.parse::<Ipv6Addr>().map_err(|_| bad("invalid IPv6 address"))?;
                (h, p)
            } else {
                rest.rsplit_once(':').ok_or_else(|| bad("the URL needs a port, e.g. http://127.0.0.1:5001"))?
            };
            if host.is_empty() {
                return Err(bad("empty host"));
            }
            let port = parse_port(port).ok_or_else(|| bad("invalid port"))?;
            return Ok(ApiAddr { host: host.to_string(), port, ipv4_only: None });
        }
        if v.starts_with("https://") {
            return Err(bad("HTTPS is not supported for the IPFS RPC API; use http:// or a multiaddr"));
        }
        if !v.starts_with('/') {
            return Err(bad("expected a multiaddr like /ip4/127.0.0.1/tcp/5001 or a URL like http://127.0.0.1:5001"));
        }
        let parts: Vec<&str> = v[1..].split('/').collect();
        let parts = match parts.as_slice() {
            [a, b, c, d, "http"] => [*a, *b, *c, *d],
            [a, b, c, d] => [*a, *b, *c, *d],
            _ => return Err(bad("expected /ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>[/http]")),
        };
        let [proto, host, tcp, port] = parts;
        if tcp != "tcp" {
            return Err(bad("the RPC API is reached over /tcp/<port>"));
        }
        let port = parse_port(port).ok_or_else(|| bad("invalid port"))?;
        match proto {
            "ip4" => {
                host.parse::<Ipv4Addr>().map_err(|_| bad("invalid IPv4 address"))?;
            }
            "ip6" => {
                host.parse::<Ipv6Addr>().map_err(|_| bad("invalid IPv6 address"))?;
            }
            "dns" | "dns4" | "dns6" => {
                if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
                    return Err(bad("invalid DNS name"));
                }
            }
            _ => return Err(bad("expected /ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>[/http]")),
        }
        let ipv4_only = match proto {
            "dns4" => Some(true),
            "dns6" => Some(false),
            _ => None,
        };
        Ok(ApiAddr { host: host.to_string(), port, ipv4_only })
    }

    /// The host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// For `/dns4` (`Some(true)`) and `/dns6` (`Some(false)`) addresses: the only address
    /// family to connect to.
    pub(crate) fn family(&self) -> Option<bool> {
        self.ipv4_only
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The base URL, e.g. `http://127.0.0.1:5001` or `http://[::1]:5001`.
    pub fn base_url(&self) -> String {
        self.to_string()
    }
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok().filter(|&n| n != 0)
}

impl fmt::Display for ApiAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "http://{}:{}", self.host, self.port)
        }
    }
}

impl std::str::FromStr for ApiAddr {
    type Err = IpfsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApiAddr::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multiaddrs_and_urls() {
        for (input, url) in [
            ("/ip4/127.0.0.1/tcp/5001", "http://127.0.0.1:5001"),
            ("/ip4/127.0.0.1/tcp/43247/http", "http://127.0.0.1:43247"),
            ("/ip6/::1/tcp/5001", "http://[::1]:5001"),
            ("/dns4/ipfs.local/tcp/5001", "http://ipfs.local:5001"),
            ("/dns6/node-1.example/tcp/80/http", "http://node-1.example:80"),
            ("/dns/localhost/tcp/5001", "http://localhost:5001"),
            ("http://127.0.0.1:5001", "http://127.0.0.1:5001"),
            ("http://localhost:5001/", "http://localhost:5001"),
            ("http://[::1]:5001", "http://[::1]:5001"),
        ] {
            assert_eq!(ApiAddr::parse(input).unwrap().base_url(), url, "{input}");
        }
    }

    #[test]
    fn dns4_and_dns6_restrict_the_family() {
        assert_eq!(ApiAddr::parse("/dns4/localhost/tcp/1").unwrap().family(), Some(true));
        assert_eq!(ApiAddr::parse("/dns6/localhost/tcp/1").unwrap().family(), Some(false));
        assert_eq!(ApiAddr::parse("/dns/localhost/tcp/1").unwrap().family(), None);
    }

    #[test]
    fn rejects_other_values_naming_them() {
        for input in [
            "",
            "127.0.0.1:5001",
            "/ip4/127.0.0.1/udp/5001",
            "/ip4/300.0.0.1/tcp/5001",
            "/ip4/127.0.0.1/tcp/0",
            "/ip4/127.0.0.1/tcp/99999",
            "/ip4/127.0.0.1",
            "/ip6/127.0.0.1/tcp/5001",
            "/unix/tmp/sock",
            "https://127.0.0.1:5001",
            "http://127.0.0.1",
            "http://127.0.0.1:5001/api/v0",
            "/ip4/127.0.0.1/tcp/5001/https",
        ] {
            let e = ApiAddr::parse(input).unwrap_err().to_string();
            assert!(e.contains(&format!("{input:?}")), "{e}");
        }
    }
}
