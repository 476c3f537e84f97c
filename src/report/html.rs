//! HTML pages: a report, the index of areas and terms, and error pages. Plain, accessible
//! HTML (`lang="sv"`, headings in order, every chart beside its table and summary, text
//! contrast above 4.5:1) with the charts inline as SVG, so a page is one self-contained file.

use std::fmt::Write;

use super::{Block, Figure, Format, Report, chart, sv};

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
:root { color: #1a1a1a; background: #ffffff; font-family: system-ui, "Segoe UI", Roboto, sans-serif; line-height: 1.5; }
body { margin: 0 auto; max-width: 1280px; padding: 1rem 1.5rem 3rem; }
a { color: #0b57d0; }
a:focus { outline: 3px solid #1a1a1a; }
h1 { font-size: 1.9rem; margin: .4rem 0; }
h2 { font-size: 1.5rem; margin-top: 2.5rem; border-bottom: 2px solid #1a1a1a; }
h3 { font-size: 1.2rem; margin-bottom: .2rem; }
.lead { font-size: 1.1rem; max-width: 60rem; }
.meta { color: #3d3d3d; font-size: .95rem; }
.meta span { margin-right: 1.2rem; white-space: nowrap; }
nav ol { display: flex; flex-wrap: wrap; gap: .3rem 1.4rem; padding-left: 1.2rem; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(13rem, 1fr)); gap: 1rem; list-style: none; padding: 0; }
.figures li { border: 2px solid #1a1a1a; border-radius: 6px; padding: .7rem 1rem; }
.figures .label { display: block; font-weight: 600; }
.figures .value { display: block; font-size: 2rem; font-weight: 700; }
.figures .change { display: block; color: #3d3d3d; }
.pair { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
figure { margin: 0; flex: 1 1 720px; max-width: 720px; }
figure svg { width: 100%; height: auto; }
.table-wrap { flex: 1 1 26rem; overflow-x: auto; }
.table-wrap:focus { outline: 3px solid #1a1a1a; outline-offset: 2px; }
table { border-collapse: collapse; font-size: .95rem; }
caption { text-align: left; font-weight: 600; padding-bottom: .3rem; }
th, td { border-bottom: 1px solid #8a8a8a; padding: .25rem .6rem; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td:not(.num) { min-width: 9rem; }
th { min-width: 5rem; }
tbody th:not(.num) { min-width: 13rem; }
tr.focus td { font-weight: 700; }
.summary { max-width: 60rem; }
.notes { font-size: .9rem; color: #3d3d3d; padding-left: 1.2rem; }
.intro { max-width: 60rem; }
footer { margin-top: 3rem; font-size: .9rem; color: #3d3d3d; border-top: 1px solid #8a8a8a; }
@media print {
  nav, .alt { display: none; }
  body { max-width: none; padding: 0; font-size: 10pt; }
  h2 { break-before: page; }
  .block { break-inside: avoid-page; }
  figure { max-width: 100%; flex-basis: 100%; }
  .table-wrap { overflow: visible; flex-basis: 100%; }
  a { color: inherit; text-decoration: none; }
}
"#;

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"sv\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<link rel=\"icon\" href=\"data:,\">\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape(title)
    );
}

/// The value of a key figure as text.
pub(super) fn figure_value(f: &Figure) -> String {
    let at_least = if f.at_least { "≥ " } else { "" };
    match f.value {
        None => "..".into(),
        Some(v) => match f.format {
            Format::Int => format!("{at_least}{}", sv::number(v, 0)),
            Format::Pct => format!("{at_least}{} %", sv::number(v, 1)),
            _ => format!("{at_least}{}", sv::number(v, 1)),
        },
    }
}

/// "↗ +0,4 procentenheter jämfört med föregående termin (försämring)".
pub fn figure_change(f: &Figure) -> Option<String> {
    let c = f.change_pp?;
    let mut s = format!("{} {} procentenheter", f.arrow()?, sv::signed(c, 1));
    if let Some(w) = &f.compared_with {
        let _ = write!(s, " jämfört med {w}");
    }
    if let Some(v) = f.verdict() {
        let _ = write!(s, " ({v})");
    }
    Some(s)
}

/// Links to the page's other formats; `query` is appended as is (e.g. `?as_of=12`).
/// `waiting`: uploads have landed that this publication does not show yet.
pub struct Links<'a> {
    pub query: &'a str,
    pub waiting: bool,
    /// The publication the page shows, for its permanent link.
    pub publication: Option<u64>,
}

pub fn report_page(r: &Report, links: Option<Links>) -> String {
    let mut o = String::with_capacity(64 * 1024);
    head(&mut o, &r.heading());
    let _ = write!(
        o,
        "<header>\n<p><a href=\"/\">Närvarolagret</a> › {}</p>\n<h1>{}</h1>\n<p class=\"lead\">{}</p>\n",
        escape(&r.title),
        escape(&r.heading()),
        escape(&r.intro)
    );
    let _ = write!(
        o,
        "<p class=\"meta\"><span>Termin: {} (läsår {}), uppgifter t.o.m. {}</span> \
         <span>Definition: {} (hash <code>{}</code>)</span> <span>Dataversion: {}</span> \
         <span>Publicerad: {}</span></p>",
        r.term,
        r.school_year,
        sv::month(&r.period),
        escape(&r.definition_id),
        escape(&r.definition_hash),
        r.data_version,
        r.generated_at.format("%Y-%m-%d %H:%M UTC")
    );
    if links.as_ref().is_some_and(|l| l.waiting) {
        o.push_str(
            "<p class=\"meta\" role=\"status\">Nya uppgifter har kommit in och publiceras inom \
             kort; sidan visar den senaste publiceringen.</p>",
        );
    }
    if let Some(l) = links {
        let base = r.path();
        let _ = write!(
            o,
            "<p class=\"alt\">Ladda ner: <a href=\"{base}.csv{q}\">CSV</a> · \
             <a href=\"{base}.xlsx{q}\">Excel (XLSX)</a> · <a href=\"{base}.json{q}\">JSON</a> · \
             <a href=\"{base}.pdf{q}\">PDF för nämndhandlingar</a></p>",
            q = escape(l.query)
        );
        if let Some(n) = l.publication {
            let _ = write!(
                o,
                "<p class=\"alt\">Permanent länk till just de här siffrorna: \
                 <a href=\"{base}?publication={n}\">{base}?publication={n}</a></p>"
            );
        }
    }
    o.push_str("<nav aria-label=\"Innehåll\"><ol>\n<li><a href=\"#sammanfattning\">Sammanfattning</a></li>\n");
    for s in &r.sections {
        let _ = writeln!(
            o,
            "<li><a href=\"#steg-{}\">Steg {}. {}</a></li>",
            s.step,
            s.step,
            escape(&s.title)
        );
    }
    o.push_str("</ol></nav>\n</header>\n<main>\n");
    o.push_str(
        "<section id=\"sammanfattning\">\n<h2>Sammanfattning</h2>\n<ul class=\"figures\">\n",
    );
    for f in &r.summary {
        let _ = write!(
            o,
            "<li><span class=\"label\">{}</span><span class=\"value\">{}{}</span>",
            escape(&f.label),
            figure_value(f),
            if f.uncertain { "*" } else { "" }
        );
        if let Some(c) = figure_change(f) {
            let _ = write!(o, "<span class=\"change\">{}</span>", escape(&c));
        }
        if let Some(n) = &f.note {
            let _ = write!(o, "<span class=\"change\">{}</span>", escape(n));
        }
        o.push_str("</li>\n");
    }
    o.push_str("</ul>\n");
    if r.summary.iter().any(|f| f.uncertain) {
        o.push_str("<p class=\"notes\">* Osäker uppgift: rapporteringsgraden är under definitionens gräns, så frånvaron kan vara underskattad.</p>\n");
    }
    o.push_str("</section>\n");
    for s in &r.sections {
        let _ = write!(
            o,
            "<section id=\"steg-{}\">\n<h2>Steg {}. {}</h2>\n<p class=\"intro\">{}</p>\n",
            s.step,
            s.step,
            escape(&s.title),
            escape(&s.intro)
        );
        for b in &s.blocks {
            block(&mut o, b);
        }
        o.push_str("</section>\n");
    }
    let _ = write!(
        o,
        "</main>\n<footer><p>Närvarolagret. Alla tal följer definitionen {} (hash {}) och dataversion {}. \
         Med <code>?as_of={}</code> och en token visas sidan exakt som den såg ut vid den versionen. \
         Frånvaro är giltig och ogiltig frånvaro som andel av erbjuden undervisningstid.</p></footer>\n</body>\n</html>\n",
        escape(&r.definition_id),
        escape(&r.definition_hash),
        r.data_version,
        r.data_version
    );
    o
}

fn block(o: &mut String, b: &Block) {
    let _ = write!(
        o,
        "<article class=\"block\" id=\"b-{id}\">\n<h3>{}</h3>\n<p class=\"summary\">{}</p>\n<div class=\"pair\">\n",
        escape(&b.title),
        escape(&b.summary),
        id = escape(&b.id)
    );
    if let Some(svg) = chart::svg(b, &format!("c-{}", b.id)) {
        let _ = writeln!(o, "<figure class=\"chart\">{svg}</figure>");
    }
    let focus = b
        .chart
        .as_ref()
        .and_then(|c| c.focus.as_ref())
        .and_then(|f| b.column(f));
    let _ = write!(
        o,
        "<div class=\"table-wrap\" tabindex=\"0\" role=\"region\" aria-labelledby=\"t-{id}\">\
         <table>\n<caption id=\"t-{id}\">Tabell: {}</caption>\n<thead><tr>",
        escape(&b.short),
        id = escape(&b.id)
    );
    let shown: Vec<usize> = (0..b.columns.len())
        .filter(|&i| !b.columns[i].hidden)
        .collect();
    for &i in &shown {
        let c = &b.columns[i];
        let class = if c.numeric() { " class=\"num\"" } else { "" };
        let _ = write!(o, "<th scope=\"col\"{class}>{}</th>", escape(&c.label));
    }
    o.push_str("</tr></thead>\n<tbody>\n");
    if b.rows.is_empty() {
        let _ = writeln!(
            o,
            "<tr><td colspan=\"{}\">Inga uppgifter.</td></tr>",
            shown.len().max(1)
        );
    }
    for (r, row) in b.rows.iter().enumerate() {
        let is_focus = focus.is_some_and(|f| row[f] == super::Cell::Bool(true));
        o.push_str(if is_focus {
            "<tr class=\"focus\">"
        } else {
            "<tr>"
        });
        for (k, &i) in shown.iter().enumerate() {
            let c = &b.columns[i];
            let text = c.display(&row[i]);
            let mark = &b.marks[r][i];
            let class = if c.numeric() { " class=\"num\"" } else { "" };
            if k == 0 {
                let _ = write!(o, "<th scope=\"row\"{class}>{}{mark}</th>", escape(&text));
            } else {
                let _ = write!(o, "<td{class}>{}{mark}</td>", escape(&text));
            }
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table></div>\n</div>\n");
    if !b.footnotes.is_empty() {
        o.push_str("<ul class=\"notes\">");
        for n in &b.footnotes {
            let _ = write!(o, "<li>{}</li>", escape(n));
        }
        o.push_str("</ul>\n");
    }
    o.push_str("</article>\n");
}

/// A plain page for an error: what went wrong, in Swedish, and a way back.
pub fn error_page(status: u16, title: &str, message: &str) -> String {
    let mut o = String::new();
    head(&mut o, &format!("{title} – Närvarolagret"));
    let _ = write!(
        o,
        "<main>\n<h1>{}</h1>\n<p>{}</p>\n<p>Felkod {status}. <a href=\"/\">Till förstasidan med alla områden och terminer</a>.</p>\n</main>\n</body>\n</html>\n",
        escape(title),
        escape(message)
    );
    o
}

/// The index: every county, municipality and school with data, each with its terms.
pub fn index_page(index: &super::Index) -> String {
    let mut o = String::new();
    head(&mut o, "Närvarolagret – rapporter");
    let _ = write!(
        o,
        "<header><h1>Närvarolagret: rapporter om skolnärvaro</h1>\n\
         <p class=\"lead\">Nämndrapporter per kommun, länsrapporter och skolrapporter per termin, \
         alla med samma frånvarodefinition ({} , hash <code>{}</code>). Dataversion {}.</p></header>\n<main>\n",
        escape(&index.definition_id),
        escape(&index.definition_hash),
        index.data_version
    );
    let terms = |kind: &str, code: &str, terms: &[super::Term]| {
        terms
            .iter()
            .map(|t| format!("<a href=\"/reports/{kind}/{code}/{t}\">{t}</a>"))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    if index.counties.is_empty() {
        o.push_str("<p>Sjön har ännu inga närvarouppgifter. Läs in filer med <code>narvaro ingest</code>.</p>\n");
    }
    for c in &index.counties {
        let (m_list, c) = (&c.municipalities, &c.area);
        let _ = write!(
            o,
            "<section>\n<h2>{} ({})</h2>\n<p>Länsrapport: {}</p>\n<h3>Kommuner</h3>\n<ul>\n",
            escape(&c.name),
            escape(&c.code),
            terms("county", &c.code, &c.terms)
        );
        for m in m_list {
            let (schools, m) = (&m.schools, &m.area);
            let _ = write!(
                o,
                "<li>{} ({}): nämndrapport {}\n<details><summary>Skolrapporter ({} skolenheter)</summary><ul>",
                escape(&m.name),
                escape(&m.code),
                terms("committee", &m.code, &m.terms),
                schools.len()
            );
            for s in schools {
                let _ = write!(
                    o,
                    "<li>{} ({}): {}</li>",
                    escape(&s.name),
                    escape(&s.code),
                    terms("school", &s.code, &s.terms)
                );
            }
            o.push_str("</ul></details></li>\n");
        }
        o.push_str("</ul>\n</section>\n");
    }
    o.push_str("</main>\n</body>\n</html>\n");
    o
}
