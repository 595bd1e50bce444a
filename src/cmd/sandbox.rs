//! `doto-bulk sandbox`: run the local emulator of the Doto contacts API until Ctrl-C. Flags become
//! one [`SandboxConfig`]; the server itself is [`crate::sandbox::spawn`].
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::GlobalArgs;
use crate::exit;
use crate::sandbox::{self, FaultKind, Faults, Flavour, RateLimits, SandboxConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port to listen on (127.0.0.1 only); 0 picks a free port.
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Response shapes: `chatwoot` (200 + wrapped create, 401 for permissions) or `doto` (201 + bare
    /// contact, bare show/update, 403, `meta.total_pages`).
    #[arg(long, value_enum, default_value_t = FlavourArg::Chatwoot)]
    pub flavour: FlavourArg,
    /// The account the sandbox serves (the next id is another account, for isolation tests).
    #[arg(long, value_name = "ID", default_value_t = 1)]
    pub account_id: u64,
    /// Token of the administrator (fake; printed at start).
    #[arg(long, default_value = "sandbox-admin-token")]
    pub admin_token: String,
    /// Token of an agent, who may do everything but delete.
    #[arg(long, default_value = "sandbox-agent-token")]
    pub agent_token: String,
    /// Requests admitted per window, all routes together (the real default is 3000 per minute).
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Searches admitted per window per account (the real default is 100 per minute).
    #[arg(long, value_name = "N")]
    pub search_limit: Option<u32>,
    /// Length of a rate-limit window, e.g. `60s`, `1s`, `500ms`, `1m`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub window: Duration,
    /// Send `Retry-After` on 429s (the real server does not).
    #[arg(long)]
    pub retry_after: bool,
    /// Latency added to every API request, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,
    /// Latency added on top for every other API request in flight when one arrives, in
    /// milliseconds (a server that slows down under load).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_per_in_flight_ms: u64,
    /// Probability (0..1) that a write (POST, PATCH, PUT, DELETE) gets a fault.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fault_rate: f64,
    /// Fault kinds to draw from: before, after, drop, burst429 (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "before,after,drop,burst429", value_parser = parse_fault)]
    pub fault_kinds: Vec<FaultKind>,
    /// Seed of the fault RNG (same seed, same writes: same faults).
    #[arg(long, default_value_t = 0)]
    pub fault_seed: u64,
    /// Length of a 429 burst.
    #[arg(long, default_value_t = 5)]
    pub burst_len: u32,
    /// Start with N generated contacts.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed_contacts: usize,
    /// Seed of the contact generator and of the unstable order.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Load contacts from a JSONL file (one contact a line, the API's shape).
    #[arg(long, value_name = "PATH")]
    pub seed_file: Option<PathBuf>,
    /// Save the state (JSONL, loadable with --seed-file) to this file on shutdown.
    #[arg(long, value_name = "PATH")]
    pub save_file: Option<PathBuf>,
    /// Return unsorted listings in id order instead of an order that changes on every request.
    #[arg(long)]
    pub stable_order: bool,
    /// Old search shape: `meta.count` is the total and there is no `has_more`.
    #[arg(long)]
    pub search_total_count: bool,
    /// A blank search `q` is a 422 instead of 200 with `count: null`.
    #[arg(long)]
    pub blank_search_422: bool,
    /// Very old servers: PATCH replaces `additional_attributes` instead of merging.
    #[arg(long)]
    pub replace_additional_attributes: bool,
    /// Add server-side keys (`avatar_url_hash`, `last_avatar_sync_at`) to `additional_attributes`
    /// after writes, as the real avatar sync does.
    #[arg(long)]
    pub server_attributes: bool,
    /// An older server: serve neither `destroy_custom_attributes` nor the deletion of a note
    /// (404 on those routes), so `revert` can only partly restore what an import added.
    #[arg(long)]
    pub no_removal_routes: bool,
    /// The inboxes the agent token is a member of: its conversations listing shows only those
    /// (default: every inbox).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub agent_inboxes: Option<Vec<u64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlavourArg {
    Chatwoot,
    Doto,
}

/// `60s`, `1s`, `500ms`, `1m`, `1h` (a bare number is seconds); zero is refused.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 60s, 1s, 500ms or 1m"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("{s:?} is not a duration like 60s, 1s, 500ms or 1m")),
    };
    if d.is_zero() {
        return Err("a duration must be longer than zero".into());
    }
    Ok(d)
}

fn parse_fault(s: &str) -> Result<FaultKind, String> {
    FaultKind::parse(s)
        .ok_or_else(|| format!("{s:?} is not a fault kind (before, after, drop, burst429)"))
}

impl Args {
    /// The flags as a config.
    pub fn config(&self) -> anyhow::Result<SandboxConfig> {
        if !(0.0..=1.0).contains(&self.fault_rate) {
            bail!(
                "--fault-rate {} is not a probability between 0 and 1",
                self.fault_rate
            );
        }
        let account_id = self.account_id;
        Ok(SandboxConfig {
            port: self.port,
            flavour: match self.flavour {
                FlavourArg::Chatwoot => Flavour::Chatwoot,
                FlavourArg::Doto => Flavour::Doto,
            },
            account_id,
            other_account_id: account_id + 1,
            admin_token: self.admin_token.clone(),
            agent_token: self.agent_token.clone(),
            agent_inbox_ids: self.agent_inboxes.clone(),
            limits: RateLimits {
                global: self.rate_limit,
                search: self.search_limit,
                window: self.window,
                retry_after: self.retry_after,
            },
            faults: Faults {
                rate: self.fault_rate,
                kinds: self.fault_kinds.clone(),
                seed: self.fault_seed,
                burst_len: self.burst_len.max(1),
            },
            latency: Duration::from_millis(self.latency_ms),
            latency_per_in_flight: Duration::from_millis(self.latency_per_in_flight_ms),
            race_window: Duration::from_millis(1),
            unstable_order: !self.stable_order,
            search_total_count: self.search_total_count,
            blank_search_422: self.blank_search_422,
            replace_additional_attributes: self.replace_additional_attributes,
            server_attributes: self.server_attributes,
            no_removal_routes: self.no_removal_routes,
            seed_contacts: self.seed_contacts,
            seed: self.seed,
            seed_file: self.seed_file.clone(),
            save_file: self.save_file.clone(),
        })
    }
}

pub async fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<u8> {
    let config = args.config()?;
    let flavour = config.flavour;
    let handle = sandbox::spawn(config).await?;
    let url = &handle.base_url;
    let acc = handle.account_id;
    // The sandbox's tokens are fake and local: printing them is the point. With --json, one
    // document, once it listens (a server has no end to print it at).
    if global.json {
        crate::cmd::emit::json(&serde_json::json!({
            "base_url": url,
            "account_id": acc,
            "admin_token": handle.admin_token,
            "agent_token": handle.agent_token,
            "flavour": format!("{flavour:?}").to_lowercase(),
        }));
        return serve_until_ctrl_c(handle).await;
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "doto-bulk sandbox ({flavour:?} flavour) listening on {url}"
    )?;
    writeln!(out, "  account id:   {acc}")?;
    writeln!(out, "  admin token:  {}", handle.admin_token)?;
    writeln!(
        out,
        "  agent token:  {} (may not delete)",
        handle.agent_token
    )?;
    writeln!(out, "  contacts:     {url}/api/v1/accounts/{acc}/contacts")?;
    writeln!(
        out,
        "  side:         GET {url}/_sandbox/stats, GET {url}/_sandbox/state, POST {url}/_sandbox/reset"
    )?;
    writeln!(
        out,
        "  try:          curl -H 'api_access_token: {}' '{url}/api/v1/accounts/{acc}/contacts?sort=name'",
        handle.admin_token
    )?;
    writeln!(out, "Ctrl-C to stop.")?;
    out.flush()?;
    drop(out);
    serve_until_ctrl_c(handle).await
}

async fn serve_until_ctrl_c(handle: sandbox::SandboxHandle) -> anyhow::Result<u8> {
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    eprintln!("stopping the sandbox");
    handle.shutdown().await?;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
