//! `narvaro aggregate`, the school side: SS 12000 attendance and a roster in, an anonymised
//! contract v1 aggregate out. Small hand-made inputs for the sums, the merging and every kind
//! of bad input; the county's simulated pupils end to end through aggregate, upload and the
//! indicators, which must equal the pupil-level truth.

use std::path::Path;
use std::time::Duration;

use narvaro::aggregate::{Input, from_ss12000};
use narvaro::auth::{Config, Scope};
use narvaro::contract::Period;
use narvaro::contract::attendance::AttendanceRow;
use narvaro::lake::Lake;
use serde_json::json;

use crate::common::{Server, narvaro, now};

/// One record: pupil, activity, month (YYYY-MM), offered, valid, invalid minutes.
fn record(
    pupil: &str,
    activity: &str,
    month: &str,
    offered: i64,
    valid: i64,
    invalid: i64,
) -> serde_json::Value {
    let p = Period::parse(month).unwrap();
    json!({
        "student": {"id": pupil, "displayName": format!("Namn {pupil}")},
        "activity": {"id": activity},
        "startDate": p.first_day().to_string(),
        "endDate": p.last_day().to_string(),
        "attendanceSum": offered - valid - invalid,
        "validAbsenceSum": valid,
        "invalidAbsenceSum": invalid,
        "otherAttendanceSum": 0,
        "reportedSum": offered,
        "offeredSum": offered,
    })
}

/// A school 18800101 with grade 7 (6 girls, 6 boys, one pupil of unknown gender when `unknown`)
/// and grade 8 (3 girls, 4 boys); pupil ids `p7k0` …
fn roster(unknown: bool) -> String {
    let mut s = String::from("student,school_unit_code,grade,gender\n");
    for (grade, k, m) in [(7, 6, 6), (8, 3, 4)] {
        for i in 0..k {
            s.push_str(&format!("p{grade}k{i},18800101,{grade},K\n"));
        }
        for i in 0..m {
            s.push_str(&format!("p{grade}m{i},18800101,{grade},M\n"));
        }
    }
    if unknown {
        s.push_str("p7u0,18800101,7,Okänt\n");
    }
    s
}

fn pupils(unknown: bool) -> Vec<String> {
    roster(unknown)
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect()
}

/// Every pupil in Aug–Oct 2025, two activities of 600 minutes a month; girls in grade 7 are
/// away 90 minutes of each activity (15 %), everyone else 30 (5 %), all of it valid except
/// 6 minutes invalid.
fn attendance(unknown: bool) -> String {
    let mut v = Vec::new();
    for p in pupils(unknown) {
        let absent = if p.starts_with("p7k") { 90 } else { 30 };
        for month in ["2025-08", "2025-09", "2025-10"] {
            for a in ["sv", "ma"] {
                v.push(record(&p, a, month, 600, absent - 6, 6));
            }
        }
    }
    serde_json::to_string(&v).unwrap()
}

fn run(
    att: &str,
    roster: &str,
    period: &str,
) -> narvaro::Result<(Vec<AttendanceRow>, narvaro::aggregate::Summary)> {
    from_ss12000(
        &[Input {
            name: "närvaro.json",
            bytes: att.as_bytes(),
        }],
        Input {
            name: "elever.csv",
            bytes: roster.as_bytes(),
        },
        Period::parse(period).unwrap(),
        5,
    )
}

fn row<'a>(
    rows: &'a [AttendanceRow],
    window: &str,
    grade: &str,
    gender: &str,
) -> &'a AttendanceRow {
    rows.iter()
        .find(|r| r.window == window && r.grade == grade && r.gender == gender)
        .unwrap_or_else(|| panic!("no row {window} {grade} {gender}"))
}

#[test]
fn sums_each_window_builds_the_histograms_and_merges_small_groups() {
    let (rows, s) = run(&attendance(false), &roster(false), "2025-10").unwrap();
    // Grade 7 splits by gender; grade 8 (3 girls) only as T.
    let groups: Vec<String> = rows
        .iter()
        .filter(|r| r.window == "month")
        .map(|r| format!("{}{}", r.grade, r.gender))
        .collect();
    assert_eq!(groups, ["7K", "7M", "8T"]);
    assert_eq!(rows.len(), 9);
    for (window, months) in [("month", 1), ("term", 3), ("school_year", 3)] {
        let girls = row(&rows, window, "7", "K");
        assert_eq!(girls.students, 6);
        assert_eq!(girls.minutes[0], 6 * 2 * 600 * months, "{window} offered");
        assert_eq!(girls.minutes[2], 6 * 2 * 84 * months, "{window} valid");
        assert_eq!(girls.minutes[3], 6 * 2 * 6 * months, "{window} invalid");
        // 15 % each: band 15 of absence, band 1 of invalid absence.
        assert_eq!(girls.hists[0][15], 6);
        assert_eq!(girls.hists[1][1], 6);
        // Hours: 180 min a month → 3 h, 9 h over three months.
        assert_eq!(girls.hists[2][3 * months as usize], 6, "{window} hours");
        let grade8 = row(&rows, window, "8", "T");
        assert_eq!((grade8.students, grade8.hists[0][5]), (7, 7));
    }
    let counts: Vec<(usize, i64)> = s.windows.iter().map(|w| (w.records, w.pupils)).collect();
    assert_eq!(counts, [(38, 19), (114, 19), (114, 19)]);
    assert_eq!(s.schools, 1);
    assert!(s.warnings.is_empty() && s.refused.is_empty(), "{s:?}");

    // A pupil of unknown gender keeps grade 7 as T only, so no rows overlap.
    let (rows, _) = run(&attendance(true), &roster(true), "2025-10").unwrap();
    let groups: Vec<String> = rows
        .iter()
        .filter(|r| r.window == "month")
        .map(|r| format!("{}{}", r.grade, r.gender))
        .collect();
    assert_eq!(groups, ["7T", "8T"]);

    // VT: the term starts in January; the school year still from August.
    let mut v: Vec<serde_json::Value> = serde_json::from_str(&attendance(false)).unwrap();
    for p in pupils(false) {
        v.push(record(&p, "sv", "2026-01", 600, 60, 0));
        v.push(record(&p, "sv", "2026-02", 600, 60, 0));
    }
    let (rows, s) = run(
        &serde_json::to_string(&v).unwrap(),
        &roster(false),
        "2026-02",
    )
    .unwrap();
    assert_eq!(row(&rows, "month", "8", "T").minutes[0], 7 * 600);
    assert_eq!(row(&rows, "term", "8", "T").minutes[0], 7 * 1200);
    assert_eq!(
        row(&rows, "school_year", "8", "T").minutes[0],
        7 * (1200 + 3600)
    );
    assert_eq!(s.windows[1].records, 38);
}

#[test]
fn a_school_too_small_is_left_out_and_named_and_groups_plan_from_who_had_time() {
    let mut two_schools = roster(false);
    two_schools.push_str("t1,18800102,3,K\nt2,18800102,3,M\nt3,18800102,4,K\n");
    let mut v: Vec<serde_json::Value> = serde_json::from_str(&attendance(false)).unwrap();
    for p in ["t1", "t2", "t3"] {
        v.push(record(p, "sv", "2025-10", 600, 0, 0));
    }
    let (rows, s) = run(&serde_json::to_string(&v).unwrap(), &two_schools, "2025-10").unwrap();
    assert!(rows.iter().all(|r| r.school == "18800101"));
    assert_eq!(s.refused.len(), 1, "{s:?}");
    assert!(
        s.refused[0].contains("18800102") && s.refused[0].contains("minst 5"),
        "{s:?}"
    );

    // A girl in grade 7 had no lessons in October: the month would hold 5 girls and 6 boys,
    // still ≥ 5, so the plan stays. Two gone: 7K falls to 4 and the plan follows who had time.
    let mut v: Vec<serde_json::Value> = serde_json::from_str(&attendance(false)).unwrap();
    v.retain(|r| {
        !(["p7k0", "p7k1"].contains(&r["student"]["id"].as_str().unwrap())
            && r["startDate"] == "2025-10-01")
    });
    let (rows, s) = run(
        &serde_json::to_string(&v).unwrap(),
        &roster(false),
        "2025-10",
    )
    .unwrap();
    let groups: Vec<String> = rows
        .iter()
        .filter(|r| r.window == "month")
        .map(|r| format!("{}{}", r.grade, r.gender))
        .collect();
    assert_eq!(groups, ["7T", "8T"]);
    assert!(rows.iter().all(|r| r.students >= 5));
    assert_eq!(row(&rows, "term", "7", "T").students, 12);
    assert!(s.warnings.iter().any(|w| w.contains("planerades")), "{s:?}");
    // Nobody at all: refused with a message, nothing written.
    let err = run(
        "[]",
        "student,school_unit_code,grade,gender\nx,18800101,1,K\n",
        "2025-10",
    )
    .unwrap_err();
    assert!(err.to_string().contains("inga rader"), "{err}");
}

/// Each kind of bad input gives one clear problem naming the file, the record or row and the
/// field, and no pupil id or name.
#[test]
fn bad_input_is_named_and_nothing_identifying_is_printed() {
    let good = attendance(false);
    let mut cases: Vec<(&str, String, String, &str)> = Vec::new();
    let with = |f: &dyn Fn(&mut Vec<serde_json::Value>)| {
        let mut v: Vec<serde_json::Value> = serde_json::from_str(&good).unwrap();
        f(&mut v);
        serde_json::to_string(&v).unwrap()
    };
    cases.push((
        "unknown_pupil",
        with(&|v| v.push(record("okand-elev", "sv", "2025-10", 600, 0, 0))),
        roster(false),
        "post 115",
    ));
    cases.push((
        "negative_value",
        with(&|v| v[3]["validAbsenceSum"] = json!(-5)),
        roster(false),
        "post 4",
    ));
    cases.push((
        "exceeds_offered",
        with(&|v| v[4]["validAbsenceSum"] = json!(700)),
        roster(false),
        "post 5",
    ));
    cases.push((
        "exceeds_offered",
        with(&|v| v[5]["reportedSum"] = json!(601)),
        roster(false),
        "reportedSum",
    ));
    cases.push((
        "overlapping_records",
        with(&|v| {
            let mut dup = v[0].clone();
            dup["startDate"] = json!("2025-08-15");
            v.push(dup)
        }),
        roster(false),
        "post 1",
    ));
    cases.push((
        "outside_period",
        with(&|v| v.push(record("p7k0", "sv", "2025-11", 600, 0, 0))),
        roster(false),
        "2025-11-30",
    ));
    cases.push((
        "spans_months",
        with(&|v| v[0]["endDate"] = json!("2025-09-05")),
        roster(false),
        "post 1",
    ));
    cases.push((
        "invalid_date",
        with(&|v| v[2]["startDate"] = json!("1 okt")),
        roster(false),
        "post 3",
    ));
    cases.push((
        "missing_value",
        with(&|v| {
            v[6].as_object_mut().unwrap().remove("student");
        }),
        roster(false),
        "post 7",
    ));
    cases.push((
        "unknown_grade",
        good.clone(),
        roster(false).replace("p8m3,18800101,8,M", "p8m3,18800101,10,M"),
        "rad 20",
    ));
    cases.push((
        "unknown_gender",
        good.clone(),
        roster(false).replace("p8m3,18800101,8,M", "p8m3,18800101,8,X"),
        "rad 20",
    ));
    cases.push((
        "duplicate_pupil",
        good.clone(),
        roster(false) + "p7k0,18800101,7,K\n",
        "rad 2",
    ));
    cases.push((
        "invalid_json",
        "[{\"student\": ".to_string(),
        roster(false),
        "line 1",
    ));
    for (code, att, ros, place) in cases {
        let err = run(&att, &ros, "2025-10").expect_err(code).to_string();
        assert!(err.contains(&format!("[{code}]")), "{code}: {err}");
        assert!(err.contains(place), "{code} should name {place}: {err}");
        assert!(
            err.contains("närvaro.json") || err.contains("elever.csv"),
            "{code} names the file: {err}"
        );
        for p in pupils(false) {
            assert!(
                !err.contains(&format!("Namn {p}")),
                "{code} leaks a name: {err}"
            );
        }
        assert!(
            !err.contains("okand-elev") && !err.contains("p7k0"),
            "{code} leaks an id: {err}"
        );
    }
    // Records before the school year are in no window: counted, left out.
    let before = with(&|v| v.push(record("p7k0", "sv", "2025-06", 600, 600, 0)));
    let (_, s) = run(&before, &roster(false), "2025-10").unwrap();
    assert!(
        s.warnings
            .iter()
            .any(|w| w.starts_with("1 poster slutade före")),
        "{s:?}"
    );
    // Without offeredSum, offered time is what the record accounts for; counted.
    let unoffered = with(&|v| {
        v[0].as_object_mut().unwrap().remove("offeredSum");
    });
    let (rows, s) = run(&unoffered, &roster(false), "2025-10").unwrap();
    assert!(
        s.warnings
            .iter()
            .any(|w| w.starts_with("1 poster saknade offeredSum")),
        "{s:?}"
    );
    assert_eq!(row(&rows, "term", "7", "K").minutes[0], 6 * 2 * 600 * 3);
}

#[test]
fn the_command_refuses_bad_input_with_exit_1_and_leaves_the_output_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (att, ros, out) = (
        dir.path().join("a.json"),
        dir.path().join("r.csv"),
        dir.path().join("out.parquet"),
    );
    std::fs::write(&ros, roster(false)).unwrap();
    let mut v: Vec<serde_json::Value> = serde_json::from_str(&attendance(false)).unwrap();
    v[0]["offeredSum"] = json!(-1);
    std::fs::write(&att, serde_json::to_string(&v).unwrap()).unwrap();
    std::fs::write(&out, b"the previous month").unwrap();
    let args = [
        "aggregate",
        "--attendance",
        att.to_str().unwrap(),
        "--roster",
        ros.to_str().unwrap(),
        "--period",
        "2025-10",
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = narvaro(&args);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("post 1") && stdout.contains("[negative_value]"),
        "{stdout}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"the previous month");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        3,
        "no temporary file left"
    );
    // A policy asking for groups under the contract's minimum is refused.
    let policy = dir.path().join("shared.toml");
    let shared =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/shared.toml"))
            .unwrap();
    std::fs::write(&policy, shared.replace("# min_group = 5", "min_group = 3")).unwrap();
    let mut with_policy = args.to_vec();
    with_policy.extend(["--policy", policy.to_str().unwrap()]);
    let (code, _, stderr) = narvaro(&with_policy);
    assert_eq!(code, 2);
    assert!(stderr.contains("min_group: 3"), "{stderr}");
    // A stricter minimum merges more: grade 7's six girls are too few at 7.
    std::fs::write(&att, attendance(false)).unwrap();
    std::fs::write(&policy, shared.replace("# min_group = 5", "min_group = 7")).unwrap();
    let (code, stdout, _) = narvaro(&with_policy);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("minsta grupp 7"), "{stdout}");
}

/// A municipality's SS 12000 roster, whichever form the generator gave it.
fn roster_of(src: &Path) -> std::path::PathBuf {
    ["roster.json", "roster.csv"]
        .iter()
        .map(|r| src.join(r))
        .find(|p| p.exists())
        .unwrap()
}

/// The whole chain on the county: the generator's pupils as SS 12000 exports (every shape:
/// array, pages, JSON lines; roster as JSON persons or CSV) → `narvaro aggregate --upload` to a
/// running server → the indicators, which equal the pupil-level truth in every window and at
/// every level. No pupil id, name or birth date reaches an aggregate.
#[test]
fn county_month_from_ss12000_through_upload_equals_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("fx");
    let fx_s = fx.to_str().unwrap();
    let (code, out, err) = narvaro(&[
        "fixtures",
        "--out",
        fx_s,
        "--truth",
        "--ss12000",
        "2026-02",
        "--activities",
        "2",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lake_dir = dir.path().join("lake");
    let config_path = dir.path().join("narvaro.toml");
    let codes: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(fx.join("ss12000"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(codes.len(), 12);
    let mut config = Config::default();
    let mut tokens = Vec::new();
    for c in &codes {
        let scope: Scope = format!("upload:municipality:{c}").parse().unwrap();
        tokens.push(
            config
                .create_token(&format!("skolsystem {c}"), &[scope], now())
                .unwrap(),
        );
    }
    config.save(&config_path).unwrap();
    rt.block_on(async {
        let lake = Lake::open(&lake_dir).await.unwrap();
        narvaro::ingest::ingest_path(&lake, &fx.join("register.csv"), now())
            .await
            .unwrap();
    });
    let server = Server::start(
        &[
            "serve",
            "--lake",
            lake_dir.to_str().unwrap(),
            "--config",
            config_path.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ],
        Duration::from_secs(120),
    );
    let mut identifying: Vec<String> = Vec::new();
    for (i, c) in codes.iter().enumerate() {
        let src = fx.join("ss12000").join(c);
        let roster = roster_of(&src);
        let text = std::fs::read_to_string(&roster).unwrap();
        if roster.extension().unwrap() == "json" {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            for p in v["persons"].as_array().unwrap().iter().take(50) {
                for k in ["id", "givenName", "familyName", "birthDate"] {
                    identifying.push(p[k].as_str().unwrap().to_string());
                }
                identifying.push(p["civicNo"]["value"].as_str().unwrap().to_string());
            }
        } else {
            identifying.extend(
                text.lines()
                    .skip(1)
                    .take(50)
                    .map(|l| l.split(',').next().unwrap().to_string()),
            );
        }
        // Every third municipality as CSV, where any leaked text would be readable.
        let out = dir.path().join(format!(
            "{c}.{}",
            if i % 3 == 0 { "csv" } else { "parquet" }
        ));
        let (code, stdout, stderr) = narvaro(&[
            "aggregate",
            "--attendance",
            src.join("attendance").to_str().unwrap(),
            "--roster",
            roster.to_str().unwrap(),
            "--period",
            "2026-02",
            "--out",
            out.to_str().unwrap(),
            "--upload",
            &server.url,
            "--token",
            &tokens[i],
        ]);
        assert_eq!(code, 0, "{c}: {stdout}\n{stderr}");
        assert!(stdout.contains("201 Created"), "{c}: {stdout}");
        assert!(
            stdout.contains("\"rows\""),
            "{c}: the server's receipt is printed: {stdout}"
        );
        let bytes = std::fs::read(&out).unwrap();
        for id in &identifying {
            assert!(
                !bytes.windows(id.len()).any(|w| w == id.as_bytes()),
                "{c}: {id:?} is in the aggregate"
            );
        }
    }
    assert!(identifying.len() > 600);
    // A token for another municipality is refused by the server: exit 1, its answer printed.
    let src = fx.join("ss12000").join(&codes[0]);
    let roster = roster_of(&src);
    let (code, stdout, _) = narvaro(&[
        "aggregate",
        "--attendance",
        src.join("attendance").to_str().unwrap(),
        "--roster",
        roster.to_str().unwrap(),
        "--period",
        "2026-02",
        "--out",
        dir.path().join("again.parquet").to_str().unwrap(),
        "--upload",
        &server.url,
        "--token",
        &tokens[1],
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("403"), "{stdout}");
    drop(server);
    rt.block_on(crate::indicators::check_windows_against_truth(
        &lake_dir,
        &fx,
        "2026-02",
        &["2026-01", "2026-02"],
        &[
            "2025-08", "2025-09", "2025-10", "2025-11", "2025-12", "2026-01", "2026-02",
        ],
    ));
}
