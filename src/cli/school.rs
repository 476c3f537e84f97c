//! `narvaro aggregate`: the school side, from an SS 12000 export to the contract's upload,
//! optionally posted to a server.

use super::*;

/// `narvaro aggregate`: read, aggregate, write, print the summary.
pub(super) fn aggregate(
    attendance: &[PathBuf],
    roster: &Path,
    period: crate::contract::Period,
    min_group: i64,
    out: &Path,
) -> Result<()> {
    let mut files = Vec::new();
    for p in attendance {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "json" || x == "jsonl"))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(Error::usage(format!(
                    "{}: inga .json-filer i katalogen",
                    p.display()
                )));
            }
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io(p, e));
    let bytes: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|p| Ok((p.display().to_string(), read(p)?)))
        .collect::<Result<_>>()?;
    let roster_name = roster.display().to_string();
    let roster_bytes = read(roster)?;
    let inputs: Vec<crate::aggregate::Input> = bytes
        .iter()
        .map(|(name, b)| crate::aggregate::Input { name, bytes: b })
        .collect();
    let (rows, s) = crate::aggregate::from_ss12000(
        &inputs,
        crate::aggregate::Input {
            name: &roster_name,
            bytes: &roster_bytes,
        },
        period,
        min_group,
    )?;
    crate::aggregate::write_rows(out, &rows)?;
    println!(
        "skrev {}: {} rader för {} skolenheter, {period} (minsta grupp {min_group})",
        out.display(),
        s.rows,
        s.schools
    );
    println!(
        "läste {} närvaroposter i {} filer och {} elever i elevlistan",
        s.records,
        files.len(),
        s.roster_pupils
    );
    for w in &s.windows {
        let name = match w.window {
            "month" => "månad",
            "term" => "termin",
            _ => "läsår",
        };
        println!("  {name:<7} {:>9} poster {:>7} elever", w.records, w.pupils);
    }
    for w in &s.warnings {
        println!("varning: {w}");
    }
    for r in &s.refused {
        println!("utelämnad: {r}");
    }
    Ok(())
}

/// Posts a written aggregate to `POST /api/v1/uploads` and prints the server's answer. Exit 0
/// when it was stored (201), 1 when it was refused (4xx), 2 when the server failed or could
/// not be reached.
pub(super) async fn send(url: &str, token: &str, file: &Path) -> Result<ExitCode> {
    let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
    let base = url.trim_end_matches('/');
    let endpoint = if base.ends_with("/api/v1/uploads") {
        base.to_string()
    } else {
        format!("{base}/api/v1/uploads")
    };
    let mut endpoint = url::Url::parse(&endpoint)
        .map_err(|e| Error::usage(format!("--upload {url}: ogiltig adress ({e})")))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    endpoint.query_pairs_mut().append_pair("filename", &name);
    let csv = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let res = http_client::Client::new()
        .post(endpoint.clone())
        .bearer_auth(token)
        .header(
            http_client::header::CONTENT_TYPE,
            if csv {
                "text/csv; charset=utf-8"
            } else {
                "application/vnd.apache.parquet"
            },
        )
        .body(bytes)
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("{endpoint}: kunde inte nås ({e})")))?;
    let status = res.status();
    let body = res
        .text()
        .await
        .map_err(|e| Error::Unavailable(format!("{endpoint}: svaret bröts ({e})")))?;
    let pretty = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(body);
    println!("uppladdning till {endpoint}: {status}");
    println!("{pretty}");
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else if status.is_client_error() {
        ExitCode::from(1)
    } else {
        ExitCode::from(2)
    })
}
