//! Every contract rule: a broken file is refused with its code, row and column, and the lake
//! is unchanged afterwards (same Delta versions, same rows).

use narvaro::Error;
use narvaro::ingest::ingest_path;

use crate::common::{fixture, now, small_lake, state};

#[tokio::test]
async fn each_broken_file_is_refused_with_its_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path()).await;
    let before = state(&lake).await;
    let expected = std::fs::read_to_string(fixture("broken/EXPECTED.csv")).unwrap();
    let mut checked = 0;
    for line in expected.lines().skip(1) {
        let f: Vec<&str> = line.split(';').collect();
        let (file, code, row, column) = (f[0], f[1], f[2], f[3]);
        let path = fixture(&format!("broken/{file}"));
        let err = ingest_path(&lake, &path, now()).await.expect_err(file);
        let Error::Rejected(rejection) = err else {
            panic!("{file}: expected a rejection, got {err}");
        };
        let hit = rejection.problems.iter().find(|p| {
            p.code == code
                && (row.is_empty() || p.row == Some(row.parse().unwrap()))
                && (column.is_empty() || p.column.as_deref() == Some(column))
        });
        assert!(
            hit.is_some(),
            "{file}: no problem {code} at row {row:?} column {column:?} in:\n{rejection}"
        );
        assert!(!hit.unwrap().message.is_empty());
        assert!(
            rejection.to_string().contains(file),
            "the message names the file"
        );
        assert_eq!(state(&lake).await, before, "{file} changed the lake");
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} broken files checked");
}

#[tokio::test]
async fn a_file_with_several_problems_lists_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path()).await;
    let Err(Error::Rejected(r)) =
        ingest_path(&lake, &fixture("broken/many_problems.csv"), now()).await
    else {
        panic!("many_problems.csv was accepted");
    };
    let found: Vec<(&str, Option<usize>)> = r.problems.iter().map(|p| (p.code, p.row)).collect();
    for want in [
        ("histogram_sum_mismatch", Some(2)),
        ("invalid_window", Some(5)),
        ("reported_exceeds_offered", Some(7)),
    ] {
        assert!(found.contains(&want), "{want:?} missing from {found:?}");
    }
    // One row, three histograms: each is named.
    assert_eq!(
        found
            .iter()
            .filter(|p| **p == ("histogram_sum_mismatch", Some(2)))
            .count(),
        3
    );
}

#[tokio::test]
async fn problems_name_row_column_and_value_in_swedish() {
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path()).await;
    let Err(Error::Rejected(r)) = ingest_path(
        &lake,
        &fixture("broken/reported_exceeds_offered.csv"),
        now(),
    )
    .await
    else {
        panic!("accepted");
    };
    let line = r.problems[0].to_string();
    assert_eq!(
        line,
        "rad 4, kolumn reported_minutes, värde \"52801\": rapporterad tid (52801) är mer än den erbjudna tiden (52800 minuter) [reported_exceeds_offered]"
    );
}
