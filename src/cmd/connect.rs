//! Where `import`, `export` and `revert` send their requests: the account named by the global
//! connection flags, or (`--sandbox`) the built-in emulator started in-process, so that a new user
//! can run the real thing with no account.
use std::path::PathBuf;

use crate::api::{ApiToken, ClientConfig};
use crate::cli::GlobalArgs;
use crate::sandbox::{SandboxConfig, SandboxHandle};

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
fn timing(config: &mut ClientConfig, global: &GlobalArgs) {
    if let Some(t) = global.timeout {
        config.request_timeout = t;
    }
    if let Some(g) = global.give_up_after {
        config.give_up_after = g;
    }
}

/// Resolve the connection: the in-process sandbox with `--sandbox`, otherwise the global flags
/// (base URL, account id, token from `--token-file` or `DOTO_API_TOKEN`).
pub async fn connect(global: &GlobalArgs, args: &SandboxArgs) -> anyhow::Result<Connection> {
    if !args.sandbox {
        let account_id = global.account_id.ok_or_else(|| {
            anyhow::anyhow!(
                "no account id: pass --account-id or set DOTO_ACCOUNT_ID (or use --sandbox)"
            )
        })?;
        if let Some(path) = &global.token_file {
            warn_if_readable_by_others(path);
        }
        let token = ApiToken::from_env_or_file(global.token_file.as_deref())?;
        let mut config = ClientConfig::new(global.base_url.clone(), account_id, token);
        config.token_header = global.token_header;
        timing(&mut config, global);
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
    client.token_header = global.token_header;
    timing(&mut client, global);
    Ok(Connection {
        config: client,
        sandbox: Some(handle),
    })
}
