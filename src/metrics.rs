//! Prometheus metrics: what an operator graphs and alerts on. Counted in process (atomics behind
//! `prometheus-client`'s families) and rendered when scraped — OpenMetrics text, or the classic
//! Prometheus text format — on a listener of its own (`metrics_listen`), never on the public one.
//!
//! Every label has a bounded set of values: routes are actix's templates (`/t/{tenant}/token`), never
//! the raw path; grant types, sign-in methods and outcomes come from the code's own constants; an
//! unknown grant type is `unsupported`. Nothing a caller sends becomes a label value of its own, so a
//! caller cannot grow the registry.

use std::{
    sync::atomic::{AtomicI64, AtomicU64},
    time::Duration,
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};

use crate::{audit::Outcome, store::PoolUse};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Grant {
    grant_type: &'static str,
    /// `success`, or the OAuth error code answered (RFC 6749 §5.2).
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignIn {
    method: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Limited {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Pool {
    /// `main` (every query) or `writer` (batched writes; on SQLite the one writer connection).
    pool: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Build {
    version: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~4 s: a JWKS answer is tens of microseconds, an SSO callback waits for the IdP.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// What is read fresh at each scrape rather than counted.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Messages waiting in the durable mail queue, every tenant's (`None`: the query failed).
    pub mail_outbox: Option<u64>,
    pub pool: Option<PoolUse>,
    pub writer_pool: Option<PoolUse>,
}

/// One (method, route template, status)'s series: clones of the families' handles, kept by whoever
/// records into them (`http::observe`, per worker), so recording is two atomic updates, no lookup (a
/// family hashes its label set with SipHash on every call: 9% of a JWKS request's instructions).
#[derive(Clone)]
pub struct RouteSeries {
    requests: Counter,
    latency: Histogram,
}

impl RouteSeries {
    pub fn record(&self, elapsed: Duration) {
        self.requests.inc();
        self.latency.observe(elapsed.as_secs_f64());
    }
}

/// The node's metrics. Cheap to record into from any thread; `render` writes them out.
pub struct Metrics {
    /// Off without a metrics listener: then nothing is recorded and nothing costs.
    enabled: bool,
    registry: Registry,
    requests: Family<Request, Counter>,
    latency: Family<Route, Histogram, fn() -> Histogram>,
    rate_limited: Family<Limited, Counter>,
    grants: Family<Grant, Counter>,
    sign_ins: Family<SignIn, Counter>,
    refresh_reuse: Counter,
    mail_outbox: Gauge<i64, AtomicI64>,
    pool: Family<Pool, Gauge<i64, AtomicI64>>,
    scrape_errors: Counter<u64, AtomicU64>,
}

impl Metrics {
    pub fn new(enabled: bool) -> Self {
        let mut registry = Registry::with_prefix("latchkey");
        let requests = Family::<Request, Counter>::default();
        registry.register("http_requests", "HTTP requests answered, by route template and status", requests.clone());
        let latency = Family::<Route, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from the request's arrival to its response head, by route template",
            Unit::Seconds,
            latency.clone(),
        );
        let rate_limited = Family::<Limited, Counter>::default();
        registry.register("rate_limited", "Requests refused by a rate limit (429), by route template", rate_limited.clone());
        let grants = Family::<Grant, Counter>::default();
        registry.register("token_grants", "Token endpoint requests, by grant type and outcome", grants.clone());
        let sign_ins = Family::<SignIn, Counter>::default();
        registry.register("sign_ins", "Sign-in steps, by method and outcome (as audited)", sign_ins.clone());
        let refresh_reuse = Counter::default();
        registry.register(
            "refresh_token_reuse",
            "Spent refresh tokens presented again (each revoked its family)",
            refresh_reuse.clone(),
        );
        let mail_outbox = Gauge::<i64, AtomicI64>::default();
        registry.register("mail_outbox_messages", "Messages waiting in the mail queue, every tenant's", mail_outbox.clone());
        let pool = Family::<Pool, Gauge<i64, AtomicI64>>::default();
        registry.register("db_pool_connections", "Database connections by pool and state (open, idle, max)", pool.clone());
        let scrape_errors = Counter::default();
        registry.register("scrape_errors", "Scrapes where a database-backed value could not be read", scrape_errors.clone());
        let build = Family::<Build, Gauge>::default();
        build.get_or_create(&Build { version: env!("CARGO_PKG_VERSION") }).set(1);
        registry.register("build_info", "The running version", build);
        Self {
            enabled,
            registry,
            requests,
            latency,
            rate_limited,
            grants,
            sign_ins,
            refresh_reuse,
            mail_outbox,
            pool,
            scrape_errors,
        }
    }

    /// Whether this node records metrics (it has a metrics listener).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The handles of one request series: `route` is the matched template (`unmatched` when none
    /// matched). Looked up in the families once per series and worker; see [`RouteSeries`].
    pub fn route_series(&self, method: &'static str, route: &str, status: u16) -> RouteSeries {
        RouteSeries {
            requests: self.requests.get_or_create_owned(&Request { method, route: route.to_owned(), status }),
            latency: self.latency.get_or_create_owned(&Route { method, route: route.to_owned() }),
        }
    }

    /// A request refused by a rate limit (429).
    pub fn rate_limited(&self, route: &str) {
        if self.enabled {
            self.rate_limited.get_or_create(&Limited { route: route.to_owned() }).inc();
        }
    }

    /// One token endpoint answer: `grant_type` as the caller named it (or `None`), `error` the OAuth
    /// error code when refused.
    pub fn grant(&self, grant_type: Option<&'static str>, error: Option<&'static str>) {
        if !self.enabled {
            return;
        }
        let labels = Grant { grant_type: grant_type.unwrap_or("unsupported"), outcome: error.unwrap_or("success") };
        self.grants.get_or_create(&labels).inc();
    }

    /// An audited event: the sign-in steps and refresh-token reuse are counted from the audit trail's
    /// own actions, so the metric and the audit log cannot disagree.
    pub fn audited(&self, action: &'static str, outcome: Outcome) {
        if !self.enabled {
            return;
        }
        if action == "refresh_token.reuse" {
            self.refresh_reuse.inc();
        } else if let Some(method) = sign_in_method(action) {
            // A wrong email code is audited under its own action.
            let outcome = if action == "signin.code_failed" { Outcome::Failure.as_str() } else { outcome.as_str() };
            self.sign_ins.get_or_create(&SignIn { method, outcome }).inc();
        }
    }

    /// The exposition, with the values read at this scrape: OpenMetrics text
    /// (`application/openmetrics-text; version=1.0.0`, what Prometheus asks for) or the classic
    /// Prometheus text format (`text/plain; version=0.0.4`, for other scrapers and `promtool`).
    pub fn render(&self, snapshot: Snapshot, format: Format) -> String {
        match snapshot.mail_outbox {
            Some(depth) => {
                self.mail_outbox.set(i64::try_from(depth).unwrap_or(i64::MAX));
            }
            None => {
                self.scrape_errors.inc();
            }
        }
        for (pool, usage) in [("main", snapshot.pool), ("writer", snapshot.writer_pool)] {
            let Some(usage) = usage else { continue };
            for (state, value) in [("open", usage.open), ("idle", usage.idle), ("max", usage.max)] {
                self.pool.get_or_create(&Pool { pool, state }).set(i64::from(value));
            }
        }
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail; an encoder error would be a bug in a label type.
        if text::encode(&mut out, &self.registry).is_err() {
            out.clear();
            out.push_str("# EOF\n");
        }
        match format {
            Format::OpenMetrics => out,
            Format::Prometheus => prometheus_text(&out),
        }
    }
}

/// The two text expositions scrapers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Prometheus,
}

/// OpenMetrics text as the classic Prometheus text format (0.0.4), which `prometheus-client` does not
/// write: the two differ only in that OpenMetrics names a counter family without the `_total` its
/// samples carry, and has `# UNIT` and `# EOF` lines (comments to a 0.0.4 parser, left out here).
fn prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let family = ["# HELP ", "# TYPE "].into_iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let name = rest.split(' ').next()?;
            counters.contains(&name).then(|| (prefix, name, &rest[name.len()..]))
        });
        match family {
            Some((prefix, name, rest)) => {
                out.push_str(prefix);
                out.push_str(name);
                out.push_str("_total");
                out.push_str(rest);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Every method label, `other` last.
pub const METHOD_LABELS: [&str; 8] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "other"];

/// The HTTP method's index in [`METHOD_LABELS`]: the standard ones by name, anything else `other`.
pub fn method_slot(method: &str) -> usize {
    METHOD_LABELS[..METHOD_LABELS.len() - 1].iter().position(|m| *m == method).unwrap_or(METHOD_LABELS.len() - 1)
}

/// Which sign-in method an audit action records, if it records one.
fn sign_in_method(action: &str) -> Option<&'static str> {
    Some(match action {
        "signin.email_code" | "signin.code_failed" => "email_code",
        "signin.passkey" => "passkey",
        "signin.totp" => "totp",
        "signin.recovery_code" => "recovery_code",
        "signin.sso" => "sso",
        "signin.break_glass" => "break_glass",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_actions_map_to_bounded_methods() {
        let cases = [
            ("signin.email_code", Some("email_code")),
            ("signin.code_failed", Some("email_code")),
            ("signin.passkey", Some("passkey")),
            ("signin.totp", Some("totp")),
            ("signin.recovery_code", Some("recovery_code")),
            ("signin.sso", Some("sso")),
            ("signin.break_glass", Some("break_glass")),
            ("signin.code_sent", None),
            ("token.refresh", None),
        ];
        for (action, method) in cases {
            assert_eq!(sign_in_method(action), method, "{action}");
        }
    }

    #[test]
    fn labels_are_templates_and_known_names_only() {
        let metrics = Metrics::new(true);
        metrics.route_series("GET", "/t/{tenant}/jwks", 200).record(Duration::from_micros(40));
        metrics.route_series(METHOD_LABELS[method_slot("BREW")], "unmatched", 404).record(Duration::from_micros(10));
        metrics.rate_limited("/t/{tenant}/token");
        metrics.grant(Some("client_credentials"), None);
        metrics.grant(None, Some("unsupported_grant_type"));
        metrics.audited("signin.code_failed", Outcome::Failure);
        metrics.audited("refresh_token.reuse", Outcome::Failure);
        let text = metrics.render(Snapshot { mail_outbox: Some(3), ..Snapshot::default() }, Format::OpenMetrics);
        for line in [
            r#"latchkey_http_requests_total{method="GET",route="/t/{tenant}/jwks",status="200"} 1"#,
            r#"latchkey_http_requests_total{method="other",route="unmatched",status="404"} 1"#,
            r#"latchkey_rate_limited_total{route="/t/{tenant}/token"} 1"#,
            r#"latchkey_token_grants_total{grant_type="client_credentials",outcome="success"} 1"#,
            r#"latchkey_token_grants_total{grant_type="unsupported",outcome="unsupported_grant_type"} 1"#,
            r#"latchkey_sign_ins_total{method="email_code",outcome="failure"} 1"#,
            "latchkey_refresh_token_reuse_total 1",
            "latchkey_mail_outbox_messages 3",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn the_classic_format_names_counter_families_by_their_samples() {
        let openmetrics = "# HELP latchkey_sign_ins Sign-in steps.\n# TYPE latchkey_sign_ins counter\n\
            latchkey_sign_ins_total{method=\"passkey\",outcome=\"success\"} 2\n\
            # HELP latchkey_http_request_duration_seconds Time.\n# TYPE latchkey_http_request_duration_seconds histogram\n\
            # UNIT latchkey_http_request_duration_seconds seconds\nlatchkey_http_request_duration_seconds_count 1\n\
            # HELP latchkey_mail_outbox_messages Waiting.\n# TYPE latchkey_mail_outbox_messages gauge\n\
            latchkey_mail_outbox_messages 0\n# EOF\n";
        let expected = "# HELP latchkey_sign_ins_total Sign-in steps.\n# TYPE latchkey_sign_ins_total counter\n\
            latchkey_sign_ins_total{method=\"passkey\",outcome=\"success\"} 2\n\
            # HELP latchkey_http_request_duration_seconds Time.\n# TYPE latchkey_http_request_duration_seconds histogram\n\
            latchkey_http_request_duration_seconds_count 1\n\
            # HELP latchkey_mail_outbox_messages Waiting.\n# TYPE latchkey_mail_outbox_messages gauge\n\
            latchkey_mail_outbox_messages 0\n";
        assert_eq!(prometheus_text(openmetrics), expected);
    }
}
