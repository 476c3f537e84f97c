//! The bench lakes, shared by the benchmarks: built once under `target/bench-data/{county,
//! national}` (fixtures with seed 2025; register, the attendance of 2025-06, 2025-12 and
//! 2026-06, actions and outcomes) and reused afterwards.

use std::path::{Path, PathBuf};

use narvaro::fixtures::{self, Scale};
use narvaro::lake::Lake;

/// The lake for a scale, built once and reused.
pub fn prepare(rt: &tokio::runtime::Runtime, scale: Scale) -> PathBuf {
    let name = match scale {
        Scale::County => "county",
        Scale::National => "national",
    };
    let base = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-data")
        .join(name);
    let (fx, lake_dir, ready) = (base.join("fx"), base.join("lake"), base.join("ready"));
    if ready.exists() {
        return lake_dir;
    }
    eprintln!("building the {name} bench lake under {}", base.display());
    let _ = std::fs::remove_dir_all(&base);
    let opts = fixtures::Options {
        out: fx.clone(),
        scale,
        seed: 2025,
        truth: false,
        ss12000: None,
        municipality: None,
    };
    fixtures::generate(&opts, &indicatif::ProgressBar::hidden()).unwrap();
    let mut inputs = vec![fx.join("register.csv")];
    inputs.extend(
        ["2025-06", "2025-12", "2026-06"]
            .iter()
            .map(|p| fx.join("attendance").join(p)),
    );
    inputs.extend([fx.join("actions.csv"), fx.join("outcomes.csv")]);
    rt.block_on(async {
        let lake = Lake::open(&lake_dir).await.unwrap();
        let refused = narvaro::cli::ingest_all(&lake, &inputs, true)
            .await
            .unwrap();
        assert_eq!(refused, 0, "bench fixtures are valid");
        lake.optimize(true).await.unwrap();
    });
    std::fs::write(&ready, "").unwrap();
    lake_dir
}
