//! The query engine: owns the DataFusion `SessionContext` users' SQL runs in.
//!
//! It registers every lake table (at the latest version, or as of one data version), and the
//! reference table `municipalities` (code, name, county). Nothing here knows about HTTP or the
//! command line.
//!
//! `as_of` names a version of the `attendance` table, the data version every figure carries;
//! the other tables are read as they were until the next data version was committed, so a
//! query at an old version sees one consistent state of the whole lake.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::lake::{Lake, TABLES};
use crate::{Result, reference};

/// The data version a session reads: the `attendance` table's Delta version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub data_version: u64,
}

/// A session over the lake, with the version it reads.
pub struct Engine {
    pub ctx: SessionContext,
    pub snapshot: Snapshot,
}

impl Engine {
    /// A session over the lake at its latest version, or at data version `as_of`.
    pub async fn open(lake: &Lake, as_of: Option<u64>) -> Result<Engine> {
        let ctx = SessionContext::new();
        let attendance = match as_of {
            Some(v) => lake.table_at("attendance", v).await?,
            None => lake.table("attendance").await?,
        };
        let data_version = attendance.version().unwrap_or_default();
        // The lake at data version v is everything committed before data version v + 1 (so
        // it includes v's own audit row, written just after v). At the latest version, that
        // is simply every table's latest state.
        let latest = lake
            .table("attendance")
            .await?
            .version()
            .unwrap_or_default();
        let at_time = match as_of {
            Some(v) if v < latest => Some(
                lake.commit_time("attendance", v + 1).await? - chrono::Duration::milliseconds(1),
            ),
            _ => None,
        };
        for name in TABLES {
            let table = if name == "attendance" {
                attendance.clone()
            } else if let Some(t) = at_time {
                lake.table_as_of_time(name, t).await?
            } else {
                lake.table(name).await?
            };
            table.update_datafusion_session(&ctx.state())?;
            ctx.register_table(name, table.table_provider().await?)?;
        }
        ctx.register_table("municipalities", Arc::new(municipalities_table()?))?;
        Ok(Engine {
            ctx,
            snapshot: Snapshot { data_version },
        })
    }

    /// Runs one SQL statement and collects its result.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.ctx.sql(sql).await?.collect().await?)
    }
}

fn municipalities_table() -> Result<MemTable> {
    let all = reference::municipalities();
    let col = |f: fn(&reference::Municipality) -> &str| {
        Arc::new(StringArray::from_iter_values(all.iter().map(f))) as _
    };
    let schema = Arc::new(Schema::new(
        [
            "municipality_code",
            "municipality_name",
            "county_code",
            "county_name",
        ]
        .map(|n| Field::new(n, DataType::Utf8, false))
        .to_vec(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            col(|m| &m.code),
            col(|m| &m.name),
            col(|m| &m.county_code),
            col(|m| &m.county_name),
        ],
    )?;
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}
