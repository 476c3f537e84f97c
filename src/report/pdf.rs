//! A report as an accessible PDF (PDF/UA-1) for committee papers: the same cells as the page,
//! laid out on A4 by typst, used as a library.
//!
//! The report is written as typst markup (every text from the report goes in as a string
//! literal, never as markup) and compiled in memory: the fonts are compiled into the binary
//! (typst-assets), the charts are the page's plotters SVG, read by typst as vector graphics.
//! typst writes a tagged PDF and checks PDF/UA-1 itself (document title and language, every
//! figure with its alternative text, tables with header cells), so a report that would not
//! conform is an error, not a quietly inaccessible file.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::LazyLock;

use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Duration};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_layout::PagedDocument;

use super::{Block, Figure, Report, chart, html, sv};
use crate::{Error, Result};

/// The fonts (typst's bundled Libertinus Serif and DejaVu Sans Mono), the standard library and
/// the font book: made once per process.
struct Shared {
    library: LazyHash<Library>,
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
}

static SHARED: LazyLock<Shared> = LazyLock::new(|| {
    let fonts: Vec<Font> = typst_assets::fonts()
        .flat_map(|data| Font::iter(Bytes::new(data)))
        .collect();
    Shared {
        library: LazyHash::new(Library::default()),
        book: LazyHash::new(FontBook::from_fonts(&fonts)),
        fonts,
    }
});

/// One report's document: its markup and its charts, nothing else is readable.
struct Document {
    main: Source,
    files: HashMap<FileId, Bytes>,
    today: Datetime,
}

/// A path in the document's virtual project. The same few names serve every report (typst
/// keeps every file id it is given for the life of the process).
fn file_id(path: &str) -> FileId {
    let vpath = VirtualPath::new(path).expect("a fixed, valid virtual path");
    RootedPath::new(VirtualRoot::Project, vpath).intern()
}

impl World for Document {
    fn library(&self) -> &LazyHash<Library> {
        &SHARED.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &SHARED.book
    }

    fn main(&self) -> FileId {
        self.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            Ok(self.main.clone())
        } else {
            Err(FileError::AccessDenied)
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        self.files.get(&id).cloned().ok_or(FileError::AccessDenied)
    }

    fn font(&self, index: usize) -> Option<Font> {
        SHARED.fonts.get(index).cloned()
    }

    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        Some(self.today)
    }
}

/// `text` as a typst string literal (shown as plain text, whatever it holds).
fn lit(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' | '\t' => s.push(' '),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// The key figure's value as the page shows it.
fn figure_text(f: &Figure) -> String {
    let mut s = html::figure_value(f);
    if f.uncertain {
        s.push('*');
    }
    s
}

/// The report as a PDF/UA-1 document on A4.
pub fn pdf(r: &Report) -> Result<Vec<u8>> {
    let (markup, charts) = markup(r);
    let mut files = HashMap::new();
    for (i, svg) in charts.into_iter().enumerate() {
        files.insert(
            file_id(&format!("/diagram-{i}.svg")),
            Bytes::new(svg.into_bytes()),
        );
    }
    let date = r.generated_at.date_naive();
    let today = Datetime::from_ymd(
        chrono::Datelike::year(&date),
        chrono::Datelike::month(&date) as u8,
        chrono::Datelike::day(&date) as u8,
    )
    .ok_or_else(|| Error::usage("rapportens publiceringsdag går inte att skriva i PDF:en"))?;
    let doc = Document {
        main: Source::new(file_id("/rapport.typ"), markup),
        files,
        today,
    };
    let failed = |what: &str, errors: typst::ecow::EcoVec<typst::diag::SourceDiagnostic>| {
        let messages: Vec<String> = errors.iter().map(|e| e.message.to_string()).collect();
        Error::usage(format!(
            "PDF:en för {} kunde inte {what}: {}",
            r.heading(),
            messages.join("; ")
        ))
    };
    let compiled = typst::compile::<PagedDocument>(&doc).output;
    let document = compiled.map_err(|e| failed("sättas", e))?;
    let standards = typst_pdf::PdfStandards::new(&[typst_pdf::PdfStandard::Ua_1])
        .map_err(|e| Error::usage(format!("PDF/UA-1: {}", e.message())))?;
    let options = typst_pdf::PdfOptions {
        ident: typst::foundations::Smart::Custom(r.path()),
        creator: typst::foundations::Smart::Custom(Some("Närvarolagret".into())),
        standards,
        ..Default::default()
    };
    let bytes = typst_pdf::pdf(&document, &options).map_err(|e| failed("skrivas", e))?;
    // typst memoises layouts across documents; a server writes many different ones.
    typst::comemo::evict(10);
    Ok(bytes)
}

/// The typst markup of the report and the SVG charts it names (`/diagram-N.svg`).
fn markup(r: &Report) -> (String, Vec<String>) {
    let mut o = String::with_capacity(64 * 1024);
    let published = r.generated_at.format("%Y-%m-%d %H:%M UTC").to_string();
    let footer = format!(
        "Definition {} (hash {}) · dataversion {} · publicerad {}",
        r.definition_id, r.definition_hash, r.data_version, published
    );
    let _ = write!(
        o,
        "#set document(title: {title}, author: \"Närvarolagret\", keywords: ({kind}, {term}))\n\
         #set text(lang: \"sv\", region: \"SE\", font: \"Libertinus Serif\", size: 10.5pt)\n\
         #set par(justify: false)\n\
         #set page(paper: \"a4\", margin: (x: 2cm, top: 2cm, bottom: 2.4cm), \
           footer: context {{ set text(size: 8pt); {footer}; h(1fr); \"Sida \"; \
           str(here().page()); \" av \"; str(counter(page).final().first()) }})\n\
         #set heading(numbering: none)\n\
         #set table(stroke: (x, y) => if y == 0 {{ (bottom: 0.7pt) }} else {{ (bottom: 0.3pt + luma(200)) }}, \
           inset: (x: 4pt, y: 3pt))\n\
         #show table: set text(size: 8.5pt)\n\
         #show table.cell.where(y: 0): set text(weight: \"bold\")\n\n",
        title = lit(&r.heading()),
        kind = lit(&r.title),
        term = lit(&r.term),
        footer = lit(&footer),
    );
    let _ = writeln!(o, "= #{}\n", lit(&r.heading()));
    let _ = writeln!(o, "#{}\n", lit(&r.intro));
    let meta = format!(
        "Termin {} (läsår {}), uppgifter till och med {}. Definition {} (hash {}), dataversion {}, publicerad {}.",
        r.term,
        r.school_year,
        sv::month(&r.period),
        r.definition_id,
        r.definition_hash,
        r.data_version,
        published
    );
    let _ = writeln!(o, "#text(size: 9pt, {})\n", lit(&meta));

    o.push_str("== Sammanfattning\n\n");
    let mut rows = Vec::new();
    for f in &r.summary {
        let mut about = html::figure_change(f).unwrap_or_default();
        if let Some(n) = &f.note {
            if !about.is_empty() {
                about.push_str(". ");
            }
            about.push_str(n);
        }
        rows.push(vec![f.label.clone(), figure_text(f), about]);
    }
    table(
        &mut o,
        &["Nyckeltal", "Värde", "Förändring och anmärkning"],
        &[false, true, false],
        &rows,
    );
    if r.summary.iter().any(|f| f.uncertain) {
        let _ = writeln!(
            o,
            "#text(size: 9pt, {})\n",
            lit(
                "* Osäker uppgift: rapporteringsgraden är under definitionens gräns, så frånvaron kan vara underskattad."
            )
        );
    }

    let mut charts = Vec::new();
    for s in &r.sections {
        // Each of SKR's steps starts a page.
        let _ = writeln!(
            o,
            "#pagebreak(weak: true)\n== #{}\n\n#{}\n",
            lit(&format!("Steg {}. {}", s.step, s.title)),
            lit(&s.intro)
        );
        for b in &s.blocks {
            block(&mut o, b, &mut charts);
        }
    }
    let _ = writeln!(
        o,
        "#v(1em)\n#text(size: 9pt, {})",
        lit(&format!(
            "Närvarolagret. Alla tal följer definitionen {} (hash {}) och dataversion {}. \
             Frånvaro är giltig och ogiltig frånvaro som andel av erbjuden undervisningstid. \
             Två punkter (..) står för en uppgift som inte visas för att skydda enskilda elever.",
            r.definition_id, r.definition_hash, r.data_version
        ))
    );
    (o, charts)
}

fn block(o: &mut String, b: &Block, charts: &mut Vec<String>) {
    let _ = writeln!(o, "=== #{}\n\n#{}\n", lit(&b.title), lit(&b.summary));
    if let Some(svg) = chart::svg(b, &format!("c-{}", b.id)) {
        let path = format!("/diagram-{}.svg", charts.len());
        charts.push(svg);
        let _ = writeln!(
            o,
            "#figure(image({}, width: 100%), alt: {}, caption: {})\n",
            lit(&path),
            lit(&b.title),
            lit(&format!("Diagram: {}", b.short)),
        );
    }
    let shown: Vec<usize> = (0..b.columns.len())
        .filter(|&i| !b.columns[i].hidden)
        .collect();
    let header: Vec<&str> = shown.iter().map(|&i| b.columns[i].label.as_str()).collect();
    let numeric: Vec<bool> = shown.iter().map(|&i| b.columns[i].numeric()).collect();
    let rows: Vec<Vec<String>> = b
        .rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            shown
                .iter()
                .map(|&i| format!("{}{}", b.columns[i].display(&row[i]), b.marks[r][i]))
                .collect()
        })
        .collect();
    let _ = writeln!(
        o,
        "#text(size: 9pt, weight: \"bold\", {})",
        lit(&format!("Tabell: {}", b.short))
    );
    if rows.is_empty() {
        let _ = writeln!(o, "\n#{}\n", lit("Inga uppgifter."));
    } else {
        table(o, &header, &numeric, &rows);
    }
    for n in &b.footnotes {
        let _ = writeln!(o, "#text(size: 8.5pt, {})\n", lit(n));
    }
}

/// A table with a header row (repeated on every page it runs over); numbers right-aligned.
fn table(o: &mut String, header: &[&str], numeric: &[bool], rows: &[Vec<String>]) {
    let align: Vec<&str> = numeric
        .iter()
        .map(|&n| if n { "right" } else { "left" })
        .collect();
    let _ = write!(
        o,
        "#table(columns: {}, align: ({},), table.header(",
        header.len(),
        align.join(", ")
    );
    for h in header {
        let _ = write!(o, "[#{}], ", lit(h));
    }
    o.push_str("),\n");
    for row in rows {
        for c in row {
            let _ = write!(o, "[#{}], ", lit(c));
        }
        o.push('\n');
    }
    o.push_str(")\n\n");
}

#[cfg(test)]
mod tests {
    use super::lit;

    #[test]
    fn text_goes_in_as_a_literal() {
        assert_eq!(lit("a \"b\" \\ #c"), r#""a \"b\" \\ #c""#);
        assert_eq!(lit("rad\nnästa"), r#""rad\nnästa""#);
    }
}
