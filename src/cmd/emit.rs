//! stdout is for machines: nothing by default, the run directory (or output file) alone with
//! `-q`, one JSON document with `--json`. Every command ends through here so that the JSON
//! document is printed exactly once (an error after it is not printed again).
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use crate::cli::GlobalArgs;
use crate::exit::Stop;

static PRINTED: AtomicBool = AtomicBool::new(false);

fn print(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (`| head`) is not the run's failure.
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Print `doc` (an object) once; later calls print nothing.
pub fn json(doc: &Value) {
    if !PRINTED.swap(true, Ordering::SeqCst) {
        print(&doc.to_string());
    }
}

/// With `--json`: `{"error": message, "exit_code": code}` unless a document was printed already.
pub fn error(message: &str, code: u8) {
    json(&serde_json::json!({ "error": message, "exit_code": code }));
}

/// The end of a command that wrote a run directory holding `summary.json`: with `--json` that
/// summary plus `run_dir`, `exit_code` and `error` (when the run ended with one); with `-q` the
/// directory's path.
pub fn run_end(global: &GlobalArgs, run_dir: &Path, code: u8, error: Option<&str>) -> Result<()> {
    if global.json {
        let path = run_dir.join("summary.json");
        let text =
            std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        let summary: Map<String, Value> = serde_json::from_slice(&text)
            .with_context(|| format!("{}: not a JSON object", path.display()))?;
        let mut doc = with_fields(summary, run_dir, code);
        if let (Some(e), Value::Object(m)) = (error, &mut doc) {
            m.insert("error".into(), Value::from(e));
        }
        json(&doc);
    } else if global.quiet {
        print(&run_dir.display().to_string());
    }
    Ok(())
}

/// `doc` with `run_dir` and `exit_code` set.
fn with_fields(mut doc: Map<String, Value>, run_dir: &Path, code: u8) -> Value {
    doc.insert("run_dir".into(), Value::from(run_dir.display().to_string()));
    doc.insert("exit_code".into(), Value::from(code));
    Value::Object(doc)
}

/// The end of a command that wrote a file rather than a run directory (`export`, `mapping init
/// -o`): with `--json` `doc` plus `exit_code`; with `-q` the file's path; nothing when the file
/// is stdout itself (`-`).
pub fn file_end(global: &GlobalArgs, file: &Path, doc: Value, code: u8) {
    if file == Path::new("-") {
        return; // the file is stdout (`export -o -`): nothing may follow it there
    }
    if global.json {
        let mut doc = match doc {
            Value::Object(m) => m,
            other => Map::from_iter([("result".to_owned(), other)]),
        };
        doc.insert("exit_code".into(), Value::from(code));
        json(&Value::Object(doc));
    } else if global.quiet {
        print(&file.display().to_string());
    }
}

/// The user answered no: say so (and, with `--json`, `{"declined": true, ...}`); the exit code.
pub fn declined(global: &GlobalArgs) -> u8 {
    eprintln!("not confirmed: nothing was written");
    if global.json {
        let code = crate::exit::DECLINED;
        json(&serde_json::json!({ "declined": true, "exit_code": code }));
    }
    crate::exit::DECLINED
}

/// Options dropped from the command line when it is turned into its `--resume` form (each
/// takes one value).
const NOT_RESUMED: [&str; 4] = ["--out", "--resume", "--sandbox-seed", "--sandbox-load"];

/// After a run stopped by Ctrl-C or an unreachable server: the exact command that continues it,
/// on stderr. `save` is `--sandbox-save`'s file: an in-process sandbox can only be resumed
/// from it.
pub fn resume_hint(stop: Option<&Stop>, run_dir: &Path, save: Option<&Path>) {
    if !matches!(stop, Some(Stop::Interrupted | Stop::Unreachable(_))) {
        return;
    }
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match resume_command(&argv, run_dir, save) {
        Some(cmd) => eprintln!("to continue this run: {cmd}"),
        None => eprintln!(
            "the sandbox ran inside this process and its contacts were not saved \
             (--sandbox-save), so this run cannot be continued"
        ),
    }
}

/// `argv` with `--resume RUN_DIR` in place of `--out` and an earlier `--resume`; with
/// `--sandbox`, loading `save` (none without it) and `--force` (its address changes).
fn resume_command(argv: &[String], run_dir: &Path, save: Option<&Path>) -> Option<String> {
    let mut out: Vec<String> = Vec::with_capacity(argv.len() + 4);
    let mut args = argv.iter();
    while let Some(a) = args.next() {
        let name = a.split('=').next().unwrap_or(a);
        if NOT_RESUMED.contains(&name) {
            if !a.contains('=') {
                args.next();
            }
            continue;
        }
        out.push(a.clone());
    }
    if out.iter().any(|a| a == "--sandbox") {
        out.push("--sandbox-load".into());
        out.push(save?.display().to_string());
        if !out.iter().any(|a| a == "--force") {
            out.push("--force".into());
        }
    }
    out.push("--resume".into());
    out.push(run_dir.display().to_string());
    Some(
        out.iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// `s` as a POSIX shell word.
fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn the_resume_command_replaces_out_and_keeps_every_other_flag() {
        let a = argv("doto-bulk import my file.csv -m m.yaml --out runs/a --rate 5/s --profile p");
        let dir = Path::new("runs/a");
        assert_eq!(
            resume_command(&a, dir, None).unwrap(),
            "doto-bulk import my file.csv -m m.yaml --rate 5/s --profile p --resume runs/a"
        );
        let a = argv("doto-bulk revert imp --resume=r1 -q");
        assert_eq!(
            resume_command(&a, Path::new("r 1"), None).unwrap(),
            "doto-bulk revert imp -q --resume 'r 1'"
        );
    }

    #[test]
    fn a_sandbox_run_resumes_from_its_saved_contacts_or_not_at_all() {
        let a = argv(
            "doto-bulk import f.csv -m m.yaml --sandbox --sandbox-seed 5 --sandbox-save s.jsonl",
        );
        assert_eq!(resume_command(&a, Path::new("d"), None), None);
        assert_eq!(
            resume_command(&a, Path::new("d"), Some(Path::new("s.jsonl"))).unwrap(),
            "doto-bulk import f.csv -m m.yaml --sandbox --sandbox-save s.jsonl --sandbox-load s.jsonl \
             --force --resume d"
        );
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_quote("a/b.csv"), "a/b.csv");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
