//! `/metrics`: the server's figures in Prometheus text, through the `metrics` facade and its
//! Prometheus exporter (rendered on request; no listener of its own).
//!
//! Counted as they happen: requests and their latency by route and status (the router's
//! middleware), uploads by answer, the report caches' hits and misses. Set when scraped, from
//! the served state: the lake's data version, the publication served (number, data version,
//! age), whether uploads wait to be published, and the last publication's duration.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::App;

pub const REQUESTS: &str = "narvaro_http_requests_total";
pub const LATENCY: &str = "narvaro_http_request_duration_seconds";
pub const UPLOADS: &str = "narvaro_uploads_total";
pub const CACHE: &str = "narvaro_cache_requests_total";
pub const PUBLICATION_SECONDS: &str = "narvaro_publication_duration_seconds";

/// The process's recorder, installed once (the first router built installs it).
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

pub(super) fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            // Report pages answer in milliseconds; uploads and a first PDF in up to seconds.
            .set_buckets_for_metric(
                Matcher::Full(LATENCY.into()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(PUBLICATION_SECONDS.into()),
                    &[1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0],
                )
            })
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "another metrics recorder is installed; /metrics shows only what it sees"
            );
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(REQUESTS, "HTTP requests answered, by route and status.");
    describe_histogram!(
        LATENCY,
        Unit::Seconds,
        "Time to answer a request, by route."
    );
    describe_counter!(
        UPLOADS,
        "Uploads answered, by outcome (the answer's status)."
    );
    describe_counter!(
        CACHE,
        "Reports and rendered answers asked of the server's caches, by cache and result."
    );
    describe_histogram!(
        PUBLICATION_SECONDS,
        Unit::Seconds,
        "Time a publication by this server's publisher took."
    );
    describe_gauge!("narvaro_data_version", "The lake's latest data version.");
    describe_gauge!(
        "narvaro_published_data_version",
        "The data version of the publication served."
    );
    describe_gauge!(
        "narvaro_publication",
        "The number of the publication served."
    );
    describe_gauge!(
        "narvaro_publication_age_seconds",
        Unit::Seconds,
        "Time since the publication served was made current."
    );
    describe_gauge!(
        "narvaro_uploads_waiting",
        "1 while uploads have landed that no publication shows yet."
    );
}

/// A request answered: counted by its route (the router's pattern, never the raw path, so
/// the label set stays small), method and status.
pub(super) fn request(route: &str, method: &str, status: u16, seconds: f64) {
    let status = status.to_string();
    metrics::counter!(REQUESTS, "route" => route.to_string(), "method" => method.to_string(), "status" => status.clone())
        .increment(1);
    metrics::histogram!(LATENCY, "route" => route.to_string()).record(seconds);
    if route == "/api/v1/uploads" && method == "POST" {
        let outcome = match status.as_str() {
            "201" => "stored",
            "422" => "refused",
            "401" | "403" | "429" => "unauthorised",
            "408" | "413" | "415" | "400" => "bad_request",
            "503" => "unavailable",
            _ => "other",
        };
        metrics::counter!(UPLOADS, "outcome" => outcome, "status" => status).increment(1);
    }
}

/// A cache asked: `cache` is `report` or `rendered`.
pub(super) fn cache(cache: &'static str, hit: bool) {
    metrics::counter!(CACHE, "cache" => cache, "result" => if hit { "hit" } else { "miss" })
        .increment(1);
}

pub(super) fn publication(seconds: f64) {
    metrics::histogram!(PUBLICATION_SECONDS).record(seconds);
}

pub(super) async fn metrics(State(app): State<Arc<App>>) -> Response {
    let handle = install();
    if let Ok(t) = app.lake.table("attendance").await {
        metrics::gauge!("narvaro_data_version").set(t.version().unwrap_or_default() as f64);
    }
    if let Ok(c) = app.catalogue().await
        && let Some(p) = c.latest()
    {
        metrics::gauge!("narvaro_published_data_version").set(p.data_version as f64);
        metrics::gauge!("narvaro_publication").set(p.number as f64);
        let age = ((app.clock)() - p.published_at).num_milliseconds() as f64 / 1000.0;
        metrics::gauge!("narvaro_publication_age_seconds").set(age.max(0.0));
    }
    metrics::gauge!("narvaro_uploads_waiting").set(if app.waiting() { 1.0 } else { 0.0 });
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}
