//! Help, examples, completions, the man pages and the dry run's plan summary (issue 15 item 6).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap_complete::Shell;
use doto_bulk::cli::command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every command of the tree (clap's own `help` left out), with its full name.
fn commands() -> Vec<(String, clap::Command)> {
    let mut root = command();
    root.build();
    let mut out = Vec::new();
    let mut todo = vec![("doto-bulk".to_owned(), root)];
    while let Some((name, cmd)) = todo.pop() {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            todo.push((format!("{name} {}", sub.get_name()), sub.clone()));
        }
        out.push((name, cmd));
    }
    out
}

/// The example command lines (continuations joined) after `Examples:` in a help text.
fn examples(help: &str) -> Vec<String> {
    let Some((_, tail)) = help.split_once("\nExamples:\n") else {
        return vec![];
    };
    let joined = tail.replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("doto-bulk ") || l.starts_with("DOTO_API_TOKEN="))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn every_help_ends_with_two_to_four_examples_and_no_rustdoc_syntax() {
    let all = commands();
    assert!(
        all.len() >= 10,
        "{:?}",
        all.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
    for (name, mut cmd) in all {
        for (kind, help) in [
            ("-h", cmd.render_help().to_string()),
            ("--help", cmd.render_long_help().to_string()),
        ] {
            let ex = examples(&help);
            assert!((2..=4).contains(&ex.len()), "{name} {kind}: {ex:?}\n{help}");
            let first = ex.iter().find(|l| l.starts_with("doto-bulk ")).unwrap();
            let sub = name.trim_start_matches("doto-bulk").trim();
            assert!(
                name == "doto-bulk"
                    || first.starts_with(&format!("doto-bulk {sub}"))
                    || ex.iter().any(|l| l.contains(&format!("doto-bulk {sub}"))),
                "{name}: its examples do not run it: {ex:?}"
            );
            for bad in ["[`", "`]", "](crate::", "[crate::"] {
                assert!(
                    !help.contains(bad),
                    "{name} {kind} has rustdoc syntax {bad:?}:\n{help}"
                );
            }
            assert!(
                help.trim_end()
                    .ends_with(ex.last().unwrap().split(' ').next_back().unwrap())
            );
        }
    }
}

/// An example that runs as written from the repository (samples, mappings, /tmp, the sandbox):
/// not one that needs an account, a placeholder file or a shell redirection.
fn runnable(line: &str) -> bool {
    let placeholder = |t: &str| {
        [
            "contacts.",
            "mapping.yaml",
            "conversations.",
            "~",
            "doto-runs/",
        ]
        .iter()
        .any(|p| t.starts_with(p))
    };
    line.starts_with("doto-bulk ")
        && !line.starts_with("doto-bulk sandbox")
        && !["DOTO_", "|", ">", "--account-id"]
            .iter()
            .any(|s| line.contains(s))
        && !line.split(' ').any(placeholder)
}

fn run_example(line: &str, dir: &Path) -> Output {
    let tmp = format!("{}/", dir.display());
    let args: Vec<String> = line
        .split(' ')
        .skip(1)
        .map(|a| {
            let a = a.replace("/tmp/", &tmp);
            match a.starts_with("samples/") || a.starts_with("mappings/") {
                true => repo().join(a).display().to_string(),
                false => a,
            }
        })
        .collect();
    bin().args(&args).current_dir(dir).output().unwrap()
}

#[test]
fn the_examples_that_need_no_account_run_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut ran = 0;
    // Each command's examples in order (a revert example needs its import example first).
    for (name, mut cmd) in commands() {
        for line in examples(&cmd.render_long_help().to_string()) {
            if !runnable(&line) || !seen.insert(line.clone()) {
                continue;
            }
            let o = run_example(&line, dir.path());
            let code = o.status.code();
            // 3: the messy sample's rows are invalid on purpose; 1 or 2 would be a broken example.
            assert!(
                matches!(code, Some(0 | 3)),
                "{name}: `{line}` exited {code:?}:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 7, "only {ran} examples ran");
}

#[test]
fn completions_for_every_shell_know_the_commands_and_their_flags() {
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::PowerShell,
        Shell::Elvish,
    ] {
        let text = String::from_utf8(doto_bulk::cmd::completions::script(shell)).unwrap();
        for word in [
            "import",
            "export",
            "revert",
            "mapping",
            "dry-run",
            "sandbox-seed",
        ] {
            assert!(text.contains(word), "{shell}: no {word:?}");
        }
    }
    let o = bin().args(["completions", "bash"]).output().unwrap();
    assert!(o.status.success());
    assert_eq!(o.stdout, doto_bulk::cmd::completions::script(Shell::Bash));
    let o = bin().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn the_checked_in_man_pages_are_current() {
    const HOW: &str = "regenerate with `cargo run -- man man/` and commit man/";
    let dir = repo().join("man");
    let pages = doto_bulk::cmd::man::pages();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; {HOW}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut names: Vec<String> = pages.iter().map(|p| p.0.clone()).collect();
    names.sort();
    assert_eq!(
        on_disk, names,
        "man/ holds other pages than the commands; {HOW}"
    );
    for (name, text) in &pages {
        let old = std::fs::read(dir.join(name)).unwrap();
        assert!(old == *text, "man/{name} is out of date; {HOW}");
    }
    assert!(names.contains(&"doto-bulk-import.1".to_owned()));
    let main = String::from_utf8_lossy(&pages[0].1).into_owned();
    assert!(
        main.contains("doto-bulk") && main.contains(".SH EXAMPLES\n.nf\n"),
        "{main}"
    );
}

#[test]
fn man_without_a_dir_prints_the_main_page_and_with_one_writes_every_page() {
    let o = bin().arg("man").output().unwrap();
    assert!(o.status.success());
    assert_eq!(o.stdout, doto_bulk::cmd::man::pages()[0].1);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let o = bin().arg("man").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let written = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(written, doto_bulk::cmd::man::pages().len());
    assert!(out.join("doto-bulk-mapping-init.1").is_file());
}

/// The quickstart sample imported into a sandbox saved to `dir/s.jsonl` (run directory `run1`).
fn imported_quickstart(dir: &Path) {
    let o = bin()
        .arg("import")
        .arg(repo().join("samples/quickstart.csv"))
        .arg("-m")
        .arg(repo().join("mappings/quickstart.yaml"))
        .args([
            "--sandbox",
            "--sandbox-save",
            "s.jsonl",
            "--out",
            "run1",
            "-q",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The quickstart file changed: 2 rows as imported, 1 new city, 2 new contacts, 1 row invalid (no
/// name), 1 whose identifier and email match two different contacts.
const CHANGED: &str = "\
First Name,Last Name,Email,Phone,Country,Customer ID,Plan,Company,City
Jane,Doe,Jane.Doe@Example.com,07911 123456,GB,cus-1001,Gold,Acme,Paris
Omar,Haddad,omar@haddad.example,+33 6 12 34 56 78,FR,cus-1002,free,Haddad & Fils,Marseille
Mei,Chen,mei.chen@example.org,(415) 555-2671,US,cus-1003,Silver,,San Francisco
Zoe,Ng,zoe@ng.example,,US,cus-2001,free,,Boston
Li,Wu,,,US,cus-2002,free,,Oslo
,,nobody@x.example,,US,,free,,Oslo
Jane,Doe,omar@haddad.example,,GB,cus-1001,Gold,Acme,Paris
";

fn dry_run(dir: &Path, out: &str, flags: &[&str]) -> String {
    std::fs::write(dir.join("changed.csv"), CHANGED).unwrap();
    let o = bin()
        .args(["import", "changed.csv", "-m"])
        .arg(repo().join("mappings/quickstart.yaml"))
        .args([
            "--sandbox",
            "--sandbox-load",
            "s.jsonl",
            "--dry-run",
            "--out",
            out,
        ])
        .args(flags)
        .current_dir(dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(3), "{err}");
    err
}

#[test]
fn a_dry_run_prints_the_plan_by_action_and_field_and_writes_plan_csv() {
    let dir = tempfile::tempdir().unwrap();
    imported_quickstart(dir.path());
    assert!(
        !dir.path().join("run1/plan.csv").exists(),
        "a real run has no plan"
    );
    let err = dry_run(dir.path(), "dry", &[]);
    let plan = err
        .split_once("plan (dry run")
        .map(|p| p.1)
        .unwrap_or_else(|| panic!("{err}"));
    for line in [
        "  create 2: additional_attributes.city 2, custom_attributes.plan 2, identifier 2, name 2, email 1\n",
        "  update 1: additional_attributes.city 1\n",
        "  unchanged 2\n",
        "  fail 1: conflict 1\n",
        "  invalid 1 (see failures.csv)\n",
    ] {
        assert!(plan.contains(line), "{line:?} not in\n{plan}");
    }
    assert!(plan.contains("plan.csv: dry/plan.csv"), "{plan}");
    // Planner details are for -v.
    assert!(!err.contains("distinct key"), "{err}");

    let mut csv = csv::Reader::from_path(dir.path().join("dry/plan.csv")).unwrap();
    let header: Vec<String> = csv.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(
        header,
        [
            "row",
            "action",
            "contact_id",
            "changed_fields",
            "key",
            "error"
        ]
    );
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    let cells = |r: &csv::StringRecord| r.iter().map(str::to_owned).collect::<Vec<_>>();
    let jsonl = std::fs::read_to_string(dir.path().join("dry/plan.jsonl")).unwrap();
    assert_eq!(
        rows.len(),
        jsonl.lines().count(),
        "one plan.csv row per plan line"
    );
    assert_eq!(rows.len(), 6, "every row but the invalid one");
    let omar: serde_json::Value = serde_json::from_str(jsonl.lines().nth(1).unwrap()).unwrap();
    let omar_id = omar["contact_id"].as_u64().unwrap().to_string();
    assert_eq!(
        cells(&rows[1]),
        [
            "3",
            "update",
            &omar_id,
            "additional_attributes.city",
            "identifier:cus-1002",
            ""
        ]
    );
    let jane = cells(&rows[0]);
    assert_eq!(jane[..2], ["2", "unchanged"]);
    assert!(!jane[2].is_empty() && jane[3].is_empty(), "{jane:?}");
    assert_eq!(
        cells(&rows[4])[..4],
        [
            "6",
            "create",
            "",
            "name;identifier;custom_attributes.plan;additional_attributes.city"
        ]
    );
    let fail = cells(&rows[5]);
    assert_eq!(fail[..2], ["8", "fail"]);
    assert!(
        fail[5].starts_with("conflict: identifier:cus-1001 matches contact"),
        "{fail:?}"
    );
}

#[test]
fn quiet_keeps_plan_csv_and_drops_the_summary_and_verbose_shows_the_lookup_reasoning() {
    let dir = tempfile::tempdir().unwrap();
    imported_quickstart(dir.path());
    let err = dry_run(dir.path(), "quiet", &["-q"]);
    assert!(!err.contains("plan (dry run"), "{err}");
    assert!(dir.path().join("quiet/plan.csv").is_file());
    let err = dry_run(dir.path(), "loud", &["-v"]);
    assert!(err.contains("distinct keys to look up"), "{err}");
    assert!(err.contains("plan (dry run"), "{err}");
}

#[test]
fn the_readme_tour_runs_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let tour = readme.split_once("## A 5-minute tour").unwrap().1;
    let block = tour.split("```").nth(1).unwrap().trim_start_matches("sh\n");
    let lines = examples(&format!("\nExamples:\n{block}"));
    assert_eq!(lines.len(), 5, "{lines:?}");
    let dir = tempfile::tempdir().unwrap();
    let outputs: Vec<String> = lines
        .iter()
        .map(|line| {
            assert!(runnable(line), "{line}");
            let o = run_example(line, dir.path());
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            assert_eq!(o.status.code(), Some(0), "`{line}`:\n{err}");
            err
        })
        .collect();
    let created = |l: &str| l.split_whitespace().eq(["created", "5"]);
    assert!(outputs[1].lines().any(created), "{}", outputs[1]);
    assert!(
        outputs[2].contains("  update 2: additional_attributes.city 2\n"),
        "{}",
        outputs[2]
    );
    assert!(dir.path().join("doto-tour/contacts.csv").is_file());
    let deleted = outputs[4].lines().find(|l| l.contains("deleted"));
    assert!(deleted.is_some_and(|l| l.contains('5')), "{}", outputs[4]);
}
