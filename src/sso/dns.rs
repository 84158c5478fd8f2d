//! TXT lookups for domain verification (hickory-resolver): through the name servers the operator
//! configured (`[dns] nameservers`), else the system's resolver configuration. Nothing is cached here,
//! so "verify" right after publishing a record, and the re-check right after one is removed, see what
//! DNS says now.

use std::{net::SocketAddr, time::Duration};

use hickory_resolver::{
    TokioResolver,
    config::{ConnectionConfig, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig, ResolverOpts},
    net::runtime::TokioRuntimeProvider,
    proto::rr::RData,
};

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The name exists with no TXT record, or does not exist: an answer, not a failure.
    #[error("no TXT record")]
    NoRecord,
    /// No answer (timeout, refused, malformed): says nothing about the record.
    #[error("DNS lookup failed: {0}")]
    Failed(String),
}

pub struct TxtResolver {
    /// `Err`: why there is no resolver (no name servers configured and no system configuration);
    /// every lookup then fails with that reason, and a node without DNS still serves everything else.
    resolver: Result<TokioResolver, String>,
}

impl TxtResolver {
    /// Never fails start-up: a machine without `/etc/resolv.conf` (a minimal container) and no
    /// `domains.nameservers` only cannot verify domains, which it says when asked to and at start.
    pub fn from_config(config: &crate::config::DomainsConfig) -> Self {
        let resolver = Self::build(&config.nameservers, Duration::from_millis(config.dns_timeout_ms));
        if let Err(reason) = &resolver {
            tracing::warn!(%reason, "no DNS resolver: domains cannot be verified until domains.nameservers is set");
        }
        Self { resolver }
    }

    /// `nameservers` empty: the system's configuration (`/etc/resolv.conf`).
    fn build(nameservers: &[SocketAddr], timeout: Duration) -> Result<TokioResolver, String> {
        let mut builder = if nameservers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| format!("system resolver configuration: {e}"))?
        } else {
            let servers = nameservers
                .iter()
                .map(|addr| {
                    let connection = |protocol| {
                        let mut c = ConnectionConfig::new(protocol);
                        c.port = addr.port();
                        c
                    };
                    NameServerConfig::new(addr.ip(), true, vec![connection(ProtocolConfig::Udp), connection(ProtocolConfig::Tcp)])
                })
                .collect();
            TokioResolver::builder_with_config(ResolverConfig::from_name_servers(servers), TokioRuntimeProvider::default())
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.timeout = timeout;
        options.attempts = 2;
        options.cache_size = 0;
        // Names are looked up fully qualified: no search domains, no hosts file.
        options.ndots = 0;
        options.use_hosts_file = ResolveHosts::Never;
        builder.build().map_err(|e| e.to_string())
    }

    /// The TXT strings at `name` (each record's character-strings joined, RFC 7208 §3.3 style).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let resolver = self.resolver.as_ref().map_err(|reason| DnsError::Failed(reason.clone()))?;
        match resolver.txt_lookup(fqdn).await {
            Ok(lookup) => {
                let values: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::TXT(txt) => {
                            Some(txt.txt_data.iter().map(|part| String::from_utf8_lossy(part)).collect::<String>())
                        }
                        _ => None,
                    })
                    .collect();
                if values.is_empty() { Err(DnsError::NoRecord) } else { Ok(values) }
            }
            Err(error) if error.is_no_records_found() => Err(DnsError::NoRecord),
            Err(error) => Err(DnsError::Failed(error.to_string())),
        }
    }
}
