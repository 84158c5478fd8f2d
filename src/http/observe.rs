//! What the operator sees of the traffic: per-request metrics by route template and the access log
//! (one middleware, so the template is looked up once), and the metrics listener's `GET /metrics`.

use std::{
    cell::RefCell,
    collections::HashMap,
    future::Future,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use actix_web::{
    HttpRequest, HttpResponse,
    dev::{Service, ServiceRequest, ServiceResponse, Transform},
    http::header::{self, HeaderName, HeaderValue},
    web,
};

use crate::{
    app::App,
    crypto,
    metrics::{self, Format, Metrics, RouteSeries},
};

/// A request's id, echoed in the response and written in the access log. A proxy's id is kept when
/// the deployment trusts proxies (nginx `$request_id`, an ingress's), so one id follows the request.
pub(super) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// An incoming request id worth keeping: short, and nothing a log line could be confused by.
fn acceptable_id(value: &HeaderValue) -> Option<&str> {
    let value = value.to_str().ok()?;
    let ok = (1..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then_some(value)
}

fn request_id(app: &App, req: &ServiceRequest) -> String {
    if super::client_ip::from_our_proxy(req.peer_addr().map(|a| a.ip()), &app.config.proxies)
        && let Some(id) = req.headers().get(REQUEST_ID).and_then(acceptable_id)
    {
        return id.to_owned();
    }
    crypto::random_id()
}

/// Times every request and records it under its route template (`/t/{tenant}/token`, never the raw
/// path, which carries tenant slugs and ids); with `access_log`, writes one line per request and
/// tags every log line of the request with its id. A hand-written middleware rather than
/// `middleware::from_fn`, whose boxed future cost a JWKS request about 1.5% more (callgrind).
pub(super) struct Observe {
    pub app: web::Data<App>,
}

impl<S, B> Transform<S, ServiceRequest> for Observe
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = ObserveService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(ObserveService { service, app: self.app.clone(), templates: Rc::default() }))
    }
}

pub(super) struct ObserveService<S> {
    service: S,
    app: web::Data<App>,
    templates: Rc<Templates>,
}

/// What this worker knows of a (method, path): its route template and the series recorded under it.
struct PathEntry {
    template: Option<String>,
    series: RefCell<Vec<(u16, RouteSeries)>>,
}

impl PathEntry {
    fn route(&self) -> &str {
        self.template.as_deref().unwrap_or("unmatched")
    }

    fn record(&self, metrics: &Metrics, method: &'static str, status: u16, elapsed: Duration) {
        if status == 429 {
            metrics.rate_limited(self.route());
        }
        if let Some((_, series)) = self.series.borrow().iter().find(|(s, _)| *s == status) {
            series.record(elapsed);
            return;
        }
        let series = metrics.route_series(method, self.route(), status);
        series.record(elapsed);
        // Statuses per route are few (the ones its handler answers with).
        self.series.borrow_mut().push((status, series));
    }
}

/// Route templates, and their metric handles, by method and request path, per worker thread.
/// actix's `match_pattern` walks the resource map and allocates on every call (~300 instructions of
/// a JWKS request's ~25k), and the families hash their labels with SipHash; a path and method always
/// match the same route, and the hot paths repeat. At most [`MAX_PATHS`] paths are kept, so paths a
/// caller makes up (ids, tenant slugs) cannot grow it: past that, the walk and the lookup again.
#[derive(Default)]
struct Templates {
    by_path: RefCell<HashMap<String, [Option<Rc<PathEntry>>; METHODS], foldhash::fast::RandomState>>,
}

const MAX_PATHS: usize = 1024;
const METHODS: usize = metrics::METHOD_LABELS.len();

impl Templates {
    fn of(&self, slot: usize, request: &HttpRequest) -> Rc<PathEntry> {
        if let Some(Some(known)) = self.by_path.borrow().get(request.path()).map(|methods| &methods[slot]) {
            return known.clone();
        }
        let entry = Rc::new(PathEntry { template: request.match_pattern(), series: RefCell::default() });
        let mut by_path = self.by_path.borrow_mut();
        if let Some(methods) = by_path.get_mut(request.path()) {
            methods[slot] = Some(entry.clone());
        } else if by_path.len() < MAX_PATHS {
            let mut methods: [Option<Rc<PathEntry>>; METHODS] = Default::default();
            methods[slot] = Some(entry.clone());
            by_path.insert(request.path().to_owned(), methods);
        }
        entry
    }
}

impl<S, B> Service<ServiceRequest> for ObserveService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Observed<S::Future>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let slot = metrics::method_slot(req.method().as_str());
        let id = self.app.config.access_log.then(|| request_id(&self.app, &req));
        let span = id.as_ref().map(|id| tracing::info_span!("request", id = %id));
        Observed {
            inner: self.service.call(req),
            span,
            started,
            slot,
            id,
            app: self.app.clone(),
            templates: self.templates.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    pub(super) struct Observed<F> {
        #[pin]
        inner: F,
        // With the access log: entered while the request runs, so its log lines carry the id.
        span: Option<tracing::Span>,
        started: Instant,
        // The method's index in `metrics::METHOD_LABELS`.
        slot: usize,
        id: Option<String>,
        app: web::Data<App>,
        templates: Rc<Templates>,
    }
}

impl<F, B> Future for Observed<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let entered = this.span.as_ref().map(tracing::Span::enter);
        let mut response = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result?,
        };
        drop(entered);
        let elapsed = this.started.elapsed();
        let method = metrics::METHOD_LABELS[*this.slot];
        let entry = this.templates.of(*this.slot, response.request());
        let status = response.status().as_u16();
        if let Some(id) = this.id.take() {
            tracing::info!(
                target: "latchkey::access",
                request_id = %id,
                method,
                route = entry.route(),
                status,
                latency_ms = elapsed.as_secs_f64() * 1000.0,
            );
            if let Ok(value) = HeaderValue::from_str(&id) {
                response.headers_mut().insert(REQUEST_ID, value);
            }
        }
        let metrics = &this.app.services.metrics;
        if metrics.enabled() {
            entry.record(metrics, method, status, elapsed);
        }
        Poll::Ready(Ok(response))
    }
}

/// `GET /metrics` on the metrics listener: OpenMetrics text to a scraper that asks for it
/// (Prometheus does), the classic text format to any other.
pub(super) async fn metrics(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    let openmetrics = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    let (format, content_type) = if openmetrics {
        (Format::OpenMetrics, "application/openmetrics-text; version=1.0.0; charset=utf-8")
    } else {
        (Format::Prometheus, "text/plain; version=0.0.4; charset=utf-8")
    };
    let snapshot = app.services.metrics_snapshot().await;
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(app.services.metrics.render(snapshot, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_short_request_ids_are_kept() {
        let cases = [
            ("7f3c9a1e-44b2-4c1e-9d7e-0a1b2c3d4e5f", true),
            ("abc.def:1_2", true),
            ("", false),
            ("with space", false),
            ("line\u{0}break", false),
            ("quote\"", false),
        ];
        for (value, kept) in cases {
            let header = HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("with space"));
            assert_eq!(acceptable_id(&header).is_some(), kept, "{value:?}");
        }
        assert!(acceptable_id(&HeaderValue::from_str(&"a".repeat(65)).expect("ascii")).is_none());
    }
}
