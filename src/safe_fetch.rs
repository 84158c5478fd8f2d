//! Fetching a URL that somebody else chose (a client metadata document names itself by URL), without
//! letting them aim this server at its own network: server-side request forgery defence.
//!
//! - https only, no credentials in the URL;
//! - every address the host resolves to is checked *at connection time* (a resolver that drops
//!   loopback, private, link-local, shared, multicast and reserved addresses), so DNS rebinding between
//!   a check and the connect cannot slip through; an IP-literal host is checked before any request;
//! - redirects only to the same scheme, host and port, at most three;
//! - a connect and an overall time limit, and a body size limit enforced while reading;
//! - no proxy from the environment, no cookies.

use std::{
    error::Error as StdError,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use reqwest::{
    dns::{Addrs, Name, Resolve, Resolving},
    redirect,
};
use url::Url;

const MAX_REDIRECTS: usize = 3;

#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Test-only: lets loopback addresses through (a test serves documents on 127.0.0.1).
    pub allow_loopback: bool,
    pub timeout: Duration,
    pub max_bytes: usize,
    /// PEM certificates trusted in addition to the public web roots (tests, private PKI).
    pub extra_roots_pem: Option<Vec<u8>>,
}

impl FetchPolicy {
    /// A policy from configuration: limits in milliseconds and bytes, extra roots read from a PEM file.
    pub fn configured(allow_loopback: bool, timeout_ms: u64, max_bytes: usize, extra_roots: Option<&std::path::Path>) -> Result<Self, String> {
        let extra_roots_pem = match extra_roots {
            Some(path) => Some(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?),
            None => None,
        };
        Ok(Self { allow_loopback, timeout: Duration::from_millis(timeout_ms), max_bytes, extra_roots_pem })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("only https URLs without credentials are fetched")]
    NotHttps,
    #[error("{0} is not a public address")]
    ForbiddenAddress(String),
    #[error("redirected to another host, or too many redirects")]
    Redirect,
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("larger than {0} bytes")]
    TooLarge(usize),
    #[error("did not answer in time")]
    Timeout,
    #[error("could not be fetched: {0}")]
    Transport(String),
}

pub struct SafeFetcher {
    http: reqwest::Client,
    policy: FetchPolicy,
}

impl SafeFetcher {
    pub fn new(policy: FetchPolicy) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("Latchkey/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .https_only(true)
            .connect_timeout(policy.timeout)
            .timeout(policy.timeout)
            .redirect(redirect::Policy::custom(same_origin_redirects))
            .dns_resolver(Arc::new(PublicOnlyResolver { allow_loopback: policy.allow_loopback }));
        if let Some(pem) = &policy.extra_roots_pem {
            for certificate in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| e.to_string())? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(|e| e.to_string())?;
        Ok(Self { http, policy })
    }

    /// GETs `url` and returns its body, or why not. Nothing of the body is read past `max_bytes`.
    pub async fn get(&self, url: &Url, accept: &str) -> Result<Vec<u8>, FetchError> {
        let response = self.send(self.http.get(url.clone()).header(reqwest::header::ACCEPT, accept), url).await?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        Ok(response.into_body())
    }

    /// Sends any request (an OAuth client's: discovery, JWKS, the token endpoint) under the same rules
    /// and returns the response whatever its status: the OAuth error body of a 400 is the caller's to
    /// read. The shape `oauth2`/`openidconnect` take as their HTTP client.
    pub async fn request(&self, request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, FetchError> {
        let (parts, body) = request.into_parts();
        let url = Url::parse(&parts.uri.to_string()).map_err(|_| FetchError::NotHttps)?;
        let builder = self.http.request(parts.method, url.clone()).headers(parts.headers).body(body);
        self.send(builder, &url).await
    }

    async fn send(&self, builder: reqwest::RequestBuilder, url: &Url) -> Result<http::Response<Vec<u8>>, FetchError> {
        if url.scheme() != "https" || !url.username().is_empty() || url.password().is_some() {
            return Err(FetchError::NotHttps);
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(FetchError::NotHttps),
        };
        // The resolver never sees an IP literal.
        if let Some(ip) = literal
            && !address_allowed(ip, self.policy.allow_loopback)
        {
            return Err(FetchError::ForbiddenAddress(ip.to_string()));
        }
        let mut response = builder.send().await.map_err(classify)?;
        let limit = self.policy.max_bytes;
        if response.content_length().is_some_and(|length| length > limit as u64) {
            return Err(FetchError::TooLarge(limit));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = http::Response::new(body);
        *out.status_mut() = response.status();
        *out.headers_mut() = response.headers().clone();
        Ok(out)
    }
}

fn same_origin_redirects(attempt: redirect::Attempt<'_>) -> redirect::Action {
    let Some(first) = attempt.previous().first() else {
        return attempt.stop();
    };
    let same_origin = attempt.url().scheme() == "https"
        && attempt.url().host_str() == first.host_str()
        && attempt.url().port_or_known_default() == first.port_or_known_default();
    if same_origin && attempt.previous().len() <= MAX_REDIRECTS {
        attempt.follow()
    } else {
        attempt.error(RedirectRefused)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("redirect refused")]
struct RedirectRefused;

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to addresses that are not public")]
struct NoPublicAddress(String);

/// Turns reqwest's error into ours, finding our own refusals in its source chain.
fn classify(error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        return FetchError::Timeout;
    }
    let mut source: Option<&(dyn StdError + 'static)> = Some(&error);
    while let Some(current) = source {
        if let Some(refused) = current.downcast_ref::<NoPublicAddress>() {
            return FetchError::ForbiddenAddress(refused.0.clone());
        }
        if current.downcast_ref::<RedirectRefused>().is_some() {
            return FetchError::Redirect;
        }
        source = current.source();
    }
    if error.is_redirect() {
        return FetchError::Redirect;
    }
    FetchError::Transport(if error.is_connect() { "connection failed".into() } else { "transport error".into() })
}

/// Resolves with the system resolver and keeps only addresses we may connect to.
struct PublicOnlyResolver {
    allow_loopback: bool,
}

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = resolved.filter(|a| address_allowed(a.ip(), allow_loopback)).collect();
            if allowed.is_empty() {
                return Err(Box::new(NoPublicAddress(host)) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Whether an address is on the public internet (IANA special-purpose registries, RFC 6890).
/// IPv6 is an allow-list: only global unicast (2000::/3) outside the special-purpose blocks, so
/// every form that embeds or reaches an IPv4 address (IPv4-mapped, -compatible, -translated, NAT64,
/// 6to4, Teredo) and every future special block outside 2000::/3 is refused without being listed.
pub fn address_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    let loopback = match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    };
    if loopback {
        return allow_loopback;
    }
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space, RFC 6598
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast, RFC 7526
        || (a == 198 && (18..20).contains(&b)) // benchmarking, RFC 2544
        || a >= 240) // reserved
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let [first, second, ..] = ip.segments();
    // 2000::/3, global unicast: everything else (::/8 with the IPv4-compatible and -mapped forms,
    // 64:ff9b::/96 NAT64, 100::/64 discard, fc00::/7, fe80::/10, ff00::/8, …) is not for us.
    let global_unicast = (first & 0xe000) == 0x2000;
    let special = match first {
        // 2001::/23 IETF protocol assignments (Teredo 2001::/32, ORCHID, benchmarking); 2001:db8::/32
        // documentation (RFC 3849).
        0x2001 => second < 0x0200 || second == 0x0db8,
        // 6to4: reaches IPv4 space.
        0x2002 => true,
        // 3ff0::/12 holds the 3fff::/20 documentation block (RFC 9637).
        _ => (first & 0xfff0) == 0x3ff0,
    };
    global_unicast && !special
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_allowed() {
        for private in [
            "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
            "224.0.0.1", "255.255.255.255", "::1", "::", "fd00::1", "fe80::1", "::ffff:10.0.0.1",
            "::ffff:127.0.0.1", "64:ff9b::a00:1", "2002:a00:1::",
            // IPv4-compatible (deprecated), IPv4-translated (RFC 2765), Teredo, the rest of 2001::/23,
            // discard, 6to4 relay, documentation.
            "::7f00:1", "::10.0.0.1", "::ffff:0:7f00:1", "::ffff:0:a00:1", "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1", "100::1", "192.88.99.1", "3fff::1", "2001:db8::1", "::ffff:93.184.215.14",
        ] {
            assert!(!address_allowed(private.parse().unwrap(), false), "{private} must be refused");
        }
        for public in ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(address_allowed(public.parse().unwrap(), false), "{public} is public");
        }
        assert!(address_allowed("127.0.0.1".parse().unwrap(), true));
        assert!(!address_allowed("10.0.0.1".parse().unwrap(), true), "the test switch opens loopback only");
    }
}
