//! The reader's pages: the index, `/healthz`, and the reports with their alternates.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::{AppError, page};
use super::{App, ClientAddr};
use crate::auth::Principal;
use crate::engine::AsOf;
use crate::publish::Pick;
use crate::report::export::{self, Output};
use crate::report::{Term, html};
use crate::{Error, Result};

/// `?as_of=` as a data version or a time; a bad value is a 400 that says what is wrong.
///
/// Only a reader with a token (`who`) may ask for an older version: two consecutive versions
/// differ by one upload, so comparing their protected figures can reveal a cell that each of
/// them hides. Anonymous readers see the latest version (403 otherwise).
pub(super) fn as_of(q: &HashMap<String, String>, who: Option<&Principal>) -> Result<Option<AsOf>> {
    let Some(s) = q.get("as_of").map(|s| s.trim()).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let as_of = s
        .parse::<AsOf>()
        .map_err(|e| Error::usage(format!("as_of: {e}")))?;
    if who.is_none() {
        return Err(Error::Forbidden(
            "äldre dataversioner (?as_of=) visas bara med en token: två versioner bredvid \
             varandra skiljer sig med en uppladdning, och att jämföra dem kan avslöja små \
             grupper. Utan ?as_of= visas den senaste versionen."
                .into(),
        ));
    }
    Ok(Some(as_of))
}

/// The publication a reader picks: `?publication=N`, a permanent link open to everyone (every
/// publication is protected beside the earlier ones of the same periods, so no two can be
/// differenced), `?as_of=` with a token, or the latest.
pub(super) fn pick(q: &HashMap<String, String>, who: Option<&Principal>) -> Result<Pick> {
    let number = q
        .get("publication")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty());
    match (number, as_of(q, who)?) {
        (Some(_), Some(_)) => Err(Error::usage(
            "ange antingen publication (en publicering) eller as_of (en tidpunkt), inte båda",
        )),
        (Some(n), None) => n
            .parse::<u64>()
            .map(Pick::Number)
            .map_err(|_| Error::usage(format!("publication: '{n}' är inget publiceringsnummer"))),
        (None, a) => Ok(a.into()),
    }
}

/// The reader, when the request carries a token and it matters (`needed`: an older version,
/// or a school's page its principal may read unsuppressed); a wrong or revoked token is then a
/// 401. Other pages are public, so they skip the token check (argon2) altogether.
pub(super) async fn reader(
    app: &App,
    headers: &axum::http::HeaderMap,
    client: Option<axum::Extension<ClientAddr>>,
    needed: bool,
) -> Result<Option<Principal>> {
    if !needed {
        return Ok(None);
    }
    match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(auth) => app
            .tokens
            .authenticate(Some(auth), client.map(|c| c.0.0.ip()))
            .await
            .map(Some),
        None => Ok(None),
    }
}

pub(super) async fn index(
    State(app): State<Arc<App>>,
    client: Option<axum::Extension<ClientAddr>>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Result<Response, AppError> {
    let who = reader(&app, &headers, client, q.contains_key("as_of"))
        .await
        .map_err(page)?;
    let pick = pick(&q, who.as_ref()).map_err(page)?;
    let index = app.index(pick).await.map_err(page)?;
    Ok((
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html::index_page(&index),
    )
        .into_response())
}

pub(super) async fn healthz(State(app): State<Arc<App>>) -> Result<Response, AppError> {
    // A health check does not wait for the lake's log (see `App::health`).
    let (version, catalogue) = app.health().await.map_err(AppError::json)?;
    let published = catalogue.latest().map(|p| {
        serde_json::json!({
            "publication": p.number,
            "data_version": p.data_version,
            "published_at": p.published_at,
        })
    });
    Ok(axum::Json(serde_json::json!({
        "status": "ok",
        "data_version": version,
        "published": published,
        "waiting": app.waiting(),
    }))
    .into_response())
}

/// Readiness for a load balancer: 200 when the lake answers and a publication is served (its
/// number and age), else 503 saying which is missing.
pub(super) async fn readyz(State(app): State<Arc<App>>) -> Response {
    let unready = |why: String| {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "unready", "reason": why })),
        )
            .into_response()
    };
    if let Err(e) = app.lake.table("attendance").await {
        return unready(format!("sjön svarar inte: {e}"));
    }
    let catalogue = match app.catalogue().await {
        Ok(c) => c,
        Err(e) => return unready(format!("publiceringarna kan inte läsas: {e}")),
    };
    let Some(p) = catalogue.latest() else {
        return unready("inga siffror är publicerade ännu".into());
    };
    let age = ((app.clock)() - p.published_at).num_seconds().max(0);
    axum::Json(serde_json::json!({
        "status": "ready",
        "publication": p.number,
        "data_version": p.data_version,
        "published_at": p.published_at,
        "age_seconds": age,
        "waiting": app.waiting(),
    }))
    .into_response()
}

pub(super) async fn not_found() -> AppError {
    page(Error::NotFound(
        "det finns ingen sida med den adressen".into(),
    ))
}

pub(super) async fn report_page(
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
                    "formatet .{ext} finns inte; välj .csv, .xlsx, .json eller .pdf"
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
    let needed = kind == "school" || q.contains_key("as_of");
    let who = reader(&app, &headers, client, needed).await.map_err(fail)?;
    let picked = pick(&q, who.as_ref()).map_err(fail)?;
    // A school's own principal (a token for that school) sees it without disclosure control;
    // everyone else, and every other area, sees the protected release.
    let own = who
        .as_ref()
        .filter(|p| kind == "school" && p.owns_school(&code))
        .map(|_| code.as_str());
    let (publication, r) = app
        .report(&kind, &code, term, picked, own)
        .await
        .map_err(fail)?;
    let query = match picked {
        Pick::AsOf(_) => format!("?as_of={}", r.data_version),
        Pick::Number(n) => format!("?publication={n}"),
        Pick::Latest => String::new(),
    };
    let waiting = picked == Pick::Latest && app.waiting();
    let key = (
        publication,
        (kind.clone(), code.clone(), term.to_string(), own.is_some()),
        out.extension(),
        query.clone(),
        waiting,
    );
    let report = r.clone();
    let body = app
        .rendered(key, move || {
            export::render(
                &report,
                out,
                Some(html::Links {
                    query: &query,
                    waiting,
                    publication: Some(publication),
                }),
            )
        })
        .await
        .map_err(fail)?;
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
