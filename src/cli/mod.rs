//! The command line: parse, call the library, print. Exit 0 on success, 1 when a file was
//! refused, 2 on any other error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::Utc;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::{AsOf, Engine};
use crate::fixtures::{self, Scale};
use crate::ingest;
use crate::lake::{self, Lake};
use crate::output::{self, Format};
use crate::policy::{self, Policies};
use crate::report::export;
use crate::{Error, Result};

mod admin;
mod disclosure;
mod files;
mod school;
mod serve;

use admin::{policy_check, token};
use disclosure::{disclosure_attack, disclosure_audit};
pub use files::{ingest_all, publish_lake};
use school::{aggregate, send};
use serve::{demo, serve};

#[derive(Parser, Debug)]
#[command(
    name = "narvaro",
    version,
    about = "Närvarolagret: school attendance warehouse"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args, Debug, Clone)]
pub struct LakeArg {
    /// The lake: a directory, or s3://BUCKET/PREFIX in S3-compatible object storage (endpoint,
    /// region and credentials from the AWS environment variables). Without it, `lake` in
    /// `[server]` of narvaro.toml, else data/lake.
    #[arg(long)]
    pub lake: Option<lake::Location>,
}

impl LakeArg {
    /// The lake named by `--lake`, else by the configuration file `config`, else `data/lake`.
    pub fn location(&self, config: &Path) -> Result<lake::Location> {
        if let Some(l) = &self.lake {
            return Ok(l.clone());
        }
        match crate::auth::Tokens::open(Some(config))?.server().lake {
            Some(l) => l.parse(),
            None => Ok(lake::Location::Local(PathBuf::from("data/lake"))),
        }
    }

    /// [`LakeArg::location`] with the configuration file in the current directory.
    fn here(&self) -> Result<lake::Location> {
        self.location(Path::new(crate::auth::DEFAULT_CONFIG))
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write deterministic synthetic data (register, attendance, actions, outcomes).
    Fixtures {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "county")]
        scale: Scale,
        #[arg(long, default_value_t = 2025)]
        seed: u64,
        /// Also write the simulated pupils under OUT/truth/.
        #[arg(long)]
        truth: bool,
        /// Also write each municipality's pupils as SS 12000 exports (roster and one attendance
        /// file a month of the school year up to this month) under OUT/ss12000/, for
        /// `narvaro aggregate`.
        #[arg(long, value_name = "YYYY-MM", value_parser = parse_period)]
        ss12000: Option<crate::contract::Period>,
        /// Activities (subjects) each pupil's month is split over in the SS 12000 export.
        #[arg(long, default_value_t = 6)]
        activities: usize,
        /// Only this municipality (code), e.g. 1880.
        #[arg(long)]
        municipality: Option<String>,
    },
    /// At the school: turn SS 12000 attendance and a roster into an anonymised contract v1
    /// aggregate for one month (month, term and school year to date), and optionally upload it.
    Aggregate {
        /// SS 12000 AggregatedAttendance records as JSON: an array, pages {"data": [...]} or
        /// JSON lines; several files (e.g. one a month) or a directory of .json files.
        #[arg(long, required = true, num_args = 1..)]
        attendance: Vec<PathBuf>,
        /// Pupil → school unit, grade and gender: SS 12000 persons with enrolments (JSON) or a
        /// CSV with student, school_unit_code, grade, gender.
        #[arg(long)]
        roster: PathBuf,
        /// The month to aggregate, e.g. 2025-10.
        #[arg(long, value_name = "YYYY-MM", value_parser = parse_period)]
        period: crate::contract::Period,
        /// The shared definition (its min_group); default ./policies/shared.toml or the
        /// built-in one.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Where to write the aggregate: .parquet, or .csv.
        #[arg(long)]
        out: PathBuf,
        /// Send the aggregate to a Närvarolagret server (e.g. https://narvaro.example.se).
        #[arg(long, requires = "token")]
        upload: Option<String>,
        /// The upload token (or set NARVARO_TOKEN).
        #[arg(long)]
        token: Option<String>,
    },
    /// Validate files and commit each accepted one to the lake (directories are searched).
    Ingest {
        #[command(flatten)]
        lake: LakeArg,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Leave publishing to a later `narvaro publish` (e.g. between batches of a bulk load).
        #[arg(long)]
        no_publish: bool,
    },
    /// Publish the lake's latest data version: compute every report once and store it, so
    /// pages read it (incremental: only what changed is computed and written again).
    Publish {
        #[command(flatten)]
        lake: LakeArg,
        /// Print what was published as one line of JSON (`null`: nothing new), no progress bar
        /// (how `serve` runs its publisher).
        #[arg(long, hide = true)]
        json: bool,
        /// Build every report again, also those whose inputs did not change, and publish even
        /// when the latest version is published (a check: `0 nya eller ändrade` confirms that
        /// the incremental publications carried over exactly what they should).
        #[arg(long)]
        rebuild: bool,
    },
    /// Run SQL over the lake tables.
    Query {
        #[command(flatten)]
        lake: LakeArg,
        /// Read the lake as of a data version (the attendance table's Delta version, e.g. 42)
        /// or a time (2026-03-15 for the end of that day UTC, or 2026-03-15T08:00:00+01:00).
        #[arg(long)]
        as_of: Option<AsOf>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        sql: String,
    },
    /// Policies: the shared definition, local staircases and targets.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// The indicators (views in sql/).
    Indicators {
        #[command(subcommand)]
        command: IndicatorsCommand,
    },
    /// Lake maintenance.
    Lake {
        #[command(subcommand)]
        command: LakeCommand,
    },
    /// Write a report (committee: a municipality, county: a county, school: a school unit,
    /// data: a county's indicators as open data) for a term, in the format the file extension
    /// names: .html, .csv, .xlsx, .json or .pdf.
    Report {
        #[command(flatten)]
        lake: LakeArg,
        /// committee, county, school or data.
        #[arg(value_parser = ["committee", "county", "school", "data"])]
        report: String,
        /// Municipality code (1880), county code (18) or school unit code (8 digits).
        code: String,
        /// HT2025 (Aug–Dec 2025) or VT2026 (Jan–Jun 2026).
        term: crate::report::Term,
        #[arg(long)]
        out: PathBuf,
        /// Read the lake as of a data version or a time, as `query --as-of`.
        #[arg(long)]
        as_of: Option<AsOf>,
    },
    /// Serve the report pages (and their CSV, XLSX and JSON alternates) and the upload API
    /// over HTTP.
    Serve {
        #[command(flatten)]
        lake: LakeArg,
        #[command(flatten)]
        config: ConfigArg,
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
    },
    /// Disclosure control: protect a county's release and audit what an attacker could learn.
    Disclosure {
        #[command(subcommand)]
        command: DisclosureCommand,
    },
    /// Upload tokens: create (printed once, stored hashed), list, revoke.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Generate the county fixtures into a fresh demo lake, show what was loaded and serve
    /// the reports.
    Demo {
        /// Where the demo's fixtures and lake go (recreated each run).
        #[arg(long, default_value = "data/demo")]
        dir: PathBuf,
        /// Address the report server listens on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArg {
    /// The server configuration file: settings and (hashed) tokens.
    #[arg(long, default_value = crate::auth::DEFAULT_CONFIG)]
    pub config: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print it (the only time it is shown).
    Create {
        #[command(flatten)]
        config: ConfigArg,
        /// Who the token is for, e.g. the school or school system; shown in the audit.
        #[arg(long)]
        name: String,
        /// upload:school:CODE, upload:municipality:CODE, read:school:CODE,
        /// read:municipality:CODE, read:county:CODE or admin (repeat for several).
        #[arg(long = "scope", required = true)]
        scopes: Vec<crate::auth::Scope>,
    },
    /// List tokens (names, ids, scopes; never the tokens themselves).
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Revoke a token by name or id; a running server refuses it at once.
    Revoke {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum DisclosureCommand {
    /// Build the release of an area's county for a term (pupils in total, by gender and at or
    /// above each shared level, for every school, municipality and the county), protect it, and compute for every hidden cell the interval it can be narrowed to from
    /// everything published. Exit 1 if any interval is narrower than the policy allows.
    Audit {
        #[command(flatten)]
        lake: LakeArg,
        /// A county (18) or municipality (1880) code; a municipality is audited within its
        /// county's release.
        area: String,
        /// HT2025 or VT2026.
        term: crate::report::Term,
        /// month, term or school_year (the window of the term's last month with data).
        #[arg(long, default_value = "term", value_parser = ["month", "term", "school_year"])]
        window: String,
        /// Also list every cell whose key starts with this (e.g. `län:18|` or
        /// `kommun:1880|T|minst`) with its value and status: why a figure is hidden.
        #[arg(long)]
        cells: Option<String>,
    },
    /// Attack what the publications show: read every report of every publication as readers
    /// get it, tie each number to the release cell it states, and solve every hidden cell's
    /// interval, as an anonymous reader of each publication, as one holding every earlier
    /// publication of the same period, and as a principal who knows their own school's
    /// figures. Lists what it found; exit 1 if any hidden cell can be narrowed more than the
    /// policy allows or a view shows what the rules hide.
    Attack {
        #[command(flatten)]
        lake: LakeArg,
        /// The scenarios to run (default: all).
        #[arg(long, value_delimiter = ',', value_parser = ["anonymous", "versions", "principal"])]
        scenario: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Check every policy file and show each one's id and content hash.
    Check {
        /// Policy directory (default: ./policies, else the built-in copies).
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum IndicatorsCommand {
    /// List every indicator view with its description.
    List,
}

#[derive(Subcommand, Debug)]
pub enum LakeCommand {
    /// Compact small files and write checkpoints in every table.
    Optimize {
        #[command(flatten)]
        lake: LakeArg,
    },
    /// Show each table's version, rows and files.
    Info {
        #[command(flatten)]
        lake: LakeArg,
    },
    /// Delete the data files no table version worth keeping reads: those removed more than
    /// `--retain-hours` ago, except what any publication was computed from (its permanent
    /// link, `as_of` and the protection of later corrections read those versions).
    Vacuum {
        #[command(flatten)]
        lake: LakeArg,
        /// Keep every file removed less than this many hours ago (older table versions stay
        /// readable for `query --as-of` that long).
        #[arg(long, default_value_t = 168)]
        retain_hours: u32,
        /// List what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the Parquet files of a table's current version, one path a line (for other
    /// readers, e.g. DuckDB with hive partitioning).
    Files {
        #[command(flatten)]
        lake: LakeArg,
        /// attendance, actions, register, outcomes or uploads.
        table: String,
    },
}

fn parse_period(s: &str) -> std::result::Result<crate::contract::Period, String> {
    crate::contract::Period::parse(s).ok_or_else(|| format!("'{s}' är ingen månad (ÅÅÅÅ-MM)"))
}

pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,narvaro::http=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve { .. }) {
        serve::purge_freed_memory_at_once();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fel: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta})")
            .expect("template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Fixtures {
            out,
            scale,
            seed,
            truth,
            ss12000,
            activities,
            municipality,
        } => {
            let opts = fixtures::Options {
                out,
                scale,
                seed,
                truth,
                ss12000: ss12000.map(|period| fixtures::Ss12000 { period, activities }),
                municipality,
            };
            let pb = progress(0, "kommuner");
            let s = fixtures::generate(&opts, &pb)?;
            pb.finish_and_clear();
            println!(
                "skrev {} filer till {}: {} kommuner, {} skolenheter, {} elever, {} närvarorader i {} filer",
                s.files.len(),
                opts.out.display(),
                s.municipalities,
                s.schools,
                s.pupils,
                s.attendance_rows,
                s.attendance_files
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest {
            lake,
            files,
            no_publish,
        } => {
            let lake = Lake::open(lake.here()?).await?;
            let refused = ingest_all(&lake, &files, false).await?;
            if !no_publish {
                publish_lake(&lake, false, false).await?;
            }
            Ok(if refused > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Publish {
            lake,
            json,
            rebuild,
        } => {
            let lake = open_existing(&lake.here()?).await?;
            publish_lake(&lake, json, rebuild).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Query {
            lake,
            as_of,
            format,
            sql,
        } => {
            let lake = Lake::open(lake.here()?).await?;
            let engine = Engine::open(&lake, as_of).await?;
            let batches = engine.sql(&sql).await?;
            // CSV ends its last row with a line break; nothing is added after it.
            let text = output::render(&batches, format)?;
            if text.ends_with('\n') {
                print!("{text}");
            } else {
                println!("{text}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Lake {
            command: LakeCommand::Optimize { lake },
        } => {
            let lake = Lake::open(lake.here()?).await?;
            for m in lake.optimize(true).await? {
                println!(
                    "{}: {} filer före, {} ihopslagna till {}, version {}",
                    m.table, m.files_before, m.files_removed, m.files_added, m.version
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Lake {
            command:
                LakeCommand::Vacuum {
                    lake,
                    retain_hours,
                    dry_run,
                },
        } => {
            let lake = Lake::open(lake.here()?).await?;
            let keep = crate::publish::versions_in_use(&lake).await?;
            let retain = chrono::Duration::hours(i64::from(retain_hours));
            for v in lake.vacuum(&keep, retain, dry_run).await? {
                println!(
                    "{}: {} filer {}, {} versioner som publiceringar läst behålls",
                    v.table,
                    v.files.len(),
                    if dry_run {
                        "skulle tas bort"
                    } else {
                        "borttagna"
                    },
                    v.kept_versions
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Lake {
            command: LakeCommand::Info { lake },
        } => {
            let lake = Lake::open(lake.here()?).await?;
            print_lake_info(&lake).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Lake {
            command: LakeCommand::Files { lake, table },
        } => {
            let lake = Lake::open(lake.here()?).await?;
            for f in lake.files(&table).await? {
                println!("{f}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy {
            command: PolicyCommand::Check { dir },
        } => Ok(policy_check(dir.as_deref())),
        Command::Indicators {
            command: IndicatorsCommand::List,
        } => {
            for i in crate::engine::indicators() {
                println!("{:<16} {}", i.name, i.description);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            lake,
            report,
            code,
            term,
            out,
            as_of,
        } => {
            let format = out
                .extension()
                .and_then(|e| e.to_str())
                .and_then(export::Output::from_extension)
                .ok_or_else(|| {
                    Error::usage(format!(
                        "{}: okänt format; filen ska sluta på .html, .csv, .xlsx, .json eller .pdf",
                        out.display()
                    ))
                })?;
            crate::report::spec(&report)?;
            let lake = open_existing(&lake.here()?).await?;
            let catalogue = crate::publish::Catalogue::load(&lake).await?;
            let publication = catalogue.at(as_of).map_err(|e| match e {
                Error::Unavailable(_) => Error::usage(format!(
                    "{}: inget är publicerat ännu; kör `narvaro publish --lake {}`",
                    lake.root(),
                    lake.root()
                )),
                e => e,
            })?;
            let key = (report, code, term.to_string(), false);
            let r = crate::publish::read_report(&lake, &catalogue, &key, publication).await?;
            let bytes = export::render(&r, format, None)?;
            // Written beside the target and renamed, so a failed run never leaves half a file.
            let tmp = out.with_extension(format!("{}.tmp", format.extension()));
            std::fs::write(&tmp, &bytes).map_err(|e| Error::io(&tmp, e))?;
            std::fs::rename(&tmp, &out).map_err(|e| Error::io(&out, e))?;
            println!(
                "skrev {} ({}, dataversion {}, uppgifter t.o.m. {})",
                out.display(),
                r.heading(),
                r.data_version,
                r.period
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { lake, config, addr } => {
            let lake = open_existing(&lake.location(&config.config)?).await?;
            serve(lake, &config.config, &addr).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { command } => token(command),
        Command::Demo { dir, addr } => demo(&dir, &addr).await,
        Command::Disclosure {
            command:
                DisclosureCommand::Audit {
                    lake,
                    area,
                    term,
                    window,
                    cells,
                },
        } => disclosure_audit(&lake.here()?, &area, term, &window, cells.as_deref()).await,
        Command::Disclosure {
            command: DisclosureCommand::Attack { lake, scenario },
        } => disclosure_attack(&lake.here()?, &scenario).await,
        Command::Aggregate {
            attendance,
            roster,
            period,
            policy,
            out,
            upload,
            token,
        } => {
            let min_group = match policy {
                Some(p) => policy::load_shared(&p),
                None => Policies::load(&policy::Source::resolve(None)).map(|p| p.shared),
            }
            .map_err(|e| Error::usage(e.to_string()))?
            .policy
            .min_group();
            match aggregate(&attendance, &roster, period, min_group, &out) {
                Ok(()) => {}
                Err(e) if e.is_refusal() => {
                    println!("{e}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e),
            }
            let Some(url) = upload else {
                return Ok(ExitCode::SUCCESS);
            };
            let token = token
                .or_else(|| std::env::var("NARVARO_TOKEN").ok())
                .ok_or_else(|| Error::usage("--upload kräver --token eller NARVARO_TOKEN"))?;
            send(&url, &token, &out).await
        }
    }
}

async fn print_lake_info(lake: &Lake) -> Result<()> {
    let counts = lake::row_counts(lake).await?;
    println!("sjö: {}", lake.root());
    for t in lake::TABLES {
        let (version, rows) = counts[t];
        let files = lake.table(t).await?.get_file_uris()?.count();
        println!("  {t:<11} version {version:>4}  {rows:>9} rader  {files:>5} filer");
    }
    Ok(())
}

/// A lake that must already exist (serving an empty, just-created lake would hide a typo).
async fn open_existing(at: &lake::Location) -> Result<Lake> {
    if !Lake::reader(at.clone()).exists("attendance").await? {
        return Err(Error::usage(format!(
            "{at}: här finns ingen sjö; läs in filer med `narvaro ingest --lake {at}` eller kör `narvaro demo`"
        )));
    }
    Lake::open(at).await
}
