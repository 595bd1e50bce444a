//! The run directory is bound to its run: `--resume` refuses another server, file or mapping and
//! a directory another process is using, each without touching the directory; it checks that the
//! journal's contacts exist; a stale lock is taken over; a failed start leaves no directory; a
//! foreign `--out` is refused. And the small items around it: a token file readable by others
//! warns, an export cleans a killed export's leftover temporary file and leaves none when it fails.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use doto_bulk::api::{Client, ClientConfig};
use doto_bulk::cmd::export::{ExportOptions, export};
use doto_bulk::cmd::import::{Args, ImportRun, run_import};
use doto_bulk::cmd::revert::{self, run_revert};
use doto_bulk::sandbox::route;
use sha2::{Digest, Sha256};

use crate::import::{HEADER, MAPPING, World};

fn never() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

fn rows(n: usize) -> String {
    let mut csv = HEADER.to_owned();
    for i in 0..n {
        csv.push_str(&format!("P{i},p{i}@x.com,ID{i},pro,Oslo\n"));
    }
    csv
}

/// Every file in `dir` with its size, modification time and content hash.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, SystemTime, String)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            let sha = hex::encode(Sha256::digest(std::fs::read(e.path()).unwrap()));
            let name = e.file_name().to_string_lossy().into_owned();
            (name, (m.len(), m.modified().unwrap(), sha))
        })
        .collect()
}

/// A finished import of `n` new contacts into `w`'s run directory `run`.
async fn finished(w: &World, n: usize) -> (ImportRun, PathBuf, PathBuf) {
    let run = w.import(&rows(n), MAPPING, "run", |_| {}).await;
    assert_eq!(run.exit_code, 0);
    (run, w.path("run.csv"), w.path("run.yaml"))
}

async fn resume(
    file: &Path,
    map: &Path,
    dir: &Path,
    config: ClientConfig,
    tune: impl FnOnce(&mut Args),
) -> anyhow::Result<ImportRun> {
    let mut args = Args::new(file, map);
    args.resume = Some(dir.to_path_buf());
    tune(&mut args);
    run_import(&args, config, true, never()).await
}

/// The binary against `w`'s sandbox.
fn bin(w: &World, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_doto-bulk"));
    cmd.args(args)
        .args(["--base-url", &w.sb.base_url])
        .args(["--account-id", &w.sb.account_id.to_string()])
        .env("DOTO_API_TOKEN", &w.sb.admin_token)
        .env_remove("DOTO_ACCOUNT_ID");
    cmd
}

async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_records_its_server_account_file_and_mapping_but_not_the_token() {
    let w = World::plain().await;
    let (run, file, map) = finished(&w, 3).await;
    let text = std::fs::read_to_string(run.run_dir.join("run.json")).unwrap();
    assert!(!text.contains(&w.sb.admin_token), "{text}");
    let rec: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rec["base_url"], w.sb.base_url.trim_end_matches('/'));
    assert_eq!(rec["account_id"], w.sb.account_id);
    assert_eq!(rec["tool_version"], env!("CARGO_PKG_VERSION"));
    let sha = |p: &Path| hex::encode(Sha256::digest(std::fs::read(p).unwrap()));
    assert_eq!(rec["file"]["sha256"], sha(&file));
    assert_eq!(rec["mapping"]["sha256"], sha(&map));
    assert!(
        rec["command_line"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    // A clean end releases the lock and removes its file.
    assert!(!run.run_dir.join("run.lock").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_against_another_server_is_refused_and_with_force_its_missing_contacts_stop_it() {
    let w = World::plain().await;
    let (run, file, map) = finished(&w, 30).await;
    let before = snapshot(&run.run_dir);
    let other = World::plain().await;
    let e = resume(&file, &map, &run.run_dir, other.config(), |_| {})
        .await
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("the server differs"), "{msg}");
    assert!(
        msg.contains(other.sb.base_url.trim_end_matches('/')),
        "{msg}"
    );
    assert_eq!(
        snapshot(&run.run_dir),
        before,
        "the run directory was touched"
    );
    assert_eq!(other.sb.stats().log.len(), 0, "the other server was asked");

    // --force accepts the other base URL, but the journal's contacts are not on that server.
    let e = resume(&file, &map, &run.run_dir, other.config(), |a| {
        a.force = true
    })
    .await
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("20 of the 20 contacts checked that the journal says")
            && msg.contains("missing on this server"),
        "{msg}"
    );
    assert_eq!(other.writes(), 0);
    assert_eq!(other.sb.stats().count("GET", route::CONTACT), 20);
    assert_eq!(snapshot(&run.run_dir), before);

    // --verify checks every one of them.
    let e = resume(&file, &map, &run.run_dir, other.config(), |a| {
        a.force = true;
        a.verify = true;
    })
    .await
    .unwrap_err();
    assert!(
        format!("{e:#}").contains("30 of the 30 contacts checked"),
        "{e:#}"
    );

    // On its own server, with a contact deleted since, the sample finds it (ids spread evenly).
    let stored = w.by_email();
    let first = stored
        .values()
        .map(|c| c["id"].as_u64().unwrap())
        .min()
        .unwrap();
    Client::new(w.config())
        .unwrap()
        .contacts()
        .delete(first)
        .await
        .unwrap();
    let e = resume(&file, &map, &run.run_dir, w.config(), |_| {})
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains(&format!("ids {first})")), "{e:#}");
    assert_eq!(snapshot(&run.run_dir), before);

    // The same server wiped: the finished run is not reported again as 30 creates.
    w.sb.reset();
    let e = resume(&file, &map, &run.run_dir, w.config(), |_| {})
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("20 of the 20 contacts"), "{e:#}");
    assert_eq!(w.writes(), 0);
    assert_eq!(snapshot(&run.run_dir), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_another_file_or_mapping_is_refused_and_a_renamed_file_needs_force() {
    let w = World::plain().await;
    let (run, file, map) = finished(&w, 5).await;
    let before = snapshot(&run.run_dir);
    let writes = w.writes();

    let other = w.write("other.csv", &rows(6));
    let e = resume(&other, &map, &run.run_dir, w.config(), |a| a.force = true)
        .await
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("the file differs") && msg.contains("other.csv"),
        "{msg}"
    );
    let other_map = w.write("other.yaml", &MAPPING.replace("city: City", "town: City"));
    let e = resume(&file, &other_map, &run.run_dir, w.config(), |_| {})
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("the mapping differs"), "{e:#}");
    assert_eq!(
        snapshot(&run.run_dir),
        before,
        "the run directory was touched"
    );

    let renamed = w.path("renamed.csv");
    std::fs::copy(&file, &renamed).unwrap();
    let e = resume(&renamed, &map, &run.run_dir, w.config(), |_| {})
        .await
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("renamed") && msg.contains("--force"), "{msg}");
    assert_eq!(snapshot(&run.run_dir), before);
    let again = resume(&renamed, &map, &run.run_dir, w.config(), |a| a.force = true)
        .await
        .unwrap();
    assert_eq!(again.exit_code, 0);
    assert_eq!(w.writes(), writes, "finished rows are not written again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_directory_in_use_is_refused_naming_the_pid_without_touching_it() {
    let w = World::plain().await;
    let file = w.write("f.csv", &rows(40));
    let map = w.write("m.yaml", MAPPING);
    let dir = w.path("run");
    let hold = w.sb.state().hold_after("POST", route::CONTACTS, 5);
    let mut args = Args::new(&file, &map);
    args.out = Some(dir.clone());
    args.concurrency = doto_bulk::api::Concurrency::Fixed(2);
    let first = run_import(&args, w.config(), true, never());
    let (run, ()) = tokio::join!(first, refused_while_held(&w, &hold, &file, &map, &dir));
    let run = run.unwrap();
    assert_eq!(run.exit_code, 0);
    assert_eq!(w.by_email().len(), 40);
}

/// While `hold` stops the import writing into `dir`: another process, another fresh run and a
/// revert are refused, and the directory is left as it was; then the import goes on.
async fn refused_while_held(
    w: &World,
    hold: &doto_bulk::sandbox::Hold,
    file: &Path,
    map: &Path,
    dir: &Path,
) {
    hold.reached().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = snapshot(dir);
    assert!(before.contains_key("run.lock"), "{before:?}");

    let mut cmd = bin(w, &["import", "-q"]);
    cmd.arg("-m").arg(map).arg(file).arg("--resume").arg(dir);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let pid = format!("pid {}", std::process::id());
    assert!(stderr(&out).contains(&pid), "{}", stderr(&out));
    // A second fresh run into the same --out, and a revert of it, are refused too.
    let e = resume(file, map, dir, w.config(), |a| {
        a.resume = None;
        a.out = Some(dir.to_path_buf());
    })
    .await
    .unwrap_err();
    assert!(format!("{e:#}").contains("another run's reports"), "{e:#}");
    let e = run_revert(&revert::Args::new(dir), w.config(), true, never())
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains(&pid), "{e:#}");
    assert_eq!(snapshot(dir), before, "the run directory was touched");

    hold.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_lock_of_a_killed_process_is_taken_over() {
    let w = World::plain().await;
    let (run, file, map) = finished(&w, 3).await;
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(run.run_dir.join("run.lock"), dead_pid.to_string()).unwrap();
    let mut cmd = bin(&w, &["import"]);
    cmd.arg("-m")
        .arg(&map)
        .arg(&file)
        .arg("--resume")
        .arg(&run.run_dir);
    let out = output(cmd).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("lock of process {dead_pid}")) && err.contains("taken over"),
        "{err}"
    );
    assert!(!run.run_dir.join("run.lock").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_leaves_no_run_directory() {
    let w = World::plain().await;
    let file = w.write("f.csv", &rows(3));
    let map = w.write("m.yaml", MAPPING);
    let dir = w.path("run");
    // A token the server refuses: the run fails before its first write.
    let refused = || {
        let mut config = w.config();
        config.token = doto_bulk::api::ApiToken::new("not-the-token").unwrap();
        config
    };
    let mut args = Args::new(&file, &map);
    args.out = Some(dir.clone());
    args.max_retries = Some(0);
    run_import(&args, refused(), true, never())
        .await
        .unwrap_err();
    assert!(!dir.exists(), "{:?}", snapshot(&dir));
    // An empty --out of the user's stays, emptied again.
    std::fs::create_dir(&dir).unwrap();
    run_import(&args, refused(), true, never())
        .await
        .unwrap_err();
    assert!(snapshot(&dir).is_empty(), "{:?}", snapshot(&dir));
    std::fs::remove_dir(&dir).unwrap();
    // A server that is not there at all: given up after the usual retries (never waited for as
    // a server that went away is), exit 1, and the directory keeps the report that says so.
    let mut config = w.config();
    config.base_url = "http://127.0.0.1:9".into();
    let run = run_import(&args, config, true, never()).await.unwrap();
    assert_eq!(run.exit_code, 1);
    let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    assert!(summary.contains("server_unreachable"), "{summary}");
    assert!(
        !dir.join("journal.jsonl").exists()
            || std::fs::read_to_string(dir.join("journal.jsonl"))
                .unwrap()
                .is_empty()
    );
    std::fs::remove_dir_all(&dir).unwrap();
    // A missing file or a bad mapping: no directory either.
    args.file = w.path("missing.csv");
    run_import(&args, w.config(), true, never())
        .await
        .unwrap_err();
    args.file = file;
    args.mapping = w.write("bad.yaml", "version: 1\nfields: [\n");
    run_import(&args, w.config(), true, never())
        .await
        .unwrap_err();
    assert!(!dir.exists());
    assert_eq!(w.writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_on_a_foreign_non_empty_directory_is_refused() {
    let w = World::plain().await;
    let foreign = w.path("photos");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("cat.jpg"), "meow").unwrap();
    let before = snapshot(&foreign);
    let file = w.write("f.csv", &rows(2));
    let map = w.write("m.yaml", MAPPING);
    let mut args = Args::new(&file, &map);
    args.out = Some(foreign.clone());
    let e = run_import(&args, w.config(), true, never())
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("not a run directory"), "{e:#}");
    assert_eq!(snapshot(&foreign), before);
    assert_eq!(w.sb.stats().log.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_readable_by_others_warns_once() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::plain().await;
    let token = w.write("token", &w.sb.admin_token);
    let run = |mode: u32| {
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut cmd = bin(&w, &["export", "-q"]);
        cmd.arg("--output")
            .arg(w.path("out.jsonl"))
            .arg("--token-file")
            .arg(&token)
            .env_remove("DOTO_API_TOKEN");
        output(cmd)
    };
    let out = run(0o644).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("readable by everyone").count(), 1, "{err}");
    assert!(
        err.contains("chmod 600") && !err.contains(&w.sb.admin_token),
        "{err}"
    );
    let err = stderr(&run(0o640).await);
    assert!(err.contains("readable by its group"), "{err}");
    let out = run(0o600).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_removes_a_killed_exports_temp_file_and_leaves_none_when_it_fails() {
    let w = World::plain().await;
    w.seed(serde_json::json!({"name": "A", "email": "a@x.com"}));
    let dir = w.path("exp");
    std::fs::create_dir(&dir).unwrap();
    let target = dir.join("out.csv");
    let leftover = dir.join(".out.csv.k1LLed.tmp");
    std::fs::write(&leftover, "").unwrap();
    export(
        &Client::new(w.config()).unwrap(),
        &ExportOptions::new(&target).unwrap(),
    )
    .await
    .unwrap();
    assert!(!leftover.exists());
    let names: Vec<String> = snapshot(&dir).into_keys().collect();
    assert_eq!(
        names,
        [
            "out.csv",
            "out.csv.manifest.json",
            "out.csv.mapping.yaml",
            "out.csv.snapshot.sz"
        ]
    );

    let mut config = w.config();
    config.base_url = "http://127.0.0.1:9".into();
    config.max_retries = 0;
    let before = snapshot(&dir);
    let failed = export(
        &Client::new(config).unwrap(),
        &ExportOptions::new(&target).unwrap(),
    )
    .await;
    assert!(failed.is_err());
    assert_eq!(snapshot(&dir), before, "the failed export left something");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_is_bound_to_its_server_and_import_run() {
    let w = World::plain().await;
    let (run, _, _) = finished(&w, 3).await;
    let mut args = revert::Args::new(&run.run_dir);
    args.out = Some(w.path("rev"));
    let first = run_revert(&args, w.config(), true, never()).await.unwrap();
    assert_eq!(first.exit_code, 0);
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.path("rev/run.json")).unwrap()).unwrap();
    assert_eq!(rec["command"], "revert");
    assert!(rec["import_run_dir"].as_str().unwrap().ends_with("run"));
    let before = snapshot(&w.path("rev"));

    let other = World::plain().await;
    let mut again = revert::Args::new(&run.run_dir);
    again.resume = Some(w.path("rev"));
    let e = run_revert(&again, other.config(), true, never())
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("the server differs"), "{e:#}");
    let run2 = w.import(&rows(2), MAPPING, "run2", |_| {}).await;
    let mut wrong = revert::Args::new(&run2.run_dir);
    wrong.resume = Some(w.path("rev"));
    let e = run_revert(&wrong, w.config(), true, never())
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("the import run differs"), "{e:#}");
    assert_eq!(snapshot(&w.path("rev")), before);
    assert_eq!(other.sb.stats().log.len(), 0);
}
