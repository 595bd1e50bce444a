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
        let text = render(&man, &cmd).expect("rendering to memory cannot fail");
        out.push((man.get_filename(), text));
        todo.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    }
    out
}

/// clap_mangen's sections, but the examples as an EXAMPLES section kept as written (clap_mangen
/// would fill them as a paragraph under EXTRA).
fn render(man: &clap_mangen::Man, cmd: &clap::Command) -> std::io::Result<Vec<u8>> {
    let mut w = Vec::new();
    man.render_title(&mut w)?;
    man.render_name_section(&mut w)?;
    man.render_synopsis_section(&mut w)?;
    man.render_description_section(&mut w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut w)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut w)?;
    }
    if let Some(help) = cmd.get_after_help() {
        w.extend_from_slice(examples_section(&help.to_string()).as_bytes());
    }
    man.render_version_section(&mut w)?;
    // Each section starts with roff's apostrophe preamble: keep the first.
    const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    let text = String::from_utf8_lossy(&w).replace(PREAMBLE, "");
    Ok(format!("{PREAMBLE}{text}").into_bytes())
}

/// `Examples:` and its lines as a roff section printed as is (no filling, no hyphenation).
fn examples_section(help: &str) -> String {
    let body = help.strip_prefix("Examples:\n").unwrap_or(help);
    let mut roff = String::from(".SH EXAMPLES\n.nf\n");
    for line in body.lines() {
        let line = line.replace('\\', "\\e").replace('-', "\\-");
        if line.starts_with(['.', '\'']) {
            roff.push_str("\\&");
        }
        roff.push_str(if line.is_empty() { ".sp" } else { &line });
        roff.push('\n');
    }
    roff.push_str(".fi\n");
    roff
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
