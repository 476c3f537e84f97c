//! Swedish number, date and term formatting for everything a user reads: decimal comma,
//! narrow no-break space between thousands, a real minus sign, HT/VT terms and läsår.

use std::fmt;

/// A term (termin): HT runs August–December, VT January–June. Written `HT2025`, `VT2026`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Term {
    pub year: i32,
    pub autumn: bool,
}

impl Term {
    /// The term a month (`YYYY-MM`) belongs to; July belongs to no term.
    pub fn of_period(period: &str) -> Option<Term> {
        let (y, m) = split_period(period)?;
        match m {
            1..=6 => Some(Term {
                year: y,
                autumn: false,
            }),
            8..=12 => Some(Term {
                year: y,
                autumn: true,
            }),
            _ => None,
        }
    }

    /// First and last month of the term, as `YYYY-MM`.
    pub fn months(&self) -> (String, String) {
        if self.autumn {
            (format!("{}-08", self.year), format!("{}-12", self.year))
        } else {
            (format!("{}-01", self.year), format!("{}-06", self.year))
        }
    }

    /// The läsår the term belongs to, e.g. `2025/26`.
    pub fn school_year(&self) -> String {
        let start = if self.autumn {
            self.year
        } else {
            self.year - 1
        };
        format!("{start}/{:02}", (start + 1) % 100)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", if self.autumn { "HT" } else { "VT" }, self.year)
    }
}

impl std::str::FromStr for Term {
    type Err = String;

    fn from_str(s: &str) -> Result<Term, String> {
        let up = s.trim().to_uppercase();
        let bad = || {
            format!(
                "'{s}' är ingen termin: skriv HT eller VT och årtalet, t.ex. HT2025 (aug–dec 2025) eller VT2026 (jan–jun 2026)"
            )
        };
        let (autumn, rest) = if let Some(r) = up.strip_prefix("HT") {
            (true, r)
        } else if let Some(r) = up.strip_prefix("VT") {
            (false, r)
        } else {
            return Err(bad());
        };
        if rest.len() != 4 || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: i32 = rest.parse().map_err(|_| bad())?;
        if !(2000..=2100).contains(&year) {
            return Err(bad());
        }
        Ok(Term { year, autumn })
    }
}

fn split_period(period: &str) -> Option<(i32, u32)> {
    let (y, m) = period.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    Some((y.parse().ok()?, m.parse().ok()?))
}

const MONTHS: [&str; 12] = [
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
];

/// `2026-03` → `mars 2026`.
pub fn month(period: &str) -> String {
    match split_period(period) {
        Some((y, m @ 1..=12)) => format!("{} {y}", MONTHS[m as usize - 1]),
        _ => period.to_string(),
    }
}

/// `2026-03` → `mar 2026` (for chart axes).
pub fn month_short(period: &str) -> String {
    match split_period(period) {
        Some((y, m @ 1..=12)) => format!("{} {y}", &MONTHS[m as usize - 1][..3]),
        _ => period.to_string(),
    }
}

/// `2026-03` → `VT2026`.
pub fn term_of(period: &str) -> String {
    Term::of_period(period)
        .map(|t| t.to_string())
        .unwrap_or_else(|| period.to_string())
}

/// A key that orders names as Swedish does: case aside, with å, ä and ö after z
/// ("Örebro" after "Askersund", "Ängelholm" after "Åmål").
pub fn collation_key(s: &str) -> Vec<char> {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'å' => '\u{7b}',
            'ä' | 'æ' => '\u{7c}',
            'ö' | 'ø' => '\u{7d}',
            c => c,
        })
        .collect()
}

/// A number with `decimals` decimals, decimal comma, narrow no-break spaces between
/// thousands and a real minus sign (U+2212).
pub fn number(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v.abs());
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (s, None),
    };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push('\u{202F}');
        }
        grouped.push(c);
    }
    let zero = s_is_zero(&grouped, frac.as_deref());
    let mut out = String::new();
    if v < 0.0 && !zero {
        out.push('\u{2212}');
    }
    out.push_str(&grouped);
    if let Some(f) = frac {
        out.push(',');
        out.push_str(&f);
    }
    out
}

fn s_is_zero(int: &str, frac: Option<&str>) -> bool {
    int.chars().all(|c| c == '0' || c == '\u{202F}')
        && frac.is_none_or(|f| f.bytes().all(|b| b == b'0'))
}

/// A signed number: `+0,4`, `−1,2`, `0,0`.
pub fn signed(v: f64, decimals: usize) -> String {
    let s = number(v, decimals);
    if v > 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0') {
        format!("+{s}")
    } else {
        s
    }
}

/// A number as Swedish Excel reads it from CSV: decimal comma, no grouping, ASCII minus.
pub fn plain(v: f64, decimals: usize) -> String {
    format!("{:.*}", decimals, v).replace('.', ",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_as_in_swedish() {
        let mut names = vec!["Örebro", "Åmål", "askersund", "Ängelholm", "Zinkgruvan"];
        names.sort_by_key(|n| collation_key(n));
        assert_eq!(
            names,
            ["askersund", "Zinkgruvan", "Åmål", "Ängelholm", "Örebro"]
        );
    }

    #[test]
    fn terms_parse_and_print() {
        let t: Term = "vt2026".parse().unwrap();
        assert_eq!(t.to_string(), "VT2026");
        assert_eq!(t.months(), ("2026-01".into(), "2026-06".into()));
        assert_eq!(t.school_year(), "2025/26");
        let h: Term = "HT2025".parse().unwrap();
        assert_eq!(h.months(), ("2025-08".into(), "2025-12".into()));
        assert_eq!(h.school_year(), "2025/26");
        assert!("2026".parse::<Term>().is_err());
        assert!("HT25".parse::<Term>().is_err());
        assert!("VT20x6".parse::<Term>().is_err());
        assert_eq!(Term::of_period("2025-07"), None);
        assert_eq!(term_of("2025-09"), "HT2025");
    }

    #[test]
    fn numbers_use_decimal_comma_grouping_and_minus() {
        assert_eq!(number(1234567.891, 1), "1\u{202F}234\u{202F}567,9");
        assert_eq!(number(7.25, 1), "7,2");
        assert_eq!(number(-0.04, 1), "0,0");
        assert_eq!(number(-1.25, 2), "\u{2212}1,25");
        assert_eq!(number(999.0, 0), "999");
        assert_eq!(signed(0.44, 1), "+0,4");
        assert_eq!(signed(-0.44, 1), "\u{2212}0,4");
        assert_eq!(signed(0.01, 1), "0,0");
        assert_eq!(plain(-1.234, 2), "-1,23");
        assert_eq!(month("2026-03"), "mars 2026");
        assert_eq!(month_short("2025-12"), "dec 2025");
    }
}
