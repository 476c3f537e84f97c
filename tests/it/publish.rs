//! Publications: every report computed once per data version and stored in the lake; pages
//! read only what was published.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use narvaro::http::{App, router};
use narvaro::lake::Lake;
use narvaro::policy::{self, Policies};
use tower::ServiceExt;

use crate::common::{fixture, municipality_lake, now, scalar, slt_lake};

async fn get_json(app: &axum::Router, uri: &str) -> (u16, serde_json::Value) {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

fn policies() -> Policies {
    Policies::load(&policy::Source::resolve(None)).unwrap()
}

#[tokio::test]
async fn pages_read_only_the_stored_publication_and_a_new_one_carries_over_what_did_not_change() {
    let dir = tempfile::tempdir().unwrap();
    let lake = slt_lake(dir.path()).await;
    let uploaded = lake.table("attendance").await.unwrap().version().unwrap();

    // Nothing published yet: pages say so (503), they do not compute.
    let unpublished = router(Arc::new(App::new(
        Lake::open(dir.path().join("lake")).await.unwrap(),
        policies(),
        now,
    )));
    let (status, body) = get_json(&unpublished, "/reports/committee/1880/VT2026.json").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("inga siffror är publicerade")
    );
    // Not ready for a load balancer until a publication is served.
    let (status, ready) = get_json(&unpublished, "/readyz").await;
    assert_eq!(status, 503, "{ready}");
    assert!(ready["reason"].as_str().unwrap().contains("publicerade"));

    let publisher = App::new(lake, policies(), now);
    let first = publisher
        .publish()
        .await
        .unwrap()
        .expect("a first publication");
    assert_eq!(first.publication, 1);
    assert_eq!(first.data_version, uploaded);
    assert!(first.reports >= 20, "{first:?}");
    assert_eq!(first.written, first.reports, "everything is new");
    assert!(first.releases_solved > 0);
    assert_eq!(
        publisher.publish().await.unwrap(),
        None,
        "nothing changed, nothing to publish"
    );

    // A correction lands but is not published yet.
    let writer = Lake::open(dir.path().join("lake")).await.unwrap();
    narvaro::ingest::ingest_path(&writer, &fixture("slt/attendance.csv"), now())
        .await
        .unwrap();
    let latest = writer.table("attendance").await.unwrap().version().unwrap();
    assert!(latest > uploaded);

    // A restarted server (a new state on a new handle) serves the stored publication: the
    // version it shows is the published one, not the lake's latest, so nothing was computed.
    let restarted = Arc::new(App::new(
        Lake::open(dir.path().join("lake")).await.unwrap(),
        policies(),
        now,
    ));
    let app = router(restarted.clone());
    let (status, page) = get_json(&app, "/reports/committee/1880/VT2026.json").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data_version"], uploaded);
    let (_, health) = get_json(&app, "/healthz").await;
    assert_eq!(health["data_version"], latest);
    let (status, ready) = get_json(&app, "/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["publication"], 1);
    assert_eq!(ready["data_version"], uploaded);
    assert!(ready["age_seconds"].as_i64().is_some_and(|a| a >= 0));
    assert_eq!(health["published"]["data_version"], uploaded);

    // The same figures uploaded again: a new publication whose reports all carry over, and
    // whose releases all come from the store.
    let second = restarted.publish().await.unwrap().expect("a new version");
    assert_eq!(second.publication, 2);
    assert_eq!(second.data_version, latest);
    assert_eq!(second.reports, first.reports);
    assert_eq!(second.written, 0, "{second:?}");
    assert_eq!(
        second.built, 0,
        "nothing any report read changed: {second:?}"
    );
    assert_eq!(second.releases_solved, 0, "{second:?}");
    let (_, page) = get_json(&app, "/reports/committee/1880/VT2026.json").await;
    assert_eq!(page["data_version"], latest);

    // The publications are a Delta table any reader can query.
    let n = scalar(
        &writer,
        None,
        "SELECT count(*) FROM publications WHERE report = 'index'",
    )
    .await;
    assert_eq!(n, 2);

    // A report is read from the place the catalogue found it, and still once compaction has
    // replaced its file and a vacuum has removed it.
    let catalogue = narvaro::publish::Catalogue::load(&writer).await.unwrap();
    let at = catalogue.latest().unwrap().clone();
    let key = ("committee".into(), "1880".into(), "VT2026".into(), false);
    let stored = catalogue
        .holder(&key, at.number)
        .unwrap()
        .2
        .unwrap()
        .clone();
    let direct = writer.publication_row_at(&stored).await.unwrap().unwrap();
    assert_eq!(
        (
            direct.report.as_str(),
            direct.area_code.as_str(),
            direct.term.as_str()
        ),
        ("committee", "1880", "VT2026")
    );
    let before = narvaro::publish::read_report(&writer, &catalogue, &key, &at)
        .await
        .unwrap();
    writer.optimize(true).await.unwrap();
    let files: Vec<String> = writer
        .table("publications")
        .await
        .unwrap()
        .get_file_uris()
        .unwrap()
        .collect();
    assert!(
        files.iter().all(|f| !f.ends_with(&*stored.file)),
        "{stored:?} in {files:?}"
    );
    let old = dir.path().join("lake/publications").join(&*stored.file);
    std::fs::remove_file(&old).unwrap();
    assert_eq!(writer.publication_row_at(&stored).await.unwrap(), None);
    let after = narvaro::publish::read_report(&writer, &catalogue, &key, &at)
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&before).unwrap(),
        serde_json::to_value(&after).unwrap()
    );
    assert_eq!(before.term, "VT2026");
}

/// The attacker who keeps every publication: publish a municipality, correct one school's
/// term (two pupils of a group reported in the wrong band), publish again, and solve for every
/// hidden cell with both publications' figures in hand. Protected alone, the second
/// publication would narrow the school's 3 pupils at 50 % or more that the first one hid to
/// fewer values than the policy allows; protected beside the first, as the publisher does,
/// nothing can be narrowed, and a school the correction did not touch keeps every status it
/// had.
#[tokio::test]
async fn two_publications_of_a_corrected_period_cannot_be_differenced() {
    use narvaro::disclosure::release::county_release;
    use narvaro::disclosure::{self, Protection, audit};
    use narvaro::engine::Engine;

    let dir = tempfile::tempdir().unwrap();
    let (lake, files) = municipality_lake(dir.path(), "1814").await;
    let app = App::new(lake, policies(), now);
    let first = app.publish().await.unwrap().expect("published");

    // The correction: school 18140101's spring term up to June, its grade 1 girls with two
    // pupils moved from under 10 % absence to 60 %.
    let june = std::fs::read_to_string(files.join("attendance/2026-06/1814.csv")).unwrap();
    let mut lines = june.lines();
    let header: Vec<&str> = lines.next().unwrap().split(';').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let mut corrected = vec![header.join(";")];
    let mut moved = 0;
    for line in lines.filter(|l| l.starts_with("18140101;2026-06;term;")) {
        let mut f: Vec<String> = line.split(';').map(String::from).collect();
        if f[column("grade")] == "1" && f[column("gender")] == "K" {
            for b in 0..10 {
                let c = column(&format!("pct_total_{b:02}"));
                while moved < 2 && f[c] != "0" {
                    f[c] = (f[c].parse::<i64>().unwrap() - 1).to_string();
                    let to = column("pct_total_60");
                    f[to] = (f[to].parse::<i64>().unwrap() + 1).to_string();
                    moved += 1;
                }
            }
        }
        corrected.push(f.join(";"));
    }
    assert_eq!(moved, 2);
    assert!(corrected.len() > 10, "{}", corrected.len());
    let fix = dir.path().join("correction.csv");
    std::fs::write(&fix, corrected.join("\n")).unwrap();
    let writer = Lake::open(dir.path().join("lake")).await.unwrap();
    narvaro::ingest::ingest_path(&writer, &fix, now())
        .await
        .unwrap();
    let second = app.publish().await.unwrap().expect("published again");
    assert!(
        second.releases_solved > 0 && second.releases_solved < first.releases_solved,
        "only the corrected period's releases are solved again: {first:?} {second:?}"
    );

    // Both publications' statuses of the corrected release, as the lake stores them.
    let rows = writer
        .publication_rows(None, narvaro::lake::RELEASE, None)
        .await
        .unwrap();
    let mut published: Vec<_> = rows
        .iter()
        .filter(|r| r.area_code == "18" && r.term == "2026-06/term")
        .map(|r| {
            let body: serde_json::Value = serde_json::from_str(r.body.as_ref().unwrap()).unwrap();
            let p: Protection = serde_json::from_value(body["protection"].clone()).unwrap();
            (r.publication, r.table_versions.clone(), p)
        })
        .collect();
    published.sort_by_key(|(p, _, _)| *p);
    let [(1, old_versions, old), (2, new_versions, new)] = published.as_slice() else {
        panic!("one release per publication: {published:?}");
    };
    let policies = policies();
    let rules = policies.shared.policy.disclosure;
    let release_at = |versions: &str| {
        let (versions, policies, lake) = (versions.to_string(), &policies, &writer);
        async move {
            let engine = Engine::open_at_versions(lake, &versions, policies)
                .await
                .unwrap();
            county_release(&engine, "18", "2026-06", "term")
                .await
                .unwrap()
        }
    };
    let (before, after) = (
        release_at(old_versions).await,
        release_at(new_versions).await,
    );
    assert_ne!(before.values, after.values, "the correction changed it");

    // Everything both publications show, as one system.
    let attack = |second: &Protection| {
        disclosure::audit_beside(
            &after,
            &[(&before, old)],
            second,
            &rules,
            audit::Depth::Whole,
        )
    };
    let alone = attack(&Protection::new(&after, &rules));
    let leak = alone
        .failures
        .iter()
        .find(|f| f.key == "skolenhet:18140101|T|minst50@0")
        .unwrap_or_else(|| {
            panic!(
                "the attack works on a publication protected alone: {:?}",
                alone.failures
            )
        });
    assert!(
        leak.width().is_some_and(|w| w < 2 * rules.protection),
        "{leak:?}"
    );
    let report = attack(new);
    assert!(report.hidden > 0);
    assert!(report.passed(), "{:?}", report.failures);

    // A school the correction did not touch keeps its statuses.
    let mut kept = 0;
    for (key, s) in &old.status {
        if key.starts_with("skolenhet:") && !key.starts_with("skolenhet:18140101|") {
            assert_eq!(new.status(key), *s, "{key}");
            kept += 1;
        }
    }
    assert!(kept > 20, "{kept}");

    // The same attack on what the views show: every number of every report of both
    // publications, each publication alone and the corrected releases beside the first.
    use narvaro::attack::Scenario;
    let found = narvaro::attack::attack(
        &writer,
        &policies,
        &[Scenario::Anonymous, Scenario::Versions],
    )
    .await
    .unwrap();
    assert_eq!(found.publications, 2);
    assert!(found.leaks.is_empty(), "{:?}", found.leaks);
    let versions = &found.outcomes[1];
    assert_eq!(versions.scenario, Scenario::Versions);
    assert!(
        versions.releases > 0 && versions.hidden > 0,
        "the corrected releases attacked beside the first: {versions:?}"
    );
    for o in &found.outcomes {
        assert!(o.failures.is_empty(), "{:?}: {:?}", o.scenario, o.failures);
    }

    // The second publication built only the reports that read what the correction changed
    // (the spring term's, not the autumn's), and carried the rest over: exactly what building
    // every report again gives.
    assert!(
        second.built > 0 && second.built < second.reports,
        "{second:?}"
    );
    let rebuilt = narvaro::publish::publish_with(
        &writer,
        &policies,
        Default::default(),
        now(),
        &|_, _| {},
        true,
    )
    .await
    .unwrap()
    .expect("published again, every report built");
    assert_eq!(rebuilt.built, rebuilt.reports, "{rebuilt:?}");
    assert_eq!(rebuilt.written, 0, "{rebuilt:?}");

    // A school's report as read from the publication, its similar schools filled in from the
    // comparison the publication computed once, compares as the report built directly does
    // (the corrected school aside: its statuses follow the first publication's).
    let catalogue = narvaro::publish::Catalogue::load(&writer).await.unwrap();
    let at = catalogue.latest().unwrap().clone();
    let engine = Engine::open_with(&writer, None, &policies).await.unwrap();
    let spec = narvaro::report::spec("school").unwrap();
    let (mut compared, mut with_value) = (0, 0);
    for key in catalogue.reports_held(at.number) {
        if key.0 != "school" || key.2 != "VT2026" || key.3 || key.1 == "18140101" {
            continue;
        }
        let read = narvaro::publish::read_report(&writer, &catalogue, &key, &at)
            .await
            .unwrap();
        let built = narvaro::report::build(
            &engine,
            spec,
            &key.1,
            "VT2026".parse().unwrap(),
            now(),
            None,
        )
        .await
        .unwrap();
        let block = |r: &narvaro::report::Report| {
            let b = r
                .sections
                .iter()
                .flat_map(|s| &s.blocks)
                .find(|b| b.id == "benchmark");
            serde_json::to_value(b.unwrap()).unwrap()
        };
        assert_eq!(block(&read), block(&built), "{key:?}");
        let similar = &block(&read)["rows"][3];
        let n: i64 = similar[0]
            .as_str()
            .and_then(|t| t.strip_prefix("Liknande skolor ("))
            .and_then(|t| t.strip_suffix(" st)"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{similar}"));
        with_value += usize::from(n > 0 && similar[1].is_number());
        compared += 1;
    }
    assert!(compared >= 3 && with_value > 0, "{compared} {with_value}");
}

/// A publication records what it was computed from besides the data (the report definitions,
/// views and policies): a changed policy publishes again though no data changed, and reports
/// whose content it does not touch carry over.
#[tokio::test]
async fn a_changed_policy_publishes_again_without_new_data() {
    let dir = tempfile::tempdir().unwrap();
    let lake = slt_lake(dir.path()).await;
    let first = App::new(lake, policies(), now)
        .publish()
        .await
        .unwrap()
        .expect("a first publication");
    let reopen = || async { Lake::open(dir.path().join("lake")).await.unwrap() };
    let same = App::new(reopen().await, policies(), now);
    assert_eq!(same.publish().await.unwrap(), None, "nothing changed");
    let reader = router(Arc::new(App::new(reopen().await, policies(), now)));
    let page = "/reports/committee/1880/VT2026.json";
    let (_, before) = get_json(&reader, page).await;

    let mut changed = policies();
    changed.shared.policy.disclosure.min_pupils += 5;
    let again = App::new(reopen().await, changed, now)
        .publish()
        .await
        .unwrap()
        .expect("the rules changed: a new publication");
    assert_eq!(again.publication, first.publication + 1);
    assert_eq!(again.data_version, first.data_version);
    assert_eq!(again.reports, first.reports);
    assert!(again.written > 0, "{again:?}");

    // A permanent link names its publication and shows its figures forever, to anyone.
    let (status, now_shown) = get_json(&reader, page).await;
    assert_eq!(status, 200);
    assert_ne!(now_shown, before, "the rules changed what the page shows");
    let (status, first_again) = get_json(&reader, &format!("{page}?publication=1")).await;
    assert_eq!(status, 200, "{first_again}");
    assert_eq!(first_again, before);
    let html = reader
        .clone()
        .oneshot(
            Request::get("/reports/committee/1880/VT2026")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let html = axum::body::to_bytes(html.into_body(), usize::MAX)
        .await
        .unwrap();
    let html = String::from_utf8(html.to_vec()).unwrap();
    assert!(
        html.contains("href=\"/reports/committee/1880/VT2026?publication=2\""),
        "the page links its permanent link"
    );
    let (_, api) = get_json(
        &reader,
        "/api/v1/indicators/absence_rate?area_code=1880&publication=1",
    )
    .await;
    assert_eq!(api["publication"], 1);
    assert_eq!(
        api["permalink"],
        "/api/v1/indicators/absence_rate?area_code=1880&publication=1"
    );
    for (uri, status) in [
        (format!("{page}?publication=9"), 404),
        (format!("{page}?publication=första"), 400),
    ] {
        let (s, body) = get_json(&reader, &uri).await;
        assert_eq!(s, status, "{uri}: {body}");
        assert!(!body["error"].as_str().unwrap().is_empty());
    }
}

/// Every open data answer names its publication, and its permanent link shows that
/// publication's figures after a newer one: PxWeb tables (`extension.permalink`, and the
/// `Link` header), Kolada series (`?publication=N`, and every `next_url` names it).
#[tokio::test]
async fn permanent_links_show_a_publications_figures_in_pxweb_and_kolada() {
    let dir = tempfile::tempdir().unwrap();
    let lake = slt_lake(dir.path()).await;
    // No disclosure rules, so that the slt lake's small groups show and a changed level shows.
    let open = crate::common::policies_without_disclosure;
    App::new(lake, open(), now)
        .publish()
        .await
        .unwrap()
        .unwrap();
    let reopen = || async { Lake::open(dir.path().join("lake")).await.unwrap() };
    let reader = router(Arc::new(App::new(reopen().await, open(), now)));

    // Every PxWeb table and every Kolada series of a municipality, as they stand.
    let (_, tables) = get_json(&reader, "/api/pxweb/v2/tables?pageSize=100").await;
    let mut tables_before = Vec::new();
    for t in tables["tables"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap();
        let uri = format!("/api/pxweb/v2/tables/{id}/data?valuecodes[Region]=*&valuecodes[Tid]=*");
        let res = reader
            .clone()
            .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let header = res.headers()["link"].to_str().unwrap().to_string();
        let (_, answer) = get_json(&reader, &uri).await;
        let link = answer["extension"]["permalink"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(header, format!("<{link}>; rel=\"canonical\""));
        assert!(link.ends_with("&publication=1"), "{link}");
        assert!(link.contains("valuecodes[Region]=*"), "{link}");
        tables_before.push((uri, link, answer));
    }
    assert!(tables_before.len() >= 10);
    let (_, kpis) = get_json(&reader, "/api/kolada/v3/kpi").await;
    let mut series_before = Vec::new();
    for k in kpis["values"].as_array().unwrap() {
        let id = k["id"].as_str().unwrap();
        let uri = format!("/api/kolada/v3/data/kpi/{id}/municipality/1880");
        let (_, answer) = get_json(&reader, &format!("{uri}?per_page=1")).await;
        if let Some(next) = answer["next_url"].as_str() {
            assert!(next.contains("publication=1"), "{next}");
        }
        let (_, answer) = get_json(&reader, &uri).await;
        series_before.push((uri, answer["values"].clone()));
    }

    // The first shared level moves from 10 to 12 %: a new definition, new figures.
    let mut changed = open();
    changed.shared.policy.levels[0].percent = 12;
    App::new(reopen().await, changed, now)
        .publish()
        .await
        .unwrap()
        .expect("a new publication");

    let figures = |v: &serde_json::Value| (v["value"].clone(), v["status"].clone());
    let mut tables_changed = 0;
    for (uri, link, before) in &tables_before {
        let (_, now_shown) = get_json(&reader, uri).await;
        let now_link = now_shown["extension"]["permalink"].as_str().unwrap();
        assert!(now_link.ends_with("publication=2"), "{now_link}");
        tables_changed += usize::from(figures(&now_shown) != figures(before));
        let (status, again) = get_json(&reader, link).await;
        assert_eq!(status, 200, "{link}");
        assert!(figures(&again) == figures(before), "{link}");
    }
    assert!(
        tables_changed > 0,
        "the new level changes the levels' tables"
    );
    let mut series_changed = 0;
    for (uri, before) in &series_before {
        let (_, now_shown) = get_json(&reader, uri).await;
        series_changed += usize::from(&now_shown["values"] != before);
        let (_, again) = get_json(&reader, &format!("{uri}?publication=1")).await;
        assert!(&again["values"] == before, "{uri}");
    }
    assert!(series_changed > 0, "the new level changes its share");
    let (status, problem) = get_json(
        &reader,
        "/api/pxweb/v2/tables/absence_rate/data?publication=9",
    )
    .await;
    assert_eq!(status, 404, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains('9'),
        "{problem}"
    );
}

/// `narvaro lake vacuum` deletes the files no publication needs and keeps every version a
/// publication was computed from: after a correction, a compaction and a vacuum that keeps
/// nothing else, the first publication's data still reads and its permanent link renders.
#[tokio::test]
async fn vacuum_keeps_every_version_a_publication_read() {
    let dir = tempfile::tempdir().unwrap();
    let lake = crate::common::small_lake(dir.path()).await;
    let first = App::new(lake, policies(), now)
        .publish()
        .await
        .unwrap()
        .unwrap();
    let reopen = || async { Lake::open(dir.path().join("lake")).await.unwrap() };
    let rows_then = crate::common::sql(
        &reopen().await,
        Some(first.data_version),
        "SELECT sum(reported_minutes) AS n FROM attendance",
    )
    .await;
    // A correction, taken back before the next publication: its files are in no publication.
    let writer = reopen().await;
    for f in ["small/attendance_corrected.csv", "small/attendance.csv"] {
        narvaro::ingest::ingest_path(&writer, &fixture(f), now())
            .await
            .unwrap();
    }
    writer.optimize(true).await.unwrap();
    App::new(reopen().await, policies(), now)
        .publish()
        .await
        .unwrap()
        .expect("a second publication");

    // What a vacuum keeping no version would delete, against what the command deletes.
    let everything = reopen()
        .await
        .vacuum(&Default::default(), chrono::Duration::zero(), true)
        .await
        .unwrap();
    let attendance = |v: &[narvaro::lake::Vacuumed]| {
        v.iter()
            .find(|t| t.table == "attendance")
            .unwrap()
            .files
            .len()
    };
    let lake_dir = dir.path().join("lake");
    let (code, out, err) = crate::common::narvaro(&[
        "lake",
        "vacuum",
        "--lake",
        lake_dir.to_str().unwrap(),
        "--retain-hours",
        "0",
    ]);
    assert_eq!(code, 0, "{err}");
    let deleted: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("attendance: "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        deleted > 0,
        "the correction's files before compaction: {out}"
    );
    assert!(
        attendance(&everything) > deleted,
        "the first publication's files are kept: {out}"
    );

    // The first publication's version still reads, and its permanent link renders.
    let rows_now = crate::common::sql(
        &reopen().await,
        Some(first.data_version),
        "SELECT sum(reported_minutes) AS n FROM attendance",
    )
    .await;
    assert_eq!(
        format!("{:?}", rows_now[0].column(0)),
        format!("{:?}", rows_then[0].column(0))
    );
    let reader = router(Arc::new(App::new(reopen().await, policies(), now)));
    let (status, page) =
        get_json(&reader, "/reports/committee/1880/VT2026.json?publication=1").await;
    assert_eq!(status, 200, "{page}");
    // The files the first publication reads are on disk; the correction's are gone.
    let table = dir.path().join("lake/attendance");
    let on_disk = everything
        .iter()
        .find(|t| t.table == "attendance")
        .unwrap()
        .files
        .iter()
        .filter(|f| table.join(f).exists())
        .count();
    assert_eq!(on_disk, attendance(&everything) - deleted);
    assert!(on_disk > 0);
}

/// The slt fixtures' lake under `dir`, an engine on it with the views computed as the
/// publisher computes them, and its report index.
async fn slt_engine(dir: &std::path::Path) -> (narvaro::engine::Engine, narvaro::report::Index) {
    let lake = slt_lake(dir).await;
    let engine = narvaro::engine::Engine::open_with(&lake, None, &policies())
        .await
        .unwrap();
    engine.materialize().await.unwrap();
    let index = narvaro::report::index(&engine).await.unwrap();
    (engine, index)
}

/// `school_steps` is computed a period at a time (so a national year's histograms are never
/// all summed at once): what the publisher holds is every row the view gives over the whole
/// lake, for every period.
#[tokio::test]
async fn a_view_computed_a_period_at_a_time_holds_the_whole_views_rows() {
    let dir = tempfile::tempdir().unwrap();
    let lake = slt_lake(dir.path()).await;
    let policies = policies();
    let open = || narvaro::engine::Engine::open_with(&lake, None, &policies);
    let (computed, plain) = (open().await.unwrap(), open().await.unwrap());
    computed.materialize().await.unwrap();
    let sql = "SELECT school_unit_code, period, \"window\", measure, band, students, pupils \
               FROM school_steps ORDER BY 1, 2, 3, 4, 5";
    let rows = |batches: Vec<arrow::array::RecordBatch>| {
        arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    };
    let (whole, by_period) = (
        rows(plain.sql(sql).await.unwrap()),
        rows(computed.sql(sql).await.unwrap()),
    );
    assert_eq!(whole, by_period);
    let periods = scalar(
        &lake,
        None,
        "SELECT count(DISTINCT period) FROM school_steps WHERE pupils > 0",
    )
    .await;
    assert!(periods > 1, "{periods} periods");
}

/// A school's report does not read the similar schools' comparison (schools across the whole
/// lake, moved by every upload anywhere): it reads its own row of `benchmark` without the
/// comparison's columns, so an upload elsewhere leaves what it read unchanged. The comparison
/// is filled in when the report is read.
#[tokio::test]
async fn a_schools_report_reads_only_its_own_row_of_the_comparison() {
    use narvaro::engine::reads::{self, Read};
    let dir = tempfile::tempdir().unwrap();
    let (engine, index) = slt_engine(dir.path()).await;
    let school = &index.counties[0].municipalities[0].schools[0];
    let term = *school.terms.last().unwrap();
    let spec = narvaro::report::spec("school").unwrap();
    let (built, read) = reads::tracked(narvaro::report::build_views(
        &engine,
        spec,
        &school.code,
        term,
        now(),
        &[None],
    ))
    .await;
    built.unwrap();
    let benchmark: Vec<_> = read
        .inputs()
        .into_iter()
        .filter(|r| matches!(r, Read::Range(t, ..) | Read::Table(t) if t == "benchmark"))
        .collect();
    assert!(!benchmark.is_empty(), "{:?}", read.inputs());
    for r in &benchmark {
        let Read::Range(_, fixed, _, columns) = r else {
            panic!("the whole comparison read: {r:?}");
        };
        assert_eq!(fixed.first(), Some(&school.code), "{r:?}");
        assert!(!columns.is_empty(), "{r:?}");
        assert!(
            columns.iter().all(|c| !c.contains("similar")),
            "{columns:?}"
        );
    }
}

/// A committee report lists its municipality's schools by their codes (`$schools`), so it reads
/// the school rows of those schools alone: an upload anywhere else in the country leaves what it
/// read unchanged and the publisher carries it over instead of building it.
#[tokio::test]
async fn a_committee_report_reads_only_its_own_schools_rows() {
    use narvaro::engine::reads::{self, Read};
    let dir = tempfile::tempdir().unwrap();
    let (engine, index) = slt_engine(dir.path()).await;
    let municipality = index
        .counties
        .iter()
        .flat_map(|c| &c.municipalities)
        .find(|m| m.schools.len() >= 2)
        .expect("a municipality with two schools");
    let schools: Vec<&str> = municipality
        .schools
        .iter()
        .map(|s| s.code.as_str())
        .collect();
    let term = *municipality.area.terms.last().unwrap();
    let spec = narvaro::report::spec("committee").unwrap();
    let (built, read) = reads::tracked(narvaro::report::build_views(
        &engine,
        spec,
        &municipality.area.code,
        term,
        now(),
        &[None],
    ))
    .await;
    let built = built.unwrap();
    let listed = built[0]
        .sections
        .iter()
        .flat_map(|s| &s.blocks)
        .find(|b| b.id == "absence_by_school")
        .unwrap();
    assert!(!listed.rows.is_empty());
    let school_rows: Vec<_> = read
        .inputs()
        .into_iter()
        .filter(|r| match r {
            Read::Range(t, fixed, ..) => {
                ["absence_rate", "at_or_above", "reporting_rate"].contains(&t.as_str())
                    && fixed.first().is_some_and(|f| f == "school")
            }
            Read::Table(t) => {
                ["absence_rate", "at_or_above", "reporting_rate"].contains(&t.as_str())
            }
            _ => false,
        })
        .collect();
    assert!(!school_rows.is_empty(), "{:?}", read.inputs());
    for r in &school_rows {
        let Read::Range(_, fixed, _, _) = r else {
            panic!("a whole view read: {r:?}");
        };
        assert!(
            fixed
                .get(1)
                .is_some_and(|code| schools.contains(&code.as_str())),
            "every school's rows read, not {schools:?}: {r:?}"
        );
    }
}

/// A fresh lake under `dir/lake` with municipalities of the national fixtures (seed `seed`,
/// written under `dir/files-SEED-CODE`): their registers and every month's attendance.
async fn national_municipalities(dir: &std::path::Path, codes: &[&str], seed: u64) -> Lake {
    let lake = Lake::open(dir.join("lake")).await.unwrap();
    for code in codes {
        let files = national_files(dir, code, seed);
        crate::common::ingest_municipality(&lake, &files, code, "parquet").await;
    }
    lake
}

/// Municipality `code` of the national fixtures with `seed`, generated under `dir`.
fn national_files(dir: &std::path::Path, code: &str, seed: u64) -> std::path::PathBuf {
    let out = dir.join(format!("files-{seed}-{code}"));
    narvaro::fixtures::generate(
        &narvaro::fixtures::Options {
            out: out.clone(),
            scale: narvaro::fixtures::Scale::National,
            seed,
            truth: false,
            ss12000: None,
            municipality: Some(code.into()),
        },
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap();
    out
}

/// An upload in one county builds none of another county's school reports, though their
/// similar schools' comparison spans both: Lekeberg's school 18140101 (grades F-9, 317
/// pupils) is compared with Falkenberg's 13150101 (F-9, 262 pupils). Falkenberg's June is
/// uploaded again with other figures: Lekeberg's school reports are carried over from the first
/// publication, and read from the second they show the new comparison.
#[tokio::test]
async fn an_upload_elsewhere_moves_a_schools_comparison_without_building_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let lake = national_municipalities(dir.path(), &["1814", "1315"], 2025).await;
    let app = App::new(lake, policies(), now);
    let first = app.publish().await.unwrap().expect("published");
    let writer = Lake::open(dir.path().join("lake")).await.unwrap();
    let key = (
        "school".to_string(),
        "18140101".to_string(),
        "VT2026".to_string(),
        false,
    );
    let read = |at: u64| {
        let (writer, key) = (&writer, &key);
        async move {
            let catalogue = narvaro::publish::Catalogue::load(writer).await.unwrap();
            let p = catalogue
                .publications
                .iter()
                .find(|p| p.number == at)
                .unwrap()
                .clone();
            let lekeberg: Vec<u64> = catalogue
                .reports_held(at)
                .iter()
                .filter(|k| k.0 == "school" && k.1.starts_with("1814"))
                .map(|k| catalogue.holder(k, at).unwrap().0)
                .collect();
            let r = narvaro::publish::read_report(writer, &catalogue, key, &p)
                .await
                .unwrap();
            let b = r
                .sections
                .iter()
                .flat_map(|s| &s.blocks)
                .find(|b| b.id == "benchmark");
            (lekeberg, serde_json::to_value(&b.unwrap().rows[3]).unwrap())
        }
    };
    let (held, before) = read(first.publication).await;
    assert!(
        held.len() >= 10 && held.iter().all(|&p| p == first.publication),
        "{held:?}"
    );
    assert_eq!(before[0], "Liknande skolor (1 st)", "{before}");
    assert!(before[1].is_number(), "{before}");

    // Falkenberg's June again, its two schools' rows from another run of the simulation.
    let other = national_files(dir.path(), "1315", 2026).join("attendance/2026-06/1315.parquet");
    let june = dir.path().join("1315-june.parquet");
    keep_rows(&other, &june, |school| {
        ["13150101", "13150108"].contains(&school)
    });
    narvaro::ingest::ingest_path(&writer, &june, now())
        .await
        .unwrap();
    let second = app.publish().await.unwrap().expect("published again");
    assert!(
        second.built > 0 && second.built < second.reports,
        "{second:?}"
    );

    let (held, after) = read(second.publication).await;
    assert!(
        held.iter().all(|&p| p == first.publication),
        "Lekeberg's school reports are carried over: {held:?} {second:?}"
    );
    assert_eq!(after[0], before[0]);
    assert_ne!(
        after[1], before[1],
        "the comparison follows Falkenberg's June"
    );
}

/// Copies the rows of Parquet file `from` whose `school_unit_code` passes `keep` to `to`.
fn keep_rows(from: &std::path::Path, to: &std::path::Path, keep: impl Fn(&str) -> bool) {
    use arrow::array::{AsArray, BooleanArray};
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(from).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let mut writer = None;
    for batch in reader {
        let batch = batch.unwrap();
        let codes = arrow::compute::cast(
            batch.column_by_name("school_unit_code").unwrap(),
            &arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let mask: BooleanArray = codes
            .as_string::<i32>()
            .iter()
            .map(|c| Some(c.is_some_and(&keep)))
            .collect();
        let kept = arrow::compute::filter_record_batch(&batch, &mask).unwrap();
        writer
            .get_or_insert_with(|| {
                parquet::arrow::ArrowWriter::try_new(
                    std::fs::File::create(to).unwrap(),
                    batch.schema(),
                    None,
                )
                .unwrap()
            })
            .write(&kept)
            .unwrap();
    }
    writer.unwrap().close().unwrap();
}

/// A term's report shows the grade 9 results of the school years that ended by its term: the
/// autumn's report, read after the spring's results came in, does not show them (nor is it
/// built again when they change), while the spring's report does.
#[tokio::test]
async fn a_terms_report_shows_only_the_school_years_ended_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, files) = municipality_lake(dir.path(), "1860").await;
    narvaro::ingest::ingest_path(&lake, &files.join("outcomes.csv"), now())
        .await
        .unwrap();
    let engine = narvaro::engine::Engine::open(&lake, None).await.unwrap();
    for (kind, code) in [
        ("committee", "1860"),
        ("school", "18600101"),
        ("county", "18"),
    ] {
        let mut years = Vec::new();
        for term in ["HT2025", "VT2026"] {
            let spec = narvaro::report::spec(kind).unwrap();
            let report =
                narvaro::report::build(&engine, spec, code, term.parse().unwrap(), now(), None)
                    .await
                    .unwrap();
            let block = report
                .sections
                .iter()
                .flat_map(|s| &s.blocks)
                .find(|b| b.id == "attainment")
                .unwrap();
            let c = block.column("school_year").unwrap();
            let mut shown: Vec<String> = block
                .rows
                .iter()
                .map(|r| match &r[c] {
                    narvaro::report::Cell::Text(y) => y.clone(),
                    other => panic!("{kind} {term}: {other:?}"),
                })
                .collect();
            shown.dedup();
            years.push(shown);
        }
        assert_eq!(years[0], ["2024/25"], "{kind} {code} HT2025");
        assert_eq!(
            years[1].last().map(String::as_str),
            Some("2025/26"),
            "{kind} {code} VT2026"
        );
    }
}

/// A county's release is the same whether its period's groups were read for every county at
/// once (what a publication does) or for the county alone (a release built again).
#[tokio::test]
async fn a_countys_release_is_the_same_read_with_every_county_or_alone() {
    use narvaro::disclosure::release::county_release;
    let dir = tempfile::tempdir().unwrap();
    let lake = national_municipalities(dir.path(), &["1814", "1315"], 2025).await;
    let engine = narvaro::engine::Engine::open_with(&lake, None, &policies())
        .await
        .unwrap();
    for window in ["month", "term"] {
        let halland = county_release(&engine, "13", "2026-03", window)
            .await
            .unwrap();
        let orebro = county_release(&engine, "18", "2026-03", window)
            .await
            .unwrap();
        let again = county_release(&engine, "18", "2026-03", window)
            .await
            .unwrap();
        assert_eq!(orebro, again, "{window}");
        for (release, municipality) in [(&halland, "1315"), (&orebro, "1814")] {
            assert!(!release.names.is_empty(), "{window}");
            assert!(
                release.names.iter().all(|n| n.starts_with(municipality)),
                "{window}: {:?}",
                release.names.iter().find(|n| !n.starts_with(municipality))
            );
            assert!(
                release
                    .cells
                    .iter()
                    .any(|c| c.key == format!("kommun:{municipality}|T|totalt"))
            );
        }
    }
}
