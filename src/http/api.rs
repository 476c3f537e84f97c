//! The upload API (`/api/v1/…`): schools and school systems send their monthly aggregates,
//! and see the audit of what they sent.
//!
//! An upload is checked in this order, and the first failure answers:
//! token (401) → media type (415) → size (413) → file name (400) → contract (422, every
//! problem) → scope, for every school in the file (403, nothing stored) → commit (201; 503 if
//! the lake cannot be written). Validation and commit are `ingest`'s, exactly as on the
//! command line.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::OpenApi;

use super::{App, AppError};
use crate::auth::Principal;
use crate::contract::{Problem, Register};
use crate::lake::{Audit, Receipt};
use crate::{Error, ingest};

/// The media types an upload may have.
const PARQUET: &str = "application/vnd.apache.parquet";
const CSV: &str = "text/csv";
const MULTIPART: &str = "multipart/form-data";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Närvarolagret API",
        description = "Uploads of anonymised attendance aggregates (data contract v1) and their audit."
    ),
    paths(upload, list_uploads, get_upload),
    components(schemas(Receipt, Audit, UploadView, UploadList, Problem, ApiError)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, generated from the handlers and types.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(super) async fn openapi_json() -> Response {
    axum::Json(openapi()).into_response()
}

/// An API error (every non-2xx answer of the API).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiError {
    pub status: u16,
    /// What is wrong, in Swedish.
    pub error: String,
    /// The uploaded file's name, for a refused file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Every problem found in a refused file (422).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// An audit record as the API shows it: what the upload did, and what later replaced it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UploadView {
    #[serde(flatten)]
    pub audit: Audit,
    /// Later uploads that replaced (some of) this upload's rows; empty while it stands.
    pub superseded_by: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UploadList {
    pub uploads: Vec<UploadView>,
}

fn api(e: Error) -> AppError {
    AppError::json(e)
}

fn status(status: StatusCode, msg: impl Into<String>) -> AppError {
    AppError {
        status: Some(status),
        ..AppError::json(Error::usage(msg))
    }
}

fn principal(app: &App, headers: &HeaderMap) -> Result<Principal, AppError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    app.tokens.authenticate(auth).map_err(api)
}

/// Upload one file of aggregates.
#[utoipa::path(
    post,
    path = "/api/v1/uploads",
    params(("filename" = Option<String>, Query, description = "The file's name for the audit and messages (a multipart part's own name wins).")),
    request_body(
        description = "A contract v1 file: Parquet, CSV (UTF-8 or Windows-1252, `,` or `;`), or a multipart form with one file.",
        content(
            (Vec<u8> = "application/vnd.apache.parquet"),
            (String = "text/csv"),
            (Vec<u8> = "multipart/form-data"),
        )
    ),
    responses(
        (status = 201, description = "Committed in one Delta commit.", body = Receipt),
        (status = 400, description = "A bad file name.", body = ApiError),
        (status = 401, description = "No or an unknown token.", body = ApiError),
        (status = 403, description = "A school outside the token's scope; nothing stored.", body = ApiError),
        (status = 413, description = "Larger than the configured limit (default 20 MB).", body = ApiError),
        (status = 415, description = "Not Parquet, CSV or multipart.", body = ApiError),
        (status = 422, description = "The file breaks the contract; every problem listed, nothing stored.", body = ApiError),
        (status = 503, description = "The lake cannot be written right now; nothing stored.", body = ApiError),
    ),
    security(("token" = []))
)]
pub(super) async fn upload(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, AppError> {
    let who = principal(&app, &headers)?;
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if ![PARQUET, CSV, MULTIPART].contains(&essence.as_str()) {
        return Err(status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "innehållstypen '{media}' tas inte emot: skicka {PARQUET}, {CSV} eller {MULTIPART}"
            ),
        ));
    }
    let limit = app.tokens.max_upload_bytes();
    let too_large = || {
        status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("filen är större än gränsen på {} MB", limit / (1024 * 1024)),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    let (name, bytes) = if essence == MULTIPART {
        let (name, file) = one_file(media, bytes).await?;
        (name.or_else(|| q.get("filename").cloned()), file)
    } else {
        (q.get("filename").cloned(), bytes)
    };
    let default = if essence == PARQUET {
        "upload.parquet"
    } else {
        "upload.csv"
    };
    let name = match name {
        Some(n) => safe_file_name(&n)?,
        None => default.to_string(),
    };
    let now = (app.clock)();
    let validated = ingest::validate(&app.lake, &name, &bytes, now)
        .await
        .map_err(api)?;
    let register = app.lake.register().await.map_err(api)?;
    let own = validated.registered_municipalities();
    let outside: Vec<String> = validated
        .schools()
        .into_iter()
        .filter(|s| {
            // A register row names the school's municipality itself; a school already
            // registered elsewhere may not be moved by a token of its new municipality.
            let registered = register.municipality_of(s);
            let stated = own.get(s).map(String::as_str);
            !(who.may_upload(s, stated.or(registered))
                && registered.is_none_or(|m| who.may_upload(s, Some(m))))
        })
        .collect();
    if !outside.is_empty() {
        let shown: Vec<&str> = outside.iter().take(10).map(String::as_str).collect();
        return Err(api(Error::Forbidden(format!(
            "token '{}' får inte skicka uppgifter för {} skolenhet{} ({}{}); inget sparades",
            who.name,
            outside.len(),
            if outside.len() == 1 { "" } else { "er" },
            shown.join(", "),
            if outside.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        ))));
    }
    let receipt = ingest::commit(&app.lake, validated, &name, &bytes, &who.name, now)
        .await
        .map_err(api)?;
    tracing::info!(
        upload_id = %receipt.audit.upload_id,
        uploader = %who.name,
        rows = receipt.audit.rows,
        version = receipt.audit.version,
        "upload committed"
    );
    let location = format!("/api/v1/uploads/{}", receipt.audit.upload_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(receipt),
    )
        .into_response())
}

/// The one file of a multipart form, with its name if the part gives one.
async fn one_file(
    media: &str,
    bytes: bytes::Bytes,
) -> Result<(Option<String>, bytes::Bytes), AppError> {
    let bad = |m: String| api(Error::usage(m));
    let boundary = multer::parse_boundary(media)
        .map_err(|e| bad(format!("formuläret saknar en giltig gräns (boundary): {e}")))?;
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut files = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| bad(format!("formuläret kunde inte läsas: {e}")))?
    {
        // A part carries its disposition and type, nothing else: anything more is a header
        // smuggled in through a name (a line break in a quoted file name).
        if let Some(h) = field.headers().keys().find(|h| {
            ![
                header::CONTENT_DISPOSITION,
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
            ]
            .contains(h)
        }) {
            return Err(bad(format!("formulärdelen har en otillåten rubrik: {h}")));
        }
        let disposition = field
            .headers()
            .get(header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let name = field.file_name().map(String::from);
        if name.is_none() && disposition.contains("filename") {
            return Err(bad("formulärdelens filnamn kunde inte läsas".into()));
        }
        let data = field
            .bytes()
            .await
            .map_err(|e| bad(format!("formuläret kunde inte läsas: {e}")))?;
        files.push((name, data));
    }
    match files.len() {
        1 => Ok(files.pop().expect("one")),
        n => Err(bad(format!(
            "formuläret ska innehålla exakt en fil, men innehöll {n} delar"
        ))),
    }
}

/// A file name as the audit and messages will show it: a plain name, no path, no control
/// characters, so it can neither reach outside nor break a header or a log line.
fn safe_file_name(name: &str) -> Result<String, AppError> {
    let bad = |why: &str| {
        api(Error::usage(format!(
            "filnamnet {name:?} går inte att använda: {why}"
        )))
    };
    if name.is_empty() || name.chars().count() > 200 {
        return Err(bad("det ska vara 1–200 tecken"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(bad("det innehåller styrtecken"));
    }
    if name.contains(['/', '\\']) || name == "." || name == ".." || name.starts_with('.') {
        return Err(bad("det får inte vara en sökväg"));
    }
    if name.contains(['"', '<', '>', '|', '*', '?', ':', ';']) {
        return Err(bad("det innehåller otillåtna tecken"));
    }
    Ok(name.to_string())
}

/// Every upload with what later replaced it, visible to `who`.
async fn visible(app: &App, who: &Principal) -> Result<Vec<UploadView>, AppError> {
    let audits = app.lake.audits().await.map_err(api)?;
    let register = app.lake.register().await.map_err(api)?;
    let mut superseded_by: HashMap<&str, Vec<String>> = HashMap::new();
    for a in &audits {
        for s in &a.supersedes {
            superseded_by
                .entry(s.as_str())
                .or_default()
                .push(a.upload_id.clone());
        }
    }
    let views = audits
        .iter()
        .filter(|a| may_see(who, a, &register))
        .map(|a| UploadView {
            audit: a.clone(),
            superseded_by: superseded_by
                .get(a.upload_id.as_str())
                .cloned()
                .unwrap_or_default(),
        })
        .collect();
    Ok(views)
}

/// An upload is visible to admins, to the token that sent it, and to anyone who may read one
/// of the schools it wrote.
fn may_see(who: &Principal, a: &Audit, register: &Register) -> bool {
    who.scopes.contains(&crate::auth::Scope::Admin)
        || a.uploader.as_deref() == Some(who.name.as_str())
        || a.schools
            .iter()
            .any(|s| who.may_read(s, register.municipality_of(s)))
}

/// The uploads the token may see, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/uploads",
    params(
        ("school" = Option<String>, Query, description = "Only uploads with rows for this school unit."),
        ("period" = Option<String>, Query, description = "Only uploads with rows for this month (YYYY-MM) or school year."),
        ("limit" = Option<usize>, Query, description = "At most this many (default 100, at most 1000)."),
    ),
    responses(
        (status = 200, body = UploadList),
        (status = 400, body = ApiError),
        (status = 401, body = ApiError),
    ),
    security(("token" = []))
)]
pub(super) async fn list_uploads(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let who = principal(&app, &headers)?;
    let limit = match q.get("limit") {
        None => 100,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| api(Error::usage(format!("limit '{l}' ska vara ett tal 1–1000"))))?,
    };
    let mut uploads = visible(&app, &who).await?;
    uploads.retain(|u| {
        q.get("school").is_none_or(|s| u.audit.schools.contains(s))
            && q.get("period").is_none_or(|p| u.audit.periods.contains(p))
    });
    uploads.reverse();
    uploads.truncate(limit);
    Ok(axum::Json(UploadList { uploads }).into_response())
}

/// One upload's audit record.
#[utoipa::path(
    get,
    path = "/api/v1/uploads/{id}",
    params(("id" = String, Path, description = "The upload id (a UUID).")),
    responses(
        (status = 200, body = UploadView),
        (status = 400, body = ApiError),
        (status = 401, body = ApiError),
        (status = 404, description = "No such upload, or not one the token may see.", body = ApiError),
    ),
    security(("token" = []))
)]
pub(super) async fn get_upload(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let who = principal(&app, &headers)?;
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| api(Error::usage("ett uppladdnings-id är ett UUID")))?
        .to_string();
    visible(&app, &who)
        .await?
        .into_iter()
        .find(|u| u.audit.upload_id == id)
        .map(|u| axum::Json(u).into_response())
        .ok_or_else(|| api(Error::NotFound(format!("uppladdningen {id} finns inte"))))
}
