//! The report server (axum): the only module that knows HTTP.
//!
//! `router(app)` serves the index, the three reports with their `.csv`, `.xlsx` and `.json`
//! alternates, `/healthz`, and the upload API under `/api/v1` ([`api`]). Every page reads one
//! publication: the latest, or with `?as_of=` (a version or a time) the one current then, to
//! show exactly what was published. Reports read from a publication and their rendered answers
//! are cached per publication in [`App`] (`state.rs`, which also runs the background
//! publisher): a publication never changes, so a cached page is always right. `pages.rs` has
//! the readers' pages, `error.rs` the error answers, this file the router and the accept loop.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::Utc;

pub mod api;
mod error;
mod kolada;
mod metrics;
mod open;
mod pages;
mod pxweb;
mod state;

use error::AppError;
pub use state::App;

use crate::auth::Tokens;
use crate::lake::Lake;
use crate::policy::Policies;
use crate::{Error, Result};

/// All routes, with request logging.
pub fn router(app: Arc<App>) -> Router {
    metrics::install();
    Router::new()
        .route("/", get(pages::index))
        .route("/healthz", get(pages::healthz))
        .route("/readyz", get(pages::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/reports/{kind}/{code}/{term}", get(pages::report_page))
        .route("/api/v1/uploads", post(api::upload).get(api::list_uploads))
        .route("/api/v1/uploads/{id}", get(api::get_upload))
        .route("/api/v1/openapi.json", get(api::openapi_json))
        .route("/api/v1/indicators", get(open::list))
        .route("/api/v1/indicators/{name}", get(open::indicator))
        .route("/api/kolada/v3/kpi", get(kolada::kpi_list))
        .route("/api/kolada/v3/kpi/{id}", get(kolada::kpi_one))
        .route("/api/kolada/v3/municipality", get(kolada::municipalities))
        .route("/api/kolada/v3/ou", get(kolada::ous))
        .route("/api/kolada/v3/data", get(kolada::data_query))
        .route(
            "/api/kolada/v3/data/kpi/{kpi}/municipality/{municipality}",
            get(kolada::data_path),
        )
        .route(
            "/api/kolada/v3/data/kpi/{kpi}/municipality/{municipality}/year/{year}",
            get(kolada::data_path),
        )
        .route(
            "/api/kolada/v3/oudata/kpi/{kpi}/ou/{ou}",
            get(kolada::data_path),
        )
        .route(
            "/api/kolada/v3/oudata/kpi/{kpi}/ou/{ou}/year/{year}",
            get(kolada::data_path),
        )
        .route("/api/pxweb/v2/config", get(pxweb::config))
        .route("/api/pxweb/v2/tables", get(pxweb::tables))
        .route("/api/pxweb/v2/tables/{id}", get(pxweb::table))
        .route("/api/pxweb/v2/tables/{id}/metadata", get(pxweb::metadata))
        .route(
            "/api/pxweb/v2/tables/{id}/data",
            get(pxweb::data_get).post(pxweb::data_post),
        )
        .fallback(pages::not_found)
        .layer(middleware::from_fn(log))
        .with_state(app)
}

/// A positive whole number from query parameter `k` (`default` when it is absent), for the
/// open data APIs' paging; anything else is a clear 400.
fn positive(
    q: &std::collections::HashMap<String, String>,
    k: &str,
    default: usize,
) -> Result<usize> {
    match q.get(k) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| Error::usage(format!("{k}: '{v}' är inget positivt heltal"))),
    }
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
    let mut app = App::new(lake, policies, Utc::now).with_tokens(tokens);
    // The publisher runs as a child process of the same executable; where that cannot be
    // found, in this process.
    match std::env::current_exe() {
        Ok(exe) => app = app.with_publisher_process(exe, settings.publisher_nice),
        Err(e) => tracing::warn!(error = %e, "publishing in the server's own process"),
    }
    let app = Arc::new(app);
    // The first page after a start reads the catalogue read here.
    if let Err(e) = app.refresh_catalogue().await {
        tracing::warn!(error = %e, "the publications catalogue could not be read at start");
    }
    let routes = router(app.clone());
    let publisher = tokio::spawn(app.clone().run_publisher(
        std::time::Duration::from_secs(settings.publish_settle_secs),
        std::time::Duration::from_secs(settings.publish_max_wait_secs),
    ));
    let connections = Arc::new(tokio::sync::Semaphore::new(settings.max_connections.max(1)));
    let header_timeout = std::time::Duration::from_secs(settings.header_timeout_secs.max(1));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    ready(local);
    tracing::info!(%local, max_connections = settings.max_connections, "serving");
    // Ctrl-C, or SIGTERM as service managers and container runtimes stop a process.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::io("SIGTERM", e))?;
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut ctrl_c => break,
            _ = terminate.recv() => break,
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
    publisher.abort();
    if let Err(e) = app.lake.write_audits().await {
        tracing::warn!(error = %e, "audit rows still pending; the next open restores them");
    }
    Ok(())
}

async fn log(req: Request, next: Next) -> Response {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    metrics::request(
        &route,
        method.as_str(),
        res.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
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

/// A permanent link: `path` with the query `params` (sorted; `as_of` and `publication`
/// dropped, as the link names the publication itself) and `publication=N`, so it shows the
/// same figures forever.
pub(super) fn permalink<'a>(
    path: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    publication: u64,
) -> String {
    let mut params: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, _)| !["as_of", "publication"].contains(k))
        .collect();
    params.sort();
    let mut out = format!("{path}?");
    for (k, v) in params {
        out.push_str(k);
        out.push('=');
        out.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
        out.push('&');
    }
    out.push_str(&format!("publication={publication}"));
    out
}
