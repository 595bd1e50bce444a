//! Where `import`, `export` and `revert` send their requests: the account named by the
//! connection flags (or the profile they name, see [`crate::config`]), or (`--sandbox`) the
//! built-in emulator started in-process, so that a new user can run the real thing with no
//! account.
use std::path::PathBuf;
use std::time::Duration;

use crate::api::{ApiToken, ClientConfig, RateLimit, TokenHeader};
use crate::config;
use crate::normalise::Region;
use crate::sandbox::{SandboxConfig, SandboxHandle};

/// The server used when neither a flag, `DOTO_BASE_URL` nor the profile names one.
pub const DEFAULT_BASE_URL: &str = "https://app.usendoto.com";

/// The connection flags of the commands that talk to a server (`import`, `export`, `revert`).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    /// Base URL of the Doto server (default: the profile's, else https://app.usendoto.com).
    #[arg(
        long,
        env = "DOTO_BASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub base_url: Option<String>,
    /// Account id the contacts belong to.
    #[arg(
        long,
        env = "DOTO_ACCOUNT_ID",
        hide_env_values = true,
        value_name = "ID"
    )]
    pub account_id: Option<u64>,
    /// File holding the API token (otherwise the token is read from DOTO_API_TOKEN, then from
    /// the profile's `token_file`; it is never a plain flag so that it cannot land in shell
    /// history).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Spelling of the token header: some proxies drop header names with underscores
    /// (default: underscore).
    #[arg(long, value_enum, value_name = "SPELLING")]
    pub token_header: Option<TokenHeader>,
    /// Time one request may take before it counts as failed (`30s`, `2m`; default 60s).
    #[arg(long, value_name = "DURATION", value_parser = crate::cmd::sandbox::parse_duration)]
    pub timeout: Option<Duration>,
    /// Stop the run (exit 1, reports flushed, resumable) when every request for this long failed
    /// with connection errors, timeouts or 5xx (default 60s).
    #[arg(long, value_name = "DURATION", value_parser = crate::cmd::sandbox::parse_duration)]
    pub give_up_after: Option<Duration>,
    /// Take the base URL, account id, token file, rates and phone region from this profile of
    /// the config file; flags and environment variables override its values.
    #[arg(
        long,
        env = "DOTO_PROFILE",
        hide_env_values = true,
        value_name = "NAME"
    )]
    pub profile: Option<String>,
    /// The config file holding the profiles (default: $XDG_CONFIG_HOME/doto-bulk/config.toml,
    /// else ~/.config/doto-bulk/config.toml).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Write without asking: a write to a real account asks `Proceed? [y/N]` first when run on
    /// a terminal.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// The connection flags merged with the profile: what the command runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub base_url: String,
    pub account_id: Option<u64>,
    pub token_file: Option<PathBuf>,
    pub token_header: TokenHeader,
    pub timeout: Option<Duration>,
    pub give_up_after: Option<Duration>,
    /// The profile's `rate`, `search_rate` and `phone_region`, for the commands that take them
    /// (their own flags win).
    pub rate: Option<RateLimit>,
    pub search_rate: Option<RateLimit>,
    pub phone_region: Option<Region>,
    pub yes: bool,
}

impl ConnectArgs {
    /// Merge the flags (and their environment variables) over the chosen profile. With
    /// `sandbox` no profile is read: the sandbox is its own server.
    pub fn resolve(&self, sandbox: bool) -> anyhow::Result<Settings> {
        let profile = match sandbox {
            true => None,
            false => config::load(self.config.as_deref(), self.profile.as_deref())?,
        };
        let p = profile.unwrap_or_default();
        // DOTO_API_TOKEN is an environment variable: it overrides the profile's token file.
        let env_token = std::env::var_os(crate::api::TOKEN_ENV).is_some();
        let token_file = match (&self.token_file, env_token) {
            (Some(f), _) => Some(f.clone()),
            (None, true) => None,
            (None, false) => p.token_file.clone(),
        };
        Ok(Settings {
            base_url: self
                .base_url
                .clone()
                .or(p.base_url.clone())
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
            account_id: self.account_id.or(p.account_id),
            token_file,
            token_header: self.token_header.unwrap_or_default(),
            timeout: self.timeout,
            give_up_after: self.give_up_after,
            rate: p.rate,
            search_rate: p.search_rate,
            phone_region: p.phone_region,
            yes: self.yes,
        })
    }
}

/// The `--sandbox` flags, shared by the commands that talk to a server.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SandboxArgs {
    /// Start the built-in sandbox in-process and use it instead of a real account.
    #[arg(long)]
    pub sandbox: bool,
    /// With --sandbox: pre-seed it with N generated contacts.
    #[arg(long, value_name = "N", requires = "sandbox", default_value_t = 0)]
    pub sandbox_seed: usize,
    /// With --sandbox: load its contacts from this JSONL file first (as saved by --sandbox-save).
    #[arg(long, value_name = "PATH", requires = "sandbox")]
    pub sandbox_load: Option<PathBuf>,
    /// With --sandbox: save its contacts to this JSONL file when the command ends.
    #[arg(long, value_name = "PATH", requires = "sandbox")]
    pub sandbox_save: Option<PathBuf>,
}

/// A ready-to-use client configuration, and the sandbox behind it when there is one (stop it with
/// [`Connection::close`] so that `--sandbox-save` is written).
pub struct Connection {
    pub config: ClientConfig,
    pub sandbox: Option<SandboxHandle>,
}

impl Connection {
    /// Where the requests go, for messages and manifests (never the token).
    pub fn describe(&self) -> String {
        match &self.sandbox {
            Some(_) => format!("the built-in sandbox at {}", self.config.base_url),
            None => format!(
                "{} (account {})",
                self.config.base_url, self.config.account_id
            ),
        }
    }

    /// Stop the sandbox, if any (saving its state when asked to).
    pub async fn close(self) -> anyhow::Result<()> {
        if let Some(handle) = self.sandbox {
            handle.shutdown().await?;
        }
        Ok(())
    }
}

/// Warn (once per process) when the token file can be read by its group or by others: anyone on
/// the machine could act on the account with it.
fn warn_if_readable_by_others(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        static WARNED: AtomicBool = AtomicBool::new(false);
        let Ok(meta) = std::fs::metadata(path) else {
            return; // reading it will say what is wrong
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o044 != 0 && !WARNED.swap(true, Ordering::Relaxed) {
            eprintln!(
                "warning: {}: the token file is readable by {} (mode {mode:04o}); anyone who can \
                 read it can act on the account: `chmod 600 {}`",
                path.display(),
                if mode & 0o004 != 0 {
                    "everyone"
                } else {
                    "its group"
                },
                path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// `--timeout` and `--give-up-after`.
fn timing(config: &mut ClientConfig, s: &Settings) {
    if let Some(t) = s.timeout {
        config.request_timeout = t;
    }
    if let Some(g) = s.give_up_after {
        config.give_up_after = g;
    }
}

/// Resolve the connection: the in-process sandbox with `--sandbox`, otherwise the settings
/// (base URL, account id, token from `--token-file`, `DOTO_API_TOKEN` or the profile).
pub async fn connect(s: &Settings, args: &SandboxArgs) -> anyhow::Result<Connection> {
    if !args.sandbox {
        let account_id = s.account_id.ok_or_else(|| {
            anyhow::anyhow!(
                "no account id: pass --account-id, set DOTO_ACCOUNT_ID or choose a --profile \
                 (or use --sandbox)"
            )
        })?;
        if let Some(path) = &s.token_file {
            warn_if_readable_by_others(path);
        }
        let token = ApiToken::from_env_or_file(s.token_file.as_deref())?;
        let mut config = ClientConfig::new(s.base_url.clone(), account_id, token);
        config.token_header = s.token_header;
        timing(&mut config, s);
        return Ok(Connection {
            config,
            sandbox: None,
        });
    }
    let config = SandboxConfig {
        seed_contacts: args.sandbox_seed,
        seed_file: args.sandbox_load.clone(),
        save_file: args.sandbox_save.clone(),
        ..SandboxConfig::default()
    };
    let handle = crate::sandbox::spawn(config).await?;
    let mut client = ClientConfig::new(
        handle.base_url.clone(),
        handle.account_id,
        ApiToken::new(handle.admin_token.clone())?,
    );
    client.token_header = s.token_header;
    timing(&mut client, s);
    Ok(Connection {
        config: client,
        sandbox: Some(handle),
    })
}
