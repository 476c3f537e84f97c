//! `narvaro policy check` and `narvaro token`: the operator's checks and tokens.

use super::*;

pub(super) fn policy_check(dir: Option<&Path>) -> ExitCode {
    match Policies::load(&policy::Source::resolve(dir)) {
        Ok(p) => {
            let s = &p.shared;
            println!(
                "ok  {}: {} ({}), hash {}",
                s.file, s.policy.id, s.policy.name, s.hash
            );
            for l in &p.local {
                let numeric = l.policy.steps.iter().filter(|s| s.band().is_some()).count();
                println!(
                    "ok  {}: {} ({} steg, {} med numerisk gräns), hash {}",
                    l.file,
                    l.policy.id,
                    l.policy.steps.len(),
                    numeric,
                    l.hash
                );
            }
            println!("ok  {} mål", p.targets.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{e}");
            ExitCode::from(1)
        }
    }
}

pub(super) fn token(command: TokenCommand) -> Result<ExitCode> {
    use crate::auth::Config;
    match command {
        TokenCommand::Create {
            config,
            name,
            scopes,
        } => {
            let path = &config.config;
            let mut c = Config::load(path)?;
            let token = c.create_token(&name, &scopes, Utc::now())?;
            c.save(path)?;
            eprintln!(
                "Token '{}' skapat i {}. Spara det nu: det visas bara den här gången.",
                name.trim(),
                path.display()
            );
            println!("{token}");
        }
        TokenCommand::List { config } => {
            let c = Config::load(&config.config)?;
            if c.tokens.is_empty() {
                println!("inga token i {}", config.config.display());
            }
            for t in &c.tokens {
                let status = match t.revoked_at {
                    Some(at) => format!("återkallat {}", at.format("%Y-%m-%d %H:%M")),
                    None => "aktivt".into(),
                };
                println!(
                    "{:<24} {}  skapat {}  {:<22} {}",
                    t.name,
                    t.id,
                    t.created_at.format("%Y-%m-%d %H:%M"),
                    status,
                    t.scopes.join(" ")
                );
            }
        }
        TokenCommand::Revoke { config, name } => {
            let path = &config.config;
            let mut c = Config::load(path)?;
            let t = c.revoke(&name, Utc::now())?.name.clone();
            c.save(path)?;
            println!("token '{t}' återkallat i {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
