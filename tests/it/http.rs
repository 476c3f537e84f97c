//! The report server through its router (no socket): every route, every alternate and every
//! error, with the rendered CSV and HTML pinned by insta snapshots.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use narvaro::http::{App, router};
use narvaro::lake::Lake;
use narvaro::policy::{self, Policies};
use tower::ServiceExt;

use crate::common::{fixture, now, slt_lake};

/// The server with disclosure control switched off: the slt lake is one school of 20 pupils,
/// which the shared rules hide almost entirely, and these tests pin the reports' layout.
async fn app(lake: Lake) -> axum::Router {
    router(published(app_state(lake)).await)
}

/// The server's state once the lake's latest version is published (pages read only
/// publications).
async fn published(app: App) -> Arc<App> {
    app.publish().await.unwrap();
    Arc::new(app)
}

fn app_state(lake: Lake) -> App {
    App::new(lake, crate::common::policies_without_disclosure(), now)
}

/// `app` with one county analyst's token (written to `dir`), for what only readers with a
/// token may ask for; the token.
async fn app_with_reader(lake: Lake, dir: &std::path::Path) -> (axum::Router, String, Arc<App>) {
    let mut config = narvaro::auth::Config::default();
    let scope = "read:county:18".parse::<narvaro::auth::Scope>().unwrap();
    let token = config.create_token("analytiker", &[scope], now()).unwrap();
    let path = dir.join("narvaro.toml");
    config.save(&path).unwrap();
    let tokens = narvaro::auth::Tokens::open(Some(&path)).unwrap();
    let app = published(app_state(lake).with_tokens(tokens)).await;
    (router(app.clone()), token, app)
}

struct Reply {
    status: StatusCode,
    content_type: String,
    cache_control: Option<String>,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

async fn get(app: &axum::Router, uri: &str) -> Reply {
    get_as(app, uri, None).await
}

/// A GET with `Authorization: Bearer TOKEN` when a token is given.
async fn get_as(app: &axum::Router, uri: &str, token: Option<&str>) -> Reply {
    let mut req = Request::get(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let content_type = header("content-type").unwrap_or_default();
    let cache_control = header("cache-control");
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        content_type,
        cache_control,
        body,
    }
}

/// Headings never skip a level (h1 → h2 → h3), as screen reader users navigate by them.
fn headings_in_order(html: &str) {
    let mut last = 0;
    for (i, _) in html.match_indices("<h") {
        let level = html.as_bytes()[i + 2];
        if !level.is_ascii_digit() {
            continue;
        }
        let level = (level - b'0') as i32;
        assert!(level <= last + 1, "heading h{level} after h{last}");
        last = level;
    }
    assert!(last >= 2);
}

#[tokio::test]
async fn every_report_renders_with_its_charts_tables_and_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let lake = slt_lake(dir.path()).await;
    let version = lake.table("attendance").await.unwrap().version().unwrap();
    let app = app(lake).await;
    for (path, heading) in [
        (
            "/reports/committee/1880/VT2026",
            "Nämndrapport: Örebro (1880), VT2026",
        ),
        (
            "/reports/county/18/VT2026",
            "Länsrapport: Örebro län (18), VT2026",
        ),
        (
            "/reports/school/18800101/VT2026",
            "Skolrapport: Ängsskolan (18800101), VT2026",
        ),
    ] {
        let r = get(&app, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.content_type.starts_with("text/html"));
        let html = r.text();
        assert!(html.contains("<html lang=\"sv\">"));
        assert!(html.contains(&format!("<h1>{heading}</h1>")), "{path}");
        headings_in_order(&html);
        for step in 1..=5 {
            assert!(
                html.contains(&format!("id=\"steg-{step}\"")),
                "{path} step {step}"
            );
        }
        assert!(html.contains("gemensam-2025"));
        assert!(html.contains(&format!("Dataversion: {version}")));
        assert!(html.contains("Publicerad: 2026-11-01 09:00 UTC"));
        // Every chart sits beside a table and carries a title and a description.
        let charts = html.matches("<figure class=\"chart\">").count();
        let tables = html.matches("<table>").count();
        assert!(charts >= 5, "{path}: {charts} charts");
        assert!(
            tables >= charts,
            "{path}: {tables} tables for {charts} charts"
        );
        assert_eq!(html.matches("role=\"img\"").count(), charts);
        assert_eq!(html.matches("<desc id=").count(), charts);
        for alt in [".csv", ".xlsx", ".json"] {
            assert!(
                html.contains(&format!("href=\"{path}{alt}\"")),
                "{path}{alt}"
            );
        }
    }
}

#[tokio::test]
async fn the_committee_report_states_its_findings_in_swedish() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(slt_lake(dir.path()).await).await;
    let html = get(&app, "/reports/committee/1880/VT2026").await.text();
    // Term to date February 2026; Bäckskolan has not uploaded February, so the month's
    // coverage is one of two schools and only Ängsskolan is compared.
    assert!(html.contains("uppgifter t.o.m. februari 2026"));
    // One school compared: no "from the lowest to the highest", the neutral heading instead.
    assert!(html.contains("<h3>Frånvaro per skolenhet</h3>"));
    assert!(html.contains("1 av 2 skolenheter har laddat upp februari 2026"));
    assert!(html.contains("procentenheter jämfört med föregående termin"));
    insta::assert_snapshot!("committee_1880_vt2026_html", html);
}

#[tokio::test]
async fn csv_opens_in_swedish_excel_and_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(slt_lake(dir.path()).await).await;
    for (name, path) in [
        (
            "committee_1880_vt2026_csv",
            "/reports/committee/1880/VT2026.csv",
        ),
        ("county_18_vt2026_csv", "/reports/county/18/VT2026.csv"),
        (
            "school_18800101_vt2026_csv",
            "/reports/school/18800101/VT2026.csv",
        ),
    ] {
        let r = get(&app, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.content_type.starts_with("text/csv"));
        assert!(r.body.starts_with("\u{FEFF}".as_bytes()), "BOM first");
        let text = r.text();
        assert!(text.contains("Rapport;"));
        // Numbers with decimal comma, never a decimal point.
        assert!(
            text.lines()
                .filter(|l| !l.starts_with("Definition") && !l.contains("reports/"))
                .all(|l| !l
                    .split(';')
                    .any(|f| f.parse::<f64>().is_ok() && f.contains('.'))),
            "{path} has a decimal point"
        );
        insta::assert_snapshot!(name, text);
    }
}

#[tokio::test]
async fn json_and_xlsx_carry_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let lake = slt_lake(dir.path()).await;
    let version = lake.table("attendance").await.unwrap().version().unwrap();
    let app = app(lake).await;
    let r = get(&app, "/reports/county/18/VT2026.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, "application/json");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["data_version"], version);
    assert_eq!(v["definition_id"], "gemensam-2025");
    assert_eq!(v["area"]["name"], "Örebro län");
    assert_eq!(v["sections"].as_array().unwrap().len(), 5);
    let first = &v["sections"][0]["blocks"][0];
    assert_eq!(first["id"], "absence_by_municipality");
    // Örebro, Nora and the county itself.
    assert_eq!(first["rows"].as_array().unwrap().len(), 3);

    let x = get(&app, "/reports/county/18/VT2026.xlsx").await;
    assert_eq!(x.status, StatusCode::OK);
    assert!(x.content_type.contains("spreadsheetml"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(x.body)).unwrap();
    let mut workbook = String::new();
    zip.by_name("xl/workbook.xml")
        .unwrap()
        .read_to_string(&mut workbook)
        .unwrap();
    assert!(workbook.contains("name=\"Sammanfattning\""));
    assert!(workbook.contains("name=\"1.1 Frånvaro per kommun\""));
    let mut strings = String::new();
    zip.by_name("xl/sharedStrings.xml")
        .unwrap()
        .read_to_string(&mut strings)
        .unwrap();
    assert!(strings.contains("Nora"));
    assert!(strings.contains("gemensam-2025"));
}

#[tokio::test]
async fn index_and_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let lake = slt_lake(dir.path()).await;
    let version = lake.table("attendance").await.unwrap().version().unwrap();
    let app = app(lake).await;
    let r = get(&app, "/").await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    headings_in_order(&html);
    for link in [
        "/reports/county/18/VT2026",
        "/reports/committee/1880/HT2025",
        "/reports/committee/1884/VT2026",
        "/reports/school/18800102/VT2026",
        "/reports/committee/2380/VT2026",
    ] {
        assert!(html.contains(&format!("href=\"{link}\"")), "{link}");
    }
    let h = get(&app, "/healthz").await;
    assert_eq!(h.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&h.body).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["data_version"], version);
}

/// `/healthz` answers from what the server holds, and follows a commit made by another
/// process (here another handle on the lake) within about a second, in the background.
#[tokio::test]
async fn healthz_follows_another_writers_commit_without_waiting_for_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let lake = crate::common::small_lake(dir.path()).await;
    let before = lake.table("attendance").await.unwrap().version().unwrap();
    let app = app(Lake::open(dir.path().join("lake")).await.unwrap()).await;
    let version = |r: &Reply| {
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["data_version"].as_u64().unwrap()
    };
    assert_eq!(version(&get(&app, "/healthz").await), before);
    narvaro::ingest::ingest_path(&lake, &fixture("small/attendance_corrected.csv"), now())
        .await
        .unwrap();
    let after = lake.table("attendance").await.unwrap().version().unwrap();
    assert!(after > before);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = before;
    while seen != after && std::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let r = get(&app, "/healthz").await;
        assert_eq!(r.status, StatusCode::OK);
        seen = version(&r);
        assert!(seen == before || seen == after, "{seen}");
    }
    assert_eq!(
        seen, after,
        "/healthz never showed the other writer's commit"
    );
}

#[tokio::test]
async fn errors_are_clear_swedish_pages_with_the_right_status() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(slt_lake(dir.path()).await).await;
    for (uri, status, says) in [
        (
            "/reports/committee/9999/VT2026",
            404,
            "det finns ingen kommun med kod 9999",
        ),
        (
            "/reports/county/99/VT2026",
            404,
            "det finns inget län med kod 99",
        ),
        (
            "/reports/school/18809999/VT2026",
            404,
            "det finns ingen skolenhet med kod 18809999",
        ),
        ("/reports/committee/18x0/VT2026", 400, "ska vara 4 siffror"),
        ("/reports/committee/1880/2026", 400, "är ingen termin"),
        (
            "/reports/committee/1880/VT2031",
            404,
            "uppgifter finns för: VT2025, HT2025, VT2026",
        ),
        (
            "/reports/committee/1880/VT2026?as_of=igår",
            400,
            "varken en dataversion",
        ),
        (
            "/reports/committee/1880/VT2026?as_of=999",
            403,
            "visas bara med en token",
        ),
        (
            "/reports/committee/1880/VT2026.docx",
            404,
            "formatet .docx finns inte; välj .csv, .xlsx, .json eller .pdf",
        ),
        (
            "/reports/budget/1880/VT2026",
            404,
            "finns inte; välj committee, county, school eller data",
        ),
        ("/nothing/here", 404, "ingen sida med den adressen"),
    ] {
        let r = get(&app, uri).await;
        assert_eq!(r.status.as_u16(), status, "{uri}");
        let body = r.text();
        assert!(body.contains(says), "{uri}: {body}");
        assert!(body.contains("<html lang=\"sv\">"), "{uri}");
    }
    let j = get(&app, "/reports/committee/9999/VT2026.json").await;
    assert_eq!(j.status, StatusCode::NOT_FOUND);
    let v: serde_json::Value = serde_json::from_slice(&j.body).unwrap();
    assert_eq!(v["error"], "det finns ingen kommun med kod 9999");
}

#[tokio::test]
async fn as_of_renders_exactly_what_an_older_version_showed() {
    let dir = tempfile::tempdir().unwrap();
    let lake = crate::common::small_lake(dir.path()).await;
    let before = lake.table("attendance").await.unwrap().version().unwrap();
    // The server and the uploader are separate handles on one lake, as in production.
    let (app, token, state) = app_with_reader(
        Lake::open(dir.path().join("lake")).await.unwrap(),
        dir.path(),
    )
    .await;
    let old = get(&app, "/reports/school/18800101/VT2026.json").await;
    assert_eq!(old.status, StatusCode::OK);
    narvaro::ingest::ingest_path(&lake, &fixture("small/attendance_corrected.csv"), now())
        .await
        .unwrap();
    let unpublished = get(&app, "/reports/school/18800101/VT2026.json").await;
    assert_eq!(
        unpublished.body, old.body,
        "pages show the latest publication until the correction is published"
    );
    state.publish().await.unwrap();
    let new = get(&app, "/reports/school/18800101/VT2026.json").await;
    let pinned_uri = format!("/reports/school/18800101/VT2026.json?as_of={before}");
    let pinned = get_as(&app, &pinned_uri, Some(&token)).await;
    let version = |r: &Reply| {
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["data_version"].as_u64().unwrap()
    };
    assert_eq!(version(&old), before);
    assert!(
        version(&new) > before,
        "the correction is a new data version"
    );
    assert_ne!(new.body, old.body, "the correction changed the report");
    // Same clock, same version: byte for byte what was shown before the correction.
    assert_eq!(pinned.text(), old.text(), "as_of shows the old report");
    let html = get_as(
        &app,
        &format!("/reports/school/18800101/VT2026?as_of={before}"),
        Some(&token),
    )
    .await
    .text();
    assert!(html.contains(&format!(
        "href=\"/reports/school/18800101/VT2026.csv?as_of={before}\""
    )));
    // Anonymous readers see only the latest version: comparing two versions, one upload
    // apart, could reveal what each of them hides.
    for uri in [pinned_uri.as_str(), "/?as_of=1"] {
        let anonymous = get(&app, uri).await;
        assert_eq!(anonymous.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(
            anonymous.text().contains("visas bara med en token"),
            "{uri}"
        );
    }
    let index = get_as(&app, &format!("/?as_of={before}"), Some(&token)).await;
    assert_eq!(index.status, StatusCode::OK);
    let wrong = get_as(&app, &pinned_uri, Some("nrv_fel.fel")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
}

/// Where a report's values are missing (`..`), per table, from its JSON: (row, column, shown
/// in the HTML table).
fn missing_in_json(v: &serde_json::Value) -> Vec<Vec<(usize, usize, bool)>> {
    let mut out = Vec::new();
    for s in v["sections"].as_array().unwrap() {
        for b in s["blocks"].as_array().unwrap() {
            let cols = b["columns"].as_array().unwrap();
            let mut m = Vec::new();
            for (r, row) in b["rows"].as_array().unwrap().iter().enumerate() {
                for (k, c) in row.as_array().unwrap().iter().enumerate() {
                    if c.is_null() {
                        m.push((r, k, cols[k]["hidden"] != true));
                    }
                }
            }
            out.push(m);
        }
    }
    out
}

/// The same from the CSV: its tables follow the summary, one per blank-line separated chunk
/// (title, header, rows, footnotes).
fn missing_in_csv(text: &str, rows: &[usize]) -> Vec<Vec<(usize, usize)>> {
    let chunks: Vec<&str> = text.split("\n\n").skip(2).collect();
    assert_eq!(chunks.len(), rows.len(), "one CSV table per block");
    chunks
        .iter()
        .zip(rows)
        .map(|(chunk, &n)| {
            let mut m = Vec::new();
            for (r, line) in chunk.lines().skip(2).take(n).enumerate() {
                let mut reader = csv::ReaderBuilder::new()
                    .delimiter(b';')
                    .has_headers(false)
                    .from_reader(line.as_bytes());
                let record = reader.records().next().unwrap().unwrap();
                for (k, f) in record.iter().enumerate() {
                    if f == ".." {
                        m.push((r, k));
                    }
                }
            }
            m
        })
        .collect()
}

/// The same from the workbook: one sheet per table after `Sammanfattning`, rows from the
/// fifth, cells holding the shared string `..`.
fn missing_in_xlsx(body: Vec<u8>, tables: usize) -> Vec<Vec<(usize, usize)>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body)).unwrap();
    let read = |zip: &mut zip::ZipArchive<_>, name: &str| {
        let mut s = String::new();
        zip.by_name(name).unwrap().read_to_string(&mut s).unwrap();
        s
    };
    let strings = read(&mut zip, "xl/sharedStrings.xml");
    let dots = strings
        .split("<si>")
        .skip(1)
        .position(|si| si.contains("<t>..</t>"));
    (0..tables)
        .map(|t| {
            let sheet = read(&mut zip, &format!("xl/worksheets/sheet{}.xml", t + 2));
            let mut m = Vec::new();
            for c in sheet.split("<c r=\"").skip(1) {
                let (at, rest) = c.split_once('"').unwrap();
                let head = &rest[..rest.find('>').unwrap()];
                let value = rest
                    .split_once("<v>")
                    .and_then(|(_, v)| v.split_once("</v>"))
                    .map(|(v, _)| v);
                if head.contains("t=\"s\"") && value.and_then(|v| v.parse().ok()) == dots {
                    let letters: String = at.chars().take_while(char::is_ascii_uppercase).collect();
                    let row: usize = at[letters.len()..].parse().unwrap();
                    let col = letters
                        .bytes()
                        .fold(0, |a, b| a * 26 + (b - b'A' + 1) as usize)
                        - 1;
                    m.push((row - 5, col));
                }
            }
            m
        })
        .collect()
}

/// Disclosure control in every view: with the shared rules and municipal schools' figures
/// confidential (`confidential_organisers`), the slt lake's two schools in two municipalities
/// hide nearly every figure, and the page, its chart, the CSV, the workbook and the JSON show
/// `..` in exactly the same places with the same reasons. A principal's token for their own
/// school lifts it for that school's figures only.
#[tokio::test]
async fn every_view_hides_the_same_cells_and_a_principal_sees_their_own_school() {
    let dir = tempfile::tempdir().unwrap();
    let lake = slt_lake(dir.path()).await;
    let mut config = narvaro::auth::Config::default();
    let scope = |s: &str| s.parse::<narvaro::auth::Scope>().unwrap();
    let own = config
        .create_token("rektor Ängsskolan", &[scope("read:school:18800101")], now())
        .unwrap();
    let other = config
        .create_token(
            "rektor annan skola",
            &[scope("read:school:18800102")],
            now(),
        )
        .unwrap();
    let path = dir.path().join("narvaro.toml");
    config.save(&path).unwrap();
    let mut policies = Policies::load(&policy::Source::resolve(None)).unwrap();
    policies.shared.policy.disclosure.confidential_organisers =
        serde_json::from_str(r#"["KOMMUN"]"#).unwrap();
    let tokens = narvaro::auth::Tokens::open(Some(&path)).unwrap();
    let app = router(published(App::new(lake, policies, now).with_tokens(tokens)).await);

    for report in [
        "/reports/school/18800101/VT2026",
        "/reports/committee/1880/VT2026",
        "/reports/county/18/VT2026",
    ] {
        let json = get(&app, &format!("{report}.json")).await;
        assert_eq!(json.status, StatusCode::OK, "{report}");
        let v: serde_json::Value = serde_json::from_slice(&json.body).unwrap();
        let missing = missing_in_json(&v);
        let positions: Vec<Vec<(usize, usize)>> = missing
            .iter()
            .map(|m| m.iter().map(|&(r, k, _)| (r, k)).collect())
            .collect();
        let rows: Vec<usize> = v["sections"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["blocks"].as_array().unwrap())
            .map(|b| b["rows"].as_array().unwrap().len())
            .collect();
        // Under 3 schools per area: the area figures hide, and so do the confidential schools'
        // (an area of one school is that school's figure under another name).
        let few = ".. Uppgiften bygger på färre än 3 skolenheter, varav någon med \
                   sekretessbelagda uppgifter, och visas inte.";
        let confidential = ".. Skolenhetens uppgifter är sekretessbelagda (huvudmannens typ) och \
                            visas inte; skolans rektor ser dem med sin egen inloggning.";
        let notes = v["sections"].to_string();
        assert!(notes.contains(few), "{report}: no disclosure footnote");
        assert!(
            positions.iter().map(Vec::len).sum::<usize>() > 5,
            "{report}"
        );
        // A key figure hidden says why, beside it in every view.
        let hidden: Vec<&str> = v["summary"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| {
                f["note"]
                    .as_str()
                    .inspect(|_| assert!(f["value"].is_null()))
            })
            .collect();
        assert!(!hidden.is_empty(), "{report}: summary");
        assert!(
            hidden.iter().all(|n| [few, confidential].contains(n)),
            "{report}: summary {hidden:?}"
        );
        let reason = hidden[0];

        let csv = get(&app, &format!("{report}.csv")).await.text();
        assert_eq!(missing_in_csv(&csv, &rows), positions, "{report}: CSV");
        assert!(csv.contains(reason));

        let xlsx = get(&app, &format!("{report}.xlsx")).await;
        assert_eq!(
            missing_in_xlsx(xlsx.body, rows.len()),
            positions,
            "{report}: XLSX"
        );

        let html = get(&app, report).await.text();
        let shown = missing.iter().flatten().filter(|m| m.2).count();
        let cells = html.matches(">..</td>").count() + html.matches(">..</th>").count();
        assert_eq!(cells, shown, "{report}: HTML tables");
        assert!(html.contains(reason));
        // Charts mark a hidden value with `..`; they never draw it as zero.
        assert!(html.contains(">\n..\n</text>"), "{report}: chart");
    }

    // The principal of Ängsskolan sees the school's own figures; the municipality's stay hidden.
    let school = "/reports/school/18800101/VT2026.json";
    let anonymous = get(&app, school).await;
    assert_eq!(anonymous.cache_control, None);
    let mine = get_as(&app, school, Some(&own)).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.cache_control.as_deref(), Some("private, no-store"));
    let mine: serde_json::Value = serde_json::from_slice(&mine.body).unwrap();
    let months = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        let b = v["sections"][0]["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == "months")
            .unwrap()
            .clone();
        b["rows"].as_array().unwrap().clone()
    };
    for row in months(&mine) {
        assert!(row[1].is_number(), "the school's own month: {row}");
        assert!(row[2].is_null(), "the municipality stays hidden: {row}");
    }
    let anon: serde_json::Value = serde_json::from_slice(&anonymous.body).unwrap();
    assert!(months(&anon).iter().all(|row| row[1].is_null()));
    assert!(mine["summary"][0]["value"].is_number());
    // A confidential school's grade 9 results (15 of 22 passed) are its principal's alone,
    // like its attendance: they rest on its school year's cells.
    let passed = |v: &serde_json::Value| -> serde_json::Value {
        let b = v["sections"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["blocks"].as_array().unwrap())
            .find(|b| b["id"] == "attainment")
            .unwrap();
        let k = b["columns"]
            .as_array()
            .unwrap()
            .iter()
            .position(|c| c["name"] == "passed_pct")
            .unwrap();
        b["rows"][0][k].clone()
    };
    assert!((passed(&mine).as_f64().unwrap() - 100.0 * 15.0 / 22.0).abs() < 1e-9);
    assert!(passed(&anon).is_null(), "{}", passed(&anon));
    // A staircase count of one pupil is the principal's to see, no one else's.
    let stairs = |v: &serde_json::Value| v["sections"][2]["blocks"][0]["rows"].to_string();
    assert!(stairs(&anon).contains("null"));
    assert!(!stairs(&mine).contains("null"), "{}", stairs(&mine));

    // Another school's principal, and anyone on another report, get the protected release.
    let theirs = get_as(&app, school, Some(&other)).await;
    assert_eq!(theirs.body, anonymous.body);
    assert_eq!(theirs.cache_control, None);
    let county = get(&app, "/reports/committee/1880/VT2026.json").await;
    let county_own = get_as(&app, "/reports/committee/1880/VT2026.json", Some(&own)).await;
    assert_eq!(county_own.body, county.body);
    // A wrong token is refused rather than silently ignored.
    let bad = get_as(&app, school, Some("nvr_0000_fel")).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
}

/// Runs a PDF tool (Debian's `qpdf` and `poppler-utils`, installed by `.ci/run`) and returns
/// what it printed; a tool that is missing or fails fails the test.
fn pdf_tool(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program}: {e} (install qpdf and poppler-utils, as .ci/run does)")
        });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The PDF text string at the start of `s` (uncompressed, as `qpdf --qdf` writes it):
/// `<FEFF…>` in UTF-16 or a literal `(…)` with its escapes.
fn pdf_text_string(s: &str) -> String {
    if let Some(hex) = s.strip_prefix("<feff").or_else(|| s.strip_prefix("<FEFF")) {
        let hex = &hex[..hex.find('>').unwrap()];
        let units: Vec<u16> = (0..hex.len() / 4)
            .map(|i| u16::from_str_radix(&hex[4 * i..4 * i + 4], 16).unwrap())
            .collect();
        return String::from_utf16(&units).unwrap();
    }
    let literal = s.strip_prefix('(').expect("a text string");
    let mut out = String::new();
    let mut chars = literal.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            ')' => break,
            c => out.push(c),
        }
    }
    out
}

#[tokio::test]
async fn every_report_is_an_accessible_pdf() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(slt_lake(dir.path()).await).await;
    let pages = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pdf-pages");
    std::fs::create_dir_all(&pages).unwrap();
    for (name, path, title) in [
        (
            "committee",
            "/reports/committee/1880/VT2026",
            "Nämndrapport: Örebro (1880), VT2026",
        ),
        (
            "county",
            "/reports/county/18/VT2026",
            "Länsrapport: Örebro län (18), VT2026",
        ),
        (
            "school",
            "/reports/school/18800101/VT2026",
            "Skolrapport: Ängsskolan (18800101), VT2026",
        ),
    ] {
        // The page links its PDF beside the other formats.
        let html = get(&app, path).await.text();
        assert!(html.contains(&format!("href=\"{path}.pdf\"")), "{path}");
        let r = get(&app, &format!("{path}.pdf")).await;
        assert_eq!(r.status, StatusCode::OK, "{path}.pdf");
        assert_eq!(r.content_type, "application/pdf");
        let file = pages.join(format!("{name}.pdf"));
        std::fs::write(&file, &r.body).unwrap();
        let file = file.to_str().unwrap();

        let check = pdf_tool("qpdf", &["--check", file]);
        assert!(
            check.contains("No syntax or stream encoding errors"),
            "{check}"
        );
        let info = pdf_tool("pdfinfo", &[file]);
        assert!(info.contains("Tagged:          yes"), "{name}: {info}");
        assert!(
            info.contains(&format!("Title:           {title}")),
            "{name}: {info}"
        );
        assert!(
            info.contains("Page size:       595.276 x 841.89 pts (A4)"),
            "{name}: {info}"
        );
        // PDF/UA-1 declared in the XMP metadata, the document in Swedish.
        let meta = pdf_tool("pdfinfo", &["-meta", file]);
        assert!(
            meta.contains("<pdfuaid:part>1</pdfuaid:part>") || meta.contains("pdfuaid:part=\"1\""),
            "{name}: {meta}"
        );
        // The structure: headings in order, real tables with header cells, every chart a
        // figure with its finding as alternative text.
        let tree = pdf_tool("pdfinfo", &["-struct", file]);
        for element in ["H1", "H2", "H3", "Table", "TH", "TD", "Figure"] {
            assert!(tree.contains(element), "{name}: no {element} in\n{tree}");
        }
        // Every figure carries its chart's finding as alternative text (UTF-16 in the tree).
        let expanded = dir.path().join(format!("{name}-qdf.pdf"));
        let expanded_s = expanded.to_str().unwrap();
        pdf_tool(
            "qpdf",
            &["--qdf", "--object-streams=disable", file, expanded_s],
        );
        let raw = String::from_utf8_lossy(&std::fs::read(&expanded).unwrap()).into_owned();
        let alts: Vec<String> = raw.split("/Alt ").skip(1).map(pdf_text_string).collect();
        let figures = tree.lines().filter(|l| l.trim() == "Figure:").count();
        assert!(figures >= 3, "{name}: {figures} figures");
        assert_eq!(
            alts.len(),
            figures,
            "{name}: a figure without alternative text"
        );
        let json: serde_json::Value =
            serde_json::from_slice(&get(&app, &format!("{path}.json")).await.body).unwrap();
        let findings: Vec<&str> = json["sections"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["blocks"].as_array().unwrap())
            .filter(|b| !b["chart"].is_null())
            .map(|b| b["title"].as_str().unwrap())
            .collect();
        for alt in &alts {
            assert!(
                findings.contains(&alt.as_str()),
                "{name}: alt {alt:?} is no chart's finding"
            );
        }
        let text = pdf_tool("pdftotext", &["-layout", file, "-"]);
        assert!(text.contains("Steg 1."), "{name}");
        assert!(
            text.contains("gemensam-2025"),
            "{name}: the footer names the definition"
        );
        assert!(text.contains("dataversion"), "{name}");
        assert!(text.contains("Sida 1 av"), "{name}: page numbers");
        // Every page renders; the images go beside the browser screenshots.
        let count: usize = info
            .lines()
            .find_map(|l| l.strip_prefix("Pages:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(count >= 2, "{name}: {count} pages");
        let prefix = pages.join(name);
        let ours = |e: &std::fs::DirEntry| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&format!("{name}-")) && n.ends_with(".png")
        };
        for e in std::fs::read_dir(&pages).unwrap() {
            let e = e.unwrap();
            if ours(&e) {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        pdf_tool(
            "pdftoppm",
            &["-png", "-r", "40", file, prefix.to_str().unwrap()],
        );
        let rendered = std::fs::read_dir(&pages)
            .unwrap()
            .filter(|e| ours(e.as_ref().unwrap()))
            .count();
        assert_eq!(rendered, count, "{name}: pages rendered");
    }
}

/// The open data API answers every indicator from the publication, and a value hidden in a
/// report is `null` with status `..` there too (and shown values are the same numbers).
#[tokio::test]
async fn the_indicators_api_hides_exactly_what_the_reports_hide() {
    let dir = tempfile::tempdir().unwrap();
    let lake = slt_lake(dir.path()).await;
    let mut policies = Policies::load(&policy::Source::resolve(None)).unwrap();
    policies.shared.policy.disclosure.confidential_organisers =
        serde_json::from_str(r#"["KOMMUN"]"#).unwrap();
    let app = router(published(App::new(lake, policies, now)).await);
    let json = |r: &Reply| -> serde_json::Value { serde_json::from_slice(&r.body).unwrap() };

    let list = get(&app, "/api/v1/indicators").await;
    assert_eq!(list.status, StatusCode::OK);
    let names: Vec<String> = json(&list)["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|i| {
            assert!(i["description"].as_str().unwrap().len() > 40, "{i}");
            assert!(!i["unit"].as_str().unwrap().is_empty(), "{i}");
        })
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "absence_rate",
            "at_or_above",
            "gender_gap",
            "reporting_rate",
            "coverage",
            "change",
            "overview",
            "escalation",
            "target_progress",
            "attainment",
            "benchmark",
            "harmonisation"
        ]
    );
    // Every indicator, every area type and window, in JSON and CSV alike.
    for name in &names {
        // Grade 9 results are had for 2024/25, which ends in VT2025.
        let term = if name == "attainment" {
            "VT2025"
        } else {
            "VT2026"
        };
        let r = get(&app, &format!("/api/v1/indicators/{name}?term={term}")).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        let v = json(&r);
        assert_eq!(v["term"], term);
        assert!(v["definition_hash"].as_str().unwrap().len() >= 12);
        let rows = v["rows"].as_array().unwrap();
        let types: std::collections::BTreeSet<&str> = rows
            .iter()
            .map(|r| r["area_type"].as_str().unwrap())
            .collect();
        let expected = match name.as_str() {
            "escalation" => 2,
            "target_progress" | "benchmark" | "harmonisation" => 1,
            _ => 4,
        };
        assert_eq!(types.len(), expected, "{name}: {types:?}");
        let hidden = rows
            .iter()
            .filter_map(|r| r["status"].as_object())
            .map(|s| s.len())
            .sum::<usize>();
        let csv = get(&app, &format!("/api/v1/indicators/{name}.csv?term={term}")).await;
        assert_eq!(csv.content_type, "text/csv; charset=utf-8");
        let text = csv.text();
        assert!(text.starts_with('\u{FEFF}'));
        assert_eq!(text.lines().count(), rows.len() + 1, "{name}");
        let dots = text
            .lines()
            .flat_map(|l| l.split(';'))
            .filter(|c| *c == ".." || c.starts_with('≥'))
            .count();
        assert_eq!(dots, hidden, "{name}: CSV and JSON hide the same values");
    }

    let (hidden, shown) = report_against_api(&app).await;
    assert!(hidden > 0, "hidden {hidden}, shown {shown}");
    // Without disclosure control the same rows are shown, as the same numbers.
    let open_dir = tempfile::tempdir().unwrap();
    let open = router(published(app_state(slt_lake(open_dir.path()).await)).await);
    let (hidden, shown) = report_against_api(&open).await;
    assert!(hidden == 0 && shown > 0, "hidden {hidden}, shown {shown}");

    // Clear errors, as JSON.
    for (uri, status, says) in [
        (
            "/api/v1/indicators/frånvaro",
            StatusCode::NOT_FOUND,
            "absence_rate",
        ),
        (
            "/api/v1/indicators/absence_rate?window=year",
            StatusCode::BAD_REQUEST,
            "window",
        ),
        (
            "/api/v1/indicators/absence_rate?area_code=12",
            StatusCode::NOT_FOUND,
            "12",
        ),
        (
            "/api/v1/indicators/absence_rate?area_code=1",
            StatusCode::BAD_REQUEST,
            "area_code",
        ),
        (
            "/api/v1/indicators/absence_rate?period=2026-07",
            StatusCode::BAD_REQUEST,
            "period",
        ),
        (
            "/api/v1/indicators/absence_rate?term=VT2020",
            StatusCode::NOT_FOUND,
            "VT2020",
        ),
        (
            "/api/v1/indicators/absence_rate?format=xml",
            StatusCode::BAD_REQUEST,
            "format",
        ),
        (
            "/api/v1/indicators/absence_rate?as_of=1",
            StatusCode::FORBIDDEN,
            "token",
        ),
    ] {
        let r = get(&app, uri).await;
        assert_eq!(r.status, status, "{uri}: {}", r.text());
        assert!(r.content_type.starts_with("application/json"), "{uri}");
        assert!(r.text().contains(says), "{uri}: {}", r.text());
    }
    let doc = json(&get(&app, "/api/v1/openapi.json").await);
    for (path, method) in [
        ("/api/v1/indicators", "get"),
        ("/api/v1/indicators/{name}", "get"),
        ("/api/pxweb/v2/config", "get"),
        ("/api/pxweb/v2/tables/{id}/metadata", "get"),
        ("/api/pxweb/v2/tables/{id}/data", "post"),
        ("/api/kolada/v3/kpi", "get"),
        (
            "/api/kolada/v3/data/kpi/{kpi}/municipality/{municipality}",
            "get",
        ),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "OpenAPI: {method} {path}"
        );
    }
}

/// Compares the committee report's schools, months and levels with the indicators API's rows:
/// (values hidden in both, values shown in both and equal).
async fn report_against_api(app: &axum::Router) -> (usize, usize) {
    let json = |r: &Reply| -> serde_json::Value { serde_json::from_slice(&r.body).unwrap() };
    // The committee report's schools and months against the API's rows.
    let committee = json(&get(app, "/reports/committee/1880/VT2026.json").await);
    let block = |id: &str| -> serde_json::Value {
        committee["sections"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["blocks"].as_array().unwrap().clone())
            .find(|b| b["id"] == id)
            .unwrap()
    };
    let api = |q: &str| -> _ {
        let app = app.clone();
        let q = q.to_string();
        async move {
            let r = get(&app, &format!("/api/v1/indicators/{q}")).await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text());
            json(&r)["rows"].as_array().unwrap().clone()
        }
    };
    let (mut hidden, mut shown) = (0, 0);
    let mut same = |report: &serde_json::Value, api: &serde_json::Value, col: &str, what: &str| {
        if report.is_null() {
            assert!(api[col].is_null(), "{what}: hidden in the report, {api}");
            assert_eq!(api["status"][col], "..", "{what}");
            hidden += 1;
        } else {
            assert_eq!(report, &api[col], "{what}");
            assert!(api["status"].get(col).is_none(), "{what}");
            shown += 1;
        }
    };
    let schools = block("absence_by_school");
    for row in schools["rows"].as_array().unwrap() {
        let code = row[1].as_str().unwrap();
        let rows = api(&format!(
            "absence_rate?term=VT2026&area_code={code}&window=term"
        ))
        .await;
        assert_eq!(rows.len(), 1, "{code}");
        same(&row[3], &rows[0], "absence_pct", code);
        same(&row[2], &rows[0], "students", code);
    }
    let months = block("months");
    for row in months["rows"].as_array().unwrap() {
        let period = row[0].as_str().unwrap();
        let rows = api(&format!(
            "absence_rate?area_type=municipality&area_code=1880&window=month&period={period}"
        ))
        .await;
        assert_eq!(rows.len(), 1, "{period}");
        same(&row[1], &rows[0], "absence_pct", period);
    }
    let levels = block("levels");
    for row in levels["rows"].as_array().unwrap() {
        let rows = api("at_or_above?term=VT2026&area_code=1880&window=term").await;
        let level = row[0].as_str().unwrap();
        let api_row = rows
            .iter()
            .find(|r| level.contains(&format!("minst {} %", r["level_percent"])))
            .unwrap();
        same(&row[1], api_row, "share_pct", level);
        same(&row[2], api_row, "pupils", level);
    }
    // Grade 9 results beside the school year's absence, in the committee report and the API.
    let at = |block: &serde_json::Value, name: &str| -> usize {
        block["columns"]
            .as_array()
            .unwrap()
            .iter()
            .position(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {}", block["id"]))
    };
    let attainment = block("attainment");
    let years = attainment["rows"].as_array().unwrap();
    assert!(!years.is_empty());
    for row in years {
        let year = row[at(&attainment, "school_year")].as_str().unwrap();
        let rows = api("attainment?term=VT2025&area_code=1880").await;
        let api_row = rows.iter().find(|r| r["school_year"] == year).unwrap();
        for col in [
            "passed_pct",
            "absence_pct",
            "problematic_share_pct",
            "grade9_students",
        ] {
            same(&row[at(&attainment, col)], api_row, col, year);
        }
    }
    // Every step of the municipality's staircases, counted on its pupils.
    let staircase = block("staircase");
    let steps = api("harmonisation?term=VT2026&area_code=1880").await;
    let term_steps: Vec<&serde_json::Value> = steps
        .iter()
        .filter(|r| r["period"] == committee["period"])
        .collect();
    assert_eq!(
        staircase["rows"].as_array().unwrap().len(),
        term_steps.len(),
        "{staircase}"
    );
    for row in staircase["rows"].as_array().unwrap() {
        let policy = &row[at(&staircase, "policy_id")];
        let label = row[at(&staircase, "step_label")].as_str().unwrap();
        let api_row = term_steps
            .iter()
            .find(|r| {
                let model = match r["model"].as_str().unwrap() {
                    "kommunens" => "Kommunens",
                    "länets" => "Länets",
                    "gemensam" => "Gemensam",
                    _ => "Referens",
                };
                let window = match r["window"].as_str().unwrap() {
                    "month" => "månad",
                    "term" => "termin",
                    _ => "läsår",
                };
                let name = r["step_name"].as_str().unwrap();
                &r["policy_id"] == policy
                    && label == format!("{model} {}: {name} ({window})", r["step"])
            })
            .unwrap_or_else(|| panic!("{label} ({policy})"));
        for col in ["pupils", "share_pct"] {
            same(&row[at(&staircase, col)], api_row, col, label);
        }
    }
    // A school against its municipality, its county and similar schools.
    let school = json(&get(app, "/reports/school/18800101/VT2026.json").await);
    let benchmark = school["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["blocks"].as_array().unwrap().clone())
        .find(|b| b["id"] == "benchmark")
        .unwrap();
    let rows = api("benchmark?term=VT2026&area_code=18800101&window=term").await;
    assert_eq!(rows.len(), 1);
    let compared = benchmark["rows"].as_array().unwrap();
    for (i, col) in [
        "absence_pct",
        "municipality_absence_pct",
        "county_absence_pct",
        "similar_absence_pct",
    ]
    .into_iter()
    .enumerate()
    {
        let value = &compared[i][at(&benchmark, "pct")];
        if col == "similar_absence_pct" && rows[0]["similar_schools"] == 0 {
            // No school of its kind and size elsewhere: nothing to compare with, in both.
            assert!(value.is_null() && rows[0][col].is_null(), "{}", rows[0]);
            continue;
        }
        same(value, &rows[0], col, col);
    }
    (hidden, shown)
}

/// The Python of the virtual environment `.ci/run` makes under `target/py`, with the real
/// clients from PyPI the tests read the server with; missing, the test fails and says so.
pub fn python() -> std::path::PathBuf {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/python");
    assert!(
        py.exists(),
        "{} is missing: .ci/run makes it (python3 -m venv target/py and the PyPI clients)",
        py.display()
    );
    py
}

/// Runs `script` with the test Python and returns what it printed; a failure fails the test.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `/metrics` is Prometheus text that `prometheus_client`'s own parser reads: requests and
/// latency by route, the caches, and the publication served.
#[tokio::test]
async fn metrics_are_prometheus_text_a_real_parser_reads() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(slt_lake(dir.path()).await).await;
    for uri in [
        "/",
        "/reports/committee/1880/VT2026",
        "/reports/committee/1880/VT2026",
        "/api/v1/indicators/absence_rate",
        "/finns-inte",
    ] {
        get(&app, uri).await;
    }
    let health: serde_json::Value =
        serde_json::from_slice(&get(&app, "/healthz").await.body).unwrap();
    let r = get(&app, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type.starts_with("text/plain; version=0.0.4"));
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &r.body).unwrap();
    let parsed = run_python(
        r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(open(sys.argv[1], encoding="utf-8").read()):
    out.append({"name": f.name, "type": f.type, "samples": [
        {"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]})
print(json.dumps(out))
"#,
        &[file.to_str().unwrap()],
    );
    let families: Vec<serde_json::Value> = serde_json::from_str(&parsed).unwrap();
    let family = |name: &str| {
        families
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {parsed}"))
    };
    let sample = |f: &serde_json::Value, name: &str, labels: &[(&str, &str)]| -> f64 {
        f["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"] == name)
            .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
            .map(|s| s["value"].as_f64().unwrap())
            .sum()
    };
    let requests = family("narvaro_http_requests");
    assert_eq!(requests["type"], "counter");
    let page = [
        ("route", "/reports/{kind}/{code}/{term}"),
        ("status", "200"),
    ];
    assert!(sample(requests, "narvaro_http_requests_total", &page) >= 2.0);
    assert!(
        sample(
            requests,
            "narvaro_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ) >= 1.0
    );
    let latency = family("narvaro_http_request_duration_seconds");
    assert_eq!(latency["type"], "histogram");
    let route = [("route", "/api/v1/indicators/{name}")];
    assert!(
        sample(
            latency,
            "narvaro_http_request_duration_seconds_count",
            &route
        ) >= 1.0
    );
    let cache = family("narvaro_cache_requests");
    assert!(
        sample(
            cache,
            "narvaro_cache_requests_total",
            &[("cache", "rendered"), ("result", "hit")]
        ) >= 1.0
    );
    let published = family("narvaro_published_data_version");
    assert_eq!(published["type"], "gauge");
    // Other tests' servers share the process's recorder: the gauge is the last one scraped.
    assert!(sample(published, "narvaro_published_data_version", &[]) >= 1.0);
    assert!(health["published"]["data_version"].as_u64().unwrap() >= 1);
    assert!(
        sample(
            family("narvaro_publication_age_seconds"),
            "narvaro_publication_age_seconds",
            &[]
        ) >= 0.0
    );
}

/// The committee report's levels for Örebro against PxWeb's `at_or_above` table: hidden in
/// both (`null` with status `..`) or shown in both as the same numbers; (hidden, shown).
async fn levels_against_pxweb(app: &axum::Router) -> (usize, usize) {
    let committee: serde_json::Value =
        serde_json::from_slice(&get(app, "/reports/committee/1880/VT2026.json").await.body)
            .unwrap();
    let levels = committee["sections"][0]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == "levels")
        .unwrap()
        .clone();
    let px = get(
        app,
        "/api/pxweb/v2/tables/at_or_above/data?valuecodes[Region]=1880&valuecodes[Tid]=VT2026\
         &valuecodes[ContentsCode]=share_pct,pupils",
    )
    .await;
    assert_eq!(px.status, StatusCode::OK, "{}", px.text());
    let px: serde_json::Value = serde_json::from_slice(&px.body).unwrap();
    assert_eq!(
        px["id"],
        serde_json::json!(["Region", "Niva", "Tid", "ContentsCode"])
    );
    let values = px["value"].as_array().unwrap();
    let rows = levels["rows"].as_array().unwrap();
    assert_eq!(values.len(), rows.len() * 2);
    let (mut hidden, mut shown) = (0, 0);
    for (i, row) in rows.iter().enumerate() {
        for (k, col) in [(0, 1), (1, 2)] {
            let (v, r) = (&values[2 * i + k], &row[col]);
            if r.is_null() {
                assert!(v.is_null(), "level {i}: hidden in the report, {v} in PxWeb");
                assert_eq!(px["status"][(2 * i + k).to_string()], "..");
                hidden += 1;
            } else {
                assert_eq!(v, r, "level {i}");
                shown += 1;
            }
        }
    }
    (hidden, shown)
}

/// PxWeb API v2 as analysts' clients read it: Python's `pxwebpy` lists the tables and fetches
/// every one (the default selection and a selection it posts) into a pandas data frame,
/// `jsonstat-validator` accepts every metadata and data answer, and a value hidden in a report
/// is `null` with status `..` in PxWeb too.
#[tokio::test]
async fn pxweb_clients_read_every_table_and_hidden_values_stay_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let lake = slt_lake(dir.path()).await;
    let mut policies = Policies::load(&policy::Source::resolve(None)).unwrap();
    policies.shared.policy.disclosure.confidential_organisers =
        serde_json::from_str(r#"["KOMMUN"]"#).unwrap();
    let app = router(published(App::new(lake, policies, now)).await);
    let (hidden, _) = levels_against_pxweb(&app).await;
    assert!(hidden > 0);
    let open_dir = tempfile::tempdir().unwrap();
    let open = router(published(app_state(slt_lake(open_dir.path()).await)).await);
    let (hidden, shown) = levels_against_pxweb(&open).await;
    assert!(hidden == 0 && shown > 0, "hidden {hidden}, shown {shown}");

    // Errors in the specification's Problem shape.
    for (uri, status) in [
        (
            "/api/pxweb/v2/tables/finns_inte/metadata",
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/pxweb/v2/tables/absence_rate/data?valuecodes[Region]=9999",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/pxweb/v2/tables/absence_rate/data?valuecodes[Kön]=K",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/pxweb/v2/tables/absence_rate/data?outputFormat=sas",
            StatusCode::BAD_REQUEST,
        ),
        ("/api/pxweb/v2/tables?lang=fi", StatusCode::BAD_REQUEST),
    ] {
        let r = get(&app, uri).await;
        assert_eq!(r.status, status, "{uri}: {}", r.text());
        assert_eq!(r.content_type, "application/problem+json", "{uri}");
        let p: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(p["status"], status.as_u16());
        assert!(!p["detail"].as_str().unwrap().is_empty());
    }
    // The other formats: Swedish CSV, XLSX and PX.
    let csv = get(
        &app,
        "/api/pxweb/v2/tables/absence_rate/data?outputFormat=csv",
    )
    .await;
    assert!(
        csv.text().starts_with("\u{FEFF}region;tid;"),
        "{}",
        csv.text()
    );
    let xlsx = get(
        &app,
        "/api/pxweb/v2/tables/absence_rate/data?outputFormat=xlsx",
    )
    .await;
    assert!(xlsx.body.starts_with(b"PK"));
    let px = get(
        &app,
        "/api/pxweb/v2/tables/absence_rate/data?outputFormat=px",
    )
    .await
    .text();
    assert!(
        px.contains("MATRIX=\"absence_rate\";") && px.contains("DATA=\n"),
        "{px}"
    );

    // The real clients, over a socket.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/pxweb/v2", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let out = tokio::task::spawn_blocking(move || {
        run_python(
            r#"
import json, sys, requests
import pandas as pd
from pxweb import PxApi
from jsonstat_validator import validate_jsonstat
base = sys.argv[1]
api = PxApi(base, disable_cache=True)
out = {"tables": []}
for t in api.all_tables():
    tid = t["id"]
    meta = api.get_table_metadata(tid)
    validate_jsonstat(meta)
    index = meta["dimension"]["Region"]["category"]["index"]
    codes = list(index) if isinstance(index, list) else sorted(index, key=index.get)
    validate_jsonstat(requests.get(f"{base}/tables/{tid}/data").json())
    default = pd.DataFrame(api.get_table_data(tid))
    posted = pd.DataFrame(api.get_table_data(
        tid, value_codes={"Region": ["18*"], "Tid": ["top(2)"], "ContentsCode": "*"}))
    # Two of Örebro län's areas the table has: the municipality and the county, or schools.
    two = [c for c in codes if c in ("1880", "18")] or [c for c in codes if c.startswith("18")][:2]
    body = {"selection": [{"variableCode": "Region", "valueCodes": two},
                          {"variableCode": "Tid", "valueCodes": ["*"]}]}
    validate_jsonstat(requests.post(f"{base}/tables/{tid}/data", json=body).json())
    out["tables"].append({"id": tid, "default": list(default.shape),
                          "posted": list(posted.shape),
                          "hidden": int(posted["value"].isna().sum()),
                          "columns": list(posted.columns)})
print(json.dumps(out))
"#,
            &[&base],
        )
    })
    .await
    .unwrap();
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let tables = out["tables"].as_array().unwrap();
    let ids: Vec<&str> = tables.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "absence_rate",
            "at_or_above",
            "gender_gap",
            "reporting_rate",
            "coverage",
            "change",
            "overview",
            "escalation",
            "attainment",
            "benchmark",
            "harmonisation"
        ]
    );
    for t in tables {
        assert!(t["default"][0].as_u64().unwrap() > 0, "{t}");
        assert!(t["posted"][0].as_u64().unwrap() > 0, "{t}");
        assert_eq!(t["columns"].as_array().unwrap().last().unwrap(), "value");
    }
    let levels = tables.iter().find(|t| t["id"] == "at_or_above").unwrap();
    assert!(levels["hidden"].as_u64().unwrap() > 0, "{levels}");
}

/// Kolada-shaped series as a plain `requests` client reads them, following `next_url`: a
/// municipality's and a school unit's series, each term's value the indicators API's (hidden
/// in both, `null` with status `..`, or the same number).
#[tokio::test]
async fn kolada_series_page_by_next_url_and_agree_with_the_indicators_api() {
    let dir = tempfile::tempdir().unwrap();
    let lake = slt_lake(dir.path()).await;
    let mut policies = Policies::load(&policy::Source::resolve(None)).unwrap();
    policies.shared.policy.disclosure.confidential_organisers =
        serde_json::from_str(r#"["KOMMUN"]"#).unwrap();
    let app = router(published(App::new(lake, policies, now)).await);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/kolada/v3", listener.local_addr().unwrap());
    let served = app.clone();
    tokio::spawn(async move { axum::serve(listener, served).await });
    let out = tokio::task::spawn_blocking(move || {
        run_python(
            r#"
import json, sys, requests
base = sys.argv[1]
def every(url):
    rows, pages, count = [], 0, None
    while url:
        page = requests.get(url).json()
        count = page["count"] if count is None else count
        assert page["count"] == count, page
        rows += page["values"]
        url = page["next_url"]
        pages += 1
    return {"rows": rows, "pages": pages, "count": count}
out = {
    "kpis": every(f"{base}/kpi")["rows"],
    "municipality": every(f"{base}/data?kpi=absence_pct,share_problematisk&municipality=1880,0018,0000&per_page=2"),
    "path": every(f"{base}/data/kpi/absence_pct/municipality/1880/year/2026"),
    "ou": every(f"{base}/oudata/kpi/absence_pct/ou/18800101"),
    "ous": every(f"{base}/ou?municipality=1880")["rows"],
}
print(json.dumps(out))
"#,
            &[&base],
        )
    })
    .await
    .unwrap();
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let kpis: Vec<&str> = out["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert!(
        kpis.contains(&"absence_pct") && kpis.contains(&"share_problematisk"),
        "{kpis:?}"
    );
    let m = &out["municipality"];
    assert_eq!(
        m["rows"].as_array().unwrap().len() as u64,
        m["count"].as_u64().unwrap()
    );
    assert!(m["pages"].as_u64().unwrap() > 1, "paged by next_url: {m}");
    assert!(
        out["ous"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == "18800101")
    );
    let path = out["path"]["rows"].as_array().unwrap();
    assert!(
        !path.is_empty()
            && path
                .iter()
                .all(|r| r["period"].as_str().unwrap().ends_with("2026"))
    );

    // Each series value against the indicators API's term row.
    let rows: Vec<serde_json::Value> = m["rows"]
        .as_array()
        .unwrap()
        .iter()
        .chain(out["ou"]["rows"].as_array().unwrap())
        .cloned()
        .collect();
    let (hidden, _) = kolada_against_api(&app, &rows).await;
    assert!(hidden > 0);
    let open_dir = tempfile::tempdir().unwrap();
    let open = router(published(app_state(slt_lake(open_dir.path()).await)).await);
    let r = get(
        &open,
        "/api/kolada/v3/data?kpi=absence_pct&municipality=1880,0018,0000",
    )
    .await;
    let page: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let (hidden, shown) = kolada_against_api(&open, page["values"].as_array().unwrap()).await;
    assert!(hidden == 0 && shown > 0, "hidden {hidden}, shown {shown}");

    // A wrong key figure is a clear 404.
    let r = get(&app, "/api/kolada/v3/data/kpi/N15033/municipality/1880").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("absence_pct"), "{}", r.text());
}

/// Kolada rows of `absence_pct` against the indicators API's term rows: (hidden, shown).
async fn kolada_against_api(app: &axum::Router, rows: &[serde_json::Value]) -> (usize, usize) {
    let (mut hidden, mut shown) = (0, 0);
    for row in rows.iter().filter(|r| r["kpi"] == "absence_pct") {
        let area = row["municipality"].as_str().or(row["ou"].as_str()).unwrap();
        let code = match area {
            "0000" => "00",
            "0018" => "18",
            c => c,
        };
        let term = row["period"].as_str().unwrap();
        let r = get(
            app,
            &format!("/api/v1/indicators/absence_rate?term={term}&area_code={code}&window=term"),
        )
        .await;
        let api: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let api = &api["rows"][0];
        let total = &row["values"][0];
        assert_eq!(total["gender"], "T");
        assert_eq!(total["value"], api["absence_pct"], "{area} {term}");
        if total["value"].is_null() {
            assert_eq!(total["status"], "..");
            assert_eq!(api["status"]["absence_pct"], "..");
            hidden += 1;
        } else {
            assert_eq!(total["status"], "");
            shown += 1;
        }
    }
    (hidden, shown)
}
