//! The command line for people and scripts: connection flags only on the commands that connect,
//! profiles from a config file, the question before writing to a real account (driven through
//! the `DOTO_BULK_ASSUME_TTY` test hook), `--json` and `-q` on stdout, the `--resume` command
//! after Ctrl-C and the split of a resumed run's counts.
use doto_bulk::api::Concurrency;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use doto_bulk::cmd::import::{Args, run_import};
use doto_bulk::exit::Stop;
use doto_bulk::sandbox::{SandboxConfig, route};
use serde_json::{Value, json};

use crate::import::{HEADER, MAPPING, World, ctrl_c_exits_130, outcome};

const BIN: &str = env!("CARGO_BIN_EXE_doto-bulk");

/// Three new contacts.
fn three_rows() -> String {
    format!("{HEADER}Ann,ann@x.com,A1,pro,Oslo\nBob,bob@x.com,B2,free,Rome\nCy,cy@x.com,C3,,\n")
}

/// The binary in `w`'s folder, with no connection variables from the environment, the token in
/// DOTO_API_TOKEN and a config home that holds nothing.
fn bin(w: &World, args: &[&str]) -> Command {
    program(w, BIN, args)
}

/// `prog` with `args` in `w`'s folder, the environment as for [`bin`].
fn program(w: &World, prog: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(prog);
    cmd.current_dir(w.path(""))
        .args(args)
        .env("DOTO_API_TOKEN", &w.sb.admin_token)
        .env("XDG_CONFIG_HOME", w.path("no-config"))
        .env_remove("DOTO_ACCOUNT_ID")
        .env_remove("DOTO_BASE_URL")
        .env_remove("DOTO_PROFILE")
        .env_remove("DOTO_BULK_ASSUME_TTY")
        .stdin(Stdio::null());
    cmd
}

/// `--base-url` and `--account-id` of `w`'s sandbox.
fn at(w: &World) -> [String; 4] {
    [
        "--base-url".into(),
        w.sb.base_url.clone(),
        "--account-id".into(),
        w.sb.account_id.to_string(),
    ]
}

/// Run `cmd` with `stdin` written to it.
async fn run(mut cmd: Command, stdin: &str) -> Output {
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The command may end without reading it.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stdout as exactly one JSON document.
fn json_doc(o: &Output) -> Value {
    let text = stdout(o);
    assert_eq!(text.lines().count(), 1, "one line on stdout: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn help(cmd: &[&str]) -> String {
    let o = Command::new(BIN).args(cmd).arg("--help").output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn connection_flags_are_grouped_on_the_commands_that_connect_and_absent_elsewhere() {
    for cmd in [&["import"][..], &["export"], &["revert"]] {
        let h = help(cmd);
        let heading = h.find("\nConnection:\n").unwrap_or_else(|| panic!("{h}"));
        for flag in [
            "--base-url",
            "--account-id",
            "--token-file",
            "--profile",
            "--yes",
        ] {
            let at = h.find(flag).unwrap_or_else(|| panic!("{cmd:?}: {flag}"));
            assert!(at > heading, "{cmd:?}: {flag} under the Connection heading");
        }
        assert!(h.contains("[env: DOTO_BASE_URL]"), "{h}");
        assert!(
            !h.contains("DOTO_BASE_URL="),
            "no empty env value shown: {h}"
        );
    }
    for cmd in [&["validate"][..], &["mapping", "init"], &["sandbox"]] {
        let full = help(cmd);
        // The flags, not the examples (the sandbox's show how to point a command at it).
        let h = full
            .split("Examples:")
            .next()
            .unwrap_or_default()
            .to_owned();
        for flag in [
            "--base-url",
            "--token-file",
            "--profile",
            "--timeout",
            "Connection:",
        ] {
            assert!(!h.contains(flag), "{cmd:?} lists {flag}: {h}");
        }
        assert!(h.contains("--json") && h.contains("--quiet"), "{h}");
    }
}

/// A config file in `w` with profile `p` (`body`) and `other`.
fn config(w: &World, body: &str) -> String {
    let text = format!("[profile.p]\n{body}\n[profile.other]\naccount_id = 99\n");
    w.write("config.toml", &text).display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_names_the_server_and_flags_override_it() {
    let w = World::plain().await;
    w.write("f.csv", &three_rows());
    w.write("m.yaml", MAPPING);
    std::fs::write(w.path("tok"), format!("{}\n", w.sb.admin_token)).unwrap();
    // The profile's base URL goes nowhere; the flag's is the sandbox.
    let cfg = config(
        &w,
        &format!(
            "base_url = \"http://127.0.0.1:9\"\naccount_id = {}\ntoken_file = \"tok\"\nrate = \"500/s\"",
            w.sb.account_id
        ),
    );
    let mut cmd = bin(
        &w,
        &["import", "f.csv", "-m", "m.yaml", "--json", "--out", "r1"],
    );
    cmd.args(["--config", &cfg, "--base-url", &w.sb.base_url])
        .env("DOTO_PROFILE", "p")
        .env_remove("DOTO_API_TOKEN");
    let o = run(cmd, "").await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc = json_doc(&o);
    assert_eq!(doc["outcomes"]["created"], 3, "{doc}");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["run_dir"], "r1");
    assert_eq!(w.by_email().len(), 3);
    // No terminal and no --yes: it went ahead, and said where and what first.
    let err = stderr(&o);
    let target = format!(
        "importing into {} (account {}, 0 contacts)\n  would create 3, update 0, leave 0 \
         unchanged, skip 0, fail 0; 0 rows invalid\n",
        w.sb.base_url, w.sb.account_id
    );
    assert!(err.contains(&target), "{err}");
    assert!(!err.contains("Proceed?"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_profiles_and_tokens_in_the_config_file_are_errors() {
    let w = World::plain().await;
    w.write("f.csv", &three_rows());
    w.write("m.yaml", MAPPING);
    let cfg = config(&w, "account_id = 1");
    let mut cmd = bin(&w, &["import", "f.csv", "-m", "m.yaml", "--json"]);
    cmd.args(["--config", &cfg, "--profile", "prod"]);
    let o = run(cmd, "").await;
    assert_eq!(o.status.code(), Some(1));
    let doc = json_doc(&o);
    let e = doc["error"].as_str().unwrap();
    assert!(
        e.contains("no profile \"prod\"") && e.contains("other, p"),
        "{e}"
    );
    assert_eq!(doc["exit_code"], 1);

    let cfg = config(&w, "account_id = 1\napi_access_token = \"hunter2-secret\"");
    let mut cmd = bin(&w, &["import", "f.csv", "-m", "m.yaml"]);
    cmd.args(["--config", &cfg, "--profile", "p"]);
    let o = run(cmd, "").await;
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("profile.p.api_access_token") && err.contains("never read"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    assert_eq!(w.writes(), 0);
}

/// `import f.csv` against `w` as on a terminal, answering `answer`.
async fn import_on_a_terminal(w: &World, out: &str, extra: &[&str], answer: &str) -> Output {
    let mut cmd = bin(w, &["import", "f.csv", "-m", "m.yaml", "--out", out]);
    cmd.args(at(w)).args(extra).env("DOTO_BULK_ASSUME_TTY", "1");
    run(cmd, answer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_a_write_to_a_real_account_asks_first_and_no_writes_nothing() {
    let w = World::plain().await;
    w.seed(
        json!({"name": "Ann", "email": "ann@x.com", "identifier": "A1",
        "custom_attributes": {"plan": "free"}}),
    );
    w.seed(json!({"name": "Zed", "email": "zed@x.com"}));
    // Bob twice: the second row updates the contact the first creates.
    let bob_again = "Bob Again,bob@x.com,B2,pro,Rome\n";
    w.write(
        "f.csv",
        &format!("{}Dee,not-an-email,,,\n{bob_again}", three_rows()),
    );
    w.write("m.yaml", MAPPING);

    let o = import_on_a_terminal(&w, "no", &["--json"], "n\n").await;
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("(account 1, 2 contacts)"), "{err}");
    assert!(
        err.contains("would create 2, update 2, leave 0 unchanged, skip 0, fail 0; 1 rows invalid"),
        "{err}"
    );
    assert!(
        err.contains("Proceed? [y/N]") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(json_doc(&o), json!({"declined": true, "exit_code": 4}));
    assert_eq!(w.writes(), 0);
    assert!(
        !w.path("no").exists(),
        "a declined fresh run leaves no run directory"
    );

    // --yes: no question; the run does what the plan said.
    let o = import_on_a_terminal(&w, "yes", &["--yes", "--json"], "").await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(!stderr(&o).contains("Proceed?"), "{}", stderr(&o));
    let doc = json_doc(&o);
    assert_eq!(doc["outcomes"]["created"], 2, "{doc}");
    assert_eq!(doc["outcomes"]["updated"], 2, "{doc}");
    assert_eq!(w.by_email().len(), 4);

    // "y": the run goes ahead (everything is unchanged now).
    let o = import_on_a_terminal(&w, "y", &[], "y\n").await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("would create 0, update 2, leave 2 unchanged"),
        "{}",
        stderr(&o)
    );
    // A dry run and the sandbox never ask.
    let o = import_on_a_terminal(&w, "dry", &["--dry-run"], "").await;
    assert_eq!(o.status.code(), Some(3));
    assert!(!stderr(&o).contains("Proceed?"), "{}", stderr(&o));
    let mut cmd = bin(
        &w,
        &[
            "import",
            "f.csv",
            "-m",
            "m.yaml",
            "--sandbox",
            "--out",
            "sb",
        ],
    );
    cmd.env("DOTO_BULK_ASSUME_TTY", "1");
    let o = run(cmd, "").await;
    assert_eq!(o.status.code(), Some(3));
    assert!(!stderr(&o).contains("Proceed?"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_asks_first_and_no_deletes_nothing() {
    let w = World::plain().await;
    let imp = w.import(&three_rows(), MAPPING, "imp", |_| {}).await;
    assert_eq!(outcome(&imp, "created"), 3);
    let mut cmd = bin(&w, &["revert", "imp", "--out", "rev"]);
    cmd.args(at(&w)).env("DOTO_BULK_ASSUME_TTY", "1");
    let o = run(cmd, "no\n").await;
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("(account 1, 3 contacts)")
            && err.contains("would delete 3 contacts the import created and restore 0"),
        "{err}"
    );
    assert_eq!(w.sb.stats().count("DELETE", route::CONTACT), 0);
    assert_eq!(w.by_email().len(), 3);
    assert!(!w.path("rev").exists());

    // -q: the run directory alone on stdout.
    let mut cmd = bin(&w, &["revert", "imp", "--out", "rev", "-q", "--yes"]);
    cmd.args(at(&w)).env("DOTO_BULK_ASSUME_TTY", "1");
    let o = run(cmd, "").await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "rev\n");
    assert!(w.by_email().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_is_empty_a_path_with_q_or_one_json_document() {
    let w = World::plain().await;
    w.write("f.csv", &three_rows());
    w.write("m.yaml", MAPPING);
    let o = run(
        bin(&w, &["validate", "f.csv", "-m", "m.yaml", "--out", "v1"]),
        "",
    )
    .await;
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "");
    let o = run(
        bin(
            &w,
            &["-q", "validate", "f.csv", "-m", "m.yaml", "--out", "v2"],
        ),
        "",
    )
    .await;
    assert_eq!(stdout(&o), "v2\n");
    assert_eq!(stderr(&o), "");
    let o = run(
        bin(
            &w,
            &["validate", "f.csv", "-m", "m.yaml", "--out", "v3", "--json"],
        ),
        "",
    )
    .await;
    let doc = json_doc(&o);
    assert_eq!(doc["command"], "validate");
    assert_eq!(doc["outcomes"]["valid"], 3);
    assert_eq!(doc["run_dir"], "v3");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(w.path("v3/summary.json")).unwrap()).unwrap();
    assert_eq!(doc["rows_read"], summary["rows_read"]);
    assert!(!stderr(&o).is_empty(), "the human output stays on stderr");

    // export: the manifest and the file.
    w.import(&three_rows(), MAPPING, "imp", |_| {}).await;
    let mut cmd = bin(&w, &["export", "-o", "out.csv", "--json"]);
    cmd.args(at(&w));
    let o = run(cmd, "").await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc = json_doc(&o);
    assert_eq!(doc["rows"], 3, "{doc}");
    assert_eq!(doc["output"], "out.csv");
    let mut cmd = bin(&w, &["export", "-o", "out2.csv", "-q"]);
    cmd.args(at(&w));
    assert_eq!(stdout(&run(cmd, "").await), "out2.csv\n");

    // mapping init: the draft's path and what was decided.
    let o = run(
        bin(&w, &["mapping", "init", "f.csv", "-o", "d.yaml", "--json"]),
        "",
    )
    .await;
    let doc = json_doc(&o);
    assert_eq!(doc["draft"], "d.yaml");
    assert!(!doc["decided"].as_array().unwrap().is_empty(), "{doc}");
    let o = run(bin(&w, &["mapping", "init", "f.csv", "--json"]), "").await;
    assert_eq!(o.status.code(), Some(2), "--json needs -o");
}

#[test]
fn the_sandbox_says_where_it_listens_as_json() {
    let mut child = Command::new(BIN)
        .args(["sandbox", "--port", "0", "--account-id", "7", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let doc: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(doc["account_id"], 7);
    assert!(
        doc["base_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{doc}"
    );
}

/// Rows enough for a Ctrl-C to land mid-run at a slow pace.
fn many_rows(n: usize) -> String {
    let mut csv = HEADER.to_owned();
    for i in 0..n {
        csv.push_str(&format!("P{i},p{i}@x.com,I{i},,\n"));
    }
    csv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_ctrl_c_the_exact_resume_command_is_printed_and_finishes_the_run() {
    let w = World::new(SandboxConfig {
        latency: Duration::from_millis(20),
        ..SandboxConfig::default()
    })
    .await;
    w.write("f.csv", &many_rows(300));
    w.write("m.yaml", MAPPING);
    let mut cmd = bin(
        &w,
        &["import", "f.csv", "-m", "m.yaml", "--out", "run 1", "-y"],
    );
    cmd.args(at(&w)).args(["--concurrency", "2"]);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sb = w.sb.state().clone();
    while sb.stats().count("POST", route::CONTACTS) < 10 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the stop"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let o = tokio::task::spawn_blocking(move || ctrl_c_exits_130(child))
        .await
        .unwrap();
    let err = stderr(&o);
    let hint = err
        .lines()
        .find_map(|l| l.strip_prefix("to continue this run: "))
        .unwrap_or_else(|| panic!("{err}"));
    let expected = format!(
        "{BIN} import f.csv -m m.yaml -y --base-url {} --account-id {} --concurrency 2 \
         --resume 'run 1'",
        w.sb.base_url, w.sb.account_id
    );
    assert_eq!(hint, expected);

    // The printed command, run by a shell, finishes the run.
    let o = run(program(&w, "sh", &["-c", hint]), "").await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s: Value =
        serde_json::from_slice(&std::fs::read(w.path("run 1/summary.json")).unwrap()).unwrap();
    assert_eq!(s["outcomes"]["created"], 300);
    let earlier = s["resumed"]["earlier_invocations"]["created"]
        .as_u64()
        .unwrap();
    let now = s["resumed"]["this_invocation"]["created"].as_u64().unwrap();
    assert!(earlier >= 10 && earlier + now == 300, "{s}");
    assert!(stderr(&o).contains("resumed run: the counts above are the whole run's"));
    assert_eq!(w.by_email().len(), 300);
}

/// An interrupt flag set once `w`'s sandbox has received `n` requests `method route`.
fn stop_after(w: &World, method: &'static str, route: &'static str, n: u64) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let sb = w.sb.state().clone();
    tokio::spawn(async move {
        while sb.stats().count(method, route) < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        flag.store(true, Ordering::Relaxed);
    });
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_splits_its_counts_between_the_invocations() {
    let w = World::plain().await;
    let file = w.write("f.csv", &many_rows(60));
    let map = w.write("m.yaml", MAPPING);
    let mut args = Args::new(&file, &map);
    args.out = Some(w.path("run"));
    args.concurrency = Concurrency::Fixed(2);
    let stop = stop_after(&w, "POST", route::CONTACTS, 20);
    let first = run_import(&args, w.config(), true, stop).await.unwrap();
    assert_eq!(first.summary.stopped, Some(Stop::Interrupted));
    assert_eq!(first.summary.resumed, None);
    let done = outcome(&first, "created");

    let mut again = Args::new(&file, &map);
    again.resume = Some(w.path("run"));
    let second = run_import(&again, w.config(), true, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    let r = second.summary.resumed.clone().unwrap();
    assert_eq!(outcome(&second, "created"), 60);
    assert_eq!(r.earlier_invocations.get("created"), Some(&done));
    assert_eq!(r.this_invocation.get("created"), Some(&(60 - done)));
    assert!(
        second
            .summary
            .table()
            .contains(&format!("this invocation: created {}", 60 - done))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_revert_says_what_each_invocation_did() {
    use doto_bulk::cmd::revert::{self, run_revert};
    let w = World::plain().await;
    let imp = w.import(&many_rows(40), MAPPING, "imp", |_| {}).await;
    assert_eq!(outcome(&imp, "created"), 40);
    let mut args = revert::Args::new(&w.path("imp"));
    args.out = Some(w.path("rev"));
    args.concurrency = Concurrency::Fixed(1);
    let stop = stop_after(&w, "DELETE", route::CONTACT, 5);
    let first = run_revert(&args, w.config(), true, stop).await.unwrap();
    assert_eq!(first.stopped, Some(Stop::Interrupted));
    assert_eq!(first.resumed, None);
    let done = first.counts["deleted"];

    let mut again = revert::Args::new(&w.path("imp"));
    again.resume = Some(w.path("rev"));
    let second = run_revert(&again, w.config(), true, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    let r = second.resumed.unwrap();
    assert_eq!(r.earlier_invocations, [("deleted".to_owned(), done)].into());
    assert_eq!(
        r.this_invocation,
        [("deleted".to_owned(), 40 - done)].into()
    );
    let s: Value =
        serde_json::from_slice(&std::fs::read(w.path("rev/summary.json")).unwrap()).unwrap();
    assert_eq!(s["resumed"]["this_invocation"]["deleted"], 40 - done);
    assert!(w.by_email().is_empty());
}
