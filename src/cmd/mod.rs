//! One file per command: orchestration only; the work is done by the library modules. What the
//! commands share lives here: Ctrl-C ([`CtrlC`]), a run against an account ([`connected`]), the
//! end of a run over rows ([`finish`]) and clap parsers for the library's enums ([`enum_parser`]).
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::api::ClientConfig;
use crate::cli::GlobalArgs;
use crate::exit::{self, Stop};

pub mod completions;
pub mod connect;
pub mod emit;
pub mod examples;
pub mod export;
pub mod import;
pub mod man;
pub mod mapping;
pub mod revert;
pub mod sandbox;
pub mod validate;

/// Ctrl-C for as long as a command runs: the first one sets a flag that the run polls between
/// rows (no new row starts, the rows in flight finish, the reports are flushed and the run ends
/// with [`Stop::Interrupted`], exit 130). Dropping it stops listening.
pub struct CtrlC {
    flag: Arc<AtomicBool>,
    watcher: tokio::task::JoinHandle<()>,
}

impl CtrlC {
    /// Start listening (inside the tokio runtime).
    pub fn watch() -> CtrlC {
        let flag = Arc::new(AtomicBool::new(false));
        let set = Arc::clone(&flag);
        let watcher = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                set.store(true, Ordering::Relaxed);
            }
        });
        CtrlC { flag, watcher }
    }

    /// The flag the run polls.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.flag)
    }
}

impl Drop for CtrlC {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// A command against an account: connect (or start the sandbox), watch Ctrl-C, say where
/// (`doing`, e.g. `importing into`), run `work` with the client configuration and the Ctrl-C flag,
/// then close the connection (saving the sandbox when asked) whatever `work` returned.
pub async fn connected<T, F, Fut>(
    settings: &connect::Settings,
    sandbox: &connect::SandboxArgs,
    global: &GlobalArgs,
    doing: &str,
    work: F,
) -> anyhow::Result<T>
where
    F: FnOnce(ClientConfig, Arc<AtomicBool>) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let conn = connect::connect(settings, sandbox).await?;
    let ctrl_c = CtrlC::watch();
    if !global.quiet {
        eprintln!("{doing} {}", conn.describe());
    }
    let outcome = work(conn.config.clone(), ctrl_c.flag()).await;
    drop(ctrl_c);
    conn.close().await?;
    outcome
}

/// Resolves once `flag` is set (polled: the flag is set from the Ctrl-C task).
pub async fn interrupted(flag: &AtomicBool) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The end of a command over rows: the exit code for `stop` and `failures`, or, when the run
/// stopped for a reason the user must read (`--max-errors`, a fatal error, a read error), that
/// reason as the error, naming `input` and where the reports so far are.
pub fn finish(
    stop: Option<&Stop>,
    failures: u64,
    input: &str,
    run_dir: &Path,
) -> anyhow::Result<u8> {
    match stop.and_then(|s| s.message(failures)) {
        Some(msg) => anyhow::bail!("{input}: {msg}; reports so far in {}", run_dir.display()),
        None => Ok(exit::code(stop, failures)),
    }
}

/// [`finish`], then stdout's part of the end ([`emit::run_end`]): the summary as JSON (with the
/// error, if the run ends with one) or the run directory's path.
pub fn end_run(
    global: &GlobalArgs,
    stop: Option<&Stop>,
    failures: u64,
    input: &str,
    run_dir: &Path,
) -> anyhow::Result<u8> {
    let end = finish(stop, failures, input, run_dir);
    let (code, error) = match &end {
        Ok(c) => (*c, None),
        Err(e) => (exit::FATAL, Some(format!("{e:#}"))),
    };
    emit::run_end(global, run_dir, code, error.as_deref())?;
    end
}

/// `--concurrency`: a count of at least 1 (0 would never start a row).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1 (0 would never start anything)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

/// A clap value parser for an enum of the library (which derives nothing of clap): `values` are
/// its variants with their command-line names and help, shown by `--help` like a `ValueEnum`'s.
pub fn enum_parser<T>(
    values: Vec<(T, &'static str, &'static str)>,
) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: Clone + Send + Sync + 'static,
{
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    let names = values
        .iter()
        .map(|(_, name, help)| PossibleValue::new(*name).help(*help));
    PossibleValuesParser::new(names).try_map(move |s: String| {
        values
            .iter()
            .find(|(_, name, _)| *name == s)
            .map(|(v, _, _)| v.clone())
            .ok_or_else(|| format!("{s:?} is not one of the values"))
    })
}
