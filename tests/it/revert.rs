//! `doto-bulk revert` against a sandbox spawned per test, after an import run in-process: the
//! pre-import state comes back (created gone, updated fields restored, added attribute keys
//! removed), a second revert writes nothing, a contact changed since is skipped unless
//! `--force`, and a dry run writes nothing.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use doto_bulk::api::{Client, ContactPatch};
use doto_bulk::cmd::revert::{Args, RevertRun, run_revert};
use doto_bulk::sandbox::route;
use serde_json::{Value, json};

use crate::import::{HEADER, MAPPING, World, ctrl_c_exits_130};

/// The fields an import may touch, by email; `ignore` lists `custom_attributes.k` keys to drop.
fn state(w: &World, ignore: &[(&str, &str)]) -> BTreeMap<String, Value> {
    w.by_email()
        .into_iter()
        .map(|(email, c)| {
            let mut custom = c["custom_attributes"].clone();
            for (e, k) in ignore {
                if *e == email {
                    custom.as_object_mut().unwrap().remove(*k);
                }
            }
            let v = json!({"id": c["id"], "name": c["name"], "identifier": c["identifier"],
                "custom": custom, "city": c["additional_attributes"]["city"]});
            (email, v)
        })
        .collect()
}

/// An interrupt flag nobody sets.
fn never() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// DELETE / PATCH / POST requests received so far.
pub fn all_writes(w: &World) -> u64 {
    let s = w.sb.stats();
    w.writes()
        + s.count("DELETE", route::CONTACT)
        + s.count("DELETE", route::NOTE)
        + s.count("POST", route::DESTROY_CUSTOM_ATTRIBUTES)
}

async fn revert(w: &World, import_dir: &str, out: &str, tune: impl FnOnce(&mut Args)) -> RevertRun {
    let mut args = Args::new(&w.path(import_dir));
    args.out = Some(w.path(out));
    tune(&mut args);
    run_revert(&args, w.config(), true, never()).await.unwrap()
}

/// Bob and Dan exist; the import creates Ann, changes Bob's plan and name, and gives Dan a plan
/// key he did not have.
async fn imported() -> (World, BTreeMap<String, Value>) {
    let w = World::plain().await;
    w.seed(
        json!({"name": "Bob", "email": "bob@x.com", "identifier": "B",
        "custom_attributes": {"plan": "free"}, "additional_attributes": {"city": "Lyon"}}),
    );
    w.seed(
        json!({"name": "Dan", "email": "dan@x.com", "identifier": "D",
        "additional_attributes": {"city": "Rome"}}),
    );
    let before = state(&w, &[]);
    let csv = format!(
        "{HEADER}Ann,ann@x.com,A,free,Paris\n\
         Robert,bob@x.com,B,gold,Lyon\n\
         Dan,dan@x.com,D,pro,Rome\n"
    );
    let run = w.import(&csv, MAPPING, "imp", |_| {}).await;
    assert_eq!(run.exit_code, 0);
    assert_eq!(run.summary.outcomes["created"], 1);
    assert_eq!(run.summary.outcomes["updated"], 2);
    assert_ne!(state(&w, &[]), before);
    (w, before)
}

/// Seeds `n` contacts and returns a CSV that updates each of them and creates `n` new ones.
fn updates_and_creates(w: &World, n: usize) -> String {
    let mut csv = HEADER.to_owned();
    for i in 0..n {
        w.seed(
            json!({"name": format!("Old{i}"), "email": format!("old{i}@x.com"),
            "identifier": format!("O{i}"), "custom_attributes": {"plan": "free"},
            "additional_attributes": {"city": "Lyon"}}),
        );
        csv.push_str(&format!("New{i},old{i}@x.com,O{i},gold,Lyon\n"));
        csv.push_str(&format!("Made{i},new{i}@x.com,N{i},pro,Oslo\n"));
    }
    csv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_restores_the_state_before_the_import_and_a_second_run_writes_nothing() {
    let (w, before) = imported().await;
    let r = revert(&w, "imp", "rev", |_| {}).await;
    assert_eq!(r.exit_code, 0);
    assert_eq!(r.counts.get("deleted"), Some(&1));
    assert_eq!(r.counts.get("restored"), Some(&2));
    // Dan's plan key did not exist before: it is removed (destroy_custom_attributes).
    let dan = before["dan@x.com"]["id"].as_u64().unwrap();
    let dan = r.results.iter().find(|x| x.contact_id == dan).unwrap();
    assert_eq!((dan.action.as_str(), dan.left.as_str()), ("restored", ""));
    assert_eq!(state(&w, &[]), before);
    let csv = std::fs::read_to_string(w.path("rev").join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(w.path("rev").join("summary.json").is_file());
    assert_eq!(
        std::fs::read_to_string(w.path("rev").join("journal.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );

    w.sb.reset_stats();
    let again = revert(&w, "imp", "rev2", |_| {}).await;
    assert_eq!(again.exit_code, 0);
    assert_eq!(again.writes, 0);
    assert_eq!(all_writes(&w), 0);
    // Nothing was left to do: every contact is reported unchanged.
    assert_eq!(
        again.counts.get("unchanged"),
        Some(&3),
        "{:?}",
        again.counts
    );
    assert_eq!(state(&w, &[]), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_changed_after_the_import_is_skipped_unless_forced() {
    let (w, before) = imported().await;
    let bob = before["bob@x.com"]["id"].as_u64().unwrap();
    let client = Client::new(w.config()).unwrap();
    let patch = ContactPatch {
        name: Some(Some("Bobby".into())),
        ..ContactPatch::default()
    };
    client.contacts().update(bob, &patch).await.unwrap();

    let r = revert(&w, "imp", "rev", |_| {}).await;
    // A contact skipped is not as before the import: exit 3.
    assert_eq!(r.exit_code, 3);
    let skipped: Vec<_> = r.results.iter().filter(|x| x.action == "skipped").collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].contact_id, bob);
    assert!(skipped[0].reason.contains("name"), "{}", skipped[0].reason);
    assert_eq!(w.by_email()["bob@x.com"]["name"], "Bobby");
    assert_eq!(
        w.by_email()["bob@x.com"]["custom_attributes"]["plan"],
        "gold"
    );

    let forced = revert(&w, "imp", "rev2", |a| a.force = true).await;
    assert_eq!(forced.exit_code, 0);
    assert_eq!(forced.counts.get("skipped"), None);
    assert_eq!(state(&w, &[]), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_writes_nothing_and_says_what_it_would_do() {
    let (w, before) = imported().await;
    let after_import = state(&w, &[]);
    w.sb.reset_stats();
    let r = revert(&w, "imp", "dry", |a| a.dry_run = true).await;
    assert_eq!(r.exit_code, 0);
    assert_eq!(all_writes(&w), 0);
    assert_eq!(state(&w, &[]), after_import);
    assert_eq!(r.counts.get("would_delete"), Some(&1));
    // Bob's fields and Dan's added key.
    assert_eq!(r.counts.get("would_restore"), Some(&2));
    assert!(!w.path("dry").join("journal.jsonl").exists());
    // The real run afterwards still restores everything.
    revert(&w, "imp", "rev", |_| {}).await;
    assert_eq!(state(&w, &[]), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_journal_is_fatal_and_resume_skips_finished_contacts() {
    let (w, before) = imported().await;
    let mut args = Args::new(&w.path("nowhere"));
    args.out = Some(w.path("x"));
    let err = run_revert(&args, w.config(), true, never())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("journal.jsonl"), "{err}");

    let first = revert(&w, "imp", "rev", |_| {}).await;
    // Ann's DELETE, Bob's PATCH, the removal of Dan's added key.
    assert_eq!(first.writes, 3);
    w.sb.reset_stats();
    let mut args = Args::new(&w.path("imp"));
    args.resume = Some(w.path("rev"));
    let resumed = run_revert(&args, w.config(), true, never()).await.unwrap();
    // The journal's results, not looked up again.
    assert_eq!(resumed.counts, first.counts);
    assert_eq!(resumed.exit_code, 0);
    assert_eq!(all_writes(&w), 0);
    assert_eq!(w.sb.stats().count("GET", route::CONTACT), 0);
    assert_eq!(state(&w, &[]), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_hit_by_faults_then_resumed_ends_in_the_state_before_the_import() {
    use doto_bulk::sandbox::{FaultKind, Faults, SandboxConfig};
    // Writes committed but answered with a 500 or a closed connection: outcomes unknown.
    let w = World::new(SandboxConfig {
        faults: Faults {
            rate: 0.3,
            kinds: vec![FaultKind::After, FaultKind::Drop, FaultKind::Before],
            seed: 7,
            burst_len: 2,
        },
        ..SandboxConfig::default()
    })
    .await;
    let csv = updates_and_creates(&w, 30);
    let before = state(&w, &[]);
    let run = w.import(&csv, MAPPING, "imp", |_| {}).await;
    assert_eq!(run.exit_code, 0, "{:?}", run.summary.outcomes);
    assert_ne!(state(&w, &[]), before);

    let first = revert(&w, "imp", "rev", |_| {}).await;
    let faults: u64 = w.sb.stats().faults.values().sum();
    assert!(faults > 0, "the faults fired");
    let mut args = Args::new(&w.path("imp"));
    args.resume = Some(w.path("rev"));
    let resumed = run_revert(&args, w.config(), true, never()).await.unwrap();
    assert_eq!(
        resumed.exit_code, 0,
        "{:?} then {:?}",
        first.counts, resumed.counts
    );
    assert_eq!(state(&w, &[]), before);
}

/// `doto-bulk revert IMPORT_DIR EXTRA… -q` against the world's sandbox, stderr piped.
pub fn spawn_revert(
    w: &World,
    import_dir: &str,
    extra: &[&std::ffi::OsStr],
) -> std::process::Child {
    use std::process::{Command, Stdio};
    Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
        .arg("revert")
        .arg(w.path(import_dir))
        .args(extra)
        .args(["--base-url", &w.sb.base_url])
        .args(["--account-id", &w.sb.account_id.to_string()])
        .arg("-q")
        .env("DOTO_API_TOKEN", &w.sb.admin_token)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A world with latency (so that a signal lands amid the revert's writes) after an import of
/// `n` updates and `n` creates; returns it with the state before the import.
async fn slow_imported(n: usize) -> (World, BTreeMap<String, Value>) {
    use std::time::Duration;

    use doto_bulk::sandbox::SandboxConfig;
    let w = World::new(SandboxConfig {
        latency: Duration::from_millis(15),
        ..SandboxConfig::default()
    })
    .await;
    let csv = updates_and_creates(&w, n);
    let before = state(&w, &[]);
    let run = w.import(&csv, MAPPING, "imp", |_| {}).await;
    assert_eq!(run.exit_code, 0, "{:?}", run.summary.outcomes);
    assert_ne!(state(&w, &[]), before);
    (w, before)
}

/// Wait until the revert `child` has sent `n` more writes than `from` (it must still run).
pub fn wait_for_writes(w: &World, child: &mut std::process::Child, from: u64, n: u64) {
    use std::time::{Duration, Instant};
    let started = Instant::now();
    while all_writes(w) < from + n {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the revert never got going"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the revert finished before it could be stopped"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_killed_midway_and_resumed_ends_in_the_state_before_the_import() {
    let (w, before) = slow_imported(25).await;
    let rev = w.path("rev");
    let writes_before = all_writes(&w);
    let mut child = spawn_revert(&w, "imp", &["--out".as_ref(), rev.as_os_str()]);
    wait_for_writes(&w, &mut child, writes_before, 15);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done_at_kill = all_writes(&w) - writes_before;
    assert!(
        done_at_kill < 50,
        "killed too late to prove anything ({done_at_kill} writes)"
    );
    assert_ne!(state(&w, &[]), before, "the kill left work to resume");

    let out = spawn_revert(&w, "imp", &["--resume".as_ref(), rev.as_os_str()])
        .wait_with_output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(state(&w, &[]), before);

    // And a revert of the same import run again changes nothing.
    let writes = all_writes(&w);
    let again = revert(&w, "imp", "rev2", |_| {}).await;
    assert_eq!(again.exit_code, 0);
    assert_eq!(all_writes(&w), writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_a_revert_with_130_its_reports_flushed_and_resume_finishes_it() {
    let (w, before) = slow_imported(25).await;
    let rev = w.path("rev");
    let writes_before = all_writes(&w);
    let mut child = spawn_revert(
        &w,
        "imp",
        &[
            "--out".as_ref(),
            rev.as_os_str(),
            "--concurrency".as_ref(),
            "2".as_ref(),
        ],
    );
    wait_for_writes(&w, &mut child, writes_before, 10);
    ctrl_c_exits_130(child);
    assert_ne!(state(&w, &[]), before, "Ctrl-C left work to resume");
    // Every contact finished before the stop is in the reports and the journal.
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(rev.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["stopped"], "interrupted");
    let reverted = summary["contacts"].as_u64().unwrap();
    assert!(reverted > 0 && reverted < 50, "{summary}");
    let csv = std::fs::read_to_string(rev.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count() as u64, reverted + 1);
    let journal = std::fs::read_to_string(rev.join("journal.jsonl")).unwrap();
    assert_eq!(journal.lines().count() as u64, reverted);
    assert!(summary["finished_at"].as_str() >= summary["started_at"].as_str());

    let mut args = Args::new(&w.path("imp"));
    args.resume = Some(rev);
    let resumed = run_revert(&args, w.config(), true, never()).await.unwrap();
    assert_eq!(resumed.exit_code, 0, "{:?}", resumed.counts);
    assert_eq!(resumed.stopped, None);
    let from_journal = resumed.results.iter();
    let from_journal = from_journal.filter(|r| r.reason.ends_with("(done before the resume)"));
    assert_eq!(from_journal.count() as u64, reverted);
    assert_eq!(resumed.counts.get("skipped"), None);
    assert_eq!(state(&w, &[]), before);
}
