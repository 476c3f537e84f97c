//! Every indicator on the county fixtures agrees with the generator's pupil-level truth,
//! recomputed in plain Rust by the oracle in `truth.rs` from `truth/pupil_months.parquet`
//! (and the uploaded actions and outcomes files for the counts only schools report),
//! independently of the SQL.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use narvaro::engine::Engine;

use crate::truth::{
    Pupil, Truth, by_municipality, close, col_f64, col_int, col_str, group_by, pct,
};
use narvaro::lake::Lake;

async fn query(engine: &Engine, sql: &str) -> Vec<RecordBatch> {
    engine
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The months of the previous term and of the same term a year earlier, for a term that runs
/// `term` (e.g. 2026-01 … 2026-03).
fn earlier_terms(term: &[&str]) -> (Vec<String>, Vec<String>) {
    let (y, m): (i32, u32) = (term[0][..4].parse().unwrap(), term[0][5..].parse().unwrap());
    let previous = if m <= 6 {
        (8..=12).map(|m| format!("{}-{m:02}", y - 1)).collect()
    } else {
        (1..=6).map(|m| format!("{y}-{m:02}")).collect()
    };
    let last_year = term
        .iter()
        .map(|p| format!("{}{}", p[..4].parse::<i32>().unwrap() - 1, &p[4..]))
        .collect();
    (previous, last_year)
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Checks the indicators for period `period` against the truth. The lake must hold the
/// month, term and school-year rows of `period`, of the end of the previous term and of the
/// same month a year earlier, the June before (for attainment), and the actions and outcomes.
pub async fn check_against_truth(
    lake_dir: &Path,
    fixtures: &Path,
    period: &str,
    term: &[&str],
    year: &[&str],
) {
    let (t, engine) = truth_and_engine(lake_dir, fixtures).await;
    check_windows(&t, &engine, period, term, year).await;
    check_rest(&t, &engine, fixtures, period, term).await;
}

async fn truth_and_engine(lake_dir: &Path, fixtures: &Path) -> (Truth, Engine) {
    let lake = Lake::open(lake_dir).await.unwrap();
    (
        Truth::load(fixtures),
        Engine::open(&lake, None).await.unwrap(),
    )
}

/// Checks only what the month, term and school-year rows of `period` give: absence, reporting,
/// every shared level, the staircases and the gender gap, per municipality and window.
pub async fn check_windows_against_truth(
    lake_dir: &Path,
    fixtures: &Path,
    period: &str,
    term: &[&str],
    year: &[&str],
) {
    let (t, engine) = truth_and_engine(lake_dir, fixtures).await;
    check_windows(&t, &engine, period, term, year).await;
}

async fn check_windows(t: &Truth, engine: &Engine, period: &str, term: &[&str], year: &[&str]) {
    let levels = [10, 15, 20, 50];
    let windows: [(&str, Vec<&str>); 3] = [
        ("month", vec![period]),
        ("term", term.to_vec()),
        ("school_year", year.to_vec()),
    ];
    for (window, months) in &windows {
        let pupils = t.window(months);
        let want = by_municipality(t, &pupils, &levels, &[30, 50, 70]);
        // absence_rate and reporting_rate: exact minutes and pupils.
        let got = query(engine, &format!(
            "SELECT a.area_code, a.students, a.offered_minutes, a.absence_minutes, r.reported_minutes
             FROM absence_rate a JOIN reporting_rate r USING (area_type, area_code, period, \"window\")
             WHERE a.area_type = 'municipality' AND a.period = '{period}' AND a.\"window\" = '{window}'")).await;
        let mut seen = 0;
        for b in &got {
            let (code, n, off, abs, rep) = (
                col_str(b, "area_code"),
                col_int(b, "students"),
                col_int(b, "offered_minutes"),
                col_int(b, "absence_minutes"),
                col_int(b, "reported_minutes"),
            );
            for i in 0..b.num_rows() {
                let w = &want[&code[i]];
                assert_eq!(
                    [n[i], off[i], abs[i], rep[i]].map(Option::unwrap),
                    [w[0], w[1], w[2], w[3]],
                    "{window} {}",
                    code[i]
                );
                seen += 1;
            }
        }
        assert_eq!(seen, want.len(), "{window}: every municipality");
        // at_or_above: pupils at each shared level.
        let mut checked = 0;
        for b in &query(
            engine,
            &format!(
                "SELECT area_code, percent, pupils FROM at_or_above
             WHERE area_type = 'municipality' AND period = '{period}' AND \"window\" = '{window}'"
            ),
        )
        .await
        {
            let (code, pct, pupils) = (
                col_str(b, "area_code"),
                col_int(b, "percent"),
                col_int(b, "pupils"),
            );
            for i in 0..b.num_rows() {
                let k = levels.iter().position(|l| Some(*l) == pct[i]).unwrap();
                assert_eq!(
                    pupils[i].unwrap(),
                    want[&code[i]][4 + k],
                    "{window} {} {}%",
                    code[i],
                    levels[k]
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 12 * 4, "{window}: 12 municipalities × 4 levels");
        let mut checked = 0;
        // harmonisation: FNoFF's steps and the hours ladder, in their own windows.
        for b in &query(engine, &format!(
            "SELECT municipality_code, measure, band, pupils FROM harmonisation
             WHERE period = '{period}' AND \"window\" = '{window}' AND model IN ('länets', 'referens')")).await {
            let (code, measure, band, pupils) = (col_str(b, "municipality_code"), col_str(b, "measure"), col_int(b, "band"), col_int(b, "pupils"));
            for i in 0..b.num_rows() {
                let w = &want[&code[i]];
                let expected = match measure[i].as_str() {
                    "percent" => w[4 + levels.iter().position(|l| Some(*l) == band[i]).expect("FNoFF bands are shared levels")],
                    _ => w[8 + [30, 50, 70].iter().position(|h| Some(*h) == band[i]).unwrap()],
                };
                assert_eq!(pupils[i].unwrap(), expected, "harmonisation {window} {} {} {:?}", code[i], measure[i], band[i]);
                checked += 1;
            }
        }
        // FNoFF: two month steps and one term step; the hours ladder: three school-year steps.
        let steps = match *window {
            "month" => 2,
            "term" => 1,
            _ => 3,
        };
        assert_eq!(checked, 12 * steps, "{window}: harmonisation steps checked");
        check_gender_gap(t, engine, &pupils, period, window).await;
    }
}

async fn check_rest(t: &Truth, engine: &Engine, fixtures: &Path, period: &str, term: &[&str]) {
    check_change(t, engine, period, term).await;
    check_overview(t, engine, period, term).await;
    check_escalation(t, engine, fixtures, period).await;
    check_benchmark(t, engine, period, term).await;
    check_attainment(t, engine, fixtures).await;
    check_target_progress(t, engine, period, term).await;
    // coverage: in 2024/25 some schools missed a month; in 2025/26 every school uploads.
    for p in ["2025-03", "2025-06"] {
        let lapsed = t.missing.iter().filter(|(_, m)| m == p).count() as i64;
        let b = query(engine, &format!(
            "SELECT schools_uploaded FROM coverage WHERE area_type = 'county' AND period = '{p}'")).await;
        assert_eq!(
            col_int(&b[0], "schools_uploaded")[0],
            Some(129 - lapsed),
            "coverage {p}"
        );
    }
    let b = query(engine, &format!(
        "SELECT schools_registered, schools_uploaded FROM coverage WHERE area_type = 'county' AND period = '{period}'")).await;
    assert_eq!(
        (
            col_int(&b[0], "schools_registered")[0],
            col_int(&b[0], "schools_uploaded")[0]
        ),
        (Some(129), Some(129))
    );
}

/// gender_gap: girls' and boys' absence over the pupils uploaded in `K` and `M` rows (the
/// generator's grouping merges small groups to `T`, which the gap leaves out; the county
/// fixtures' groups are large enough to split, and `fixtures/slt` covers a merged school).
async fn check_gender_gap(
    t: &Truth,
    engine: &Engine,
    pupils: &HashMap<String, Pupil>,
    period: &str,
    window: &str,
) {
    let groupings = t.groupings();
    let uploaded_gender = |p: &Pupil| {
        let g = &groupings[&(p.school.clone(), p.school_year.clone())];
        g.groups[g.group_of(p.grade, p.gender)].1.clone()
    };
    let want = group_by(pupils, |p| {
        let g = uploaded_gender(p);
        (g != "T").then(|| (t.municipality_of(p), g))
    });
    let mut checked = 0;
    for b in &query(engine, &format!(
        "SELECT area_code, students_k, students_m, absence_pct_k, absence_pct_m, gap_pp FROM gender_gap
         WHERE area_type = 'municipality' AND period = '{period}' AND \"window\" = '{window}'")).await {
        let code = col_str(b, "area_code");
        let (nk, nm) = (col_int(b, "students_k"), col_int(b, "students_m"));
        let (pk, pm, gap) = (col_f64(b, "absence_pct_k"), col_f64(b, "absence_pct_m"), col_f64(b, "gap_pp"));
        for i in 0..b.num_rows() {
            let k = &want[&(code[i].clone(), "K".to_string())];
            let m = &want[&(code[i].clone(), "M".to_string())];
            let what = format!("gender_gap {window} {}", code[i]);
            assert_eq!((nk[i], nm[i]), (Some(k.len() as i64), Some(m.len() as i64)), "{what}");
            close(pk[i], pct(k), &what);
            close(pm[i], pct(m), &what);
            close(gap[i], pct(k) - pct(m), &what);
            checked += 1;
        }
    }
    assert_eq!(checked, 12, "gender_gap {window}: every municipality");
}

/// change: the term to date against the whole previous term and the same term a year earlier.
async fn check_change(t: &Truth, engine: &Engine, period: &str, term: &[&str]) {
    let (previous, last_year) = earlier_terms(term);
    let per_muni = |months: &[&str]| -> BTreeMap<String, (f64, f64)> {
        group_by(&t.window(months), |p| Some(t.municipality_of(p)))
            .into_iter()
            .map(|(m, ps)| {
                let problematic = ps.iter().filter(|p| p.pct() >= 15).count();
                (m, (pct(&ps), 100.0 * problematic as f64 / ps.len() as f64))
            })
            .collect()
    };
    let (now, prev, last) = (
        per_muni(term),
        per_muni(&strs(&previous)),
        per_muni(&strs(&last_year)),
    );
    let mut checked = 0;
    for b in &query(engine, &format!(
        "SELECT area_code, absence_pct, change_vs_previous_term_pp, change_vs_last_year_pp, problematic_share_pct
         FROM change WHERE area_type = 'municipality' AND period = '{period}'")).await {
        let code = col_str(b, "area_code");
        let [abs, vs_prev, vs_last, prob] = ["absence_pct", "change_vs_previous_term_pp", "change_vs_last_year_pp", "problematic_share_pct"].map(|c| col_f64(b, c));
        for i in 0..b.num_rows() {
            let c = &code[i];
            let what = format!("change {c}");
            close(abs[i], now[c].0, &what);
            close(prob[i], now[c].1, &what);
            close(vs_prev[i], now[c].0 - prev[c].0, &what);
            close(vs_last[i], now[c].0 - last[c].0, &what);
            checked += 1;
        }
    }
    assert_eq!(checked, 12, "change: every municipality");
}

/// The county report's overview: each municipality's share at the policy's level and its change
/// since the same term last year, classed by the policy's limits and grid, against the truth.
async fn check_overview(t: &Truth, engine: &Engine, period: &str, term: &[&str]) {
    let policies =
        narvaro::policy::Policies::load(&narvaro::policy::Source::resolve(None)).unwrap();
    let o = policies
        .shared
        .policy
        .overview
        .clone()
        .expect("an overview policy");
    let percent = policies
        .shared
        .policy
        .levels
        .iter()
        .find(|l| l.id == o.level)
        .unwrap()
        .percent;
    let (_, last_year) = earlier_terms(term);
    let per_muni = |months: &[&str]| -> BTreeMap<String, (usize, f64)> {
        group_by(&t.window(months), |p| Some(t.municipality_of(p)))
            .into_iter()
            .map(|(m, ps)| {
                let at = ps.iter().filter(|p| p.pct() >= percent as i64).count();
                (m, (ps.len(), 100.0 * at as f64 / ps.len() as f64))
            })
            .collect()
    };
    let (now, last) = (per_muni(term), per_muni(&strs(&last_year)));
    // A class is 1 + the number of limits at or below the value.
    let class = |classes: &[narvaro::policy::Class], v: f64| {
        1 + classes
            .iter()
            .filter(|c| c.below.is_some_and(|b| b <= v))
            .count()
    };
    let mut classed = 0;
    for b in &query(engine, &format!(
        "SELECT area_code, students, share_pct, change_pp, status_order, change_order, overall_order, overall
         FROM overview WHERE area_type = 'municipality' AND period = '{period}'")).await {
        let code = col_str(b, "area_code");
        let [share, change] = ["share_pct", "change_pp"].map(|c| col_f64(b, c));
        let [students, status, change_class, overall] =
            ["students", "status_order", "change_order", "overall_order"].map(|c| col_int(b, c));
        let names = col_str(b, "overall");
        for i in 0..b.num_rows() {
            let c = &code[i];
            let what = format!("overview {c}");
            let (n, want_share) = now[c];
            close(share[i], want_share, &what);
            close(change[i], want_share - last[c].1, &what);
            assert_eq!(students[i], Some(n as i64), "{what}");
            if (n as i64) < o.min_students {
                assert_eq!(overall[i], None, "{what}: too few pupils for a class");
                continue;
            }
            let s = class(&o.status, want_share);
            let k = class(&o.change, want_share - last[c].1);
            assert_eq!(status[i], Some(s as i64), "{what}: status");
            assert_eq!(change_class[i], Some(k as i64), "{what}: change");
            let g = o.grid[s - 1][k - 1];
            assert_eq!(overall[i], Some(g as i64), "{what}: overall");
            assert_eq!(names[i], o.overall[g - 1], "{what}");
            classed += 1;
        }
    }
    assert_eq!(
        classed, 12,
        "overview: every municipality of the county is classed"
    );
}

/// Reads a fixture CSV (`,`-separated, header first) into rows.
fn read_csv(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

/// escalation: actions the schools reported per 100 pupils at the `hog` level (20 %) in the
/// month; the pupils at the level come from the truth.
async fn check_escalation(t: &Truth, engine: &Engine, fixtures: &Path, period: &str) {
    let month = t.window(&[period]);
    let high = group_by(&month, |p| Some(t.municipality_of(p)));
    let mut actions: BTreeMap<String, i64> = BTreeMap::new();
    for r in read_csv(&fixtures.join("actions.csv")) {
        if r[1] == period {
            *actions.entry(t.municipality[&r[0]].clone()).or_default() += r[2..]
                .iter()
                .map(|v| v.parse::<i64>().unwrap())
                .sum::<i64>();
        }
    }
    let mut checked = 0;
    for b in &query(
        engine,
        &format!(
            "SELECT area_code, schools_reporting, pupils_high, actions_per_100_high FROM escalation
         WHERE area_type = 'municipality' AND period = '{period}'"
        ),
    )
    .await
    {
        let (code, schools, pupils_high, per100) = (
            col_str(b, "area_code"),
            col_int(b, "schools_reporting"),
            col_int(b, "pupils_high"),
            col_f64(b, "actions_per_100_high"),
        );
        for i in 0..b.num_rows() {
            let c = &code[i];
            let n = high[c].iter().filter(|p| p.pct() >= 20).count() as i64;
            let schools_in = t.municipality.values().filter(|m| *m == c).count() as i64;
            assert_eq!(
                (schools[i], pupils_high[i]),
                (Some(schools_in), Some(n)),
                "escalation {c}"
            );
            close(
                per100[i],
                100.0 * actions[c] as f64 / n as f64,
                &format!("escalation {c}"),
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 12, "escalation: every municipality");
}

/// benchmark: each school's term absence against its municipality and similar schools (same
/// school types, between half and double the pupils, itself excluded).
async fn check_benchmark(t: &Truth, engine: &Engine, period: &str, term: &[&str]) {
    let pupils = t.window(term);
    let schools = group_by(&pupils, |p| Some(p.school.clone()));
    let munis = group_by(&pupils, |p| Some(t.municipality_of(p)));
    let mut checked = 0;
    for b in &query(engine, &format!(
        "SELECT school_unit_code, students, absence_pct, vs_municipality_pp, similar_schools, similar_absence_pct
         FROM benchmark WHERE period = '{period}' AND \"window\" = 'term'")).await {
        let code = col_str(b, "school_unit_code");
        let (n, similar) = (col_int(b, "students"), col_int(b, "similar_schools"));
        let [abs, vs_muni, similar_pct] = ["absence_pct", "vs_municipality_pp", "similar_absence_pct"].map(|c| col_f64(b, c));
        for i in 0..b.num_rows() {
            let c = &code[i];
            let own = &schools[c];
            let what = format!("benchmark {c}");
            assert_eq!(n[i], Some(own.len() as i64), "{what}");
            close(abs[i], pct(own), &what);
            close(vs_muni[i], pct(own) - pct(&munis[&t.municipality[c]]), &what);
            let size = own.len();
            let peers: Vec<&Vec<&Pupil>> = schools
                .iter()
                .filter(|(s, ps)| {
                    *s != c
                        && t.school_types[*s] == t.school_types[c]
                        && 2 * ps.len() >= size
                        && ps.len() <= 2 * size
                })
                .map(|(_, ps)| ps)
                .collect();
            let count = peers.len();
            let like: Vec<&Pupil> = peers.iter().flat_map(|ps| ps.iter().copied()).collect();
            assert_eq!(similar[i], Some(count as i64), "{what}");
            if count > 0 {
                close(similar_pct[i], pct(&like), &what);
            } else {
                assert_eq!(similar_pct[i], None, "{what}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 129, "benchmark: every school");
}

/// attainment: grade 9 outcomes for 2024/25 from the uploaded file beside the school-year
/// absence at June 2025 of the same schools, from the truth.
async fn check_attainment(t: &Truth, engine: &Engine, fixtures: &Path) {
    let mut outcome: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for r in read_csv(&fixtures.join("outcomes.csv")) {
        if r[1] == "2024/25" && !t.missing.contains(&(r[0].clone(), "2025-06".to_string())) {
            let e = outcome.entry(r[0].clone()).or_default();
            e.0 += r[3].parse::<i64>().unwrap();
            e.1 += r[4].parse::<i64>().unwrap();
        }
    }
    let months = [
        "2024-08", "2024-09", "2024-10", "2024-11", "2024-12", "2025-01", "2025-02", "2025-03",
        "2025-04", "2025-05", "2025-06",
    ];
    let year = t.window(&months);
    let munis = group_by(&year, |p| {
        outcome
            .contains_key(&p.school)
            .then(|| t.municipality_of(p))
    });
    let mut checked = 0;
    for b in &query(
        engine,
        "SELECT area_code, schools, grade9_students, passed_pct, students, absence_pct
         FROM attainment WHERE area_type = 'municipality' AND school_year = '2024/25'",
    )
    .await
    {
        let code = col_str(b, "area_code");
        let [schools, grade9, students] =
            ["schools", "grade9_students", "students"].map(|c| col_int(b, c));
        let [passed, abs] = ["passed_pct", "absence_pct"].map(|c| col_f64(b, c));
        for i in 0..b.num_rows() {
            let c = &code[i];
            let mine: Vec<&(i64, i64)> = outcome
                .iter()
                .filter(|(s, _)| t.municipality[*s] == *c)
                .map(|(_, v)| v)
                .collect();
            let (n, k) = mine.iter().fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
            let what = format!("attainment {c}");
            assert_eq!(
                (schools[i], grade9[i], students[i]),
                (
                    Some(mine.len() as i64),
                    Some(n),
                    Some(munis[c].len() as i64)
                ),
                "{what}"
            );
            close(passed[i], 100.0 * k as f64 / n as f64, &what);
            close(abs[i], pct(&munis[c]), &what);
            checked += 1;
        }
    }
    assert_eq!(checked, 12, "attainment: every municipality");
}

/// target_progress: each demo target's measured term value and whether it is met.
async fn check_target_progress(t: &Truth, engine: &Engine, period: &str, term: &[&str]) {
    let pupils = t.window(term);
    let munis = group_by(&pupils, |p| Some(t.municipality_of(p)));
    let mut checked = 0;
    for b in &query(
        engine,
        &format!(
            "SELECT municipality_code, indicator, level_id, comparator, target_value, value, met
         FROM target_progress WHERE period = '{period}'"
        ),
    )
    .await
    {
        let [code, indicator, level, comparator] =
            ["municipality_code", "indicator", "level_id", "comparator"].map(|c| col_str(b, c));
        let [target, value] = ["target_value", "value"].map(|c| col_f64(b, c));
        let met = col_str(b, "met");
        for i in 0..b.num_rows() {
            let ps = &munis[&code[i]];
            let share = |from: i64| {
                100.0 * ps.iter().filter(|p| p.pct() >= from).count() as f64 / ps.len() as f64
            };
            let want = match (indicator[i].as_str(), level[i].as_str()) {
                ("absence_rate", _) => pct(ps),
                ("share_at_or_above", "problematisk") => share(15),
                ("share_at_or_above", "hog") => share(20),
                ("reporting_rate", _) => {
                    let (r, o) = ps
                        .iter()
                        .fold((0, 0), |a, p| (a.0 + p.reported, a.1 + p.offered));
                    100.0 * r as f64 / o as f64
                }
                other => panic!("no truth for target {other:?}"),
            };
            let what = format!("target_progress {} {}", code[i], indicator[i]);
            close(value[i], want, &what);
            let goal = target[i].unwrap();
            let is_met = match comparator[i].as_str() {
                "<" => want < goal,
                "<=" => want <= goal,
                ">" => want > goal,
                _ => want >= goal,
            };
            assert_eq!(met[i], is_met.to_string(), "{what}");
            checked += 1;
        }
    }
    assert_eq!(checked, 4, "target_progress: the four demo targets");
}

/// Pupils at or above `band` in the month rows of 2026-03 of the small fixtures, summed here
/// from the raw histogram lists.
async fn raw_at_or_above(lake: &Lake, band: usize) -> i64 {
    let e = Engine::open(lake, None).await.unwrap();
    let b = query(
        &e,
        "SELECT pct_total FROM attendance WHERE period = '2026-03' AND \"window\" = 'month'",
    )
    .await;
    let mut n = 0;
    for batch in &b {
        let lists = batch.column(0).as_list::<i32>();
        for i in 0..lists.len() {
            let v = lists.value(i);
            let v = v.as_primitive::<arrow::datatypes::Int32Type>();
            n += v.values()[band..].iter().map(|x| *x as i64).sum::<i64>();
        }
    }
    n
}

#[tokio::test]
async fn a_threshold_changed_in_shared_toml_changes_the_figures_and_the_hash() {
    use narvaro::policy::{Policies, Source};
    let dir = tempfile::tempdir().unwrap();
    let lake = crate::common::small_lake(dir.path()).await;
    let policies_dir = dir.path().join("policies");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for entry in walk(&src) {
        let to = policies_dir.join(entry.strip_prefix(&src).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &to).unwrap();
    }
    let figures = |policies: Policies| {
        let lake = &lake;
        async move {
            let e = Engine::open_with(lake, None, &policies).await.unwrap();
            let b = query(
                &e,
                "SELECT percent, pupils, definition_hash FROM at_or_above
                 WHERE level_id = 'problematisk' AND area_type = 'country'
                   AND period = '2026-03' AND \"window\" = 'month'",
            )
            .await;
            (
                col_int(&b[0], "percent")[0].unwrap(),
                col_int(&b[0], "pupils")[0].unwrap(),
                col_str(&b[0], "definition_hash")[0].clone(),
            )
        }
    };
    let before = figures(Policies::load(&Source::Dir(policies_dir.clone())).unwrap()).await;
    let shared = policies_dir.join("shared.toml");
    let text = std::fs::read_to_string(&shared).unwrap();
    assert!(text.contains("percent = 15"));
    std::fs::write(&shared, text.replace("percent = 15", "percent = 16")).unwrap();
    let after = figures(Policies::load(&Source::Dir(policies_dir)).unwrap()).await;
    let (at_15, at_16) = (
        raw_at_or_above(&lake, 15).await,
        raw_at_or_above(&lake, 16).await,
    );
    assert_ne!(
        at_15, at_16,
        "the small fixtures have pupils at exactly 15 %"
    );
    assert_eq!((before.0, before.1), (15, at_15));
    assert_eq!((after.0, after.1), (16, at_16));
    assert_ne!(
        before.2, after.2,
        "the definition hash follows the threshold"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
