//! The upload API (`/api/v1/…`): schools and school systems send their monthly aggregates,
//! and see the audit of what they sent.
//!
//! An upload is checked in this order, and the first failure answers:
//! token (401; 429 after too many failures from one address) → an upload scope at all (403)
//! → media type (415) → declared size (413) → a free upload slot (503 with `Retry-After`) →
//! the body within its time (408) and size (413) → file name (400) → contract (422, the first
//! problems and a count of the rest) → scope of every row (403) → commit (201, also when only
//! the audit row is pending; 503 if the data commit could not be written). Everything from
//! the contract on is [`ingest::upload`], exactly as on the command line. An answer sent
//! before the whole body was read says `Connection: close`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::OpenApi;

use super::{App, AppError, ClientAddr};
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
        description = "Uploads of anonymised attendance aggregates (data contract v1) and their audit; the published indicators as open data."
    ),
    paths(
        upload, list_uploads, get_upload, super::open::list, super::open::indicator,
        super::pxweb::config, super::pxweb::tables, super::pxweb::table, super::pxweb::metadata,
        super::pxweb::data_get, super::pxweb::data_post, super::kolada::kpi_list,
        super::kolada::kpi_one, super::kolada::municipalities, super::kolada::ous,
        super::kolada::data_query, super::kolada::data_path
    ),
    components(schemas(Receipt, Audit, UploadView, UploadList, Problem, ApiError, crate::open::Indicator)),
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

async fn principal(
    app: &App,
    headers: &HeaderMap,
    client: Option<Extension<ClientAddr>>,
) -> Result<Principal, AppError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    app.tokens
        .authenticate(auth, client.map(|c| c.0.0.ip()))
        .await
        .map_err(api)
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
        (status = 403, description = "A token without an upload scope, or a row outside its scope; nothing stored.", body = ApiError),
        (status = 408, description = "The body did not arrive within the configured time; nothing stored.", body = ApiError),
        (status = 413, description = "Larger than the configured limit (default 20 MB).", body = ApiError),
        (status = 415, description = "Not Parquet, CSV or multipart.", body = ApiError),
        (status = 422, description = "The file breaks the contract; every problem listed, nothing stored.", body = ApiError),
        (status = 429, description = "Too many failed token checks from this address; see Retry-After.", body = ApiError),
        (status = 503, description = "The lake cannot be written right now, or too many uploads at once (Retry-After); nothing stored.", body = ApiError),
    ),
    security(("token" = []))
)]
pub(super) async fn upload(
    State(app): State<Arc<App>>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> Response {
    let mut body = Some(body);
    let mut complete = false;
    match receive(&app, client, &headers, &q, &mut body, &mut complete).await {
        Ok(res) => {
            if res.status() == axum::http::StatusCode::CREATED {
                app.uploaded();
            }
            // The data commit carries the receipt; its audit row follows the answer.
            tokio::spawn(async move {
                if let Err(e) = app.lake.write_audits().await {
                    tracing::warn!(error = %e, "audit rows pending until the next upload or open");
                }
            });
            res
        }
        Err(e) => {
            let mut res = e.into_response();
            if !complete {
                // Answered before the body was read: the rest of it cannot be told from the
                // next request, so the connection ends here, and the client is told so.
                res.headers_mut().insert(
                    header::CONNECTION,
                    header::HeaderValue::from_static("close"),
                );
            }
            res
        }
    }
}

/// An upload, checked in the order the module documents; `body` is taken when its reading
/// starts, and `complete` set once all of it has been read.
async fn receive(
    app: &App,
    client: Option<Extension<ClientAddr>>,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    body: &mut Option<Body>,
    complete: &mut bool,
) -> Result<Response, AppError> {
    let who = principal(app, headers, client).await?;
    if !who.may_upload_any() {
        return Err(api(Error::Forbidden(format!(
            "token '{}' får inte skicka uppgifter (behörigheten upload saknas); inget sparades",
            who.name
        ))));
    }
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
    let settings = app.tokens.server();
    let limit = settings.max_upload_bytes();
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
    // At most this many uploads are received and checked at once; the rest come back later.
    let wait = std::time::Duration::from_secs(10);
    let _slot = match tokio::time::timeout(wait, app.uploads.clone().acquire_owned()).await {
        Ok(Ok(slot)) => slot,
        _ => {
            return Err(api(Error::Busy {
                message: "servern tar emot många uppladdningar just nu; inget sparades, försök igen om en stund".into(),
                retry_after_secs: 5,
                client: false,
            }));
        }
    };
    let timeout = std::time::Duration::from_secs(settings.body_timeout_secs);
    let read = axum::body::to_bytes(body.take().expect("body read once"), limit);
    let bytes = match tokio::time::timeout(timeout, read).await {
        Err(_) => {
            return Err(status(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "filen kom inte fram inom {} sekunder; inget sparades",
                    settings.body_timeout_secs
                ),
            ));
        }
        Ok(Err(e)) if is_length_limit(&e) => return Err(too_large()),
        Ok(Err(e)) => {
            return Err(status(
                StatusCode::BAD_REQUEST,
                format!("filen kunde inte tas emot: {e}; inget sparades"),
            ));
        }
        Ok(Ok(b)) => b,
    };
    *complete = true;
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
    let receipt = ingest::upload(&app.lake, &who, &name, bytes, now)
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
    if name.contains('\u{FFFD}') {
        return Err(bad("det är inte giltig UTF-8"));
    }
    if name
        .chars()
        .any(|c| c.is_control() || is_invisible_format(c))
    {
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

/// Characters that change how text around them is shown without being seen themselves:
/// bidirectional overrides and isolates (U+202E makes `evil\u{202E}vsc.exe` read as
/// `evilexe.csv`), zero-width characters and the byte-order mark.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Whether a body read failed on the size limit (rather than the client going away).
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
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
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let who = principal(&app, &headers, client).await?;
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
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let who = principal(&app, &headers, client).await?;
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
