//! The report server through its router (no socket): every route, every alternate and every
//! error, with the rendered CSV and HTML pinned by insta snapshots.

use std::io::Read;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use narvaro::http::{App, router};
use narvaro::lake::Lake;
use narvaro::policy::{self, Policies};
use tower::ServiceExt;

use crate::common::{fixture, now, slt_lake};

fn app(lake: Lake) -> axum::Router {
    let policies = Policies::load(&policy::Source::resolve(None)).unwrap();
    router(Arc::new(App::new(lake, policies, now)))
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

async fn get(app: &axum::Router, uri: &str) -> Reply {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        content_type,
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
    let app = app(lake);
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
        assert!(html.contains("Genererad: 2026-11-01 09:00 UTC"));
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
    let app = app(slt_lake(dir.path()).await);
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
    let app = app(slt_lake(dir.path()).await);
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
    let app = app(lake);
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
    let app = app(lake);
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

#[tokio::test]
async fn errors_are_clear_swedish_pages_with_the_right_status() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(slt_lake(dir.path()).await);
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
            404,
            "dataversion 999 finns inte",
        ),
        (
            "/reports/committee/1880/VT2026.pdf",
            404,
            "formatet .pdf finns inte",
        ),
        (
            "/reports/budget/1880/VT2026",
            404,
            "finns inte; välj committee, county eller school",
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
    let app = app(Lake::open(dir.path().join("lake")).await.unwrap());
    let old = get(&app, "/reports/school/18800101/VT2026.json").await;
    assert_eq!(old.status, StatusCode::OK);
    narvaro::ingest::ingest_path(&lake, &fixture("small/attendance_corrected.csv"), now())
        .await
        .unwrap();
    let new = get(&app, "/reports/school/18800101/VT2026.json").await;
    let pinned = get(
        &app,
        &format!("/reports/school/18800101/VT2026.json?as_of={before}"),
    )
    .await;
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
    let html = get(
        &app,
        &format!("/reports/school/18800101/VT2026?as_of={before}"),
    )
    .await
    .text();
    assert!(html.contains(&format!(
        "href=\"/reports/school/18800101/VT2026.csv?as_of={before}\""
    )));
}
