//! `doto-bulk man [DIR]`: the man pages (clap_mangen, from the same command tree as `--help`):
//! `doto-bulk.1` and one page per command (`doto-bulk-import.1`, `doto-bulk-mapping-init.1`, ...)
//! written to DIR, or the main page on stdout. A copy is checked in under `man/`; a test fails
//! when it is out of date.
use std::path::PathBuf;

use anyhow::Context;

use crate::exit;

/// Write the man pages to DIR, or print the main page on stdout.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Directory to write every page to (created if missing); without it, the main page goes to
    /// stdout.
    pub dir: Option<PathBuf>,
}

/// Every page, as `(file name, roff text)`, the main page first.
pub fn pages() -> Vec<(String, Vec<u8>)> {
    let mut root = crate::cli::command().disable_help_subcommand(true);
    root.build();
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(cmd) = todo.pop() {
        let man = clap_mangen::Man::new(cmd.clone());
        let mut text = Vec::new();
        man.render(&mut text)
            .expect("rendering to memory cannot fail");
        out.push((man.get_filename(), text));
        todo.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    }
    out
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    use std::io::Write;
    let pages = pages();
    let Some(dir) = args.dir else {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&pages[0].1)?;
        stdout.flush()?;
        return Ok(exit::OK);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in &pages {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!("wrote {} man pages to {}", pages.len(), dir.display());
    Ok(exit::OK)
}
