//! Cell keys: the name of one published figure. This is the one place that formats and parses
//! them.
//!
//! A key is `LEVEL:CODE|MEASURE`: the area (`skolenhet:18800101`, `kommun:1880`, `län:18`,
//! `riket:00`) and what is counted there (`T|totalt`, `K|totalt`, `T|minst15`, `R|minst20`,
//! `åtgärd|samtal`). A report's template may also say which release the cell lies in:
//! `KEY@PERIOD` is the county's term up to `PERIOD`, `KEY@month:PERIOD` its month; a key
//! without `@` lies in the report's own release, and the country's keys in the country's.
//! `område:CODE|…` in a template stands for the area whose code it is.

use std::fmt;

use super::release::{COUNTRY, Which};

/// The level of an area. The order is that of the keys' text, so that areas sort as their
/// keys do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Municipality,
    County,
    Country,
    School,
}

impl Level {
    pub fn prefix(self) -> &'static str {
        match self {
            Level::School => "skolenhet",
            Level::Municipality => "kommun",
            Level::County => "län",
            Level::Country => "riket",
        }
    }

    fn from_prefix(prefix: &str) -> Option<Level> {
        [
            Level::School,
            Level::Municipality,
            Level::County,
            Level::Country,
        ]
        .into_iter()
        .find(|l| l.prefix() == prefix)
    }

    /// The level of an area code by its length: 8 digits a school unit, 4 a municipality,
    /// 2 a county (the country's `00` included).
    pub fn of_code(code: &str) -> Level {
        match code.len() {
            8 => Level::School,
            4 => Level::Municipality,
            _ if code == COUNTRY => Level::Country,
            _ => Level::County,
        }
    }
}

/// An area: a school unit, a municipality, a county or the country.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Area {
    pub level: Level,
    pub code: String,
}

impl Area {
    pub fn new(level: Level, code: impl Into<String>) -> Area {
        Area {
            level,
            code: code.into(),
        }
    }

    /// The key of this area's cell that counts `measure`.
    pub fn cell(&self, measure: impl fmt::Display) -> String {
        format!("{self}|{measure}")
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level.prefix(), self.code)
    }
}

/// A cell key, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellKey<'a> {
    pub level: Level,
    pub code: &'a str,
    /// What is counted: `T|totalt`, `T|minst15`, `åtgärd|samtal`.
    pub measure: &'a str,
}

impl<'a> CellKey<'a> {
    pub fn parse(key: &'a str) -> Option<CellKey<'a>> {
        let (area, measure) = key.split_once('|')?;
        let (prefix, code) = area.split_once(':')?;
        Some(CellKey {
            level: Level::from_prefix(prefix)?,
            code,
            measure,
        })
    }

    /// Whether this is the key of a cell of the school unit `code`.
    pub fn is_school(key: &str, code: &str) -> bool {
        CellKey::parse(key).is_some_and(|k| k.level == Level::School && k.code == code)
    }
}

impl fmt::Display for CellKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}|{}", self.level.prefix(), self.code, self.measure)
    }
}

/// A band cell's group: its key up to the last `|` (`kommun:1880|T` of `kommun:1880|T|minst15`).
pub fn group(key: &str) -> &str {
    key.rsplit_once('|').map_or(key, |(g, _)| g)
}

/// The key of a cell of the `n`th earlier publication of a release, when both are protected
/// together: `KEY@n`.
pub fn in_publication(key: &str, n: impl fmt::Display) -> String {
    format!("{key}@{n}")
}

/// A filled template's key (`område:` resolved to the area's level), and the release it lies
/// in given the report's own release.
pub fn locate<'k>(key: &'k str, own: &Which) -> (&'k str, Which) {
    let (cell, mut which) = match key.split_once('@') {
        None => (key, own.clone()),
        Some((cell, at)) => {
            let (window, period) = at.split_once(':').unwrap_or(("term", at));
            (
                cell,
                Which {
                    county: own.county.clone(),
                    period: period.into(),
                    window: window.into(),
                },
            )
        }
    };
    if CellKey::parse(cell).is_some_and(|k| k.level == Level::Country) {
        which.county = COUNTRY.into();
    }
    (cell, which)
}

/// `område:CODE|…` as the key of the area whose code it is; any other key as it is.
pub fn resolve_area(key: String) -> String {
    match key.strip_prefix("område:") {
        Some(tail) => {
            let code = tail.split(['|', '@']).next().unwrap_or_default();
            format!("{}:{tail}", Level::of_code(code).prefix())
        }
        None => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_format_parse_and_sort_as_their_text() {
        let areas = [
            Area::new(Level::School, "18800101"),
            Area::new(Level::Municipality, "1880"),
            Area::new(Level::County, "18"),
            Area::new(Level::Country, COUNTRY),
        ];
        for a in &areas {
            let key = a.cell(format_args!("T|minst{}", 15));
            let parsed = CellKey::parse(&key).unwrap();
            assert_eq!(
                (parsed.level, parsed.code, parsed.measure),
                (a.level, a.code.as_str(), "T|minst15")
            );
            assert_eq!(parsed.to_string(), key);
            assert_eq!(Level::of_code(&a.code), a.level);
        }
        let mut by_area = areas.to_vec();
        by_area.sort();
        let mut by_text: Vec<Area> = areas.to_vec();
        by_text.sort_by_key(|a| a.to_string());
        assert_eq!(by_area, by_text);
        assert!(CellKey::parse("skolenhet:1").is_none());
        assert!(CellKey::parse("stad:1|T|totalt").is_none());
        assert!(CellKey::is_school(
            "skolenhet:18800101|åtgärd|alla",
            "18800101"
        ));
        assert!(!CellKey::is_school("kommun:1880|T|totalt", "1880"));
    }

    #[test]
    fn a_template_key_lies_in_its_release() {
        let own = Which::term("18", "2026-06");
        let (cell, which) = locate("kommun:1880|T|totalt@month:2026-03", &own);
        assert_eq!(cell, "kommun:1880|T|totalt");
        assert_eq!(
            (
                which.county.as_str(),
                which.period.as_str(),
                which.window.as_str()
            ),
            ("18", "2026-03", "month")
        );
        let (_, which) = locate("riket:00|T|minst15@2025-06", &own);
        assert_eq!(
            (which.county.as_str(), which.period.as_str()),
            (COUNTRY, "2025-06")
        );
        assert_eq!(locate("län:18|T|totalt", &own).1, own);
        assert_eq!(
            resolve_area("område:1880|T|totalt@2025-06".into()),
            "kommun:1880|T|totalt@2025-06"
        );
        assert_eq!(
            resolve_area("område:00|K|totalt".into()),
            "riket:00|K|totalt"
        );
    }
}
