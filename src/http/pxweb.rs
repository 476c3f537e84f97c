//! PxWeb API v2 (`/api/pxweb/v2/…`, PxTools' PxAPI-2 specification, version 2.0): `config`,
//! `tables`, `tables/{id}`, `tables/{id}/metadata` and `tables/{id}/data` (GET with
//! `valuecodes[VAR]=…`, POST with a selection) in json-stat2, csv, xlsx and px, errors in the
//! specification's Problem shape. Every table is an open data indicator read from the
//! publication served ([`crate::pxweb`]), so it hides exactly what the reports hide.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::App;
use crate::open::{self, DATA_REPORT};
use crate::publish::Pick;
use crate::pxweb::{self, Cube, MAX_DATA_CELLS};
use crate::report::Term;
use crate::{Error, Result};

const PREFIX: &str = "/api/pxweb/v2";

/// The open data indicators that are PxWeb tables: every one whose rows are one per region,
/// level and time. Targets are not (a municipality has several per term, each its own text);
/// they are in `/api/v1/indicators/target_progress`.
fn tables_list() -> Result<Vec<open::Indicator>> {
    Ok(open::indicators()?
        .into_iter()
        .filter(|i| i.name != "target_progress")
        .collect())
}

/// An error in the specification's Problem shape (`application/problem+json`).
pub(super) struct Problem(Error);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (status, title) = match &self.0 {
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "Finns inte"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "För stort urval"),
            Error::Usage(_) => (StatusCode::BAD_REQUEST, "Felaktig begäran"),
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "Inte tillgänglig"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "Serverfel"),
        };
        let detail = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %self.0, "pxweb");
            "ett internt fel inträffade".to_string()
        } else {
            self.0.to_string()
        };
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            json!({
                "type": format!("https://httpstatuses.io/{}", status.as_u16()),
                "title": title,
                "status": status.as_u16(),
                "detail": detail,
            })
            .to_string(),
        )
            .into_response()
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Problem {
        Problem(e)
    }
}

/// `lang`: `sv` (default) or `en`.
fn english(q: &HashMap<String, String>) -> Result<bool> {
    match q.get("lang").map(String::as_str) {
        None | Some("sv") | Some("") => Ok(false),
        Some("en") => Ok(true),
        Some(l) => Err(Error::usage(format!(
            "språket '{l}' finns inte; välj sv eller en"
        ))),
    }
}

#[utoipa::path(
    get,
    path = "/api/pxweb/v2/config",
    responses((status = 200, description = "PxWeb API configuration: apiVersion 2.0.0, languages, maxDataCells, dataFormats."), (status = 400, description = "A Problem object (application/problem+json)."))
)]
pub(super) async fn config() -> Response {
    axum::Json(json!({
        "apiName": "Närvarolagret PxWeb API",
        "apiVersion": "2.0.0",
        "appVersion": env!("CARGO_PKG_VERSION"),
        "languages": [{"id": "sv", "label": "Svenska"}, {"id": "en", "label": "English"}],
        "defaultLanguage": "sv",
        "maxDataCells": MAX_DATA_CELLS,
        "maxCallsPerTimeWindow": 0,
        "timeWindow": 10,
        "license": "CC0",
        "sourceReferences": [{"language": "sv", "text": "Källa: Närvarolagret"}],
        "defaultDataFormat": "json-stat2",
        "dataFormats": ["json-stat2", "csv", "xlsx", "px"],
        "features": [],
    }))
    .into_response()
}

/// The table entry of `/tables` and `/tables/{id}`.
fn table_entry(
    i: &open::Indicator,
    first: &str,
    last: &str,
    updated: &str,
    en: bool,
) -> serde_json::Value {
    let lang = if en { "en" } else { "sv" };
    let variables = crate::pxweb::variables(&i.name).unwrap_or_default();
    let time_unit = if i.name == "attainment" {
        "Annual"
    } else {
        "Monthly"
    };
    json!({
        "type": "Table",
        "id": i.name,
        "label": i.title,
        "description": i.description,
        "updated": updated,
        "firstPeriod": first,
        "lastPeriod": last,
        "category": "public",
        "variableNames": variables,
        "source": "Närvarolagret",
        "subjectCode": "NV",
        "timeUnit": time_unit,
        "discontinued": false,
        "paths": [[{"id": "NV", "label": "Skolfrånvaro"}]],
        "links": [{"rel": "self", "hreflang": lang, "href": format!("{PREFIX}/tables/{}?lang={lang}", i.name)}],
    })
}

/// The first and last term with data in the publication served, and its time.
async fn span(app: &App) -> Result<(String, String, String)> {
    let index = app.index(None).await?;
    let terms: Vec<Term> = index
        .counties
        .iter()
        .flat_map(|c| c.area.terms.iter().copied())
        .collect();
    let (_, p) = app.publication(None).await?;
    let first = terms
        .iter()
        .min()
        .map(|t| t.to_string())
        .unwrap_or_default();
    let last = terms
        .iter()
        .max()
        .map(|t| t.to_string())
        .unwrap_or_default();
    Ok((
        first,
        last,
        p.published_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    ))
}

#[utoipa::path(
    get,
    path = "/api/pxweb/v2/tables",
    params(("query" = Option<String>, Query, description = "Words every table found contains."), ("pageNumber" = Option<usize>, Query,), ("pageSize" = Option<usize>, Query,), ("lang" = Option<String>, Query, description = "sv (default) or en.")),
    responses((status = 200, description = "The tables (one per open data indicator), searched and paged."), (status = 400, description = "A Problem object (application/problem+json)."))
)]
pub(super) async fn tables(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let en = english(&q)?;
    let number = |k: &str, default: usize| super::positive(&q, k, default);
    let (page, size) = (number("pageNumber", 1)?, number("pageSize", 20)?);
    let words: Vec<String> = q
        .get("query")
        .map(|s| {
            s.to_lowercase()
                .split_whitespace()
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let (first, last, updated) = span(&app).await?;
    let found: Vec<serde_json::Value> = tables_list()?
        .iter()
        .filter(|i| {
            let text = format!("{} {} {}", i.name, i.title, i.description).to_lowercase();
            words.iter().all(|w| text.contains(w))
        })
        .map(|i| table_entry(i, &first, &last, &updated, en))
        .collect();
    let total = found.len();
    let pages = total.div_ceil(size).max(1);
    let shown: Vec<_> = found
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .collect();
    Ok(axum::Json(json!({
        "language": if en { "en" } else { "sv" },
        "tables": shown,
        "page": {
            "pageNumber": page,
            "pageSize": size,
            "totalElements": total,
            "totalPages": pages,
            "links": [],
        },
        "links": [],
    }))
    .into_response())
}

#[utoipa::path(
    get,
    path = "/api/pxweb/v2/tables/{id}",
    params(("id" = String, Path, description = "The table, e.g. absence_rate.")),
    responses((status = 200, description = "One table."), (status = 400, description = "A Problem object (application/problem+json)."))
)]
pub(super) async fn table(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let en = english(&q)?;
    let i = indicator(&id)?;
    let (first, last, updated) = span(&app).await?;
    let mut entry = table_entry(&i, &first, &last, &updated, en);
    entry["language"] = if en { "en" } else { "sv" }.into();
    Ok(axum::Json(entry).into_response())
}

fn indicator(id: &str) -> Result<open::Indicator> {
    tables_list()?
        .into_iter()
        .find(|i| i.name == id)
        .ok_or_else(|| Error::NotFound(format!("tabellen '{id}' finns inte; se {PREFIX}/tables")))
}

/// The publication a request asks for: `publication=N` (a permanent link), else the latest.
/// `as_of` needs a token, which the open data APIs do not take.
pub(super) fn asked(q: &HashMap<String, String>) -> Result<Pick> {
    super::pages::pick(q, None)
}

/// The cube of table `id` in the publication `pick`, built once per publication.
pub(super) async fn cube(app: &App, id: &str, pick: Pick) -> Result<Arc<Cube>> {
    indicator(id)?;
    let (catalogue, p) = app.publication(pick).await?;
    if let Some(c) = app.cube(p.number, id) {
        return Ok(c);
    }
    let index = crate::publish::read_index(&app.lake, &p).await?;
    // Read past the report cache: every county's every term, needed once per publication.
    let mut reports = Vec::new();
    for c in &index.counties {
        for t in &c.area.terms {
            let key = (
                DATA_REPORT.to_string(),
                c.area.code.clone(),
                t.to_string(),
                false,
            );
            reports.push(crate::publish::read_report(&app.lake, &catalogue, &key, &p).await?);
        }
    }
    let refs: Vec<&crate::report::Report> = reports.iter().collect();
    let definition = format!("{} ({})", index.definition_id, index.definition_hash);
    let mut built = pxweb::cube(id, &refs, p.published_at, &definition)?;
    built.publication = p.number;
    let built = Arc::new(built);
    app.keep_cube(p.number, id, built.clone());
    Ok(built)
}

#[utoipa::path(
    get,
    path = "/api/pxweb/v2/tables/{id}/metadata",
    params(("id" = String, Path,)),
    responses((status = 200, description = "JSON-stat 2.0 metadata: every value of every variable, value: []."), (status = 400, description = "A Problem object (application/problem+json)."))
)]
pub(super) async fn metadata(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let en = english(&q)?;
    let c = cube(&app, &id, asked(&q)?).await?;
    let link = super::permalink(
        &format!("{PREFIX}/tables/{id}/metadata"),
        q.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        c.publication,
    );
    let mut answer = c.json_stat(None, en);
    answer["extension"]["permalink"] = link.clone().into();
    Ok(canonical(axum::Json(answer).into_response(), &link))
}

/// An answer with its permanent link as `Link: <…>; rel="canonical"`.
fn canonical(mut r: Response, link: &str) -> Response {
    if let Ok(v) = header::HeaderValue::from_str(&format!("<{link}>; rel=\"canonical\"")) {
        r.headers_mut().insert(header::LINK, v);
    }
    r
}

/// `valuecodes[VAR]=a,b` of a GET.
fn get_selection(q: &HashMap<String, String>) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = q
        .iter()
        .filter_map(|(k, v)| {
            let var = k
                .strip_prefix("valuecodes[")
                .or_else(|| k.strip_prefix("valueCodes["))?
                .strip_suffix(']')?;
            Some((var.to_string(), split_codes(v)))
        })
        .collect();
    out.sort();
    out
}

/// Codes separated by commas, where `range(a,b)` keeps its comma.
fn split_codes(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut cur) = (0, String::new());
    for ch in v.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

#[derive(serde::Deserialize)]
struct Query2 {
    #[serde(default)]
    selection: Vec<VariableSelection>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct VariableSelection {
    variable_code: String,
    #[serde(default)]
    value_codes: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/api/pxweb/v2/tables/{id}/data",
    params(("id" = String, Path,), ("outputFormat" = Option<String>, Query, description = "json-stat2 (default), csv, xlsx or px.")),
    responses((status = 200, description = "The data of a selection (valuecodes[VAR]=a,b; *, prefix*, top(n), from(x), to(x), range(a,b)) as json-stat2, csv, xlsx or px; hidden values null with status '..'."), (status = 400, description = "A Problem object (application/problem+json)."))
)]
pub(super) async fn data_get(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let sel = get_selection(&q);
    data(&app, &id, &q, sel).await
}

#[utoipa::path(
    post,
    path = "/api/pxweb/v2/tables/{id}/data",
    params(("id" = String, Path,), ("outputFormat" = Option<String>, Query,)),
    responses((status = 200, description = "The data of a posted selection: selection, a list of variableCode and valueCodes."), (status = 400, description = "A Problem object (application/problem+json)."))
)]
pub(super) async fn data_post(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let sel = if body.iter().all(u8::is_ascii_whitespace) {
        Vec::new()
    } else {
        let parsed: Query2 = serde_json::from_slice(&body).map_err(|e| {
            Error::usage(format!(
                "urvalet är inte giltig JSON av formen {{\"selection\": [{{\"variableCode\": …, \"valueCodes\": […]}}]}}: {e}"
            ))
        })?;
        parsed
            .selection
            .into_iter()
            .map(|s| (s.variable_code, s.value_codes))
            .collect()
    };
    data(&app, &id, &q, sel).await
}

async fn data(
    app: &App,
    id: &str,
    q: &HashMap<String, String>,
    sel: Vec<(String, Vec<String>)>,
) -> Result<Response, Problem> {
    let en = english(q)?;
    let format = q.get("outputFormat").map_or("json-stat2", String::as_str);
    if !["json-stat2", "csv", "xlsx", "px"].contains(&format) {
        return Err(Error::usage(format!(
            "outputFormat '{format}' finns inte; välj json-stat2, csv, xlsx eller px"
        ))
        .into());
    }
    let c = cube(app, id, asked(q)?).await?;
    let chosen = c.select(&sel)?;
    // The selection asked for, GET or POST, as a GET at this publication.
    let codes: Vec<(String, String)> = sel
        .iter()
        .map(|(var, codes)| (format!("valuecodes[{var}]"), codes.join(",")))
        .collect();
    let link = super::permalink(
        &format!("{PREFIX}/tables/{id}/data"),
        q.iter()
            .filter(|(k, _)| !k.to_lowercase().starts_with("valuecodes["))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(codes.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        c.publication,
    );
    let attachment = |ext: &str| format!("attachment; filename=\"narvaro-{id}.{ext}\"");
    let answer = match format {
        "csv" => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, attachment("csv")),
            ],
            c.csv(&chosen, !en)?,
        )
            .into_response(),
        "xlsx" => (
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
                ),
                (header::CONTENT_DISPOSITION, attachment("xlsx")),
            ],
            c.xlsx(&chosen, en)?,
        )
            .into_response(),
        "px" => (
            [
                (
                    header::CONTENT_TYPE,
                    "text/plain; charset=utf-8".to_string(),
                ),
                (header::CONTENT_DISPOSITION, attachment("px")),
            ],
            c.px(&chosen),
        )
            .into_response(),
        _ => {
            let mut answer = c.json_stat(Some(&chosen), en);
            answer["extension"]["permalink"] = link.clone().into();
            axum::Json(answer).into_response()
        }
    };
    Ok(canonical(answer, &link))
}
