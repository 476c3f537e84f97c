//! Reference data compiled into the binary: Sweden's 290 municipalities with their counties,
//! and the FNoFF baseline figures for Örebro county (docs/contract.md).
//!
//! Compiled in (not read at run time) so a release binary needs no data files beside it.

use std::collections::HashMap;
use std::sync::OnceLock;

const MUNICIPALITIES_CSV: &str = include_str!("../fixtures/reference/municipalities.csv");

/// One municipality (kommun) with its county (län). Codes are strings: `0114` keeps its zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Municipality {
    pub code: String,
    pub name: String,
    pub county_code: String,
    pub county_name: String,
}

/// All municipalities, in the order of the reference file (by code).
pub fn municipalities() -> &'static [Municipality] {
    static ALL: OnceLock<Vec<Municipality>> = OnceLock::new();
    ALL.get_or_init(|| {
        MUNICIPALITIES_CSV
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let f: Vec<&str> = line.trim().splitn(4, ',').collect();
                Municipality {
                    code: f[0].to_string(),
                    name: f[1].to_string(),
                    county_code: f[2].to_string(),
                    county_name: f[3].to_string(),
                }
            })
            .collect()
    })
}

/// Looks a municipality up by its four-digit code.
pub fn municipality(code: &str) -> Option<&'static Municipality> {
    static BY_CODE: OnceLock<HashMap<&'static str, &'static Municipality>> = OnceLock::new();
    BY_CODE
        .get_or_init(|| {
            municipalities()
                .iter()
                .map(|m| (m.code.as_str(), m))
                .collect()
        })
        .get(code)
        .copied()
}

/// FNoFF baseline for Örebro county (län 18), grundskola: (code, pupils, schools).
/// Sums to 35,978 pupils in 129 schools.
pub const OREBRO_COUNTY: [(&str, u32, u32); 12] = [
    ("1882", 1_199, 7),
    ("1862", 1_005, 6),
    ("1861", 1_997, 7),
    ("1863", 753, 2),
    ("1883", 3_356, 10),
    ("1881", 2_947, 11),
    ("1860", 528, 3),
    ("1814", 1_110, 5),
    ("1885", 2_706, 11),
    ("1864", 432, 2),
    ("1884", 1_289, 7),
    ("1880", 18_656, 58),
];

/// Grade 9 pupils passing all subjects (2019, FNoFF): (municipality, share girls, share boys).
/// Where the seed gives one figure for both genders it is used for both.
pub const PASSING_ALL_SUBJECTS: [(&str, f64, f64); 3] = [
    ("1880", 0.74, 0.74),
    ("1864", 0.51, 0.51),
    ("1884", 0.85, 0.56),
];

/// The county's share passing all subjects, used for municipalities without a seed figure.
pub const PASSING_ALL_SUBJECTS_COUNTY: f64 = 0.693;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_290_municipalities_with_counties() {
        assert_eq!(municipalities().len(), 290);
        let orebro = municipality("1880").unwrap();
        assert_eq!(orebro.name, "Örebro");
        assert_eq!(orebro.county_code, "18");
        assert_eq!(municipality("0114").unwrap().name, "Upplands Väsby");
    }

    #[test]
    fn orebro_county_baseline_sums_to_fnoff_totals() {
        let pupils: u32 = OREBRO_COUNTY.iter().map(|m| m.1).sum();
        let schools: u32 = OREBRO_COUNTY.iter().map(|m| m.2).sum();
        assert_eq!((pupils, schools), (35_978, 129));
        for (code, _, _) in OREBRO_COUNTY {
            assert_eq!(municipality(code).unwrap().county_code, "18");
        }
    }
}
