//! The open data API: `/api/v1/indicators` lists the indicators, and
//! `/api/v1/indicators/{name}` answers one indicator's rows (JSON, or CSV with `.csv` or
//! `?format=csv`) for a term, filtered by area and period, from the publication served (the
//! latest, or with a token the one at `?as_of=`): hidden exactly where the reports hide.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::pages::{pick, reader};
use super::{App, AppError, ClientAddr};
use crate::open::{self, DATA_REPORT, Filter};
use crate::report::{Index, Term};
use crate::{Error, Result};

/// The indicators published as open data, with their definitions.
#[utoipa::path(
    get,
    path = "/api/v1/indicators",
    responses((status = 200, description = "Every indicator published as open data.", body = Vec<open::Indicator>))
)]
pub(super) async fn list() -> Result<Response, AppError> {
    let all = open::indicators().map_err(AppError::json)?;
    Ok(axum::Json(serde_json::json!({ "indicators": all })).into_response())
}

/// One indicator's published rows.
#[utoipa::path(
    get,
    path = "/api/v1/indicators/{name}",
    params(
        ("name" = String, Path, description = "The indicator (a view in sql/), e.g. `absence_rate`; `absence_rate.csv` for CSV."),
        ("term" = Option<String>, Query, description = "The term, e.g. `VT2026` (default: the latest term with data, or the term of `period`)."),
        ("area_type" = Option<String>, Query, description = "`school`, `municipality`, `county` or `country`."),
        ("area_code" = Option<String>, Query, description = "A school unit (8 digits), municipality (4), county (2) or the whole lake (00)."),
        ("period" = Option<String>, Query, description = "A month, `YYYY-MM`."),
        ("window" = Option<String>, Query, description = "`month` or `term` (the term up to its last month with data)."),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv` (`;`, decimal comma, UTF-8 with BOM)."),
        ("as_of" = Option<String>, Query, description = "The publication current at a data version or time (with a token only)."),
        ("publication" = Option<u64>, Query, description = "A publication by its number: the answer's `permalink` names it, so it shows the same figures forever."),
    ),
    responses(
        (status = 200, description = "The rows; a hidden value is `null` with status `..`, a bound `null` with status `≥` and its `at_least`."),
        (status = 400, body = super::api::ApiError),
        (status = 403, description = "`as_of` without a token.", body = super::api::ApiError),
        (status = 404, description = "No such indicator, area or term.", body = super::api::ApiError),
    )
)]
pub(super) async fn indicator(
    State(app): State<Arc<App>>,
    client: Option<Extension<ClientAddr>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (name, csv) = match name.strip_suffix(".csv") {
        Some(n) => (n.to_string(), true),
        None => match name.strip_suffix(".json") {
            Some(n) => (n.to_string(), false),
            None => (name, false),
        },
    };
    let csv = match q.get("format").map(String::as_str) {
        None => csv,
        Some("csv") => true,
        Some("json") => false,
        Some(f) => {
            return Err(AppError::json(Error::usage(format!(
                "format: '{f}' finns inte; välj json eller csv"
            ))));
        }
    };
    let given = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let filter = Filter {
        area_type: given("area_type"),
        area_code: given("area_code"),
        period: given("period"),
        window: given("window"),
    };
    filter.check().map_err(AppError::json)?;
    let who = reader(&app, &headers, client, q.contains_key("as_of"))
        .await
        .map_err(AppError::json)?;
    let picked = pick(&q, who.as_ref()).map_err(AppError::json)?;
    let (_, publication) = app.publication(picked).await.map_err(AppError::json)?;
    // The rest of the answer from that publication, whatever is published meanwhile.
    let picked = crate::publish::Pick::Number(publication.number);
    let index = app.index(picked).await.map_err(AppError::json)?;
    let term = match (given("term"), &filter.period) {
        (Some(t), _) => t
            .parse::<Term>()
            .map_err(|e| AppError::json(Error::usage(e)))?,
        (None, Some(p)) => Term::of_period(p).expect("checked"),
        (None, None) => index
            .counties
            .iter()
            .flat_map(|c| c.area.terms.iter().copied())
            .max()
            .ok_or_else(|| {
                AppError::json(Error::NotFound("inga uppgifter är publicerade".into()))
            })?,
    };
    let counties = counties(&index, term, filter.area_code.as_deref()).map_err(AppError::json)?;
    let mut reports = Vec::new();
    for c in &counties {
        let (_, r) = app
            .report(DATA_REPORT, c, term, picked, None)
            .await
            .map_err(AppError::json)?;
        reports.push(r);
    }
    let refs: Vec<&crate::report::Report> = reports.iter().map(|r| r.as_ref()).collect();
    let table = open::table(&name, &refs, &filter).map_err(AppError::json)?;
    let definition = format!("{} ({})", index.definition_id, index.definition_hash);
    if csv {
        let body =
            open::csv(&table, &definition, publication.data_version).map_err(AppError::json)?;
        let mut res = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
        if let Ok(v) = header::HeaderValue::from_str(&format!(
            "attachment; filename=\"narvaro-{name}-{term}.csv\""
        )) {
            res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        return Ok(res);
    }
    let columns: Vec<serde_json::Value> = table
        .columns
        .iter()
        .map(|c| serde_json::json!({ "name": c.name, "label": c.label, "format": c.format }))
        .collect();
    Ok(axum::Json(serde_json::json!({
        "indicator": table.indicator,
        "term": term.to_string(),
        "publication": publication.number,
        "data_version": publication.data_version,
        "published_at": publication.published_at,
        "permalink": permalink(&name, &q, publication.number),
        "definition_id": index.definition_id,
        "definition_hash": index.definition_hash,
        "columns": columns,
        "rows": open::json_rows(&table),
        "footnotes": table.footnotes,
    }))
    .into_response())
}

/// This answer's permanent link: its path and filters with the publication it read.
fn permalink(name: &str, q: &HashMap<String, String>, publication: u64) -> String {
    super::permalink(
        &format!("/api/v1/indicators/{name}"),
        q.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        publication,
    )
}

/// The counties whose `data` report of `term` holds `area_code` (every county with the term
/// when none is given).
fn counties(index: &Index, term: Term, area_code: Option<&str>) -> Result<Vec<String>> {
    let with_term = index
        .counties
        .iter()
        .filter(|c| c.area.terms.contains(&term));
    let found: Vec<String> = match area_code {
        None | Some("00") => with_term.map(|c| c.area.code.clone()).collect(),
        Some(code) => with_term
            .filter(|c| {
                c.area.code == code
                    || c.municipalities
                        .iter()
                        .any(|m| m.area.code == code || m.schools.iter().any(|s| s.code == code))
            })
            .map(|c| c.area.code.clone())
            .collect(),
    };
    if found.is_empty() {
        return Err(Error::NotFound(match area_code {
            Some(code) => format!("det finns inga uppgifter för område {code} under {term}"),
            None => format!("det finns inga uppgifter för {term}"),
        }));
    }
    Ok(found)
}
