//! Publications: every report computed once per data version and stored in the lake; pages
//! read only what was published.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use narvaro::http::{App, router};
use narvaro::lake::Lake;
use narvaro::policy::{self, Policies};
use tower::ServiceExt;

use crate::common::{fixture, now, scalar, slt_lake};

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
    assert_eq!(health["published"]["data_version"], uploaded);

    // The same figures uploaded again: a new publication whose reports all carry over, and
    // whose releases all come from the store.
    let second = restarted.publish().await.unwrap().expect("a new version");
    assert_eq!(second.publication, 2);
    assert_eq!(second.data_version, latest);
    assert_eq!(second.reports, first.reports);
    assert_eq!(second.written, 0, "{second:?}");
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
}
