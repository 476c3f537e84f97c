//! Disclosure control: primary rules, secondary suppression by Gaussian elimination and the
//! integer-programming audit, on random hierarchies (proptest), against an attacker who gets
//! one secondary suppression lifted, and on the red-team cases.

use narvaro::disclosure::release::{Actions, Row, Which, add_actions, build};
use narvaro::disclosure::{self, Cell, Kind, Release, Rules, Status, audit};
use proptest::prelude::*;

/// Three bands: 0–9 %, 10–19 %, 20–100 %.
const EDGES: [(u32, u32); 3] = [(0, 9), (10, 19), (20, 100)];

fn row(school: &str, muni: &str, grade: &str, gender: &str, bands: [i64; 3]) -> Row {
    Row {
        school: school.into(),
        municipality: muni.into(),
        grade: grade.into(),
        gender: gender.into(),
        bands: bands.to_vec(),
        confidential: false,
    }
}

fn cell<'a>(r: &'a Release, key: &str) -> (usize, &'a Cell) {
    r.cells
        .iter()
        .enumerate()
        .find(|(_, c)| c.key == key)
        .unwrap_or_else(|| panic!("no cell {key}"))
}

fn status_of(r: &Release, s: &[Status], key: &str) -> Status {
    s[cell(r, key).0]
}

/// The checks every protected release must pass.
fn check(release: &Release, status: &[Status], rules: &Rules) {
    for (c, s) in release.cells.iter().zip(status) {
        if !s.published() {
            continue;
        }
        assert!(
            !(c.kind == Kind::Total && (1..rules.min_pupils).contains(&c.value)),
            "a group of {} pupils is published: {}",
            c.value,
            c.key
        );
        assert!(
            c.base >= rules.min_pupils,
            "{} rests on {} pupils",
            c.key,
            c.base
        );
        assert!(
            !(c.kind != Kind::Total && (1..=rules.max_hidden_count).contains(&c.value)),
            "band count {} published: {}",
            c.value,
            c.key
        );
        assert!(
            !c.area || c.confidential == 0 || c.schools >= rules.min_schools,
            "{} from {} schools, {} of them confidential",
            c.key,
            c.schools,
            c.confidential
        );
        assert!(
            c.area || c.confidential == 0,
            "a confidential school's figure is published: {}",
            c.key
        );
    }
    // The same cell under two names (e.g. a school with only one group) has one status.
    let mut by_inner: std::collections::HashMap<&[usize], bool> = Default::default();
    for (c, s) in release.cells.iter().zip(status) {
        if let Some(prev) = by_inner.insert(&c.inner, s.published()) {
            assert_eq!(prev, s.published(), "{} differs from its twin", c.key);
        }
    }
    let report = audit::audit(release, status, rules);
    assert!(report.passed(), "audit failed: {:?}", report.failures);
}

/// What a principal learns beside the published release: every hidden cell outside their own
/// school solved exactly (its whole interval) with that school's true figures known, for every
/// school in turn. Returns the cells narrowed below the rules, with the school whose principal
/// narrows them.
fn insider_attack(
    release: &Release,
    status: &[Status],
    rules: &Rules,
) -> Vec<(String, audit::Interval)> {
    let schools = &release.localities[0];
    let ids: std::collections::BTreeSet<u32> = schools.iter().copied().collect();
    let mut found = Vec::new();
    for id in ids {
        let own: Vec<usize> = (0..release.inner()).filter(|&i| schools[i] == id).collect();
        let code = release
            .cells
            .iter()
            .find(|c| c.key.starts_with("skolenhet:") && c.inner.iter().all(|i| own.contains(i)))
            .map_or(format!("#{id}"), |c| c.key.clone());
        // The principal's knowledge: each of their school's inner cells, published.
        let mut known = release.clone();
        let mut with = status.to_vec();
        for &i in &own {
            known.cells.push(Cell {
                key: format!("känd:{i}"),
                kind: Kind::Band,
                value: release.values[i],
                base: release.values[i],
                schools: 1,
                confidential: 0,
                area: false,
                inner: vec![i],
            });
            with.push(Status::Published);
        }
        // What the principal learns about others from a hidden cell is the cell less their own
        // part: an area's count that is all the principal's own pupils beside others' published
        // figures tells them nothing new. So each hidden cell is judged on its others' part,
        // unless that part is itself published.
        let published: std::collections::HashSet<&[usize]> = release
            .cells
            .iter()
            .zip(status)
            .filter(|(_, s)| s.published())
            .map(|(c, _)| c.inner.as_slice())
            .collect();
        let mut targets = Vec::new();
        for (k, c) in release.cells.iter().enumerate() {
            if status[k].published() {
                continue;
            }
            let rest: Vec<usize> = c
                .inner
                .iter()
                .copied()
                .filter(|i| !own.contains(i))
                .collect();
            if rest.is_empty() || published.contains(rest.as_slice()) {
                continue;
            }
            if rest.len() == c.inner.len() {
                targets.push(k);
                continue;
            }
            // Judged as the cell is (a bound needs width 1, a rule's cell the protection), but
            // it publishes nothing: a bound's constraint, `≥ base − dominance`, is `≥ 0` here.
            known.cells.push(Cell {
                key: format!("{}|utom-egen", c.key),
                value: rest.iter().map(|&i| release.values[i]).sum(),
                base: rules.dominance,
                inner: rest,
                ..c.clone()
            });
            with.push(status[k]);
            targets.push(known.cells.len() - 1);
        }
        let report = audit::audit_cells(
            &known,
            &with,
            rules,
            audit::Depth::Exact,
            Some(&targets),
            &Default::default(),
            &mut Default::default(),
        );
        found.extend(report.failures.into_iter().map(|f| (code.clone(), f)));
    }
    found
}

/// The rules against an outsider only: no principal's own figures known.
fn outsiders() -> Rules {
    Rules {
        insiders: false,
        ..Rules::default()
    }
}

fn arb_rows() -> impl Strategy<Value = Vec<Row>> {
    // 1–3 municipalities of 1–4 schools, each with one or two uploaded groups (K and M, or T),
    // band counts mostly small so that many cells are hidden.
    let count = prop_oneof![3 => 0i64..6, 2 => 0i64..15, 1 => 10i64..60];
    let group = (count.clone(), count.clone(), count);
    let school = (any::<bool>(), group.clone(), group);
    let muni = proptest::collection::vec(school, 1..5);
    proptest::collection::vec(muni, 1..4).prop_map(|munis| {
        let mut rows = Vec::new();
        for (m, schools) in munis.iter().enumerate() {
            let mcode = format!("18{:02}", 60 + m);
            for (s, (split, a, b)) in schools.iter().enumerate() {
                let code = format!("{mcode}{:04}", s + 1);
                if *split {
                    rows.push(row(&code, &mcode, "7", "K", [a.0, a.1, a.2]));
                    rows.push(row(&code, &mcode, "7", "M", [b.0, b.1, b.2]));
                } else {
                    rows.push(row(
                        &code,
                        &mcode,
                        "all",
                        "T",
                        [a.0 + b.0, a.1 + b.1, a.2 + b.2],
                    ));
                }
            }
        }
        rows
    })
}

/// Actions for most schools of `rows`, small counts derived from their bands.
fn some_actions(rows: &[Row]) -> Vec<Actions> {
    let mut out: Vec<Actions> = Vec::new();
    for r in rows {
        let b = &r.bands;
        if (b[0] + b[1]) % 4 == 3 || out.iter().any(|a| a.school == r.school) {
            continue;
        }
        out.push(Actions {
            school: r.school.clone(),
            municipality: r.municipality.clone(),
            counts: [b[0] % 7, b[1] % 3, b[2] % 9, 0, (b[0] + b[2]) % 5],
        });
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// No count of 1–9 pupils, no band count (or count of actions) of 1–4, no area figure
    /// from under 3 schools is published; twins share a status; the audit passes; and the
    /// result does not depend on the order the cells come in. Most schools report actions.
    #[test]
    fn random_hierarchies_are_protected_deterministically(rows in arb_rows()) {
        let rules = Rules::default();
        let mut release = build(&rows, "18", &EDGES);
        let actions = some_actions(&rows);
        add_actions(&mut release, &rows, &actions, "18", &EDGES, 20);
        let status = disclosure::protect(&release, &rules);
        check(&release, &status, &rules);
        let mut shuffled = release.clone();
        shuffled.cells.reverse();
        let again = disclosure::protect(&shuffled, &rules);
        for (c, s) in shuffled.cells.iter().zip(&again) {
            prop_assert_eq!(*s, status_of(&release, &status, &c.key), "{}", c.key);
        }
    }

    /// A principal knows their own school's figures: with them beside everything published,
    /// no hidden cell of another school or of an area can be narrowed below the rules either.
    #[test]
    fn no_principal_narrows_another_schools_hidden_figure(rows in arb_rows()) {
        let rules = Rules { insiders: true, ..Rules::default() };
        let release = build(&rows, "18", &EDGES);
        let status = disclosure::protect(&release, &rules);
        let leaks = insider_attack(&release, &status, &rules);
        prop_assert!(leaks.is_empty(), "{:?}", leaks);
    }

    /// What the audit proves locally (in a school, a pair of schools, a municipality, or from
    /// tables found for other cells) lies inside what an attacker can reach over the whole
    /// release: a cell passed without the whole programme is passed by it too.
    #[test]
    fn local_proofs_lie_inside_the_whole_interval(rows in arb_rows()) {
        let rules = Rules::default();
        let release = build(&rows, "18", &EDGES);
        let status = disclosure::protect(&release, &rules);
        let local = audit::audit(&release, &status, &rules);
        let whole = audit::audit_cells(
            &release,
            &status,
            &rules,
            audit::Depth::Exact,
            None,
            &Default::default(),
            &mut Default::default(),
        );
        prop_assert_eq!(local.intervals.len(), whole.intervals.len());
        for (l, w) in local.intervals.iter().zip(&whole.intervals) {
            prop_assert!(w.exact, "{}", w.key);
            prop_assert!(w.min <= l.min && l.min <= l.value, "{}: {:?} {:?}", l.key, l, w);
            let inside = match (l.max, w.max) {
                (None, x) => x.is_none(),
                (Some(m), None) => m >= l.value,
                (Some(m), Some(x)) => l.value <= m && m <= x,
            };
            prop_assert!(inside, "{}: {:?} {:?}", l.key, l, w);
        }
    }

    /// The repair's reruns of the Gaussian step, which replay the last run up to the first
    /// step a newly hidden cell changes, give what a run from scratch gives: over rounds of a
    /// few more hidden cells, with and without cells an earlier publication forces.
    #[test]
    fn a_rerun_of_the_gaussian_step_equals_one_from_scratch(
        rows in arb_rows(),
        picks in proptest::collection::vec(proptest::collection::vec(any::<prop::sample::Index>(), 1..4), 1..5),
        forced in proptest::collection::vec(any::<bool>(), 0..40),
    ) {
        let rules = Rules::default();
        let release = build(&rows, "18", &EDGES);
        // Forced cells in about a third of the cases; none in the others.
        let forced: Vec<bool> = forced.into_iter().map(|f| f && rows.len() % 3 == 0).collect();
        let mut status = disclosure::primary(&release, &rules);
        for (s, _) in status.iter_mut().zip(&forced).filter(|(_, f)| **f) {
            *s = Status::Published;
        }
        let mut elimination = disclosure::Elimination::default();
        elimination.run(&release, &mut status, &forced);
        for round in picks {
            let open: Vec<usize> = (0..status.len())
                .filter(|&i| status[i] == Status::Published && !forced.get(i).copied().unwrap_or(false))
                .collect();
            if open.is_empty() {
                break;
            }
            for pick in round {
                status[open[pick.index(open.len())]] = Status::Secondary;
            }
            let mut scratch = status.clone();
            disclosure::gauss(&release, &mut scratch, &forced);
            elimination.run(&release, &mut status, &forced);
            prop_assert_eq!(&status, &scratch);
        }
    }

    /// Every cell the Gaussian step hid is needed: lifting any one of them lets the attacker
    /// compute a hidden cell exactly, and the audit says so.
    #[test]
    fn lifting_any_gaussian_secondary_suppression_is_caught(rows in arb_rows()) {
        let rules = Rules::default();
        let release = build(&rows, "18", &EDGES);
        let status = disclosure::suppress(&release, &rules);
        for (i, _) in status.iter().enumerate().filter(|(_, s)| **s == Status::Secondary).take(3) {
            // Lift it under every name it has.
            let mut leaky = status.clone();
            for (j, c) in release.cells.iter().enumerate() {
                if c.inner == release.cells[i].inner {
                    leaky[j] = Status::Published;
                }
            }
            let report = audit::audit(&release, &leaky, &rules);
            prop_assert!(
                report.failures.iter().any(|f| f.width() == Some(0)),
                "lifting {} leaks nothing exactly", release.cells[i].key
            );
        }
    }
}

/// K + M = T with three girls: the boys' figure must go too, or T − M gives the girls. Lift
/// that one suppression and the attacker computes the girls exactly; the audit catches it.
#[test]
fn the_attacker_recovers_a_lifted_suppression_and_the_audit_catches_it() {
    let rules = Rules::default();
    let rows = vec![
        row("18600001", "1860", "7", "K", [1, 1, 1]),
        row("18600001", "1860", "7", "M", [10, 6, 5]),
        row("18600002", "1860", "7", "K", [15, 5, 5]),
        row("18600002", "1860", "7", "M", [15, 5, 5]),
        row("18600003", "1860", "7", "K", [15, 5, 5]),
        row("18600003", "1860", "7", "M", [15, 5, 5]),
    ];
    let release = build(&rows, "18", &EDGES);
    check(&release, &disclosure::protect(&release, &rules), &rules);
    // The Gaussian step alone: the school is published, so the boys must go.
    let status = disclosure::suppress(&release, &rules);
    let girls = "skolenhet:18600001|K|totalt";
    let boys = "skolenhet:18600001|M|totalt";
    let school = "skolenhet:18600001|T|totalt";
    assert_eq!(status_of(&release, &status, girls), Status::FewPupils);
    assert!(status_of(&release, &status, school).published());
    assert_eq!(status_of(&release, &status, boys), Status::Secondary);
    // The attacker, given the boys: girls = school − boys.
    let mut leaky = status.clone();
    for (j, c) in release.cells.iter().enumerate() {
        if c.inner == cell(&release, boys).1.inner {
            leaky[j] = Status::Published;
        }
    }
    let value = |k: &str| cell(&release, k).1.value;
    assert_eq!(value(school) - value(boys), 3);
    let report = audit::audit(&release, &leaky, &rules);
    let caught = report
        .failures
        .iter()
        .find(|f| f.key == girls)
        .expect("the audit names the girls' cell");
    assert_eq!((caught.min, caught.max), (3, Some(3)));
}

/// A municipality with two schools, one of them an independent school whose figures are
/// confidential (`confidential_organisers`): the municipality's own figures need three schools,
/// and neither the county minus the other municipalities nor one school plus the other may
/// give them away.
#[test]
fn a_municipality_with_a_confidential_school_of_two_cannot_be_recovered() {
    let rules = Rules {
        confidential_organisers: serde_json::from_str(r#"["ENSKILD"]"#).unwrap(),
        ..Rules::default()
    };
    let release = build(&two_school_county(true), "18", &EDGES);
    let status = disclosure::protect(&release, &rules);
    check(&release, &status, &rules);
    let total = "kommun:1864|T|totalt";
    assert_eq!(status_of(&release, &status, total), Status::FewSchools);
    assert_eq!(
        status_of(&release, &status, "skolenhet:18640002|T|totalt"),
        Status::Confidential
    );
    let report = audit::audit(&release, &status, &rules);
    for key in [total, "skolenhet:18640002|T|totalt"] {
        let i = report.intervals.iter().find(|i| i.key == key).unwrap();
        assert!(i.width().is_none_or(|w| w >= 2 * rules.protection), "{i:?}");
    }
    // The county is still published: the loss falls on other cells, not on the largest total.
    assert!(status_of(&release, &status, "län:18|T|totalt").published());
}

/// The same municipality when no school's figures are confidential (the default): the rule of
/// three schools guards confidential schools, not pupils, so the municipality's own figures
/// are published as the pupil rules allow, and so are both schools'.
#[test]
fn a_municipality_with_two_schools_publishes_its_own_figures() {
    let rules = Rules::default();
    let release = build(&two_school_county(false), "18", &EDGES);
    let status = disclosure::protect(&release, &rules);
    check(&release, &status, &rules);
    for key in [
        "kommun:1864|T|totalt",
        "kommun:1864|T|minst10",
        "kommun:1864|T|minst20",
        "skolenhet:18640001|T|totalt",
        "skolenhet:18640002|T|totalt",
    ] {
        assert!(status_of(&release, &status, key).published(), "{key}");
    }
}

/// Against an outsider: school A's 3 pupils at ≥ 20 % are hidden, and its 9 at ≥ 10 % alone
/// hold them to 0–9: the repair hides that small cap at once rather than the same figure of
/// one sibling school after another (each a round of its own). One sibling's figure goes too (the municipality's
/// ≥ 20 % less the others would give A's), the others and the municipality's stay.
#[test]
fn a_small_figure_that_caps_a_hidden_one_gives_way_first() {
    let rules = outsiders();
    let rows: Vec<Row> = [
        ("18800001", [40, 6, 3]),
        ("18800002", [50, 20, 11]),
        ("18800003", [60, 25, 12]),
        ("18800004", [70, 30, 13]),
        ("18800005", [80, 35, 14]),
    ]
    .into_iter()
    .map(|(school, bands)| row(school, "1880", "all", "T", bands))
    .collect();
    let release = build(&rows, "18", &EDGES);
    let status = disclosure::protect(&release, &rules);
    check(&release, &status, &rules);
    assert_eq!(
        status_of(&release, &status, "skolenhet:18800001|T|minst20"),
        Status::SmallCount
    );
    assert_eq!(
        status_of(&release, &status, "skolenhet:18800001|T|minst10"),
        Status::Secondary
    );
    let siblings_hidden = (2..=5)
        .filter(|s| {
            !status_of(
                &release,
                &status,
                &format!("skolenhet:1880000{s}|T|minst20"),
            )
            .published()
        })
        .count();
    assert_eq!(siblings_hidden, 1);
    for key in [
        "kommun:1880|T|minst20",
        "kommun:1880|T|minst10",
        "län:18|T|minst20",
    ] {
        assert!(status_of(&release, &status, key).published(), "{key}");
    }
}

/// Municipality 1864 with two schools (the second confidential when `confidential`), 1860
/// with three and 1880 with four, in county 18.
/// Three schools of one municipality; C's 4 pupils at ≥ 20 % are hidden. Protected against
/// an outsider only (`insiders` off), B's principal, who knows B's figures, computes them
/// exactly from the municipality's. With `insiders` on, the protection assumes any one
/// school's figures known, and no principal narrows another school's hidden figure.
#[test]
fn a_principal_cannot_narrow_another_schools_hidden_figure() {
    let rules = Rules {
        insiders: true,
        ..Rules::default()
    };
    let rows: Vec<Row> = [
        ("18800001", [67, 24, 13]),
        ("18800002", [51, 25, 13]),
        ("18800003", [45, 7, 4]),
    ]
    .iter()
    .map(|(s, b)| row(s, "1880", "all", "T", *b))
    .collect();
    let release = build(&rows, "18", &EDGES);
    let outsiders = disclosure::protect(&release, &self::outsiders());
    check(&release, &outsiders, &self::outsiders());
    let leaks = insider_attack(&release, &outsiders, &rules);
    let c = "skolenhet:18800003|T|minst20";
    assert!(
        leaks
            .iter()
            .any(|(_, f)| f.key == c && f.min == 4 && f.max == Some(4)),
        "{leaks:?}"
    );
    let status = disclosure::protect(&release, &rules);
    check(&release, &status, &rules);
    assert_eq!(status_of(&release, &status, c), Status::SmallCount);
    assert_eq!(
        insider_attack(&release, &status, &rules),
        vec![],
        "a principal narrows a hidden figure"
    );
}

/// A municipality of two schools whose one pupil at ≥ 20 % is school A's; B has none there,
/// published as 0. A's principal computes the municipality's hidden 1 exactly, but it is their
/// own pupil beside B's published 0: they learn nothing of others, so nothing more is hidden
/// for it (before, the repair hid every figure of the municipality, its pupils included).
#[test]
fn a_principal_learns_nothing_from_an_area_that_is_their_own_beside_published_figures() {
    let rules = Rules::default();
    assert!(rules.insiders, "protected against principals by default");
    let rows = vec![
        row("18630001", "1863", "all", "T", [40, 20, 1]),
        row("18630002", "1863", "all", "T", [50, 30, 0]),
    ];
    let release = build(&rows, "18", &EDGES);
    let status = disclosure::protect(&release, &rules);
    check(&release, &status, &rules);
    assert!(!status_of(&release, &status, "kommun:1863|T|minst20").published());
    for key in [
        "skolenhet:18630002|T|minst20",
        "skolenhet:18630001|T|minst10",
        "skolenhet:18630002|T|minst10",
        "kommun:1863|T|minst10",
        "kommun:1863|T|totalt",
    ] {
        assert!(status_of(&release, &status, key).published(), "{key}");
    }
    assert_eq!(
        insider_attack(&release, &status, &rules),
        vec![],
        "a principal narrows a hidden figure"
    );
}

/// Found by the property test: a municipality of two schools, 10 pupils each, the second with
/// 3 at ≥ 20 %. The first school's principal knows their own 0 at ≥ 20 %, so the
/// municipality's and the county's counts there are the second school's: they must stay
/// hidden (or wide) against that principal too.
#[test]
fn a_principal_of_one_of_two_schools_cannot_subtract_from_the_area() {
    let rules = Rules {
        insiders: true,
        ..Rules::default()
    };
    let rows = vec![
        row("18600001", "1860", "all", "T", [0, 10, 0]),
        row("18600002", "1860", "all", "T", [0, 7, 3]),
    ];
    let release = build(&rows, "18", &EDGES);
    let status = disclosure::protect(&release, &rules);
    check(&release, &status, &rules);
    assert!(!status_of(&release, &status, "kommun:1860|T|minst20").published());
    assert_eq!(
        insider_attack(&release, &status, &rules),
        vec![],
        "a principal narrows a hidden figure"
    );
}

/// Found by the property test: two municipalities of one school each. Whatever the county
/// publishes beside its schools, one principal must not get the other school's hidden figures.
#[test]
fn a_principal_of_one_of_two_municipalities_cannot_subtract_from_the_county() {
    let rules = Rules {
        insiders: true,
        ..Rules::default()
    };
    let rows = vec![
        row("18600001", "1860", "all", "T", [2, 2, 6]),
        row("18610001", "1861", "all", "T", [0, 5, 5]),
    ];
    let release = build(&rows, "18", &EDGES);
    let status = disclosure::protect(&release, &rules);
    check(&release, &status, &rules);
    let shown: Vec<String> = release
        .cells
        .iter()
        .zip(&status)
        .map(|(c, s)| format!("{} {} {:?}", c.key, c.value, s))
        .collect();
    assert_eq!(
        insider_attack(&release, &status, &rules),
        vec![],
        "a principal narrows a hidden figure: {shown:#?}"
    );
}

fn two_school_county(confidential: bool) -> Vec<Row> {
    let mut rows = Vec::new();
    for (m, n) in [("1864", 2), ("1860", 3), ("1880", 4)] {
        for s in 0..n {
            let mut r = row(
                &format!("{m}{:04}", s + 1),
                m,
                "all",
                "T",
                [40, 12, 8 + s as i64],
            );
            r.confidential = confidential && m == "1864" && s == 1;
            rows.push(r);
        }
    }
    rows
}

/// A school's three actions in a month are hidden, and its municipality's actions less the
/// other schools' do not give them away; a school's actions by kind are not published at all
/// (its own principal sees them), so the municipality's counts by kind stay. The actions are
/// set against the pupils at the high level in the schools that reported, a cell of its own.
#[test]
fn a_schools_few_actions_cannot_be_had_from_its_municipality() {
    let rules = Rules::default();
    let mut rows = Vec::new();
    let mut actions = Vec::new();
    for (m, n) in [("1880", 4), ("1860", 4)] {
        for s in 0..n {
            let school = format!("{m}{:04}", s + 1);
            rows.push(row(&school, m, "all", "T", [40, 12, 8]));
            // The fourth school of 1860 reports no actions.
            if m == "1860" && s == 3 {
                continue;
            }
            let counts = if school == "18800001" {
                [2, 0, 1, 0, 0]
            } else {
                [10 + s as i64, 0, 6 + s as i64, 9, 0]
            };
            actions.push(Actions {
                school: school.clone(),
                municipality: m.into(),
                counts,
            });
        }
    }
    let mut release = build(&rows, "18", &EDGES);
    add_actions(&mut release, &rows, &actions, "18", &EDGES, 20);
    let status = disclosure::protect(&release, &rules);
    check(&release, &status, &rules);
    let all = |area: &str| format!("{area}|åtgärd|alla");
    assert_eq!(
        status_of(&release, &status, &all("skolenhet:18800001")),
        Status::SmallCount
    );
    if status_of(&release, &status, &all("kommun:1880")).published() {
        let hidden = (1..=4)
            .filter(|s| {
                !status_of(&release, &status, &all(&format!("skolenhet:1880{s:04}"))).published()
            })
            .count();
        assert!(hidden >= 2, "{hidden} of the municipality's schools hidden");
    }
    assert!(
        !release
            .cells
            .iter()
            .any(|c| c.key.starts_with("skolenhet:") && c.key.contains("|åtgärd|sip")),
        "no school's actions by kind"
    );
    let sip = cell(&release, "kommun:1880|åtgärd|sip").1;
    assert_eq!(sip.value, 9 * 3);
    assert!(status_of(&release, &status, "kommun:1880|åtgärd|sip").published());
    // Pupils at 20 % or more in the reporting schools: three of 1860's four.
    let (_, reporting) = cell(&release, "kommun:1860|R|minst20");
    assert_eq!(
        (reporting.value, reporting.base, reporting.schools),
        (24, 180, 3)
    );
    assert_eq!(cell(&release, "kommun:1860|T|minst20").1.value, 32);
    assert_eq!(
        cell(&release, "kommun:1880|åtgärd|alla").1.value,
        3 + (11 + 12 + 13) + (7 + 8 + 9) + 9 * 3
    );
}

/// One girl, the only pupil of her school at 20 % or more: that count is hidden, and so is
/// enough around it that neither the municipality minus its other schools nor the school's
/// count at 10 % minus its band gives her away.
#[test]
fn a_group_with_one_girl_stays_hidden() {
    let rules = Rules::default();
    let rows = vec![
        row("18800001", "1880", "7", "K", [14, 5, 1]),
        row("18800001", "1880", "7", "M", [15, 5, 0]),
        row("18800002", "1880", "all", "T", [50, 10, 10]),
        row("18800003", "1880", "all", "T", [50, 10, 10]),
    ];
    let release = build(&rows, "18", &EDGES);
    let status = disclosure::protect(&release, &rules);
    check(&release, &status, &rules);
    let girl = "skolenhet:18800001|T|minst20";
    assert_eq!(status_of(&release, &status, girl), Status::SmallCount);
    let report = audit::audit(&release, &status, &rules);
    let i = report.intervals.iter().find(|i| i.key == girl).unwrap();
    assert!(i.width().is_none_or(|w| w >= 2 * rules.protection), "{i:?}");
}

/// A school year minus its published months: with one month hidden, publishing the year and
/// every other month would give it; one more month (the smallest) must go.
#[test]
fn a_year_minus_its_published_months_does_not_reveal_the_hidden_month() {
    let rules = Rules::default();
    let months = [40, 38, 3, 41, 39, 44, 37, 42, 36, 40];
    let mut cells: Vec<Cell> = months
        .iter()
        .enumerate()
        .map(|(i, v)| Cell {
            key: format!("skolenhet:18800001|allT|månad {:02}", i + 1),
            kind: Kind::Band,
            value: *v,
            base: 400,
            schools: 1,
            confidential: 0,
            area: false,
            inner: vec![i],
        })
        .collect();
    cells.push(Cell {
        key: "skolenhet:18800001|allT|läsår".into(),
        kind: Kind::Total,
        value: months.iter().sum(),
        base: 400,
        schools: 1,
        confidential: 0,
        area: false,
        inner: (0..10).collect(),
    });
    let release = Release {
        values: months.to_vec(),
        localities: vec![],
        names: vec![],
        cells,
    };
    let status = disclosure::protect(&release, &rules);
    check(&release, &status, &rules);
    assert_eq!(status[2], Status::SmallCount);
    assert!(status[10].published(), "the year is published");
    let hidden: Vec<usize> = (0..10).filter(|i| !status[*i].published()).collect();
    assert!(hidden.len() >= 2, "{status:?}");
    // The second hidden month is the smallest of the rest: the cheapest loss.
    assert!(hidden.contains(&8), "{hidden:?}");
}

/// `narvaro disclosure audit AREA TERM` on a lake: the county's release is protected and
/// audited; small groups everywhere leave nothing to publish but nothing narrowed either.
#[test]
fn the_audit_command_protects_and_audits_a_county_release() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(crate::common::slt_lake(dir.path()));
    let lake = dir.path().join("lake");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_narvaro"))
            .args(["disclosure", "audit", "--lake", lake.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["1880", "VT2026"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("län 18, 2026-02 (term)"), "{out}");
    assert!(out.contains("0 för smala intervall"), "{out}");
    assert!(!out.contains("FEL:"), "{out}");
    // Why a figure is hidden: each cell of a prefix with its value and status.
    let (code, out, err) = run(&["1880", "VT2026", "--cells", "skolenhet:18800101|T|"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("celler som börjar med skolenhet:18800101|T|:"),
        "{out}"
    );
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("skolenhet:18800101|T|totalt "))
        .unwrap_or_else(|| panic!("{out}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(fields[1].parse::<i64>().unwrap() >= 10, "{line}");
    assert!(
        [
            "Published",
            "Secondary",
            "FewPupils",
            "SmallCount",
            "FewSchools"
        ]
        .contains(&fields[2]),
        "{line}"
    );
    let (code, _, err) = run(&["999", "VT2026"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("'999' är ingen läns- eller kommunkod"),
        "{err}"
    );
    let (code, _, err) = run(&["99", "VT2026"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("det finns inget län med kod 99"), "{err}");
    // A term without data names the terms that have some.
    let (code, _, err) = run(&["18", "HT2024"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("uppgifter finns för: "), "{err}");
}

/// Protection depends on the release and the rules alone: a new session over the same release
/// (a later data version whose upload left the county alone) that shares its owner's
/// protections (a server's engines do) reuses it rather than solving the county again; a
/// session with protections of its own solves it itself.
#[test]
fn a_county_release_is_protected_once_per_owner() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let lake = crate::common::slt_lake(dir.path()).await;
        let shared = std::sync::Arc::new(disclosure::release::Protections::default());
        let open = || async {
            narvaro::engine::Engine::open(&lake, None)
                .await
                .unwrap()
                .sharing(shared.clone())
        };
        let (a, b) = (open().await, open().await);
        let which = Which::term("18", "2026-02");
        let first = disclosure::release::protection(&a, &which).await.unwrap();
        let again = disclosure::release::protection(&b, &which).await.unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &again));
        assert!(!first.status.is_empty());
        // Another period is another release.
        let other = disclosure::release::protection(&b, &Which::term("18", "2025-12"))
            .await
            .unwrap();
        assert!(!std::sync::Arc::ptr_eq(&first, &other));
        // An engine with protections of its own computes the same statuses itself.
        let alone = narvaro::engine::Engine::open(&lake, None).await.unwrap();
        let own = disclosure::release::protection(&alone, &which)
            .await
            .unwrap();
        assert!(!std::sync::Arc::ptr_eq(&first, &own));
        assert_eq!(own.status, first.status);
    });
}

/// The country's figures are sums of the counties': one is published only when every county's
/// is, so no county's hidden figure is the country's less the others'.
#[test]
fn the_country_is_published_only_where_every_county_is() {
    use std::sync::Arc;
    let county = |code: &str, minst15: Status| {
        let status = [
            (format!("län:{code}|T|totalt"), Status::Published),
            (format!("län:{code}|T|minst15"), minst15),
            // Another county's cells in a protection do not count.
            ("län:99|T|minst20".to_string(), Status::SmallCount),
        ];
        (
            code.to_string(),
            Arc::new(disclosure::Protection {
                rules: Rules::default(),
                status: status.into_iter().collect(),
                ..Default::default()
            }),
        )
    };
    let rules = Rules::default();
    let all = disclosure::release::sum_of_counties(
        &[
            county("18", Status::Published),
            county("23", Status::Published),
        ],
        &rules,
    );
    assert_eq!(all.status("riket:00|T|minst15"), Status::Published);
    assert_eq!(all.status("riket:00|T|totalt"), Status::Published);
    assert!(!all.status.contains_key("riket:00|T|minst20"));
    let one_hidden = disclosure::release::sum_of_counties(
        &[
            county("18", Status::Published),
            county("23", Status::Secondary),
        ],
        &rules,
    );
    assert_eq!(one_hidden.status("riket:00|T|minst15"), Status::Secondary);
    assert_eq!(one_hidden.status("riket:00|T|totalt"), Status::Published);
}

/// A county report's earlier terms are checked against each term's own protected release, and
/// the whole lake's figure against every county's: on the slt lake (three counties, small
/// groups everywhere) nothing of the county's is published, so neither is the whole lake's.
#[test]
fn earlier_terms_and_the_country_follow_their_own_releases() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let lake = crate::common::slt_lake(dir.path()).await;
        // Every figure here is hidden (a handful of pupils per county); the check is that the
        // report hides exactly what the releases hide. The demo lake in `server.rs`, where
        // the county's figures are shown, runs the same check.
        let (county, whole) =
            county_report_follows_its_releases(&lake, "18", &["01", "18", "23"]).await;
        assert_eq!((county, whole), (0, 0));
    });
}

/// The block `id` of `report`.
fn block_of<'a>(report: &'a narvaro::report::Report, id: &str) -> &'a narvaro::report::Block {
    report
        .sections
        .iter()
        .flat_map(|s| &s.blocks)
        .find(|b| b.id == id)
        .unwrap_or_else(|| panic!("no block {id}"))
}

/// Checks that the county report of `county` for VT2026 shows each of its levels' and terms'
/// figures, and the whole lake's beside them, exactly when the release each lies in publishes
/// it (`counties`: every county with data in the lake); returns how many of the county's and
/// of the whole lake's figures are shown.
pub async fn county_report_follows_its_releases(
    lake: &narvaro::lake::Lake,
    county: &str,
    counties: &[&str],
) -> (usize, usize) {
    use narvaro::report::{Block, Cell};
    let engine = narvaro::engine::Engine::open(lake, None).await.unwrap();
    let spec = narvaro::report::spec("county").unwrap();
    let term = "VT2026".parse().unwrap();
    let report = narvaro::report::build(&engine, spec, county, term, crate::common::now(), None)
        .await
        .unwrap();
    let published = |c: &str, period: &str, key: String| {
        let which = Which::term(c, period);
        let engine = &engine;
        async move {
            disclosure::release::protection(engine, &which)
                .await
                .unwrap()
                .status(&key)
                .published()
        }
    };
    let block = |id: &str| block_of(&report, id);
    let shown = |b: &Block, r: usize, name: &str| b.rows[r][b.column(name).unwrap()] != Cell::Null;
    let text = |b: &Block, r: usize, name: &str| match &b.rows[r][b.column(name).unwrap()] {
        Cell::Text(t) => t.clone(),
        other => panic!("{other:?}"),
    };
    let (mut county_shown, mut country_shown) = (0, 0);
    let levels = block("levels");
    assert!(!levels.rows.is_empty());
    for r in 0..levels.rows.len() {
        // "problematisk frånvaro (minst 15 %)"
        let level = text(levels, r, "level");
        let percent = level
            .rsplit_once("minst ")
            .unwrap()
            .1
            .trim_end_matches(" %)");
        let key = |c: &str| format!("län:{c}|T|minst{percent}");
        assert_eq!(
            shown(levels, r, "county_pct"),
            published(county, &report.period, key(county)).await,
            "{level}"
        );
        county_shown += usize::from(shown(levels, r, "county_pct"));
        let mut every = true;
        for c in counties {
            every &= published(c, &report.period, key(c)).await;
        }
        assert_eq!(shown(levels, r, "all_pct"), every, "{level}");
        country_shown += usize::from(every);
    }
    let trend = block("trend");
    assert!(trend.rows.len() >= 2, "{:?}", trend.rows);
    for r in 0..trend.rows.len() {
        let period = text(trend, r, "period");
        let key = |c: &str| format!("län:{c}|T|totalt");
        assert_eq!(
            shown(trend, r, "county_pct"),
            published(county, &period, key(county)).await,
            "{period}"
        );
        county_shown += usize::from(shown(trend, r, "county_pct"));
        let mut every = true;
        for c in counties {
            every &= published(c, &period, key(c)).await;
        }
        assert_eq!(shown(trend, r, "all_pct"), every, "{period}");
        country_shown += usize::from(every);
    }
    (county_shown, country_shown)
}

/// Hällefors (1863): two schools, one of them independent (`ENSKILD`), 753 pupils. The rule of
/// three schools guards confidential schools, and none is by default, so the committee
/// report shows Hällefors' own absence, its pupils at the shared levels and its trend, as far
/// as the pupil rules and the protection against principals allow.
#[test]
fn hallefors_committee_report_shows_its_own_figures() {
    use narvaro::report::Cell as Value;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (lake, _) = crate::common::municipality_lake(dir.path(), "1863").await;
        let engine = narvaro::engine::Engine::open(&lake, None).await.unwrap();
        let spec = narvaro::report::spec("committee").unwrap();
        let report = narvaro::report::build(
            &engine,
            spec,
            "1863",
            "VT2026".parse().unwrap(),
            crate::common::now(),
            None,
        )
        .await
        .unwrap();
        let absence = &report.summary[0];
        assert!(absence.value.is_some(), "{absence:?}");
        let shown = |id: &str, column: &str| -> Vec<bool> {
            let b = block_of(&report, id);
            let c = b.column(column).unwrap();
            b.rows.iter().map(|r| r[c] != Value::Null).collect()
        };
        let levels = shown("levels", "municipality_pct");
        assert!(levels.len() >= 4, "{levels:?}");
        // 10 %: 60 pupils. At 15 and 20 % (25 and 10) the principal of school 18630101 would
        // subtract their own pupils from the municipality's and have the other school's one
        // pupil at ≥ 20 %: protected against principals (the default), those give way.
        assert_eq!(levels[..3], [true, false, false], "{levels:?}");
        let trend = shown("trend", "municipality_pct");
        assert!(trend.len() >= 3 && trend.iter().all(|s| *s), "{trend:?}");
        let gender = shown("gender", "absence_pct_k");
        assert!(gender.iter().any(|s| *s), "{gender:?}");
    });
}
