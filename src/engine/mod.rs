//! The query engine: owns the DataFusion `SessionContext` users' SQL runs in.
//!
//! It registers every lake table (at the latest version, or as of one data version), the
//! reference table `municipalities` (code, name, county), the policy parameters (`definition`,
//! `levels`, `windows`, `shared_windows`, `local_steps`, `targets`, `overview_settings`, `overview_classes`,
//! `overview_grid`), the histogram functions (`at_or_above`, `hours_at_or_above`), `area_code` and
//! every view in `sql/` (compiled into the binary; errors name the file). Nothing here knows
//! about HTTP or the command line.
//!
//! `as_of` names a version of the `attendance` table, the data version every figure carries;
//! the other tables are read as they were until the next data version was committed, so a
//! query at an old version sees one consistent state of the whole lake.

mod indexed;
pub mod reads;
mod udf;
pub use udf::binomial_limit;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionContext, col, lit};
use deltalake::DeltaTable;
use indexed::IndexedTable;

use crate::lake::{Lake, TABLES};
use crate::policy::{self, Policies};
use crate::{Error, Result, reference};

/// The views, in the order they are created (base views first). A unit test checks that this
/// list and the files in `sql/` agree.
pub const VIEWS: [(&str, &str); 18] = [
    (
        "base/school_attendance",
        include_str!("../../sql/base/school_attendance.sql"),
    ),
    (
        "base/area_types",
        include_str!("../../sql/base/area_types.sql"),
    ),
    (
        "base/area_attendance",
        include_str!("../../sql/base/area_attendance.sql"),
    ),
    (
        "base/school_periods",
        include_str!("../../sql/base/school_periods.sql"),
    ),
    (
        "base/school_steps",
        include_str!("../../sql/base/school_steps.sql"),
    ),
    (
        "base/open_areas",
        include_str!("../../sql/base/open_areas.sql"),
    ),
    ("absence_rate", include_str!("../../sql/absence_rate.sql")),
    ("at_or_above", include_str!("../../sql/at_or_above.sql")),
    (
        "reporting_rate",
        include_str!("../../sql/reporting_rate.sql"),
    ),
    ("harmonisation", include_str!("../../sql/harmonisation.sql")),
    ("coverage", include_str!("../../sql/coverage.sql")),
    ("gender_gap", include_str!("../../sql/gender_gap.sql")),
    ("escalation", include_str!("../../sql/escalation.sql")),
    ("change", include_str!("../../sql/change.sql")),
    ("overview", include_str!("../../sql/overview.sql")),
    ("attainment", include_str!("../../sql/attainment.sql")),
    (
        "target_progress",
        include_str!("../../sql/target_progress.sql"),
    ),
    ("benchmark", include_str!("../../sql/benchmark.sql")),
];

/// The views with a row per uploaded group, histograms included: too big to hold computed
/// (a national school year decodes to gigabytes), so they stay views.
const ROW_VIEWS: [&str; 2] = ["base/school_attendance", "base/area_attendance"];

/// The computed views whose rows each come from one period's attendance rows (the period is
/// one of their keys): computed a period at a time, the `period` filter reaching the
/// attendance scan (a partition), so a national school year's histograms are summed a month
/// at a time instead of all at once (`school_steps` held every school-period's sums, about
/// 1.5 GB nationally, while it ran).
const PERIOD_VIEWS: [&str; 1] = ["base/school_steps"];

/// An indicator: a view outside `sql/base/`, with the first line of its leading comment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Indicator {
    pub name: &'static str,
    pub description: String,
}

/// Every indicator view, in `sql/` order.
pub fn indicators() -> Vec<Indicator> {
    VIEWS
        .iter()
        .filter(|(path, _)| !path.starts_with("base/"))
        .map(|(name, sql)| Indicator {
            name,
            description: sql
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("--"))
                .unwrap_or("")
                .trim()
                .to_string(),
        })
        .collect()
}

/// Which state of the lake a session reads: a data version (the `attendance` table's Delta
/// version, as every figure carries it), or a point in time (the versions current then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Version(u64),
    Time(chrono::DateTime<chrono::Utc>),
}

impl std::str::FromStr for AsOf {
    type Err = String;

    /// `42` (a data version), `2026-03-15` (the end of that day, UTC), `2026-03-15T08:00:00Z`
    /// or with an offset (`+01:00`), or without one (read as UTC).
    fn from_str(s: &str) -> std::result::Result<AsOf, String> {
        let s = s.trim();
        if let Ok(v) = s.parse::<u64>() {
            return Ok(AsOf::Version(v));
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(AsOf::Time(t.with_timezone(&chrono::Utc)));
        }
        for f in [
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
        ] {
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
                return Ok(AsOf::Time(t.and_utc()));
            }
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            let end = d.and_hms_milli_opt(23, 59, 59, 999).expect("valid time");
            return Ok(AsOf::Time(end.and_utc()));
        }
        Err(format!(
            "'{s}' är varken en dataversion (t.ex. 42) eller en tidpunkt (t.ex. 2026-03-15 eller 2026-03-15T08:00:00Z)"
        ))
    }
}

/// The data version a session reads: the `attendance` table's Delta version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub data_version: u64,
}

/// A session over the lake, with the version it reads.
pub struct Engine {
    pub ctx: SessionContext,
    pub snapshot: Snapshot,
    /// Each lake table's version, by name.
    versions: HashMap<String, u64>,
    /// The shared definition's disclosure rules.
    pub rules: crate::disclosure::Rules,
    /// The shared definition's levels, in percent (the bands of a disclosure release).
    pub levels: Vec<u32>,
    /// Protected releases computed in this session: a data version never changes, so each
    /// is computed once (also when several reports ask for it at the same time) and every
    /// view shows the same statuses.
    pub protections: std::sync::Mutex<
        std::collections::HashMap<
            crate::disclosure::release::Which,
            Arc<tokio::sync::OnceCell<Arc<crate::disclosure::Protection>>>,
        >,
    >,
    /// The uploaded groups each period's releases are built from, read once for every county.
    pub groups: crate::disclosure::release::Groups,
    /// Protections by the content they protect, shared across engines by their owner.
    pub protected: Arc<crate::disclosure::release::Protections>,
    /// What earlier publications published of each release (the publisher's engine): a
    /// release is protected beside them, so two publications cannot be differenced.
    pub history: Option<Arc<crate::disclosure::release::History>>,
    /// How many county releases are built and solved at once: one per processor. Solving is
    /// bound by the processor, so more at once would only hold more memory.
    pub solving: Arc<tokio::sync::Semaphore>,
}

impl Engine {
    /// A session over the lake at its latest version, or as of a data version or a time, with
    /// the policies from `./policies` (or the built-in copies).
    pub async fn open(lake: &Lake, as_of: Option<AsOf>) -> Result<Engine> {
        let policies = Policies::load(&policy::Source::resolve(None))
            .map_err(|e| Error::usage(e.to_string()))?;
        Engine::open_with(lake, as_of, &policies).await
    }

    /// A session over the lake at `as_of` (or the latest version) with the given policies.
    pub async fn open_with(
        lake: &Lake,
        as_of: Option<AsOf>,
        policies: &Policies,
    ) -> Result<Engine> {
        let latest = lake
            .table("attendance")
            .await?
            .version()
            .unwrap_or_default();
        // The lake at data version v is everything committed before data version v + 1 (so
        // it includes v's own audit row, written just after v). At the latest version, that
        // is simply every table's latest state. At a time, every table as it was then.
        let (attendance, at_time) = match as_of {
            None => (lake.table("attendance").await?, None),
            Some(AsOf::Version(v)) => {
                let t = lake.table_at("attendance", v).await?;
                let at = if v < latest {
                    Some(
                        lake.commit_time("attendance", v + 1).await?
                            - chrono::Duration::milliseconds(1),
                    )
                } else {
                    None
                };
                (t, at)
            }
            Some(AsOf::Time(at)) => (lake.table_as_of_time("attendance", at).await?, Some(at)),
        };
        let mut tables = Vec::new();
        for name in TABLES {
            let table = if name == "attendance" {
                attendance.clone()
            } else if let Some(t) = at_time {
                lake.table_as_of_time(name, t).await?
            } else {
                lake.table(name).await?
            };
            tables.push((name, table));
        }
        Engine::over(tables, policies).await
    }

    /// A session over the lake with each table at the version `versions` names
    /// (`register=3,attendance=264,…`, as a publication records them); tables it does not
    /// name at their latest version.
    pub async fn open_at_versions(
        lake: &Lake,
        versions: &str,
        policies: &Policies,
    ) -> Result<Engine> {
        let at: HashMap<&str, u64> = Lake::parse_table_versions(versions)?.into_iter().collect();
        let mut tables = Vec::new();
        for name in TABLES {
            let table = match at.get(name) {
                Some(v) => lake.table_at(name, *v).await?,
                None => lake.table(name).await?,
            };
            tables.push((name, table));
        }
        Engine::over(tables, policies).await
    }

    /// A session over `tables` (every one of [`TABLES`], `attendance` giving the data version).
    async fn over(tables: Vec<(&str, DeltaTable)>, policies: &Policies) -> Result<Engine> {
        let ctx = SessionContext::new();
        let mut data_version = 0;
        let mut versions = HashMap::new();
        for (name, table) in tables {
            if name == "attendance" {
                data_version = table.version().unwrap_or_default();
            }
            versions.insert(name.to_string(), table.version().unwrap_or_default());
            table.update_datafusion_session(&ctx.state())?;
            ctx.register_table(name, table.table_provider().await?)?;
        }
        ctx.register_table("municipalities", Arc::new(municipalities_table()?))?;
        register_policies(&ctx, policies, data_version)?;
        ctx.register_udf(udf::AtOrAbove::udf("at_or_above"));
        ctx.register_udf(udf::AtOrAbove::udf("hours_at_or_above"));
        ctx.register_udf(udf::FunnelLimit::udf());
        ctx.register_udf(udf::AreaCode::udf());
        ctx.register_udaf(udf::HistSum::udaf());
        for (path, sql) in VIEWS {
            let name = path.rsplit('/').next().unwrap_or(path);
            let create = format!("CREATE VIEW {name} AS {sql}");
            ctx.sql(&create)
                .await
                .map_err(|e| Error::usage(format!("sql/{path}.sql: {e}")))?;
        }
        Ok(Engine {
            ctx,
            snapshot: Snapshot { data_version },
            versions,
            rules: policies.shared.policy.disclosure,
            levels: policies
                .shared
                .policy
                .levels
                .iter()
                .map(|l| l.percent)
                .collect(),
            protections: Default::default(),
            groups: Default::default(),
            protected: Default::default(),
            history: None,
            solving: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
        })
    }

    /// The engine, keeping its protections in `protected` (the server's, shared by every
    /// data version it serves) rather than its own.
    pub fn sharing(mut self, protected: Arc<crate::disclosure::release::Protections>) -> Engine {
        self.protected = protected;
        self
    }

    /// The engine, protecting each release beside what earlier publications published of it.
    pub fn with_history(mut self, history: Arc<crate::disclosure::release::History>) -> Engine {
        self.history = Some(history);
        self
    }

    /// Computes every view but the row-level ones ([`ROW_VIEWS`]) once and keeps its result
    /// in memory in place of the view (sorted by its key columns, [`IndexedTable`]), each view
    /// reading the ones before it already computed: what the publisher does before building
    /// every report of a data version, so a report's queries read a few rows of small tables.
    pub async fn materialize(&self) -> Result<()> {
        for (path, sql) in VIEWS.iter().filter(|(p, _)| !ROW_VIEWS.contains(p)) {
            let name = path.rsplit('/').next().unwrap_or(path);
            self.ctx.deregister_table(name)?;
            self.ctx
                .sql(&format!("CREATE VIEW {name} AS {sql}"))
                .await
                .map_err(|e| Error::usage(format!("sql/{path}.sql: {e}")))?;
            let df = self.ctx.table(name).await?;
            let schema = Arc::new(df.schema().as_arrow().clone());
            let started = std::time::Instant::now();
            let batches = if PERIOD_VIEWS.contains(path) {
                let mut batches = Vec::new();
                for period in self.periods().await? {
                    let one = df.clone().filter(col("period").eq(lit(period)))?;
                    batches.extend(one.collect().await?);
                }
                batches
            } else {
                df.collect().await?
            };
            tracing::debug!(
                view = name,
                rows = batches.iter().map(|b| b.num_rows()).sum::<usize>(),
                ms = started.elapsed().as_millis() as u64,
                "engine: view computed"
            );
            self.ctx.deregister_table(name)?;
            self.ctx.register_table(
                name,
                Arc::new(IndexedTable::try_new(name, schema, &batches)?),
            )?;
        }
        Ok(())
    }

    /// Every period with attendance rows, from the computed `school_periods`.
    async fn periods(&self) -> Result<Vec<String>> {
        let batches = self
            .ctx
            .sql("SELECT DISTINCT period FROM school_periods ORDER BY 1")
            .await?
            .collect()
            .await?;
        let mut periods = Vec::new();
        for b in &batches {
            let column = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8)?;
            periods.extend(
                column
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .map(str::to_string),
            );
        }
        Ok(periods)
    }

    /// Runs one SQL statement and collects its result. Inside [`reads::tracked`], the
    /// tables it scans are recorded (the computed views' ranges by their scans).
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let df = self.ctx.sql(sql).await?;
        if reads::active() {
            df.logical_plan()
                .apply_with_subqueries(|p| {
                    if let datafusion::logical_expr::LogicalPlan::TableScan(s) = p {
                        reads::record(reads::Read::Table(s.table_name.table().to_string()));
                    }
                    Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
                })
                .map_err(Error::from)?;
        }
        Ok(df.collect().await?)
    }

    /// The digest of what `read` reads at this engine's snapshot, `None` when it cannot be
    /// told (a view over the lake's rows, a release, a table this engine does not have): a
    /// computed view's rows, an in-memory table's (reference data, policies), a lake table's
    /// version.
    pub async fn read_digest(&self, read: &reads::Read) -> Result<Option<[u8; 32]>> {
        use sha2::{Digest, Sha256};
        type Selection<'a> = (&'a str, &'a [String], &'a [(String, String)], &'a [String]);
        let (name, fixed, equal, columns): Selection = match read {
            reads::Read::Table(t) => (t, &[], &[], &[]),
            reads::Read::Range(t, fixed, equal, columns) => (t, fixed, equal, columns),
            reads::Read::Release(..) => return Ok(None),
        };
        if let Some(v) = self.versions.get(name) {
            let d = Sha256::digest(format!("{name}@{v}").as_bytes());
            return Ok((fixed.is_empty() && equal.is_empty()).then(|| d.into()));
        }
        let Ok(provider) = self.ctx.table_provider(name).await else {
            return Ok(None);
        };
        if let Some(t) = provider.downcast_ref::<IndexedTable>() {
            return Ok(Some(t.digest(fixed, equal, columns)?));
        }
        if provider.is::<MemTable>() && fixed.is_empty() && equal.is_empty() {
            let df = self.ctx.table(name).await?;
            let schema = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await?;
            let table = IndexedTable::try_new(name, schema, &batches)?;
            return Ok(Some(table.digest(&[], &[], &[])?));
        }
        Ok(None)
    }
}

/// A one-batch in-memory table from named columns (nullability taken from the data).
fn mem_table(columns: Vec<(&str, ArrayRef)>) -> Result<MemTable> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), a.null_count() > 0))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )?;
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}

fn strings<'a>(v: impl IntoIterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(v))
}

fn ints(v: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from_iter(v))
}

/// The policies as tables, so SQL joins to thresholds instead of repeating them as literals.
fn register_policies(ctx: &SessionContext, p: &Policies, data_version: u64) -> Result<()> {
    let d = &p.shared;
    let valid_from = d.policy.valid_from.to_string();
    ctx.register_table(
        "definition",
        Arc::new(mem_table(vec![
            ("definition_id", strings([Some(d.policy.id.as_str())])),
            ("definition_name", strings([Some(d.policy.name.as_str())])),
            ("definition_hash", strings([Some(d.hash.as_str())])),
            ("valid_from", strings([Some(valid_from.as_str())])),
            (
                "min_reporting_rate",
                Arc::new(Float64Array::from(vec![d.policy.min_reporting_rate])),
            ),
            ("data_version", ints([Some(data_version as i64)])),
        ])?),
    )?;
    let levels = &d.policy.levels;
    ctx.register_table(
        "levels",
        Arc::new(mem_table(vec![
            (
                "level_id",
                strings(levels.iter().map(|l| Some(l.id.as_str()))),
            ),
            (
                "level_name",
                strings(levels.iter().map(|l| Some(l.name.as_str()))),
            ),
            (
                "percent",
                ints(levels.iter().map(|l| Some(l.percent as i64))),
            ),
            ("level_order", ints((1..=levels.len() as i64).map(Some))),
        ])?),
    )?;
    // The overview's classes (`policies/shared.toml` [overview]): empty tables without one.
    let o = d.policy.overview.as_ref();
    ctx.register_table(
        "overview_settings",
        Arc::new(mem_table(vec![
            ("level_id", strings(o.map(|o| Some(o.level.as_str())))),
            ("min_students", ints(o.map(|o| Some(o.min_students)))),
        ])?),
    )?;
    // One row per class: its order (1 first), name and range [from_value, below).
    type ClassRow<'a> = (&'a str, i64, &'a str, Option<f64>, Option<f64>);
    let mut classes: Vec<ClassRow> = Vec::new();
    for (dimension, list) in o
        .iter()
        .flat_map(|o| [("status", &o.status), ("change", &o.change)])
    {
        let mut from = None;
        for (i, c) in list.iter().enumerate() {
            classes.push((dimension, i as i64 + 1, c.name.as_str(), from, c.below));
            from = c.below;
        }
    }
    ctx.register_table(
        "overview_classes",
        Arc::new(mem_table(vec![
            ("dimension", strings(classes.iter().map(|c| Some(c.0)))),
            ("class_order", ints(classes.iter().map(|c| Some(c.1)))),
            ("class_name", strings(classes.iter().map(|c| Some(c.2)))),
            (
                "from_value",
                Arc::new(Float64Array::from_iter(classes.iter().map(|c| c.3))),
            ),
            (
                "below",
                Arc::new(Float64Array::from_iter(classes.iter().map(|c| c.4))),
            ),
        ])?),
    )?;
    let grid: Vec<(i64, i64, i64, &str)> = o
        .iter()
        .flat_map(|o| {
            o.grid.iter().enumerate().flat_map(move |(s, row)| {
                row.iter().enumerate().map(move |(c, &k)| {
                    (
                        s as i64 + 1,
                        c as i64 + 1,
                        k as i64,
                        o.overall[k - 1].as_str(),
                    )
                })
            })
        })
        .collect();
    ctx.register_table(
        "overview_grid",
        Arc::new(mem_table(vec![
            ("status_order", ints(grid.iter().map(|g| Some(g.0)))),
            ("change_order", ints(grid.iter().map(|g| Some(g.1)))),
            ("overall_order", ints(grid.iter().map(|g| Some(g.2)))),
            ("overall_name", strings(grid.iter().map(|g| Some(g.3)))),
        ])?),
    )?;
    // Every window the contract knows (what the histograms can be counted in).
    ctx.register_table(
        "windows",
        Arc::new(mem_table(vec![(
            "window",
            strings(
                crate::contract::attendance::WINDOWS
                    .iter()
                    .map(|w| Some(*w)),
            ),
        )])?),
    )?;
    let windows = &d.policy.windows;
    ctx.register_table(
        "shared_windows",
        Arc::new(mem_table(vec![(
            "window",
            strings(windows.iter().map(|w| Some(w.as_str()))),
        )])?),
    )?;
    let t = &p.targets;
    ctx.register_table(
        "targets",
        Arc::new(mem_table(vec![
            (
                "municipality_code",
                strings(t.iter().map(|x| Some(x.policy.municipality.as_str()))),
            ),
            (
                "indicator",
                strings(t.iter().map(|x| Some(x.policy.indicator.as_str()))),
            ),
            (
                "level_id",
                strings(t.iter().map(|x| x.policy.level.as_deref())),
            ),
            (
                "comparator",
                strings(t.iter().map(|x| Some(x.policy.comparator.symbol()))),
            ),
            (
                "target_value",
                Arc::new(Float64Array::from_iter_values(
                    t.iter().map(|x| x.policy.value),
                )),
            ),
            (
                "by_term",
                strings(t.iter().map(|x| Some(x.policy.by_term.as_str()))),
            ),
            (
                "description",
                strings(t.iter().map(|x| Some(x.policy.description.as_str()))),
            ),
            (
                "target_hash",
                strings(t.iter().map(|x| Some(x.hash.as_str()))),
            ),
        ])?),
    )?;
    let steps: Vec<(&policy::Hashed<policy::LocalPolicy>, &policy::Step)> = p
        .local
        .iter()
        .flat_map(|l| l.policy.steps.iter().map(move |s| (l, s)))
        .collect();
    let measure = |s: &policy::Step| match s.measure {
        policy::Measure::Percent => "percent",
        policy::Measure::Hours => "hours",
        policy::Measure::None => "none",
    };
    ctx.register_table(
        "local_steps",
        Arc::new(mem_table(vec![
            (
                "policy_id",
                strings(steps.iter().map(|(l, _)| Some(l.policy.id.as_str()))),
            ),
            (
                "policy_name",
                strings(steps.iter().map(|(l, _)| Some(l.policy.name.as_str()))),
            ),
            (
                "policy_hash",
                strings(steps.iter().map(|(l, _)| Some(l.hash.as_str()))),
            ),
            (
                "municipality_code",
                strings(steps.iter().map(|(l, _)| l.policy.municipality.as_deref())),
            ),
            (
                "county_code",
                strings(steps.iter().map(|(l, _)| l.policy.county.as_deref())),
            ),
            ("step", ints(steps.iter().map(|(_, s)| Some(s.step as i64)))),
            (
                "step_name",
                strings(steps.iter().map(|(_, s)| Some(s.name.as_str()))),
            ),
            (
                "measure",
                strings(steps.iter().map(|(_, s)| Some(measure(s)))),
            ),
            (
                "window",
                strings(steps.iter().map(|(_, s)| s.window.map(|w| w.as_str()))),
            ),
            (
                "band",
                ints(steps.iter().map(|(_, s)| s.band().map(|b| b as i64))),
            ),
            (
                "who",
                strings(steps.iter().map(|(_, s)| Some(s.who.as_str()))),
            ),
        ])?),
    )?;
    Ok(())
}

fn municipalities_table() -> Result<MemTable> {
    let all = reference::municipalities();
    let col = |f: fn(&reference::Municipality) -> &str| strings(all.iter().map(|m| Some(f(m))));
    mem_table(vec![
        ("municipality_code", col(|m| &m.code)),
        ("municipality_name", col(|m| &m.name)),
        ("county_code", col(|m| &m.county_code)),
        ("county_name", col(|m| &m.county_name)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sql_file_is_a_view_and_every_view_a_file() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
        let mut files = Vec::new();
        for dir in [root.clone(), root.join("base")] {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "sql") {
                    let rel = p.strip_prefix(&root).unwrap().with_extension("");
                    files.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        files.sort();
        let mut views: Vec<String> = VIEWS.iter().map(|(p, _)| p.to_string()).collect();
        views.sort();
        assert_eq!(files, views);
        for i in indicators() {
            assert!(
                !i.description.is_empty(),
                "{} has no leading comment",
                i.name
            );
        }
    }
}
