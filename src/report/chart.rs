//! Charts: a block's rows drawn with plotters as SVG.
//!
//! Readable on a projector and without colour: the Okabe–Ito palette (safe for the common
//! colour vision deficiencies), and every series also told apart by a fill pattern (bars) or a
//! marker and dash (lines); values written on the bars; the report's own area marked with ▶
//! and an outline; missing values drawn as `..` (a bound as `≥ 95,0`) in their place, never as
//! zero. Numbers on axes use decimal comma. The SVG carries its title and summary for screen
//! readers.

use std::ops::Range;

use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::spec::ChartKind;
use super::{Block, Cell, Grid, sv};

/// Okabe–Ito blue, vermillion, bluish green, and a dark grey: each at least 3:1 against white.
const PALETTE: [RGBColor; 4] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0x55, 0x55, 0x55),
];
const INK: RGBColor = RGBColor(0x1A, 0x1A, 0x1A);
const GRID: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);
const FONT: &str = "sans-serif";
const WIDTH: u32 = 720;

/// Pattern names, in series order, as the legend and table describe them.
pub const PATTERNS: [&str; 4] = ["heldragen", "snedstreckad", "vågrätt randig", "rutig"];

struct Series {
    label: String,
    values: Vec<Option<f64>>,
    /// What stands in a missing value's place: `..`, or a bound such as `≥ 95,0`.
    gaps: Vec<String>,
}

/// The chart of a block as an SVG document, or `None` when the block has no chart or no rows.
/// `id` makes the SVG's title and description ids unique on a page.
pub fn svg(block: &Block, id: &str) -> Option<String> {
    let spec = block.chart.as_ref()?;
    if block.rows.is_empty() {
        return None;
    }
    let cat = block.column(&spec.category)?;
    let labels: Vec<String> = block
        .rows
        .iter()
        .map(|r| block.columns[cat].display(&r[cat]))
        .collect();
    let series: Vec<Series> = spec
        .series
        .iter()
        .filter_map(|name| {
            let c = block.column(name)?;
            Some(Series {
                label: block.columns[c].label.clone(),
                values: block.rows.iter().map(|r| r[c].as_f64()).collect(),
                gaps: block
                    .rows
                    .iter()
                    .map(|r| match r[c] {
                        Cell::AtLeast { .. } => block.columns[c].display(&r[c]),
                        _ => "..".into(),
                    })
                    .collect(),
            })
        })
        .collect();
    let focus: Vec<bool> = match spec.focus.as_ref().and_then(|f| block.column(f)) {
        Some(f) => block
            .rows
            .iter()
            .map(|r| matches!(r[f], Cell::Bool(true)))
            .collect(),
        None => vec![false; block.rows.len()],
    };
    let reference = block.reference_value().map(|v| {
        (
            v,
            spec.reference
                .as_ref()
                .map(|r| r.label.clone())
                .unwrap_or_default(),
        )
    });
    let mut out = String::new();
    let drawn = match spec.kind {
        ChartKind::Bars => bars(&mut out, &labels, &series, &focus, reference, &spec.axis),
        ChartKind::Lines => lines(&mut out, &labels, &series, reference, &spec.axis),
        ChartKind::Funnel => {
            let size = spec.size.as_ref().and_then(|s| block.column(s))?;
            let sizes: Vec<Option<f64>> = block.rows.iter().map(|r| r[size].as_f64()).collect();
            let x_axis = &block.columns[size].label;
            funnel(
                &mut out,
                &labels,
                series.first()?,
                &sizes,
                reference?,
                &spec.axis,
                x_axis,
            )
        }
        ChartKind::Grid => grid(&mut out, &labels, &series, block.grid.as_ref()?, &spec.axis),
    };
    drawn.ok()?;
    Some(accessible(&out, id, &block.title, &block.summary))
}

/// Light tints for the overall classes, best first (blue to red): dark text stays readable
/// on each, and each cell also names its class.
const GRID_TINTS: [RGBColor; 5] = [
    RGBColor(0xC6, 0xDB, 0xEF),
    RGBColor(0xD4, 0xEB, 0xD0),
    RGBColor(0xFF, 0xF1, 0xC1),
    RGBColor(0xFD, 0xD9, 0xB5),
    RGBColor(0xF6, 0xC6, 0xC3),
];

/// The status × change grid: status classes as rows (highest at the top), change classes as
/// columns, each cell tinted and named by its overall class and listing the rows placed in it
/// (a row whose classes are hidden or missing is not placed).
fn grid(
    out: &mut String,
    labels: &[String],
    series: &[Series],
    classes: &Grid,
    axis: &str,
) -> Result<(), Err> {
    let (rows, cols) = (classes.status.len(), classes.change.len());
    if rows == 0 || cols == 0 || series.len() != 3 {
        return Err("grid without classes".into());
    }
    let class = |s: &Series, i: usize| s.values[i].map(|v| v.round() as usize).filter(|v| *v >= 1);
    let mut placed: Vec<Vec<Vec<&str>>> = vec![vec![Vec::new(); cols]; rows];
    for (i, label) in labels.iter().enumerate() {
        if let (Some(s), Some(c)) = (class(&series[0], i), class(&series[1], i))
            && s <= rows
            && c <= cols
        {
            placed[s - 1][c - 1].push(label);
        }
    }
    let line_px = 16;
    let cell_w = (WIDTH - 170) / cols as u32;
    // The tints spread over the overall classes there are, best blue, worst red.
    let worst = classes
        .overall
        .iter()
        .flatten()
        .map(|(k, _)| *k)
        .max()
        .unwrap_or(1)
        .max(2);
    let tint = |overall: i64| {
        let k = (overall.clamp(1, worst) - 1) as usize * (GRID_TINTS.len() - 1);
        GRID_TINTS[k / (worst as usize - 1)]
    };
    let most = placed.iter().flatten().map(Vec::len).max().unwrap_or(0) as u32;
    let cell_h = (34 + most * line_px).max(64);
    let (left, top) = (150u32, 56u32);
    let height = top + rows as u32 * cell_h + 56;
    let root = SVGBackend::with_string(out, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let at = |x: u32, y: u32| (x as i32, y as i32);
    let centred = |size: u32| text_style(size).pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(
        "Förändring sedan samma termin i fjol",
        at(left + cols as u32 * cell_w / 2, 14),
        centred(14),
    ))?;
    for (c, name) in classes.change.iter().enumerate() {
        root.draw(&Text::new(
            name.clone(),
            at(left + c as u32 * cell_w + cell_w / 2, 40),
            centred(13),
        ))?;
    }
    root.draw(&Text::new(
        axis.to_string(),
        at(16, top + rows as u32 * cell_h / 2),
        text_style(14)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    for (s, (status, in_row)) in classes.status.iter().zip(&placed).enumerate() {
        // The highest status at the top.
        let y = top + (rows - 1 - s) as u32 * cell_h;
        root.draw(&Text::new(
            status.clone(),
            at(left - 10, y + cell_h / 2),
            text_style(13).pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
        for (c, in_cell) in in_row.iter().enumerate() {
            let x = left + c as u32 * cell_w;
            let (overall, name) = classes
                .overall
                .get(s)
                .and_then(|r| r.get(c))
                .cloned()
                .unwrap_or((0, String::new()));
            root.draw(&Rectangle::new(
                [at(x, y), at(x + cell_w, y + cell_h)],
                tint(overall).filled(),
            ))?;
            root.draw(&Rectangle::new(
                [at(x, y), at(x + cell_w, y + cell_h)],
                WHITE.stroke_width(2),
            ))?;
            root.draw(&Text::new(
                name,
                at(x + 6, y + 6),
                (FONT, 11).into_font().style(FontStyle::Italic).color(&INK),
            ))?;
            for (k, label) in in_cell.iter().enumerate() {
                let short = wrap_label(label, (cell_w / 8) as usize)
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                root.draw(&Text::new(
                    short,
                    at(x + 6, y + 24 + k as u32 * line_px),
                    (FONT, 13).into_font().style(FontStyle::Bold).color(&INK),
                ))?;
            }
        }
    }
    let unplaced = labels.len() - placed.iter().flatten().map(Vec::len).sum::<usize>();
    if unplaced > 0 {
        root.draw(&Text::new(
            format!(
                "{unplaced} utan klass (för få elever, ingen jämförelse eller dolt): se tabellen"
            ),
            at(left, top + rows as u32 * cell_h + 24),
            text_style(13),
        ))?;
    }
    root.present()?;
    Ok(())
}

/// Adds `role="img"`, a `<title>` and a `<desc>` to plotters' SVG.
fn accessible(svg: &str, id: &str, title: &str, desc: &str) -> String {
    let Some(open_end) = svg.find('>') else {
        return svg.to_string();
    };
    let (open, rest) = svg.split_at(open_end);
    format!(
        "{open} role=\"img\" aria-labelledby=\"{id}-t {id}-d\"><title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>{}",
        super::html::escape(title),
        super::html::escape(desc),
        &rest[1..]
    )
}

fn text_style(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&INK)
}

/// The value axis: the values' range (from zero unless some are negative) widened by `pad`
/// of its span, and the decimals its ticks need.
fn value_axis(series: &[Series], reference: Option<f64>, pad: f64) -> (Range<f64>, usize) {
    let (lo, hi) = value_range(series, reference);
    let pad = (hi - lo) * pad;
    let range = if lo < 0.0 {
        lo - pad..hi + pad
    } else {
        0.0..hi + pad
    };
    (range, decimals_for(hi - lo))
}

/// Draws a chart's grid and axes in the house style (grey grid, ink axes, the text sizes).
fn house_style(
    mesh: &mut MeshStyle<'_, '_, RangedCoordf64, RangedCoordf64, SVGBackend<'_>>,
) -> Result<(), Err> {
    mesh.axis_desc_style(text_style(14))
        .label_style(text_style(13))
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(INK)
        .draw()?;
    Ok(())
}

/// How many characters a bar's label may take on one line (it wraps onto a second).
const LABEL_CHARS: usize = 34;

/// `label` in at most two lines of at most `width` characters, broken between words; what
/// does not fit ends in `…`.
fn wrap_label(label: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = vec![String::new()];
    for word in label.split_whitespace() {
        let line = lines.last_mut().expect("one line");
        let len = line.chars().count();
        if len == 0 || len + 1 + word.chars().count() <= width {
            if len > 0 {
                line.push(' ');
            }
            line.push_str(word);
        } else {
            lines.push(word.to_string());
        }
    }
    if lines.len() > 2 || lines.iter().any(|l| l.chars().count() > width) {
        let rest = lines[1..].join(" ");
        lines.truncate(1);
        if lines[0].chars().count() > width {
            let cut: String = lines[0].chars().take(width - 1).collect();
            return vec![format!("{cut}…")];
        }
        let cut: String = rest.chars().take(width - 1).collect();
        lines.push(format!("{}…", cut.trim_end()));
    }
    lines
}

fn value_range(series: &[Series], reference: Option<f64>) -> (f64, f64) {
    let vals = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .chain(reference);
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for v in vals {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    (lo, hi)
}

fn decimals_for(span: f64) -> usize {
    if span < 5.0 { 1 } else { 0 }
}

type Err = Box<dyn std::error::Error>;

/// Fills a rectangle (pixel coordinates) with series `i`'s colour and pattern.
fn patterned(
    root: &DrawingArea<SVGBackend, Shift>,
    (x0, y0): (i32, i32),
    (x1, y1): (i32, i32),
    i: usize,
) -> Result<(), Err> {
    let (x0, x1) = (x0.min(x1), x0.max(x1));
    let (y0, y1) = (y0.min(y1), y0.max(y1));
    let color = PALETTE[i % PALETTE.len()];
    let pattern = i % PATTERNS.len();
    if pattern == 0 {
        root.draw(&Rectangle::new([(x0, y0), (x1, y1)], color.filled()))?;
        return Ok(());
    }
    root.draw(&Rectangle::new(
        [(x0, y0), (x1, y1)],
        color.mix(0.25).filled(),
    ))?;
    let line = color.stroke_width(2);
    let step = 6;
    if pattern == 1 || pattern == 3 {
        // Diagonal hatching, clipped to the rectangle.
        let (w, h) = (x1 - x0, y1 - y0);
        let mut k = -h;
        while k < w {
            let (mut ax, mut ay) = (x0 + k, y1);
            let (mut bx, mut by) = (x0 + k + h, y0);
            if ax < x0 {
                ay -= x0 - ax;
                ax = x0;
            }
            if bx > x1 {
                by += bx - x1;
                bx = x1;
            }
            if ax <= bx {
                root.draw(&PathElement::new(vec![(ax, ay), (bx, by)], line))?;
            }
            k += step;
        }
    }
    if pattern == 2 || pattern == 3 {
        let mut y = y0 + 2;
        while y < y1 {
            root.draw(&PathElement::new(vec![(x0, y), (x1, y)], line))?;
            y += step - 1;
        }
    }
    root.draw(&Rectangle::new([(x0, y0), (x1, y1)], color.stroke_width(1)))?;
    Ok(())
}

fn marker(root: &DrawingArea<SVGBackend, Shift>, (x, y): (i32, i32), i: usize) -> Result<(), Err> {
    let c = PALETTE[i % PALETTE.len()];
    let s = 5;
    match i % 4 {
        0 => root.draw(&Circle::new((x, y), s, c.filled()))?,
        1 => root.draw(&Polygon::new(
            vec![(x, y - s - 1), (x - s - 1, y + s), (x + s + 1, y + s)],
            c.filled(),
        ))?,
        2 => root.draw(&Rectangle::new(
            [(x - s, y - s), (x + s, y + s)],
            c.filled(),
        ))?,
        _ => root.draw(&Polygon::new(
            vec![
                (x, y - s - 2),
                (x + s + 2, y),
                (x, y + s + 2),
                (x - s - 2, y),
            ],
            c.filled(),
        ))?,
    }
    Ok(())
}

/// The legend across the top: a swatch (pattern or marker and line) and the series' name.
fn legend(
    root: &DrawingArea<SVGBackend, Shift>,
    series: &[Series],
    lines: bool,
    y: i32,
) -> Result<(), Err> {
    let mut x = 12;
    for (i, s) in series.iter().enumerate() {
        if lines {
            let c = PALETTE[i % PALETTE.len()];
            root.draw(&PathElement::new(
                vec![(x, y), (x + 28, y)],
                c.stroke_width(3),
            ))?;
            marker(root, (x + 14, y), i)?;
        } else {
            patterned(root, (x, y - 7), (x + 28, y + 7), i)?;
        }
        root.draw(&Text::new(
            s.label.clone(),
            (x + 36, y),
            text_style(14).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += 36 + (s.label.chars().count() as i32) * 8 + 24;
    }
    Ok(())
}

fn bars(
    out: &mut String,
    labels: &[String],
    series: &[Series],
    focus: &[bool],
    reference: Option<(f64, String)>,
    axis: &str,
) -> Result<(), Err> {
    let n = labels.len();
    let k = series.len().max(1);
    let bar_px = 18;
    let group_px = (k as u32) * bar_px + 12;
    let legend_px = 34;
    let height = legend_px + 20 + n as u32 * group_px + 56;
    // Long labels wrap onto two lines, then end in `…`; the table and the SVG's description
    // carry the whole text.
    let lines: Vec<Vec<String>> = labels.iter().map(|l| wrap_label(l, LABEL_CHARS)).collect();
    let label_px = lines
        .iter()
        .flatten()
        .map(|l| l.chars().count() as u32 * 8 + 30)
        .max()
        .unwrap_or(60)
        .clamp(60, 300);
    let (x_range, decimals) = value_axis(series, reference.as_ref().map(|r| r.0), 0.2);
    {
        let root = SVGBackend::with_string(out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        legend(&root, series, false, 18)?;
        let (_, body) = root.split_vertically(legend_px);
        let mut chart = ChartBuilder::on(&body)
            .margin_top(16)
            .margin_right(16)
            .x_label_area_size(50)
            .y_label_area_size(label_px)
            .build_cartesian_2d(x_range.clone(), 0.0..n as f64)?;
        let fmt = |v: &f64| sv::number(*v, decimals);
        house_style(
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(0)
                .x_labels(6)
                .x_label_formatter(&fmt)
                .x_desc(axis),
        )?;
        let band = 1.0 / (k as f64 + 0.7);
        for (row, label) in lines.iter().enumerate() {
            // First row at the top.
            let top = n as f64 - row as f64 - 0.2;
            let mid = n as f64 - row as f64 - 0.5;
            let (lx, ly) = chart.backend_coord(&(x_range.start, mid));
            let style = if focus[row] {
                (FONT, 14).into_font().style(FontStyle::Bold).color(&INK)
            } else {
                text_style(13)
            };
            for (i, line) in label.iter().enumerate() {
                let text = if focus[row] && i == 0 {
                    format!("▶ {line}")
                } else {
                    line.clone()
                };
                let dy = (2 * i as i32 - (label.len() as i32 - 1)) * 8;
                root.draw(&Text::new(
                    text,
                    (lx - 8, ly + dy),
                    style.clone().pos(Pos::new(HPos::Right, VPos::Center)),
                ))?;
            }
            for (i, s) in series.iter().enumerate() {
                let y1 = top - i as f64 * band * 0.85;
                let y0 = y1 - band * 0.8;
                let (_, py) = chart.backend_coord(&(0.0, (y0 + y1) / 2.0));
                match s.values[row] {
                    Some(v) => {
                        let a = chart.backend_coord(&(0.0, y1));
                        let b = chart.backend_coord(&(v, y0));
                        patterned(&root, a, b, i)?;
                        if focus[row] {
                            root.draw(&Rectangle::new(
                                [(a.0.min(b.0), a.1), (a.0.max(b.0), b.1)],
                                INK.stroke_width(2),
                            ))?;
                        }
                        let (hp, dx) = if v < 0.0 {
                            (HPos::Right, -4)
                        } else {
                            (HPos::Left, 4)
                        };
                        root.draw(&Text::new(
                            sv::number(v, 1),
                            (b.0 + dx, py),
                            text_style(12).pos(Pos::new(hp, VPos::Center)),
                        ))?;
                    }
                    None => {
                        let (zx, _) = chart.backend_coord(&(0.0, 0.0));
                        root.draw(&Text::new(
                            s.gaps[row].as_str(),
                            (zx + 4, py),
                            text_style(13).pos(Pos::new(HPos::Left, VPos::Center)),
                        ))?;
                    }
                }
            }
        }
        if x_range.start < 0.0 {
            let a = chart.backend_coord(&(0.0, 0.0));
            let b = chart.backend_coord(&(0.0, n as f64));
            root.draw(&PathElement::new(vec![a, b], INK.stroke_width(1)))?;
        }
        if let Some((v, label)) = reference {
            let a = chart.backend_coord(&(v, 0.0));
            let b = chart.backend_coord(&(v, n as f64));
            dashed(&root, a, b)?;
            root.draw(&Text::new(
                format!("{label}: {}", sv::number(v, 0)),
                (b.0 + 4, b.1 - 8),
                text_style(12).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        root.present()?;
    }
    Ok(())
}

fn dashed(root: &DrawingArea<SVGBackend, Shift>, a: (i32, i32), b: (i32, i32)) -> Result<(), Err> {
    let len = (((b.0 - a.0).pow(2) + (b.1 - a.1).pow(2)) as f64).sqrt();
    let steps = (len / 8.0).floor() as i32;
    for s in (0..steps).step_by(2) {
        let t0 = s as f64 / steps as f64;
        let t1 = (s + 1) as f64 / steps as f64;
        let p = |t: f64| {
            (
                a.0 + ((b.0 - a.0) as f64 * t) as i32,
                a.1 + ((b.1 - a.1) as f64 * t) as i32,
            )
        };
        root.draw(&PathElement::new(vec![p(t0), p(t1)], INK.stroke_width(2)))?;
    }
    Ok(())
}

fn lines(
    out: &mut String,
    labels: &[String],
    series: &[Series],
    reference: Option<(f64, String)>,
    axis: &str,
) -> Result<(), Err> {
    let n = labels.len();
    let height = 360;
    let (y_range, decimals) = value_axis(series, reference.as_ref().map(|r| r.0), 0.15);
    {
        let root = SVGBackend::with_string(out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        legend(&root, series, true, 18)?;
        let (_, body) = root.split_vertically(34);
        let mut chart = ChartBuilder::on(&body)
            .margin_top(16)
            .margin_right(24)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, y_range.clone())?;
        let fmt = |v: &f64| sv::number(*v, decimals);
        house_style(
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(0)
                .y_labels(6)
                .y_label_formatter(&fmt)
                .y_desc(axis),
        )?;
        for (i, label) in labels.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64, y_range.start));
            root.draw(&Text::new(
                label.clone(),
                (x, y + 16),
                text_style(13).pos(Pos::new(HPos::Center, VPos::Center)),
            ))?;
        }
        if let Some((v, label)) = reference {
            let a = chart.backend_coord(&(-0.5, v));
            let b = chart.backend_coord(&(n as f64 - 0.5, v));
            dashed(&root, a, b)?;
            root.draw(&Text::new(
                format!("{label}: {}", sv::number(v, 0)),
                (a.0 + 6, a.1 - 10),
                text_style(12).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        for (i, s) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let style = color.stroke_width(if i == 0 { 3 } else { 2 });
            // Consecutive points with values form one segment; a gap stays a gap.
            let mut segment: Vec<(f64, f64)> = Vec::new();
            let flush = |seg: &mut Vec<(f64, f64)>,
                         chart: &mut ChartContext<SVGBackend, _>|
             -> Result<(), Err> {
                if seg.len() > 1 {
                    if i == 0 {
                        chart.draw_series(LineSeries::new(seg.clone(), style))?;
                    } else {
                        chart.draw_series(DashedLineSeries::new(
                            seg.clone(),
                            (4 + 4 * i) as i32,
                            4,
                            style,
                        ))?;
                    }
                }
                seg.clear();
                Ok(())
            };
            for (x, v) in s.values.iter().enumerate() {
                match v {
                    Some(v) => segment.push((x as f64, *v)),
                    None => {
                        flush(&mut segment, &mut chart)?;
                        let (px, py) = chart.backend_coord(&(x as f64, y_range.start));
                        root.draw(&Text::new(
                            s.gaps[x].as_str(),
                            (px, py - 10 - 14 * i as i32),
                            text_style(13).pos(Pos::new(HPos::Center, VPos::Center)),
                        ))?;
                    }
                }
            }
            flush(&mut segment, &mut chart)?;
            for (x, v) in s.values.iter().enumerate() {
                if let Some(v) = v {
                    marker(&root, chart.backend_coord(&(x as f64, *v)), i)?;
                }
            }
        }
        root.present()?;
    }
    Ok(())
}

/// A funnel plot: each group's share (percent) against its size, the reference share as a
/// line and its 95 % (dashed) and 99.8 % (solid) binomial control limits, which widen as groups
/// get smaller. A group outside the 99.8 % limits is drawn filled and named; a hidden value is
/// not drawn.
fn funnel(
    out: &mut String,
    labels: &[String],
    share: &Series,
    sizes: &[Option<f64>],
    (p0, reference): (f64, String),
    axis: &str,
    x_axis: &str,
) -> Result<(), Err> {
    let points: Vec<(usize, f64, f64)> = share
        .values
        .iter()
        .zip(sizes)
        .enumerate()
        .filter_map(|(i, (v, n))| Some((i, (*n)?, (*v)?)))
        .filter(|(_, n, _)| *n >= 1.0)
        .collect();
    let (lo_n, hi_n) = points
        .iter()
        .fold((f64::MAX, 1.0f64), |(lo, hi), (_, n, _)| {
            (lo.min(*n), hi.max(*n))
        });
    let lo_n = if points.is_empty() { 1.0 } else { lo_n };
    let x_max = (hi_n * 1.1).max(10.0);
    let limit = |n: f64, q: f64| {
        100.0 * crate::engine::binomial_limit(p0 / 100.0, n.round().max(1.0) as u64, q)
    };
    let y_top = points
        .iter()
        .map(|(_, _, v)| *v)
        .chain([limit(lo_n, 0.999), p0])
        .fold(0.0f64, f64::max);
    let y_range = 0.0..(y_top * 1.15).clamp(1.0, 100.0);
    let decimals = decimals_for(y_range.end);
    let height = 420;
    {
        let root = SVGBackend::with_string(out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let legend_items = [
            (format!("{reference}: {} %", sv::number(p0, 1)), 0),
            ("95 %-gränser".to_string(), 1),
            ("99,8 %-gränser".to_string(), 2),
        ];
        for (i, (text, style)) in legend_items.iter().enumerate() {
            let x = 12 + 230 * i as i32;
            let y = 16;
            let line = vec![(x, y), (x + 28, y)];
            match style {
                0 => root.draw(&PathElement::new(line, PALETTE[0].stroke_width(3)))?,
                1 => dashed(&root, (x, y), (x + 28, y))?,
                _ => root.draw(&PathElement::new(line, INK.stroke_width(1)))?,
            }
            root.draw(&Text::new(
                text.as_str(),
                (x + 36, y),
                text_style(13).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        let (_, body) = root.split_vertically(34);
        let mut chart = ChartBuilder::on(&body)
            .margin_top(12)
            .margin_right(24)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max, y_range.clone())?;
        let fmt_y = |v: &f64| sv::number(*v, decimals);
        let fmt_x = |v: &f64| sv::number(*v, 0);
        house_style(
            chart
                .configure_mesh()
                .x_labels(6)
                .y_labels(6)
                .x_label_formatter(&fmt_x)
                .y_label_formatter(&fmt_y)
                .x_desc(x_axis)
                .y_desc(axis),
        )?;
        let from = (lo_n * 0.8).max(1.0);
        let steps = 80;
        let curve = |q: f64| -> Vec<(f64, f64)> {
            (0..=steps)
                .map(|s| from + (x_max - from) * s as f64 / steps as f64)
                .map(|n| (n, limit(n, q).min(y_range.end)))
                .collect()
        };
        for q in [0.001, 0.999] {
            chart.draw_series(LineSeries::new(curve(q), INK.stroke_width(1)))?;
        }
        for q in [0.025, 0.975] {
            chart.draw_series(DashedLineSeries::new(curve(q), 6, 5, INK.stroke_width(1)))?;
        }
        chart.draw_series(LineSeries::new(
            vec![(0.0, p0), (x_max, p0)],
            PALETTE[0].stroke_width(3),
        ))?;
        let outside = |n: f64, v: f64| v > limit(n, 0.999) || v < limit(n, 0.001);
        // Named beside their point when few stand out; the table marks them all.
        let named = points.iter().filter(|(_, n, v)| outside(*n, *v)).count() <= 8;
        for (i, n, v) in &points {
            let at = chart.backend_coord(&(*n, *v));
            if outside(*n, *v) {
                root.draw(&Circle::new(at, 6, PALETTE[1].filled()))?;
                if named {
                    root.draw(&Text::new(
                        labels[*i].as_str(),
                        (at.0 + 9, at.1),
                        text_style(12).pos(Pos::new(HPos::Left, VPos::Center)),
                    ))?;
                }
            } else {
                root.draw(&Circle::new(at, 5, PALETTE[0].stroke_width(2)))?;
            }
        }
        root.present()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::wrap_label;
    use crate::report::spec::{ChartKind, ChartSpec, Format};
    use crate::report::{Block, Cell, Column, Grid};

    #[test]
    fn the_grid_places_each_shown_row_in_its_cell_and_names_every_class() {
        let column = |name: &str, format| Column {
            name: name.into(),
            label: name.into(),
            format,
            hidden: false,
        };
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let grid = Grid {
            status: names(&["Låg", "Hög"]),
            change: names(&["Minskat", "Ökat"]),
            overall: vec![
                vec![(1, "Gott läge".into()), (2, "Medelläge".into())],
                vec![(2, "Medelläge".into()), (3, "Allvarligt läge".into())],
            ],
        };
        let row = |name: &str, s: Option<i64>, c: Option<i64>| {
            let class = |v: Option<i64>| v.map_or(Cell::Null, Cell::Int);
            let overall = match (s, c) {
                (Some(s), Some(c)) => Cell::Int(grid.overall[s as usize - 1][c as usize - 1].0),
                _ => Cell::Null,
            };
            vec![Cell::Text(name.into()), class(s), class(c), overall]
        };
        let block = Block {
            id: "overview".into(),
            short: "Läge och förändring".into(),
            title: "Kommunernas läge".into(),
            summary: String::new(),
            columns: vec![
                column("name", Format::Text),
                column("status_order", Format::Int),
                column("change_order", Format::Int),
                column("overall_order", Format::Int),
            ],
            rows: vec![
                row("Askersund", Some(2), Some(2)),
                row("Laxå", Some(1), Some(2)),
                row("Nora", Some(2), Some(2)),
                row("Hällefors", None, None),
            ],
            marks: vec![vec![String::new(); 4]; 4],
            footnotes: Vec::new(),
            chart: Some(ChartSpec {
                kind: ChartKind::Grid,
                category: "name".into(),
                series: names(&["status_order", "change_order", "overall_order"]),
                axis: "Läge".into(),
                focus: None,
                reference: None,
                size: None,
            }),
            grid: Some(grid.clone()),
        };
        let svg = super::svg(&block, "c").unwrap();
        for text in [
            "Låg",
            "Hög",
            "Minskat",
            "Ökat",
            "Gott läge",
            "Allvarligt läge",
            "Askersund",
            "Laxå",
            "Nora",
        ] {
            assert!(
                svg.contains(&format!(">{text}<")) || svg.contains(&format!(">\n{text}\n<")),
                "{text} missing"
            );
        }
        // Medelläge names two cells; the row without classes is told about, not placed.
        assert_eq!(svg.matches("Medelläge").count(), 2);
        assert!(!svg.contains("Hällefors"));
        assert!(svg.contains("1 utan klass"));
        // High status and an increase: the bottom-right of the drawing is the top-right cell,
        // so Askersund and Nora are drawn above Laxå (low status).
        let y = |name: &str| {
            let at = svg.find(name).unwrap();
            let tag = &svg[svg[..at].rfind("<text").unwrap()..at];
            let y = tag.split("y=\"").nth(1).unwrap().split('"').next().unwrap();
            y.parse::<f64>().unwrap()
        };
        assert!(y("Askersund") < y("Laxå") && y("Nora") < y("Laxå"));
    }

    #[test]
    fn long_labels_wrap_onto_two_lines_and_then_end_in_an_ellipsis() {
        assert_eq!(wrap_label("Örebro", 34), ["Örebro"]);
        let target = "Andelen elever med minst 15 % frånvaro under terminen ska vara under 8 %.";
        let lines = wrap_label(target, 34);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines.iter().all(|l| l.chars().count() <= 34), "{lines:?}");
        assert_eq!(lines[0], "Andelen elever med minst 15 %");
        assert!(lines[1].ends_with('…'), "{lines:?}");
        let two = wrap_label("Elever med minst 20 % frånvaro i kommunen", 34);
        assert_eq!(two, ["Elever med minst 20 % frånvaro i", "kommunen"]);
        assert_eq!(
            wrap_label(&"x".repeat(40), 34),
            [format!("{}…", "x".repeat(33))]
        );
    }
}
