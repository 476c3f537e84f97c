//! Kolada-shaped series under `/api/kolada/v3/` ([`crate::kolada`]): `kpi`, `kpi/{id}`,
//! `municipality`, `ou`, `data/kpi/{kpi}/municipality/{id}[/year/{y}]`,
//! `oudata/kpi/{kpi}/ou/{ou}[/year/{y}]` and `data?kpi=…&municipality=…&year=…`, every list in
//! the envelope `{count, values, next_url, previous_url}` (`per_page`, `page`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::pxweb::{asked, cube};
use super::{App, AppError};
use crate::kolada::{self, Kpi, our_code};
use crate::publish::Pick;
use crate::{Error, Result};

const PER_PAGE: usize = 5000;

/// `values` paged by `per_page` and `page`, with links to the pages around it.
fn envelope(
    values: Vec<serde_json::Value>,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    path: &str,
) -> Result<Response> {
    let number = |k: &str, default: usize| super::positive(q, k, default);
    let per_page = number("per_page", PER_PAGE)?.min(PER_PAGE);
    let page = number("page", 1)?;
    let count = values.len();
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let link = |p: usize| {
        let mut params: Vec<(String, String)> = q
            .iter()
            .filter(|(k, _)| *k != "page" && *k != "per_page")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        params.sort();
        params.push(("per_page".into(), per_page.to_string()));
        params.push(("page".into(), p.to_string()));
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )
            })
            .collect();
        format!("http://{host}{path}?{}", query.join("&"))
    };
    let shown: Vec<_> = values
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let next = (page * per_page < count).then(|| link(page + 1));
    let previous = (page > 1).then(|| link(page - 1));
    Ok(axum::Json(json!({
        "count": count,
        "values": shown,
        "next_url": next,
        "previous_url": previous,
    }))
    .into_response())
}

/// Every key figure of the publication served.
async fn kpis(app: &App) -> Result<Vec<Kpi>> {
    let levels = cube(app, "at_or_above", Pick::Latest).await?;
    let levels: Vec<(String, String)> = levels
        .dims
        .iter()
        .find(|d| d.code == "Niva")
        .map(|d| {
            d.values
                .iter()
                .map(|v| (v.code.clone(), v.label.clone()))
                .collect()
        })
        .unwrap_or_default();
    Ok(kolada::kpis(&levels))
}

fn kpi_json(k: &Kpi) -> serde_json::Value {
    json!({
        "id": k.id,
        "title": k.title,
        "description": k.description,
        "is_divided_by_gender": k.gender.is_some(),
        "has_ou_data": true,
        "municipality_type": "A",
        "operating_area": "Grundskola",
        "publication_date": null,
        "auspice": "X",
    })
}

fn matches(text: &str, q: &HashMap<String, String>) -> bool {
    q.get("title")
        .is_none_or(|t| text.to_lowercase().contains(&t.to_lowercase()))
}

#[utoipa::path(
    get,
    path = "/api/kolada/v3/kpi",
    responses((status = 200, description = "The key figures. In the envelope count, values, next_url, previous_url (per_page, page)."), (status = 404, body = super::api::ApiError))
)]
pub(super) async fn kpi_list(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, AppError> {
    let all = kpis(&app).await.map_err(AppError::json)?;
    let values = all
        .iter()
        .filter(|k| matches(&k.title, &q))
        .map(kpi_json)
        .collect();
    envelope(values, &q, &headers, uri.path()).map_err(AppError::json)
}

#[utoipa::path(
    get,
    path = "/api/kolada/v3/kpi/{id}",
    responses((status = 200, description = "One or more key figures (comma-separated ids). In the envelope count, values, next_url, previous_url (per_page, page)."), (status = 404, body = super::api::ApiError))
)]
pub(super) async fn kpi_one(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, AppError> {
    let all = kpis(&app).await.map_err(AppError::json)?;
    let ids: Vec<&str> = id.split(',').collect();
    let values: Vec<_> = all
        .iter()
        .filter(|k| ids.contains(&k.id.as_str()))
        .map(kpi_json)
        .collect();
    if values.is_empty() {
        return Err(AppError::json(unknown_kpi(&id, &all)));
    }
    envelope(values, &q, &headers, uri.path()).map_err(AppError::json)
}

fn unknown_kpi(id: &str, all: &[Kpi]) -> Error {
    Error::NotFound(format!(
        "nyckeltalet '{id}' finns inte; välj bland: {}",
        all.iter()
            .map(|k| k.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

#[utoipa::path(
    get,
    path = "/api/kolada/v3/municipality",
    responses((status = 200, description = "Municipalities (K), counties (00CC, L) and the whole lake (0000). In the envelope count, values, next_url, previous_url (per_page, page)."), (status = 404, body = super::api::ApiError))
)]
pub(super) async fn municipalities(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, AppError> {
    let index = app.index(None).await.map_err(AppError::json)?;
    let mut values = vec![json!({"id": "0000", "title": "Hela underlaget", "type": "L"})];
    for c in &index.counties {
        values.push(
            json!({"id": kolada::kolada_code(&c.area.code), "title": c.area.name, "type": "L"}),
        );
        for m in &c.municipalities {
            values.push(json!({"id": m.area.code, "title": m.area.name, "type": "K"}));
        }
    }
    values.retain(|v| matches(v["title"].as_str().unwrap_or_default(), &q));
    envelope(values, &q, &headers, uri.path()).map_err(AppError::json)
}

#[utoipa::path(
    get,
    path = "/api/kolada/v3/ou",
    responses((status = 200, description = "School units (municipality=, title=). In the envelope count, values, next_url, previous_url (per_page, page)."), (status = 404, body = super::api::ApiError))
)]
pub(super) async fn ous(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, AppError> {
    let index = app.index(None).await.map_err(AppError::json)?;
    let wanted: Option<Vec<&str>> = q.get("municipality").map(|m| m.split(',').collect());
    let mut values = Vec::new();
    for c in &index.counties {
        for m in &c.municipalities {
            if wanted
                .as_ref()
                .is_some_and(|w| !w.contains(&m.area.code.as_str()))
            {
                continue;
            }
            for s in &m.schools {
                if matches(&s.name, &q) {
                    values
                        .push(json!({"id": s.code, "title": s.name, "municipality": m.area.code}));
                }
            }
        }
    }
    envelope(values, &q, &headers, uri.path()).map_err(AppError::json)
}

/// Which series a data request asks for.
struct Ask {
    kpis: Vec<String>,
    areas: Vec<String>,
    years: Option<Vec<i32>>,
    ou: bool,
}

async fn series(
    app: &App,
    ask: Ask,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    path: &str,
) -> Result<Response> {
    let all = kpis(app).await?;
    // `publication=N`: the series as that publication showed them.
    let pick = asked(q)?;
    let mut values = Vec::new();
    let mut publication = None;
    let areas: Vec<String> = ask.areas.iter().map(|a| our_code(a)).collect();
    for id in &ask.kpis {
        let k = all
            .iter()
            .find(|k| &k.id == id)
            .ok_or_else(|| unknown_kpi(id, &all))?;
        let c = cube(app, k.table, pick).await?;
        publication = Some(c.publication);
        let genders = match k.gender {
            Some((table, _, _)) => Some(cube(app, table, pick).await?),
            None => None,
        };
        let terms: Vec<String> = kolada::terms(&c)
            .into_iter()
            .filter(|t| {
                ask.years.as_ref().is_none_or(|ys| {
                    t.parse::<crate::report::Term>()
                        .is_ok_and(|t| ys.contains(&t.year))
                })
            })
            .collect();
        values.extend(kolada::rows(
            k,
            &c,
            genders.as_deref(),
            &areas,
            &terms,
            ask.ou,
        ));
    }
    // Every page of the answer from the same publication: next_url names it.
    let mut q = q.clone();
    if let Some(n) = publication {
        q.insert("publication".into(), n.to_string());
    }
    envelope(values, &q, headers, path)
}

fn years(s: &str) -> Result<Vec<i32>> {
    s.split(',')
        .map(|y| {
            y.trim()
                .parse::<i32>()
                .map_err(|_| Error::usage(format!("year: '{y}' är inget årtal")))
        })
        .collect()
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

#[utoipa::path(
    get,
    path = "/api/kolada/v3/data/kpi/{kpi}/municipality/{municipality}",
    responses((status = 200, description = "A municipality's (or county's) series per term, values per gender T/K/M with status apart from the value; /year/{year} and /api/kolada/v3/oudata/kpi/{kpi}/ou/{ou} alike. In the envelope count, values, next_url, previous_url (per_page, page)."), (status = 404, body = super::api::ApiError))
)]
pub(super) async fn data_path(
    State(app): State<Arc<App>>,
    Path(p): Path<HashMap<String, String>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, AppError> {
    let ou = p.contains_key("ou");
    let ask = Ask {
        kpis: list(&p["kpi"]),
        areas: list(
            p.get("ou")
                .or(p.get("municipality"))
                .map_or("", String::as_str),
        ),
        years: p
            .get("year")
            .map(|y| years(y))
            .transpose()
            .map_err(AppError::json)?,
        ou,
    };
    series(&app, ask, &q, &headers, uri.path())
        .await
        .map_err(AppError::json)
}

#[utoipa::path(
    get,
    path = "/api/kolada/v3/data",
    responses((status = 200, description = "Series by kpi=, municipality= or ou=, year=. In the envelope count, values, next_url, previous_url (per_page, page)."), (status = 404, body = super::api::ApiError))
)]
pub(super) async fn data_query(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, AppError> {
    let need = |k: &str| {
        q.get(k)
            .map(|v| list(v))
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                AppError::json(Error::usage(format!(
                    "{k} saknas: ange t.ex. data?kpi=absence_pct&municipality=1880&year=2026"
                )))
            })
    };
    let kpis = need("kpi")?;
    let (areas, ou) = match q.get("ou") {
        Some(o) => (list(o), true),
        None => (need("municipality")?, false),
    };
    let ask = Ask {
        kpis,
        areas,
        years: q
            .get("year")
            .map(|y| years(y))
            .transpose()
            .map_err(AppError::json)?,
        ou,
    };
    series(&app, ask, &q, &headers, uri.path())
        .await
        .map_err(AppError::json)
}
