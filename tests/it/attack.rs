//! The attacker of what is actually published (`narvaro disclosure attack`): every number of
//! every report of every publication, tied to the release cells it states, solved for every
//! hidden cell.

use narvaro::attack::{Scenario, attack};
use narvaro::http::App;
use narvaro::lake::Lake;
use narvaro::policy::{self, Policies};

use crate::common::{municipality_lake, narvaro, now, policies_without_disclosure};

fn policies() -> Policies {
    Policies::load(&policy::Source::resolve(None)).unwrap()
}

/// A lake published with no disclosure rules shows small groups: the attacker, judging by the
/// real rules, names the figures shown that the rules hide and the hidden cells it can narrow,
/// and the command exits 1 listing them.
#[tokio::test]
async fn the_attacker_finds_what_an_unprotected_publication_gives_away() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, _) = municipality_lake(dir.path(), "1814").await;
    App::new(lake, policies_without_disclosure(), now)
        .publish()
        .await
        .unwrap()
        .expect("published");
    let lake = Lake::open(dir.path().join("lake")).await.unwrap();
    let found = attack(&lake, &policies(), &[Scenario::Anonymous])
        .await
        .unwrap();
    assert_eq!(found.publications, 1);
    assert!(found.reports > 10 && found.tied > 1000, "{found:?}");
    assert!(!found.passed());
    // Counts of 1–4 pupils at a level, read straight off the views.
    let small = found
        .leaks
        .iter()
        .filter(|(_, _, what)| what.contains("SmallCount"))
        .count();
    assert!(small > 10, "{:?}", found.leaks);
    let lake_dir = dir.path().join("lake");
    let (code, out, err) = narvaro(&[
        "disclosure",
        "attack",
        "--lake",
        lake_dir.to_str().unwrap(),
        "--scenario",
        "anonymous",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FEL: publicering 1, län 18"), "{out}");
    assert!(out.contains("fast regeln döljer den (SmallCount)"), "{out}");
}

/// A municipality published with the insider protection on: the principal of any one school,
/// who knows its true figures, narrows no other hidden cell more than the policy allows, and
/// the public views hold too. Published without it (the default for now), the same principal
/// does narrow some.
#[tokio::test]
async fn a_publication_protected_against_insiders_holds_for_every_principal() {
    for insiders in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (lake, _) = municipality_lake(dir.path(), "1814").await;
        let mut policies = policies();
        policies.shared.policy.disclosure.insiders = insiders;
        App::new(lake, policies.clone(), now)
            .publish()
            .await
            .unwrap()
            .expect("published");
        let lake = Lake::open(dir.path().join("lake")).await.unwrap();
        let found = attack(
            &lake,
            &policies,
            &[Scenario::Anonymous, Scenario::Principal],
        )
        .await
        .unwrap();
        assert!(found.leaks.is_empty(), "{:?}", found.leaks);
        let [anonymous, principal] = found.outcomes.as_slice() else {
            panic!("{:?}", found.outcomes);
        };
        for o in [anonymous, principal] {
            assert!(o.releases > 10 && o.hidden > 100, "{o:?}");
        }
        assert!(anonymous.failures.is_empty(), "{:?}", anonymous.failures);
        assert_eq!(
            principal.failures.is_empty(),
            insiders,
            "insiders {insiders}: {:?}",
            principal.failures
        );
    }
}
