//! Närvarolagret (`narvaro`): a statistics and reporting warehouse for school attendance.
//!
//! Schools upload anonymised monthly aggregates ([`contract`]), which are validated and
//! committed to Delta Lake tables ([`lake`], via [`ingest`]); the [`engine`] registers those
//! tables in DataFusion for SQL. [`fixtures`] generates deterministic synthetic data from
//! individually simulated pupils, aggregated with the shared arithmetic in [`aggregate`].
//! See ARCHITECTURE.md for the map.

pub mod aggregate;
pub mod attack;
pub mod auth;
pub mod cli;
pub mod contract;
pub mod disclosure;
pub mod engine;
mod error;
pub mod fixtures;
pub mod http;
pub mod ingest;
pub mod kolada;
pub mod lake;
pub mod open;
pub mod output;
pub mod policy;
pub mod publish;
pub mod pxweb;
pub mod reference;
pub mod report;
pub mod ss12000;

pub use error::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;
