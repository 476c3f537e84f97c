//! The report server (axum): the only module that knows HTTP.
//!
//! `router(app)` serves the index, the three reports with their `.csv`, `.xlsx` and `.json`
//! alternates, `/healthz`, and the upload API under `/api/v1` ([`api`]). Every page reads one snapshot of the lake: the latest data
//! version, or `?as_of=` (a version or a time) to show exactly what was published then.
//! Engines are cached per data version and built reports per (report, area, term, version):
//! a version never changes, so a cached page is always right; a new upload makes a new version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};

pub mod api;

use crate::auth::Tokens;
use crate::engine::{AsOf, Engine};
use crate::lake::Lake;
use crate::policy::Policies;
use crate::report::export::{self, Output};
use crate::report::{self, Report, Term, html};
use crate::{Error, Result};

/// How many built reports and engines are kept.
const REPORT_CACHE: usize = 512;
const ENGINE_CACHE: usize = 4;

/// (report, area, term, data version, read by the school's own principal).
type ReportKey = (String, String, Term, u64, bool);

/// The server's state: the lake, the policies, and caches keyed by data version.
pub struct App {
    lake: Lake,
    policies: Policies,
    clock: fn() -> DateTime<Utc>,
    tokens: Tokens,
    /// Uploads being received and checked (`max_concurrent_uploads`).
    uploads: Arc<tokio::sync::Semaphore>,
    engines: Mutex<Vec<(u64, Arc<Engine>)>>,
    reports: Mutex<HashMap<ReportKey, Arc<Report>>>,
}

impl App {
    /// `clock` gives the generation time printed on pages and the time uploads are received
    /// (tests pass a fixed one). Without [`App::with_tokens`] no token is valid.
    pub fn new(lake: Lake, policies: Policies, clock: fn() -> DateTime<Utc>) -> App {
        App {
            lake,
            policies,
            clock,
            tokens: Tokens::open(None).expect("no configuration file to read"),
            uploads: Arc::new(tokio::sync::Semaphore::new(
                crate::auth::ServerConfig::default().max_concurrent_uploads,
            )),
            engines: Mutex::new(Vec::new()),
            reports: Mutex::new(HashMap::new()),
        }
    }

    /// The tokens (and server settings) uploads are checked against.
    pub fn with_tokens(mut self, tokens: Tokens) -> App {
        self.uploads = Arc::new(tokio::sync::Semaphore::new(
            tokens.server().max_concurrent_uploads.max(1),
        ));
        self.tokens = tokens;
        self
    }

    /// The engine for a request's `as_of` (or the latest version).
    async fn engine(&self, as_of: Option<AsOf>) -> Result<Arc<Engine>> {
        let latest = self
            .lake
            .table("attendance")
            .await?
            .version()
            .unwrap_or_default();
        let version = match as_of {
            None => Some(latest),
            Some(AsOf::Version(v)) if v > latest => {
                return Err(Error::NotFound(format!(
                    "dataversion {v} finns inte; den senaste är {latest}"
                )));
            }
            Some(AsOf::Version(v)) => Some(v),
            Some(AsOf::Time(_)) => None,
        };
        if let Some(v) = version
            && let Some((_, e)) = self
                .engines
                .lock()
                .expect("cache")
                .iter()
                .find(|(k, _)| *k == v)
        {
            return Ok(e.clone());
        }
        let as_of = match version {
            Some(v) if v == latest => None,
            Some(v) => Some(AsOf::Version(v)),
            None => as_of,
        };
        let engine = Arc::new(Engine::open_with(&self.lake, as_of, &self.policies).await?);
        let v = engine.snapshot.data_version;
        let mut cache = self.engines.lock().expect("cache");
        if !cache.iter().any(|(k, _)| *k == v) {
            if cache.len() >= ENGINE_CACHE {
                cache.remove(0);
            }
            cache.push((v, engine.clone()));
        }
        Ok(engine)
    }

    /// A built report, from the cache when this version's was built before.
    pub async fn report(
        &self,
        kind: &str,
        code: &str,
        term: Term,
        as_of: Option<AsOf>,
        own_school: Option<&str>,
    ) -> Result<Arc<Report>> {
        let spec = report::spec(kind)?;
        let engine = self.engine(as_of).await?;
        let key = (
            kind.to_string(),
            code.to_string(),
            term,
            engine.snapshot.data_version,
            own_school.is_some(),
        );
        if let Some(r) = self.reports.lock().expect("cache").get(&key) {
            return Ok(r.clone());
        }
        let r =
            Arc::new(report::build(&engine, &spec, code, term, (self.clock)(), own_school).await?);
        let mut cache = self.reports.lock().expect("cache");
        if cache.len() >= REPORT_CACHE {
            cache.clear();
        }
        cache.insert(key, r.clone());
        Ok(r)
    }
}

/// All routes, with request logging.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/reports/{kind}/{code}/{term}", get(report_page))
        .route("/api/v1/uploads", post(api::upload).get(api::list_uploads))
        .route("/api/v1/uploads/{id}", get(api::get_upload))
        .route("/api/v1/openapi.json", get(api::openapi_json))
        .fallback(not_found)
        .layer(middleware::from_fn(log))
        .with_state(app)
}

/// The address a request came from (set by [`serve`]; absent in tests that call the router
/// directly). Failed token checks are counted per address.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// Serves the lake on `addr` until Ctrl-C; `ready` is told the bound address (port 0 picks
/// a free one).
///
/// Its own accept loop, so that a client cannot hold the server: at most `max_connections`
/// connections (more are closed at once), `header_timeout_secs` to send a request's headers
/// and the same for an idle keep-alive connection, `body_timeout_secs` for an upload's body
/// (in the handler). On Ctrl-C it stops accepting, lets requests in flight (uploads among
/// them) finish for up to 30 seconds, then ends.
pub async fn serve(
    lake: Lake,
    policies: Policies,
    tokens: Tokens,
    addr: &str,
    ready: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(addr, e))?;
    let local = listener.local_addr().map_err(|e| Error::io(addr, e))?;
    let settings = tokens.server();
    let app = Arc::new(App::new(lake, policies, Utc::now).with_tokens(tokens));
    let routes = router(app);
    let connections = Arc::new(tokio::sync::Semaphore::new(settings.max_connections.max(1)));
    let header_timeout = std::time::Duration::from_secs(settings.header_timeout_secs.max(1));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    ready(local);
    tracing::info!(%local, max_connections = settings.max_connections, "serving");
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut ctrl_c => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, or the peer gave up before we got to it: wait a
                    // moment (the open connections time out) and go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: too many open connections");
            drop(stream);
            continue;
        };
        let service = routes.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer));
                req
            },
        );
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true)
                .serve_connection(
                    TokioIo::new(stream),
                    hyper_util::service::TowerToHyperService::new(service),
                );
            tokio::pin!(conn);
            let stop = async move {
                loop {
                    let stopping = *stopped.borrow_and_update();
                    if stopping || stopped.changed().await.is_err() {
                        break;
                    }
                }
            };
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    tracing::info!("shutting down: finishing requests in flight");
    let _ = stop.send(true);
    let all = u32::try_from(settings.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        connections.acquire_many(all),
    )
    .await;
    Ok(())
}

async fn log(req: Request, next: Next) -> Response {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let start = Instant::now();
    let res = next.run(req).await;
    tracing::info!(
        target: "narvaro::http",
        %method,
        uri = %uri,
        status = res.status().as_u16(),
        ms = start.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    res
}

/// An error as a response: client errors carry their (Swedish) message, server errors are
/// logged and answered with a generic one. Pages get an HTML page, the API and `.json`
/// alternates JSON.
struct AppError {
    error: Error,
    json: bool,
    /// A status decided by the HTTP layer itself (413, 415), not by the error's kind.
    status: Option<StatusCode>,
}

impl AppError {
    fn json(error: Error) -> AppError {
        AppError {
            error,
            json: true,
            status: None,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, message) = match (&self.error, self.status) {
            (e, Some(s)) => (s, "Felaktig begäran", e.to_string()),
            (Error::NotFound(m), _) => (StatusCode::NOT_FOUND, "Sidan finns inte", m.clone()),
            (Error::Usage(m), _) => (StatusCode::BAD_REQUEST, "Felaktig begäran", m.clone()),
            (Error::Rejected(r), _) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Filen avvisades",
                format!(
                    "{}: filen avvisades, inget sparades ({} fel)",
                    r.file,
                    r.problems.len()
                ),
            ),
            (Error::Unauthorized(m), _) => {
                (StatusCode::UNAUTHORIZED, "Ingen behörighet", m.clone())
            }
            (Error::Forbidden(m), _) => (StatusCode::FORBIDDEN, "Ingen behörighet", m.clone()),
            (
                Error::Busy {
                    message, client, ..
                },
                _,
            ) => (
                if *client {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                "Försök igen senare",
                message.clone(),
            ),
            (Error::Unavailable(m), _) => {
                tracing::error!(error = %m, "lake unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Tillfälligt otillgänglig",
                    format!("{m}; inget sparades, försök igen senare"),
                )
            }
            (e, _) => {
                tracing::error!(error = %e, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Något gick fel",
                    "Ett internt fel inträffade. Felet är loggat; försök igen senare.".into(),
                )
            }
        };
        let retry_after = match &self.error {
            Error::Busy {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let mut res = if self.json {
            let (file, problems) = match self.error {
                Error::Rejected(r) => (Some(r.file), r.problems),
                _ => (None, Vec::new()),
            };
            let body = api::ApiError {
                status: status.as_u16(),
                error: message,
                file,
                problems,
            };
            (status, axum::Json(body)).into_response()
        } else {
            (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html::error_page(status.as_u16(), title, &message),
            )
                .into_response()
        };
        if let Some(v) =
            retry_after.and_then(|s| header::HeaderValue::from_str(&s.to_string()).ok())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}

fn page(e: Error) -> AppError {
    AppError {
        error: e,
        json: false,
        status: None,
    }
}

/// `?as_of=` as a data version or a time; a bad value is a 400 that says what is wrong.
fn as_of(q: &HashMap<String, String>) -> Result<Option<AsOf>> {
    match q.get("as_of").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<AsOf>()
            .map(Some)
            .map_err(|e| Error::usage(format!("as_of: {e}"))),
    }
}

async fn index(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let engine = app.engine(as_of(&q).map_err(page)?).await.map_err(page)?;
    let index = report::index(&engine).await.map_err(page)?;
    Ok((
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html::index_page(&index),
    )
        .into_response())
}

async fn healthz(State(app): State<Arc<App>>) -> Result<Response, AppError> {
    let version = app
        .lake
        .table("attendance")
        .await
        .map_err(AppError::json)?
        .version()
        .unwrap_or_default();
    Ok(axum::Json(serde_json::json!({ "status": "ok", "data_version": version })).into_response())
}

async fn not_found() -> AppError {
    page(Error::NotFound(
        "det finns ingen sida med den adressen".into(),
    ))
}

async fn report_page(
    State(app): State<Arc<App>>,
    client: Option<axum::Extension<ClientAddr>>,
    Path((kind, code, term)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Result<Response, AppError> {
    // `VT2026.csv` asks for the CSV alternate of `VT2026`.
    let (term, out) = match term.rsplit_once('.') {
        Some((t, ext)) => match Output::from_extension(ext) {
            Some(o) => (t.to_string(), o),
            None => {
                return Err(page(Error::NotFound(format!(
                    "formatet .{ext} finns inte; välj .csv, .xlsx eller .json"
                ))));
            }
        },
        None => (term, Output::Html),
    };
    let fail = |e: Error| AppError {
        error: e,
        json: out == Output::Json,
        status: None,
    };
    let term: Term = term.parse().map_err(|e: String| fail(Error::usage(e)))?;
    let as_of_value = as_of(&q).map_err(fail)?;
    // A school's own principal (a token for that school) sees it without disclosure control;
    // everyone else, and every other area, sees the protected release.
    let own = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(auth) if kind == "school" => {
            let p = app
                .tokens
                .authenticate(Some(auth), client.map(|c| c.0.0.ip()))
                .await
                .map_err(fail)?;
            p.owns_school(&code).then_some(code.as_str())
        }
        _ => None,
    };
    let r = app
        .report(&kind, &code, term, as_of_value, own)
        .await
        .map_err(fail)?;
    let query = match q.get("as_of") {
        Some(_) => format!("?as_of={}", r.data_version),
        None => String::new(),
    };
    let body = export::render(&r, out, Some(html::Links { query: &query })).map_err(fail)?;
    let mut res = ([(header::CONTENT_TYPE, out.content_type())], body).into_response();
    if own.is_some() {
        // Unsuppressed figures are for this reader only: no shared cache may keep them.
        res.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("private, no-store"),
        );
    }
    if out != Output::Html {
        let name = format!(
            "attachment; filename=\"narvaro-{}-{}-{}.{}\"",
            r.report,
            r.area.code,
            r.term,
            out.extension()
        );
        if let Ok(v) = header::HeaderValue::from_str(&name) {
            res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(res)
}
