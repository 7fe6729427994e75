//! phiscrub over HTTP: an app's backend posts each uploaded photo and stores only what comes
//! back. [`app`] builds the whole service as an axum [`Router`], so tests drive it in-process
//! with `oneshot`; [`serve`] listens, and drains on SIGTERM or Ctrl-C.
//!
//! The service fails closed as the library does: a photo that cannot be scrubbed, searched
//! and verified is answered `422` with a stable error code and no image. Work runs off the
//! async runtime behind a semaphore of `jobs` permits, with at most `queue` requests waiting;
//! anything beyond that is told `503` with `Retry-After` at once.

mod config;
mod metrics;
pub mod openapi;
mod page;
mod problem;

pub use config::{Config, ConfigError};
pub use metrics::Metrics;
pub use problem::Problem;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State as Shared};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use http_body_util::BodyExt;
use tokio::sync::Semaphore;

use phiscrub::detect::{Categories, Engine, Rect, RegionKind};
use phiscrub::redact::{Redaction, Rgb, Shape, StyleRule};
use phiscrub::{Corrections, Format, Options, Scrubber};

use problem::Code;

/// What every request shares: the engine loaded once, the limits, and the counters.
pub struct State {
    engine: Arc<Engine>,
    config: Config,
    permits: Arc<Semaphore>,
    admitted: AtomicUsize,
    draining: AtomicBool,
    metrics: Metrics,
    next_id: AtomicU64,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("jobs", &self.config.jobs)
            .field("queue", &self.config.queue())
            .field("draining", &self.draining.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl State {
    /// The shared state of a service over `engine`, loaded by the caller with every category
    /// that requests may ask for.
    pub fn new(config: Config, engine: Arc<Engine>) -> Arc<State> {
        Arc::new(State {
            permits: Arc::new(Semaphore::new(config.jobs)),
            engine,
            config,
            admitted: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            metrics: Metrics::default(),
            next_id: AtomicU64::new(1),
        })
    }

    /// Stops reporting ready (`/readyz` answers `503`), so a load balancer sends no more.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// The counters `/metrics` serves.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The settings the service runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// The whole service.
pub fn app(state: Arc<State>) -> Router {
    with_layers(routes(), state)
}

fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/v1/scrub", post(scrub))
        .route("/v1/inspect", post(inspect))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi_json))
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/app.css", get(page::style))
        .fallback(not_found)
}

fn with_layers(routes: Router<Arc<State>>, state: Arc<State>) -> Router {
    routes
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// A panic anywhere in a request: `500`, and the process goes on. The panic's message is
/// not sent or logged, since it could quote data.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    panicked_problem().into_response()
}

/// Routes as the metrics and logs name them; anything else is `other`, so a scanner's
/// made-up paths cannot grow the metrics without bound.
fn route_name(path: &str) -> &'static str {
    match path {
        "/v1/scrub" => "/v1/scrub",
        "/v1/inspect" => "/v1/inspect",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/openapi.json" => "/openapi.json",
        "/" | "/app.js" | "/app.css" => "page",
        _ => "other",
    }
}

/// Checks the token where one is needed, gives each request an id, and logs and counts it:
/// id, route, status, code, sizes and time; never bodies, query values, headers or names.
async fn observe(Shared(state): Shared<Arc<State>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let _in_flight = state.metrics.enter();
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let route = route_name(req.uri().path());
    let method = req.method().clone();
    let bytes_in = content_length(req.headers()).unwrap_or(0);
    // The page holds no data: the photos it sends carry the token.
    let open = matches!(route, "/healthz" | "/readyz" | "/openapi.json" | "page");
    let mut response = if open || authorized(&state.config, req.headers()) {
        next.run(req).await
    } else {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
        .into_response()
    };
    let status = response.status().as_u16();
    let code = response.extensions().get::<Code>().map_or("", |c| c.0);
    let bytes_out = axum::body::HttpBody::size_hint(response.body())
        .exact()
        .unwrap_or(0);
    let took = start.elapsed();
    state
        .metrics
        .record(route, status, code, took, bytes_in, bytes_out);
    tracing::info!(
        target: "phiscrub::access",
        id,
        %method,
        route,
        status,
        code,
        bytes_in,
        bytes_out,
        ms = took.as_millis() as u64,
    );
    if let Ok(v) = HeaderValue::from_str(&format!("{id}")) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// Whether the request carries one of the tokens, compared in constant time.
fn authorized(config: &Config, headers: &HeaderMap) -> bool {
    if config.no_auth {
        return true;
    }
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // The scheme is case-insensitive (RFC 9110).
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
    else {
        return false;
    };
    use subtle::ConstantTimeEq;
    // Every token is compared, so the time taken says nothing about which one matched.
    let mut ok = subtle::Choice::from(0);
    for t in &config.tokens {
        ok |= t.as_bytes().ct_eq(given.trim().as_bytes());
    }
    bool::from(ok)
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The options a scrub request may carry, as query parameters.
#[derive(Debug, Default)]
struct ScrubParams {
    only: Vec<RegionKind>,
    skip: Vec<RegionKind>,
    style: Vec<StyleRule>,
    fill_color: Option<Rgb>,
    shape: Option<Shape>,
    metadata_only: bool,
    /// `regions` (boxes to cover) and `keep` (region ids to leave uncovered).
    fix: Corrections,
}

fn bad(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "bad_request", detail)
}

impl ScrubParams {
    fn parse(pairs: &[(String, String)]) -> Result<ScrubParams, Problem> {
        let mut p = ScrubParams::default();
        let list = |v: &str| -> Result<Vec<RegionKind>, Problem> {
            v.split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    s.parse::<RegionKind>()
                        .ok()
                        .filter(|k| RegionKind::DETECTED.contains(k))
                        .ok_or_else(|| {
                            bad(format!(
                                "unknown category '{}' (face, text, barcode)",
                                s.trim()
                            ))
                        })
                })
                .collect()
        };
        for (k, v) in pairs {
            match k.as_str() {
                "only" => p.only.extend(list(v)?),
                "skip" => p.skip.extend(list(v)?),
                "style" => {
                    for rule in v.split(',').filter(|s| !s.trim().is_empty()) {
                        p.style.push(rule.parse().map_err(bad)?);
                    }
                }
                "fill_color" => p.fill_color = Some(v.parse().map_err(bad)?),
                "shape" => p.shape = Some(v.parse().map_err(bad)?),
                "metadata_only" => {
                    p.metadata_only = match v.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => {
                            return Err(bad(format!(
                                "metadata_only: '{other}' is not true or false"
                            )))
                        }
                    }
                }
                "regions" => {
                    for b in v.split(';').filter(|s| !s.trim().is_empty()) {
                        p.fix.cover.push(parse_box(b)?);
                    }
                }
                "keep" => {
                    for id in v.split(',').filter(|s| !s.trim().is_empty()) {
                        p.fix.keep.insert(id.parse().map_err(bad)?);
                    }
                }
                // Unknown options are refused: a misspelt `skip` must not pass silently.
                other => {
                    return Err(bad(format!(
                        "unknown parameter '{}'",
                        phiscrub::report::printable(other)
                    )))
                }
            }
        }
        if !p.only.is_empty() && !p.skip.is_empty() {
            return Err(bad("only and skip cannot be given together"));
        }
        Ok(p)
    }
}

fn parse_box(s: &str) -> Result<Rect, Problem> {
    let v: Vec<f64> = s
        .split(',')
        .map(|n| n.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad(format!("region '{s}' is not x,y,w,h")))?;
    match v[..] {
        [x, y, w, h] => Rect::given(x, y, w, h),
        _ => None,
    }
    .ok_or_else(|| bad(format!("region '{s}' is not x,y,w,h with an area")))
}

/// Admits a request to the queue, or says at once that it is full. The guard leaves it.
struct Admitted<'a>(&'a AtomicUsize);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn admit(state: &State) -> Result<Admitted<'_>, Problem> {
    let cap = state.config.jobs + state.config.queue();
    let before = state.admitted.fetch_add(1, Ordering::SeqCst);
    let guard = Admitted(&state.admitted);
    if state.draining.load(Ordering::SeqCst) {
        return Err(Problem::unavailable(
            "draining",
            "the service is shutting down",
        ));
    }
    if before >= cap {
        return Err(Problem::unavailable(
            "busy",
            "every worker is busy and the queue is full; try again",
        ));
    }
    Ok(guard)
}

/// Reads the body up to the limit. A declared length over it is refused before any of the
/// body is read; a body that turns out longer is refused as soon as it passes the limit.
/// The `Content-Type` is not trusted (curl sends a form type by default): the bytes are
/// sniffed, and anything that is not an image phiscrub reads gets `415`.
async fn read_body(headers: &HeaderMap, body: Body, max: u64) -> Result<Bytes, Problem> {
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "limits",
            format!("over limit: the body exceeds the {max} byte limit"),
        )
    };
    if content_length(headers).is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(body, usize::try_from(max).unwrap_or(usize::MAX));
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(bad("the body could not be read")),
    }
}

/// Reads and drops a refused request's body (up to the body limit, for at most a few
/// seconds, holding one frame at a time) before answering `problem`. Only requests that
/// passed the token check get this; a stranger's body is never read. Without it the
/// connection is reset while the client is still sending, and the client sees a broken
/// connection instead of `503` and its `Retry-After`.
async fn discard(body: Body, config: &Config, problem: Problem) -> Problem {
    let max = config.max_body_bytes;
    let drain = async {
        let mut body = body;
        let mut seen = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len() as u64);
            if seen > max {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
    problem
}

/// Runs `work` on a blocking thread once a worker is free, within the request's deadline.
async fn run_limited<T: Send + 'static>(
    state: &Arc<State>,
    deadline: tokio::time::Instant,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Problem> {
    let late = || Problem::unavailable("timeout", "the request took longer than its deadline");
    let permit = tokio::time::timeout_at(deadline, state.permits.clone().acquire_owned())
        .await
        .map_err(|_| late())?
        .map_err(|_| Problem::unavailable("draining", "the service is shutting down"))?;
    let task = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    });
    match tokio::time::timeout_at(deadline, task).await {
        Err(_) => Err(late()),
        Ok(Err(e)) if e.is_panic() => Err(panicked_problem()),
        Ok(Err(_)) => Err(Problem::unavailable(
            "draining",
            "the service is shutting down",
        )),
        Ok(Ok(v)) => Ok(v),
    }
}

fn panicked_problem() -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; nothing was kept",
    )
}

/// The media type of an output format.
pub fn media_type(f: Format) -> &'static str {
    match f {
        Format::Jpeg => "image/jpeg",
        Format::Png => "image/png",
        Format::Webp => "image/webp",
        Format::Gif => "image/gif",
        Format::Tiff => "image/tiff",
        Format::Heif => "image/heic",
    }
}

/// The scrubber a request asks for: the service's engine, the request's options, and the
/// time left before the request's deadline as the per-file limit, so that work started
/// late stops when its answer would no longer be waited for, freeing its worker.
fn scrubber_for(
    state: &State,
    p: &ScrubParams,
    left: std::time::Duration,
) -> Result<Scrubber, Problem> {
    let mut redaction = Redaction {
        fill: p.fill_color.unwrap_or_default().0,
        shape: p.shape.unwrap_or(Shape::Box),
        ..Redaction::default()
    };
    redaction.apply(&p.style);
    let mut options = Options {
        redaction,
        ..Options::default()
    };
    options.limits.max_input_bytes = state.config.max_body_bytes;
    options.limits.timeout = Some(left);
    if p.metadata_only {
        return Ok(Scrubber::metadata_only(options));
    }
    let only = Categories::choose(&p.only, &p.skip).ok_or_else(|| {
        bad("skip leaves nothing to look for; use metadata_only=true for metadata alone")
    })?;
    Ok(Scrubber::new(options, state.engine.clone()).only(only))
}

async fn scrub(
    Shared(state): Shared<Arc<State>>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let deadline = tokio::time::Instant::now() + state.config.request_timeout();
    // Checked before any work, so a bad parameter costs no more than reading the body.
    let checked = ScrubParams::parse(&pairs)
        .and_then(|p| scrubber_for(&state, &p, state.config.request_timeout()).map(|_| p));
    let params = match checked {
        Ok(p) => p,
        Err(p) => return Err(discard(body, &state.config, p).await),
    };
    let _admitted = match admit(&state) {
        Ok(a) => a,
        Err(p) => return Err(discard(body, &state.config, p).await),
    };
    let input = read_body(&headers, body, state.config.max_body_bytes).await?;
    let shared = state.clone();
    let result = run_limited(&state, deadline, move || {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let scrubber = scrubber_for(&shared, &params, left)?;
        Ok(scrubber.scrub_corrected(&input, &params.fix))
    })
    .await??;
    let scrubbed = result.map_err(|e| Problem::from_scrub(&e))?;
    let report = &scrubbed.report;
    for k in RegionKind::ALL {
        let n = report.regions.iter().filter(|r| r.category == k).count() as u64;
        if n > 0 {
            state.metrics.regions(k.name(), n);
        }
    }
    let count = report.regions.len().to_string();
    let review = report.needs_review.to_string();
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    let mut response = if wants_json {
        let body = serde_json::json!({
            "report": report,
            "image": base64::engine::general_purpose::STANDARD.encode(&scrubbed.bytes),
        });
        (
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, media_type(report.output_format))],
            scrubbed.bytes,
        )
            .into_response()
    };
    let h = response.headers_mut();
    for (name, value) in [
        ("phiscrub-regions", count),
        ("phiscrub-needs-review", review),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    Ok(response)
}

async fn inspect(
    Shared(state): Shared<Arc<State>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let deadline = tokio::time::Instant::now() + state.config.request_timeout();
    let _admitted = match admit(&state) {
        Ok(a) => a,
        Err(p) => return Err(discard(body, &state.config, p).await),
    };
    let input = read_body(&headers, body, state.config.max_body_bytes).await?;
    let mut options = Options::default();
    options.limits.max_input_bytes = state.config.max_body_bytes;
    let scrubber = Scrubber::metadata_only(options);
    let found = run_limited(&state, deadline, move || scrubber.inspect(&input))
        .await?
        .map_err(|e| Problem::from_scrub(&e))?;
    let body = serde_json::to_string(&found).map_err(|_| panicked_problem())?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn healthz() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

async fn readyz(Shared(state): Shared<Arc<State>>) -> Response {
    if state.draining.load(Ordering::SeqCst) {
        Problem::unavailable("draining", "the service is shutting down").into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"ready"}"#,
        )
            .into_response()
    }
}

async fn metrics_text(Shared(state): Shared<Arc<State>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document_text(),
    )
        .into_response()
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// Listens on every configured address until SIGTERM or Ctrl-C; then stops reporting ready,
/// lets requests in flight finish within the grace period, and returns.
pub async fn serve(state: Arc<State>) -> std::io::Result<()> {
    let listeners = bind(&state.config)?;
    serve_on(state, listeners, shutdown_signal()).await
}

/// Binds every configured address, so a caller can learn the ports (of `:0`) before
/// serving with [`serve_on`].
pub fn bind(config: &Config) -> std::io::Result<Vec<std::net::TcpListener>> {
    config
        .listen
        .iter()
        .map(|addr| {
            std::net::TcpListener::bind(addr)
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
        })
        .collect()
}

/// Serves on listeners the caller bound (a test binds port 0 and reads the port) until
/// `stop` completes, then drains as [`serve`] does. HTTPS when the config names a
/// certificate and key.
pub async fn serve_on(
    state: Arc<State>,
    listeners: Vec<std::net::TcpListener>,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let tls = match (&state.config.tls_cert, &state.config.tls_key) {
        (Some(cert), Some(key)) => Some(
            axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot load the TLS certificate or key: {e}"),
                    )
                })?,
        ),
        _ => None,
    };
    let handle = axum_server::Handle::new();
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners {
        let address = listener.local_addr()?;
        let service = app(state.clone()).into_make_service();
        let handle = handle.clone();
        // A connection that sends no complete request in time is closed, so idle or
        // trickling clients cannot hold the connection slots.
        let first_request = state.config.request_timeout();
        match &tls {
            Some(config) => {
                let mut server =
                    axum_server::from_tcp_rustls(listener, config.clone())?.handle(handle);
                server
                    .http_builder()
                    .http1()
                    .header_read_timeout(first_request);
                servers.spawn(async move { server.serve(service).await });
            }
            None => {
                let mut server = axum_server::from_tcp(listener)?.handle(handle);
                server
                    .http_builder()
                    .http1()
                    .header_read_timeout(first_request);
                servers.spawn(async move { server.serve(service).await });
            }
        }
        tracing::info!(target: "phiscrub::serve", %address, tls = tls.is_some(), "listening");
    }
    stop.await;
    tracing::info!(target: "phiscrub::serve", "shutting down: finishing requests in flight");
    state.drain();
    handle.graceful_shutdown(Some(state.config.shutdown_grace()));
    while let Some(r) = servers.join_next().await {
        match r {
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(std::io::Error::other(e.to_string())),
            Ok(Ok(())) => {}
        }
    }
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
pub(crate) fn test_app_with_panic(state: Arc<State>) -> Router {
    with_layers(
        routes().route(
            "/v1/panic",
            get(|| async {
                if true {
                    panic!("a handler panicked");
                }
                ""
            }),
        ),
        state,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request as HttpRequest;
    use phiscrub::detect::EngineConfig;
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;
    use tower::ServiceExt;

    const TOKEN: &str = "test-token-0123456789";

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// The real engine, loaded once for every test (ONNX Runtime from scripts/fetch-onnxruntime).
    fn engine() -> Arc<Engine> {
        static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
        ENGINE
            .get_or_init(|| {
                Arc::new(
                    Engine::load(EngineConfig::default()).expect(
                        "the service's tests need ONNX Runtime: run scripts/fetch-onnxruntime",
                    ),
                )
            })
            .clone()
    }

    fn state_with(config: Config) -> Arc<State> {
        State::new(
            Config {
                tokens: vec![TOKEN.into()],
                ..config
            },
            engine(),
        )
    }

    fn state() -> Arc<State> {
        state_with(Config {
            jobs: 2,
            ..Config::default()
        })
    }

    fn post(uri: &str) -> axum::http::request::Builder {
        HttpRequest::post(uri).header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
    }

    async fn send(app: Router, req: HttpRequest<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let r = app.oneshot(req).await.expect("the router answers");
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, headers, body)
    }

    async fn scrub_file(app: Router, uri: &str, path: &Path) -> (StatusCode, HeaderMap, Vec<u8>) {
        let bytes = std::fs::read(path).unwrap();
        let req = post(uri).body(Body::from(bytes)).unwrap();
        send(app, req).await
    }

    /// GPS tags exiftool finds in `bytes`: an independent parser's opinion.
    fn gps_tags(bytes: &[u8]) -> usize {
        exiftool_tags(bytes, "-GPS:all")
    }

    /// EXIF tags exiftool finds in `bytes`.
    fn exif_tags(bytes: &[u8]) -> usize {
        exiftool_tags(bytes, "-EXIF:all")
    }

    fn exiftool_tags(bytes: &[u8], group: &str) -> usize {
        let dir = std::env::temp_dir().join(format!("phiscrub-gps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let f = dir.join(format!("{}.img", NEXT.fetch_add(1, Ordering::SeqCst)));
        std::fs::write(&f, bytes).unwrap();
        let out = std::process::Command::new("exiftool")
            .args(["-j", group])
            .arg(&f)
            .output()
            .expect("exiftool runs (scripts/install-deps installs it)");
        std::fs::remove_file(&f).ok();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0].as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "SourceFile")
            .count()
    }

    fn problem_code(headers: &HeaderMap, body: &[u8]) -> String {
        assert_eq!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json"
        );
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["code"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn a_photo_comes_back_scrubbed_with_its_counts_in_headers() {
        let photo = root().join("fixtures/photos/ward_round_gps_xmp_trailer.jpg");
        assert!(
            gps_tags(&std::fs::read(&photo).unwrap()) > 0,
            "the fixture holds GPS"
        );
        let (status, headers, body) = scrub_file(app(state()), "/v1/scrub", &photo).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), "image/jpeg");
        assert_eq!(headers.get("phiscrub-regions").unwrap(), "0");
        assert_eq!(headers.get("phiscrub-needs-review").unwrap(), "false");
        assert_eq!(gps_tags(&body), 0, "GPS survived");
        let img = image::load_from_memory(&body).unwrap();
        assert_eq!((img.width(), img.height()), (320, 240));
    }

    #[tokio::test]
    async fn a_face_is_covered_and_json_carries_the_report_and_the_same_image() {
        let face = root().join("fixtures/faces/astronaut_eileen_collins.png");
        let bytes = std::fs::read(&face).unwrap();
        let raw = send(
            app(state()),
            post("/v1/scrub?only=face&fill_color=ff0000")
                .body(Body::from(bytes.clone()))
                .unwrap(),
        )
        .await;
        assert_eq!(raw.0, StatusCode::OK);
        assert_eq!(raw.1.get("phiscrub-regions").unwrap(), "1");
        let img = image::load_from_memory(&raw.2).unwrap().to_rgb8();
        // The face's centre (from the fixture's README: a portrait centred near x 225) is red.
        let red = img.pixels().filter(|p| p.0 == [255, 0, 0]).count();
        assert!(red > 5_000, "only {red} red pixels");
        let json = send(
            app(state()),
            post("/v1/scrub?only=face&fill_color=ff0000")
                .header(header::ACCEPT, "application/json")
                .body(Body::from(bytes))
                .unwrap(),
        )
        .await;
        assert_eq!(json.0, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&json.2).unwrap();
        assert_eq!(v["report"]["regions"][0]["category"], "face");
        assert_eq!(
            v["report"]["detectors"],
            serde_json::json!(["centerface", "yunet"])
        );
        let image = base64::engine::general_purpose::STANDARD
            .decode(v["image"].as_str().unwrap())
            .unwrap();
        assert_eq!(image, raw.2, "the JSON's image is the image");
    }

    #[tokio::test]
    async fn a_missing_or_wrong_token_is_401_and_health_needs_none() {
        let photo = root().join("fixtures/photos/ward_round_gps_xmp_trailer.jpg");
        let bytes = std::fs::read(photo).unwrap();
        for auth in [None, Some("Bearer wrong-token-0000000000"), Some(TOKEN)] {
            let mut req = HttpRequest::post("/v1/scrub");
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            let (status, headers, body) =
                send(app(state()), req.body(Body::from(bytes.clone())).unwrap()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
            assert_eq!(problem_code(&headers, &body), "unauthorized");
            assert!(headers.contains_key(header::WWW_AUTHENTICATE));
        }
        for path in ["/healthz", "/readyz", "/openapi.json"] {
            let req = HttpRequest::get(path).body(Body::empty()).unwrap();
            assert_eq!(send(app(state()), req).await.0, StatusCode::OK, "{path}");
        }
        let req = HttpRequest::get("/metrics").body(Body::empty()).unwrap();
        assert_eq!(send(app(state()), req).await.0, StatusCode::UNAUTHORIZED);
        // The scheme's case does not matter.
        let req = HttpRequest::get("/metrics")
            .header(header::AUTHORIZATION, format!("bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(app(state()), req).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_from_its_declared_length() {
        let s = state_with(Config {
            max_body_bytes: 1000,
            ..Config::default()
        });
        let photo = root().join("fixtures/photos/ward_round_gps_xmp_trailer.jpg");
        let bytes = std::fs::read(photo).unwrap();
        let req = post("/v1/scrub")
            .header(header::CONTENT_LENGTH, bytes.len())
            .body(Body::from(bytes.clone()))
            .unwrap();
        let (status, headers, body) = send(app(s.clone()), req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(problem_code(&headers, &body), "limits");
        // A streamed body with no declared length is cut where it passes the limit.
        let stream = futures_stream(bytes);
        let req = post("/v1/scrub").body(stream).unwrap();
        assert_eq!(send(app(s), req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    }

    /// A body with no Content-Length, in 100-byte pieces.
    fn futures_stream(bytes: Vec<u8>) -> Body {
        let pieces: Vec<Result<Bytes, std::io::Error>> = bytes
            .chunks(100)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Body::from_stream(futures_util::stream::iter(pieces))
    }

    #[tokio::test]
    async fn what_is_not_an_image_is_415_and_a_broken_image_422_with_its_code() {
        let req = post("/v1/scrub")
            .body(Body::from("name: J. Doe, DOB 1970-01-01"))
            .unwrap();
        let (status, headers, body) = send(app(state()), req).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(problem_code(&headers, &body), "unknown_format");
        let (status, headers, body) = scrub_file(
            app(state()),
            "/v1/scrub",
            &root().join("fixtures/bad/truncated.jpg"),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem_code(&headers, &body), "malformed");
        assert!(!body.starts_with(&[0xFF, 0xD8]), "no image in a refusal");
    }

    #[tokio::test]
    async fn every_hostile_fixture_is_refused_with_a_4xx_or_scrubbed_clean() {
        for entry in std::fs::read_dir(root().join("fixtures/bad")).unwrap() {
            let path = entry.unwrap().path();
            let (status, headers, body) = scrub_file(app(state()), "/v1/scrub", &path).await;
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if status == StatusCode::OK {
                // A damaged EXIF block in an intact JPEG: the block is dropped whole.
                assert_eq!(exif_tags(&body), 0, "{name}: EXIF survived");
                continue;
            }
            assert!(status.is_client_error(), "{name}: {status}");
            assert_eq!(
                headers.get(header::CONTENT_TYPE).unwrap(),
                "application/problem+json",
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn bad_parameters_are_400_naming_the_parameter() {
        let photo = root().join("fixtures/photos/ward_round_gps_xmp_trailer.jpg");
        for (query, needle) in [
            ("skpi=face", "skpi"),
            ("only=faces", "faces"),
            ("style=face=smudge", "smudge"),
            ("fill_color=red", "red"),
            ("shape=circle", "circle"),
            ("regions=1,2,3", "1,2,3"),
            ("keep=face-1-2-3", "face-1-2-3"),
            ("keep=lesion-1-2-3-4", "lesion-1-2-3-4"),
            ("only=face&skip=text", "together"),
            ("skip=face,text,barcode", "nothing"),
        ] {
            let (status, headers, body) =
                scrub_file(app(state()), &format!("/v1/scrub?{query}"), &photo).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(problem_code(&headers, &body), "bad_request");
            let text = String::from_utf8(body).unwrap();
            assert!(text.contains(needle), "{query}: {text}");
        }
    }

    #[tokio::test]
    async fn a_manual_region_is_painted_in_the_output() {
        let photo = root().join("fixtures/photos/ward_round_gps_xmp_trailer.jpg");
        let (status, headers, body) = scrub_file(
            app(state()),
            "/v1/scrub?metadata_only=true&regions=10,20,50,40&fill_color=00ff00",
            &photo,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers.get("phiscrub-regions").unwrap(), "1");
        let img = image::load_from_memory(&body).unwrap().to_rgb8();
        let p = img.get_pixel(35, 40).0;
        assert!(p[1] > 200 && p[0] < 60 && p[2] < 60, "{p:?}");
    }

    #[tokio::test]
    async fn a_region_kept_by_id_comes_back_uncovered_and_is_reported_as_the_users() {
        let face = root().join("fixtures/faces/astronaut_eileen_collins.png");
        let json = |uri: &str| {
            post(uri)
                .header(header::ACCEPT, "application/json")
                .body(Body::from(std::fs::read(&face).unwrap()))
                .unwrap()
        };
        let (status, _, body) = send(app(state()), json("/v1/scrub?only=face")).await;
        assert_eq!(status, StatusCode::OK);
        let first: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let id = first["report"]["regions"][0]["id"].as_str().unwrap();
        let (status, headers, body) = send(
            app(state()),
            json(&format!("/v1/scrub?only=face&keep={id}&regions=0,0,10,10")),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers.get("phiscrub-regions").unwrap(), "1");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["report"]["kept_by_user"][0]["id"], id);
        assert_eq!(v["report"]["regions"][0]["category"], "manual");
        let image = base64::engine::general_purpose::STANDARD
            .decode(v["image"].as_str().unwrap())
            .unwrap();
        let out = image::load_from_memory(&image).unwrap().to_rgb8();
        let original = image::open(&face).unwrap().to_rgb8();
        let [x, y, w, h] = [188, 64, 76, 106];
        let same = (y..y + h)
            .flat_map(|yy| (x..x + w).map(move |xx| (xx, yy)))
            .all(|(xx, yy)| out.get_pixel(xx, yy) == original.get_pixel(xx, yy));
        assert!(same, "the kept face's pixels are the original's");

        // An id this photo does not have is the caller's mistake, said as such.
        let (status, headers, body) =
            send(app(state()), json("/v1/scrub?only=face&keep=face-0-0-5-5")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(problem_code(&headers, &body), "region");
    }

    #[tokio::test]
    async fn the_page_and_its_assets_are_served_to_this_origin_only() {
        for (path, media) in [
            ("/", "text/html"),
            ("/app.js", "text/javascript"),
            ("/app.css", "text/css"),
        ] {
            // No token: the page holds no data, and asks for one when the service does.
            let req = HttpRequest::get(path).body(Body::empty()).unwrap();
            let (status, headers, body) = send(app(state()), req).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            let ct = headers.get(header::CONTENT_TYPE).unwrap().to_str().unwrap();
            assert!(ct.starts_with(media), "{path}: {ct}");
            let csp = headers
                .get(header::CONTENT_SECURITY_POLICY)
                .unwrap()
                .to_str()
                .unwrap();
            assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
            let text = String::from_utf8(body).unwrap();
            // Nothing is fetched from anywhere else: no absolute URL but the SVG namespace.
            let elsewhere = text
                .match_indices("http")
                .filter(|(i, _)| !text[*i..].starts_with("http://www.w3.org/2000/svg"))
                .count();
            assert_eq!(elsewhere, 0, "{path} names another host");
        }
    }

    #[tokio::test]
    async fn a_region_outside_the_image_is_the_callers_400_not_a_detector_failure() {
        let photo = root().join("fixtures/photos/ward_round_gps_xmp_trailer.jpg");
        let (status, headers, body) = scrub_file(
            app(state()),
            "/v1/scrub?metadata_only=true&regions=1000,1000,50,40",
            &photo,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(problem_code(&headers, &body), "region");
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("outside the 320x240 image"), "{text}");
    }

    #[tokio::test]
    async fn a_full_queue_is_503_with_retry_after() {
        let s = state_with(Config {
            jobs: 1,
            queue: Some(0),
            ..Config::default()
        });
        // One request is being worked on; the next finds no room.
        s.admitted.store(1, Ordering::SeqCst);
        let photo = root().join("fixtures/photos/ward_round_gps_xmp_trailer.jpg");
        let (status, headers, body) = scrub_file(app(s.clone()), "/v1/scrub", &photo).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(problem_code(&headers, &body), "busy");
        assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "1");
        s.admitted.store(0, Ordering::SeqCst);
        assert_eq!(
            scrub_file(app(s), "/v1/scrub", &photo).await.0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn past_the_deadline_is_503() {
        let s = state_with(Config {
            request_timeout_secs: 0.001,
            ..Config::default()
        });
        let face = root().join("fixtures/clinical/chart.jpg");
        let (status, headers, body) = scrub_file(app(s), "/v1/scrub", &face).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let code = problem_code(&headers, &body);
        assert!(code == "timeout" || code == "limits", "{code}");
        assert!(headers.contains_key(header::RETRY_AFTER));
    }

    #[tokio::test]
    async fn readiness_turns_to_503_when_draining() {
        let s = state();
        let ready = || HttpRequest::get("/readyz").body(Body::empty()).unwrap();
        assert_eq!(send(app(s.clone()), ready()).await.0, StatusCode::OK);
        s.drain();
        assert_eq!(
            send(app(s.clone()), ready()).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let req = HttpRequest::get("/healthz").body(Body::empty()).unwrap();
        assert_eq!(send(app(s), req).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_panic_is_500_and_the_service_goes_on() {
        let s = state();
        let req = HttpRequest::get("/v1/panic")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap();
        let (status, headers, body) = send(test_app_with_panic(s.clone()), req).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(problem_code(&headers, &body), "internal");
        assert!(!String::from_utf8(body).unwrap().contains("panicked"));
        let photo = root().join("fixtures/photos/ward_round_gps_xmp_trailer.jpg");
        assert_eq!(
            scrub_file(test_app_with_panic(s), "/v1/scrub", &photo)
                .await
                .0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn metrics_count_requests_by_status_and_code_and_regions_by_category() {
        let s = state();
        let face = root().join("fixtures/faces/astronaut_eileen_collins.png");
        scrub_file(app(s.clone()), "/v1/scrub?only=face", &face).await;
        scrub_file(
            app(s.clone()),
            "/v1/scrub",
            &root().join("fixtures/bad/truncated.jpg"),
        )
        .await;
        let req = post("/metrics").method("GET").body(Body::empty()).unwrap();
        let (status, _, body) = send(app(s), req).await;
        assert_eq!(status, StatusCode::OK);
        let text = String::from_utf8(body).unwrap();
        for line in [
            "phiscrub_requests_total{route=\"/v1/scrub\",status=\"200\",code=\"\"} 1",
            "phiscrub_requests_total{route=\"/v1/scrub\",status=\"422\",code=\"malformed\"} 1",
            "phiscrub_regions_total{category=\"face\"} 1",
            "phiscrub_request_duration_seconds_count{route=\"/v1/scrub\"} 2",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    #[tokio::test]
    async fn inspect_lists_categories_without_values() {
        let photo = root().join("fixtures/photos/ward_round_gps_xmp_trailer.jpg");
        let (status, _, body) = scrub_file(app(state()), "/v1/inspect", &photo).await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["format"], "jpeg");
        assert!(v["exif"]["gps_tags"].as_u64().unwrap() > 0);
    }

    /// One HTTP/1.1 request over `stream`, answered in full; returns the status line.
    async fn status_line<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        mut stream: S,
        request: &str,
    ) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        String::from_utf8_lossy(&raw)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn https_is_served_with_the_given_certificate_and_stops_on_request() {
        let dir = std::env::temp_dir().join(format!("phiscrub-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
        let s = state_with(Config {
            tls_cert: Some(cert_path),
            tls_key: Some(key_path),
            ..Config::default()
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_on(s.clone(), vec![listener], async {
            let _ = rx.await;
        }));

        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let client = tokio_rustls::rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = connector.connect(name, tcp).await.expect("TLS handshake");
        let line = status_line(
            tls,
            &format!(
                "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        // Plain HTTP on the TLS port gets no answer.
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let line = status_line(tcp, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(!line.starts_with("HTTP/1.1 200"), "{line}");
        tx.send(()).unwrap();
        server.await.unwrap().unwrap();
        assert!(s.draining.load(Ordering::SeqCst));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_committed_openapi_document_is_the_one_the_code_builds() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
        let built = openapi::document_text();
        if std::env::var_os("PHISCRUB_BLESS").is_some() {
            std::fs::write(&path, &built).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == built,
            "openapi.json differs from the code; rerun with PHISCRUB_BLESS=1 and commit it"
        );
        // Every parameter the handler accepts is described, and nothing else.
        let doc = openapi::document();
        let params: Vec<&str> = doc["paths"]["/v1/scrub"]["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        let sample = |p: &str| match p {
            "only" | "skip" => "face",
            "style" => "face=blur",
            "fill_color" => "ff0000",
            "shape" => "ellipse",
            "metadata_only" => "true",
            "regions" => "1,2,3,4",
            "keep" => "text-10-20-30-40",
            other => panic!("{other} is described but has no sample here"),
        };
        for p in &params {
            let pairs = vec![(p.to_string(), sample(p).to_string())];
            assert!(
                ScrubParams::parse(&pairs).is_ok(),
                "{p} is described but refused"
            );
        }
        assert!(ScrubParams::parse(&[("nope".into(), String::new())]).is_err());
    }
}
