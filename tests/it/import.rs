//! `doto-bulk import` against a fresh sandbox per test: what the server stores and what it
//! received (created / updated / unchanged, a second import writing nothing, in-file duplicates in
//! order, conflicts, dry run, both lookup strategies agreeing, faults and 429 bursts without a
//! duplicate, an interrupted run resumed). The kill test (the binary, SIGKILL) is in `import/kill.rs`.
mod kill;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use doto_bulk::api::{ApiToken, ClientConfig, RateLimit};
use doto_bulk::cmd::import::{Args, ImportRun, run_import};
use doto_bulk::exit::Stop;
use doto_bulk::pipeline::lookup::Strategy;
use doto_bulk::sandbox::{self, FaultKind, Faults, SandboxConfig, SandboxHandle, route};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const MAPPING: &str = r#"version: 1
match:
  on: [email, identifier]
fields:
  name: Name
  email: Email
  identifier: ID
custom_attributes:
  plan: Plan
additional_attributes:
  city: City
"#;

pub const MAPPING_WITH_NOTE: &str = r#"version: 1
match:
  on: [email, identifier]
fields:
  name: Name
  email: Email
  identifier: ID
custom_attributes:
  plan: Plan
additional_attributes:
  city: City
notes:
  - { template: "imported {ID}" }
"#;

pub const HEADER: &str = "Name,Email,ID,Plan,City\n";

pub struct World {
    pub dir: TempDir,
    pub sb: SandboxHandle,
}

impl World {
    pub async fn new(cfg: SandboxConfig) -> World {
        World {
            dir: tempfile::tempdir().unwrap(),
            sb: sandbox::spawn(cfg).await.unwrap(),
        }
    }

    pub async fn plain() -> World {
        World::new(SandboxConfig::default()).await
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    /// A client fast enough for tests: no pacing to speak of, 100 ms windows after a 429.
    pub fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(
            self.sb.base_url.clone(),
            self.sb.account_id,
            ApiToken::new(self.sb.admin_token.clone()).unwrap(),
        );
        c.rate = RateLimit::per_second(5000);
        c.search_rate = RateLimit::per_second(5000);
        c.window = Duration::from_millis(100);
        c.backoff_base = Duration::from_millis(5);
        c.backoff_max = Duration::from_millis(50);
        c.max_retries = 8;
        c
    }

    pub fn seed(&self, contact: Value) -> u64 {
        self.sb
            .state()
            .insert_contact(self.sb.account_id, &contact)
            .unwrap()
    }

    /// Import `csv` with `mapping` into the run directory `out`; `tune` adjusts the arguments.
    pub async fn import(
        &self,
        csv: &str,
        mapping: &str,
        out: &str,
        tune: impl FnOnce(&mut Args),
    ) -> ImportRun {
        let file = self.write(&format!("{out}.csv"), csv);
        let map = self.write(&format!("{out}.yaml"), mapping);
        self.import_file(&file, &map, out, |a| {
            a.concurrency = doto_bulk::api::Concurrency::Fixed(8);
            tune(a);
        })
        .await
    }

    /// Import the file `file` with the mapping file `map` into the run directory `out` (the
    /// client's defaults); `tune` adjusts the arguments. A run that cannot start panics.
    pub async fn import_file(
        &self,
        file: &std::path::Path,
        map: &std::path::Path,
        out: &str,
        tune: impl FnOnce(&mut Args),
    ) -> ImportRun {
        let mut args = Args::new(file, map);
        args.out = Some(self.path(out));
        tune(&mut args);
        run_import(&args, self.config(), true, Arc::new(AtomicBool::new(false)))
            .await
            .unwrap_or_else(|e| panic!("{}: {e:#}", file.display()))
    }

    /// Contacts stored in the account, by email.
    pub fn by_email(&self) -> BTreeMap<String, Value> {
        self.sb
            .contacts()
            .into_iter()
            .filter(|c| {
                c["account_id"]
                    .as_u64()
                    .is_none_or(|a| a == self.sb.account_id)
            })
            .filter_map(|c| Some((c["email"].as_str()?.to_owned(), c)))
            .collect()
    }

    /// POST / PATCH requests on contacts and notes received so far.
    pub fn writes(&self) -> u64 {
        let s = self.sb.stats();
        s.count("POST", route::CONTACTS)
            + s.count("PATCH", route::CONTACT)
            + s.count("PUT", route::CONTACT)
            + s.count("POST", route::NOTES)
    }
}

pub fn outcome(run: &ImportRun, name: &str) -> u64 {
    run.summary.outcomes.get(name).copied().unwrap_or(0)
}

/// results.csv as `_row` → (action, contact_id).
pub fn results(run: &Path) -> BTreeMap<u64, (String, String)> {
    let mut r = csv::Reader::from_path(run.join("results.csv")).unwrap();
    r.records()
        .map(|x| {
            let x = x.unwrap();
            (x[0].parse().unwrap(), (x[1].to_owned(), x[2].to_owned()))
        })
        .collect()
}

/// Send Ctrl-C (SIGINT) to the binary running as `child` and wait for it: it must exit 130.
pub fn ctrl_c_exits_130(child: std::process::Child) -> std::process::Output {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_creates_updates_and_leaves_unchanged_as_the_server_stores_them() {
    let w = World::plain().await;
    let bob = w.seed(
        json!({"name": "Bob", "email": "bob@x.com", "identifier": "B",
        "custom_attributes": {"plan": "free"}, "additional_attributes": {"city": "Lyon"}}),
    );
    let cat = w.seed(
        json!({"name": "Cat", "email": "cat@x.com", "identifier": "C",
        "custom_attributes": {"plan": "gold"},
        // A key the server added itself: not the import's business.
        "additional_attributes": {"city": "Oslo", "avatar_url_hash": "abc"}}),
    );
    let csv = format!(
        "{HEADER}Ann,ann@x.com,A,free,Paris\n\
         Bob,BOB@x.com,B,gold,Lyon\n\
         Cat,cat@x.com,C,gold,Oslo\n\
         Dan,not-an-email,,free,Rome\n"
    );
    let run = w.import(&csv, MAPPING, "run", |_| {}).await;
    assert_eq!(outcome(&run, "created"), 1);
    assert_eq!(outcome(&run, "updated"), 1);
    assert_eq!(outcome(&run, "unchanged"), 1);
    assert_eq!(outcome(&run, "invalid"), 1);
    assert_eq!(run.summary.rows_read, 4);
    assert_eq!(run.summary.outcomes.values().sum::<u64>(), 4);
    assert_eq!(run.exit_code, 3);

    let stored = w.by_email();
    assert_eq!(stored.len(), 3);
    assert_eq!(stored["ann@x.com"]["identifier"], "A");
    assert_eq!(
        stored["ann@x.com"]["additional_attributes"]["city"],
        "Paris"
    );
    assert_eq!(stored["bob@x.com"]["custom_attributes"]["plan"], "gold");
    assert_eq!(stored["bob@x.com"]["id"], bob);
    assert_eq!(stored["cat@x.com"]["id"], cat);
    // One create, one update (only the changed attribute), nothing for Cat.
    let s = w.sb.stats();
    assert_eq!(s.count("POST", route::CONTACTS), 1);
    assert_eq!(s.count("PATCH", route::CONTACT), 1);
    let res = results(&run.run_dir);
    assert_eq!(res[&3], ("updated".into(), bob.to_string()));
    assert_eq!(res[&4], ("unchanged".into(), cat.to_string()));
    assert_eq!(res[&5].0, "invalid");
    // The update is journaled with the value it replaced.
    let journal = std::fs::read_to_string(run.run_dir.join("journal.jsonl")).unwrap();
    let update: Value = journal
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["op"] == "update")
        .unwrap();
    assert_eq!(update["contact_id"], bob);
    assert_eq!(update["before"]["custom_attributes.plan"], "free");
    assert_eq!(update["after"]["custom_attributes.plan"], "gold");
    // failures.csv keeps the row's own columns.
    let failures = std::fs::read_to_string(run.run_dir.join("failures.csv")).unwrap();
    assert!(
        failures.contains("Dan,not-an-email,,free,Rome,5,invalid_email"),
        "{failures}"
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(run.run_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["requests"]["by_kind"]["create"], 1);
    assert_eq!(summary["outcomes"]["created"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_the_same_file_twice_makes_no_write_the_second_time() {
    let w = World::plain().await;
    let mut csv = HEADER.to_owned();
    for i in 0..40 {
        csv.push_str(&format!("P{i},p{i}@x.com,id-{i},plan{},City{i}\n", i % 3));
    }
    let first = w.import(&csv, MAPPING_WITH_NOTE, "one", |_| {}).await;
    assert_eq!(outcome(&first, "created"), 40);
    assert_eq!(first.exit_code, 0);
    let writes = w.writes();
    assert_eq!(writes, 80, "40 creates and 40 notes");
    let second = w.import(&csv, MAPPING_WITH_NOTE, "two", |_| {}).await;
    assert_eq!(outcome(&second, "unchanged"), 40);
    assert_eq!(w.writes(), writes, "the second import wrote something");
    assert_eq!(w.sb.notes().len(), 40);
    assert_eq!(w.by_email().len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_sharing_a_key_are_merged_in_file_order() {
    let w = World::plain().await;
    // Lines 2, 4 and 6 are one contact (by email, then by identifier); 3 and 5 are others.
    let csv = format!(
        "{HEADER}Ann,ann@x.com,A,free,Paris\n\
         Bob,bob@x.com,B,free,Lyon\n\
         Ann,ANN@x.com,,gold,\n\
         Cy,cy@x.com,C,free,Nice\n\
         Ann Lee,,A,,Berlin\n"
    );
    let run = w
        .import(&csv, MAPPING, "run", |a| {
            a.concurrency = doto_bulk::api::Concurrency::Fixed(16)
        })
        .await;
    assert_eq!(outcome(&run, "created"), 3);
    assert_eq!(outcome(&run, "updated"), 2);
    let stored = w.by_email();
    assert_eq!(stored.len(), 3);
    let ann = &stored["ann@x.com"];
    assert_eq!(ann["name"], "Ann Lee");
    assert_eq!(ann["custom_attributes"]["plan"], "gold");
    assert_eq!(ann["additional_attributes"]["city"], "Berlin");
    assert_eq!(run.summary.duplicates_in_file, 2);
    let res = results(&run.run_dir);
    assert_eq!(res[&2].0, "created");
    assert_eq!(res[&4], ("updated".into(), res[&2].1.clone()));
    assert_eq!(res[&6], ("updated".into(), res[&2].1.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_matching_two_contacts_by_email_and_identifier_fails_as_a_conflict() {
    let w = World::plain().await;
    let a = w.seed(json!({"name": "A", "email": "a@x.com", "identifier": "IA"}));
    let b = w.seed(json!({"name": "B", "email": "b@x.com", "identifier": "IB"}));
    let csv = format!("{HEADER}Mix,a@x.com,IB,free,Lyon\nOk,c@x.com,IC,free,Lyon\n");
    let run = w.import(&csv, MAPPING, "run", |_| {}).await;
    assert_eq!(outcome(&run, "failed"), 1);
    assert_eq!(outcome(&run, "created"), 1);
    assert_eq!(run.summary.failures_by_code["conflict"], 1);
    assert_eq!(run.exit_code, 3);
    let stored = w.by_email();
    assert_eq!(stored["a@x.com"]["name"], "A");
    assert_eq!(stored["b@x.com"]["name"], "B");
    assert_eq!(w.sb.stats().count("PATCH", route::CONTACT), 0);
    let failures = std::fs::read_to_string(run.run_dir.join("failures.csv")).unwrap();
    assert!(
        failures.contains(&format!("contact {a}")) && failures.contains(&format!("contact {b}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing_and_plans_each_row() {
    let w = World::plain().await;
    let bob = w.seed(
        json!({"name": "Bob", "email": "bob@x.com", "identifier": "B",
        "custom_attributes": {"plan": "free"}}),
    );
    let csv = format!(
        "{HEADER}Ann,ann@x.com,A,free,Paris\n\
         Bob,bob@x.com,B,gold,\n\
         Ann,ann@x.com,A,gold,\n\
         bad,bad,,,\n"
    );
    let run = w
        .import(&csv, MAPPING_WITH_NOTE, "run", |a| a.dry_run = true)
        .await;
    assert_eq!(w.writes(), 0);
    assert!(w.by_email().len() == 1);
    assert_eq!(outcome(&run, "would_create"), 1);
    assert_eq!(outcome(&run, "would_update"), 2);
    assert_eq!(outcome(&run, "invalid"), 1);
    assert!(!run.run_dir.join("journal.jsonl").exists());
    let plan: Vec<Value> = std::fs::read_to_string(run.run_dir.join("plan.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(plan.len(), 3);
    assert_eq!(plan[0]["action"], "create");
    assert_eq!(plan[1]["action"], "update");
    assert_eq!(plan[1]["contact_id"], bob);
    assert_eq!(plan[1]["changes"][0]["field"], "custom_attributes.plan");
    assert_eq!(plan[1]["changes"][0]["before"], "free");
    assert_eq!(plan[1]["changes"][0]["after"], "gold");
    // Line 4 updates what line 2 would create: only the plan changes.
    assert_eq!(plan[2]["action"], "update");
    assert_eq!(plan[2]["changes"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_and_search_lookups_make_identical_decisions() {
    let w = World::new(SandboxConfig {
        seed_contacts: 120,
        seed: 7,
        ..SandboxConfig::default()
    })
    .await;
    let stored: Vec<Value> = w.sb.contacts();
    let mut csv = HEADER.to_owned();
    // Rows for seeded contacts (some by email in another case, some by identifier only), near
    // misses of them (substrings that search also returns), and new ones.
    for (i, c) in stored.iter().enumerate().take(60) {
        let email = c["email"].as_str().unwrap_or("");
        let ident = c["identifier"].as_str().unwrap_or("");
        match i % 4 {
            0 => csv.push_str(&format!("N{i},{},,gold,\n", email.to_uppercase())),
            1 if !ident.is_empty() => csv.push_str(&format!("N{i},,{ident},,\n")),
            2 if !email.is_empty() => csv.push_str(&format!("N{i},x{email},,,\n")),
            _ => csv.push_str(&format!("N{i},new{i}@x.com,new-{i},,\n")),
        }
    }
    let index = w
        .import(&csv, MAPPING, "index", |a| {
            a.dry_run = true;
            a.lookup = Strategy::Index;
        })
        .await;
    let search = w
        .import(&csv, MAPPING, "search", |a| {
            a.dry_run = true;
            a.lookup = Strategy::Search;
        })
        .await;
    let plan = |run: &ImportRun| std::fs::read_to_string(run.run_dir.join("plan.jsonl")).unwrap();
    assert_eq!(plan(&index), plan(&search));
    assert!(outcome(&index, "would_update") > 0 && outcome(&index, "would_create") > 0);
    let s = w.sb.stats();
    assert!(s.count("GET", route::SEARCH) > 0 && s.count("GET", route::CONTACTS) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_key_was_taken_meanwhile_becomes_an_update() {
    // Our create is held on the server until a contact with the same key has been inserted
    // behind the listing's back: the create gets the 422.
    let w = World::new(SandboxConfig::default()).await;
    let hold = w.sb.state().hold_after("POST", route::CONTACTS, 0);
    let csv = format!("{HEADER}Ann,ann@x.com,A,gold,Paris\n");
    let file = w.write("f.csv", &csv);
    let map = w.write("m.yaml", MAPPING);
    let mut args = Args::new(&file, &map);
    args.out = Some(w.path("run"));
    args.lookup = Strategy::Index;
    let sb = w.sb.state().clone();
    let seeder = tokio::spawn(async move {
        hold.reached().await;
        assert_eq!(
            sb.stats().count("GET", route::CONTACTS),
            1,
            "the index was read"
        );
        let id = sb
            .insert_contact(
                1,
                &json!({"name": "Ann", "email": "ann@x.com", "identifier": "A"}),
            )
            .unwrap();
        hold.release();
        id
    });
    let run = run_import(&args, w.config(), true, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    let id = seeder.await.unwrap();
    assert_eq!(w.sb.contacts().len(), 1, "a duplicate was created");
    let stored = w.by_email();
    assert_eq!(stored["ann@x.com"]["id"], id);
    assert_eq!(stored["ann@x.com"]["custom_attributes"]["plan"], "gold");
    assert_eq!(outcome(&run, "updated"), 1);
    assert_eq!(outcome(&run, "created"), 0);
    let s = w.sb.stats();
    assert_eq!(s.count_status("POST", route::CONTACTS, 422), 1);
}

/// `n` rows: the first `seeded` match contacts seeded beforehand (with another plan), the rest
/// are new; every row has a note.
fn faulty_world_rows(n: usize) -> String {
    let mut csv = HEADER.to_owned();
    for i in 0..n {
        csv.push_str(&format!(
            "Person {i},p{i}@x.com,id-{i},plan{},C{}\n",
            i % 5,
            i % 7
        ));
    }
    csv
}

fn seed_half(w: &World, n: usize) {
    for i in 0..n / 2 {
        w.seed(
            json!({"name": format!("Person {i}"), "email": format!("p{i}@x.com"),
            "identifier": format!("id-{i}"), "custom_attributes": {"plan": "old"}}),
        );
    }
}

/// Exactly one contact per row with the row's values, exactly one note per row.
fn assert_exactly_once(w: &World, n: usize) {
    let contacts: Vec<Value> = w.sb.contacts();
    assert_eq!(contacts.len(), n, "contacts stored");
    let by_email = w.by_email();
    assert_eq!(by_email.len(), n, "duplicate emails");
    for i in 0..n {
        let c = &by_email[&format!("p{i}@x.com")];
        assert_eq!(c["identifier"], format!("id-{i}"));
        assert_eq!(c["custom_attributes"]["plan"], format!("plan{}", i % 5));
    }
    let notes = w.sb.notes();
    let mut per_content: BTreeMap<String, u64> = BTreeMap::new();
    for n in &notes {
        *per_content
            .entry(n["content"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let dupes: Vec<_> = per_content.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dupes.is_empty(), "duplicate notes: {dupes:?}");
    assert_eq!(notes.len(), n, "notes stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_429_bursts_end_with_every_contact_and_note_exactly_once() {
    const N: usize = 2000;
    let w = World::new(SandboxConfig {
        // 10% of writes get before / after / drop (6 of the 7 kinds drawn); a 429 burst on top
        // for about 1.7% of writes (the client's pause after each makes more of them slow).
        faults: Faults {
            rate: 0.117,
            kinds: vec![
                FaultKind::Before,
                FaultKind::After,
                FaultKind::Drop,
                FaultKind::Before,
                FaultKind::After,
                FaultKind::Drop,
                FaultKind::Burst429,
            ],
            seed: 42,
            burst_len: 4,
        },
        ..SandboxConfig::default()
    })
    .await;
    seed_half(&w, N);
    let run = w
        .import(&faulty_world_rows(N), MAPPING_WITH_NOTE, "run", |a| {
            a.concurrency = doto_bulk::api::Concurrency::Fixed(16);
        })
        .await;
    let s = w.sb.stats();
    eprintln!(
        "faults test: {N} rows, faults injected {:?}, 429s {}, outcomes {:?}",
        s.faults, s.rate_limited, run.summary.outcomes
    );
    let write_faults: u64 = ["before", "after", "drop"]
        .iter()
        .map(|k| s.faults.get(*k).copied().unwrap_or(0))
        .sum();
    assert!(
        write_faults > 300,
        "too few faults to mean anything: {:?}",
        s.faults
    );
    assert!(s.rate_limited > 0);
    assert_exactly_once(&w, N);
    assert_eq!(outcome(&run, "created"), (N / 2) as u64);
    assert_eq!(outcome(&run, "updated"), (N / 2) as u64);
    assert_eq!(run.exit_code, 0, "{:?}", run.summary.failures_by_code);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_resumed_ends_with_every_row_exactly_once() {
    const N: usize = 400;
    let w = World::new(SandboxConfig {
        faults: Faults {
            rate: 0.05,
            kinds: vec![FaultKind::After, FaultKind::Drop],
            seed: 3,
            burst_len: 3,
        },
        ..SandboxConfig::default()
    })
    .await;
    seed_half(&w, N);
    let csv = faulty_world_rows(N);
    let file = w.write("f.csv", &csv);
    let map = w.write("m.yaml", MAPPING_WITH_NOTE);
    let mut args = Args::new(&file, &map);
    args.out = Some(w.path("run"));
    args.concurrency = doto_bulk::api::Concurrency::Fixed(8);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let sb = w.sb.state().clone();
    tokio::spawn(async move {
        loop {
            if sb.stats().count("POST", route::NOTES) >= 150 {
                flag.store(true, Ordering::Relaxed);
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let first = run_import(&args, w.config(), true, stop).await.unwrap();
    assert_eq!(first.exit_code, 130);
    assert_eq!(first.summary.stopped, Some(Stop::Interrupted));
    assert!(first.summary.rows_read < N as u64);
    let writes_before = w.writes();

    let mut resume = Args::new(&file, &map);
    resume.resume = Some(first.run_dir.clone());
    let second = run_import(&resume, w.config(), true, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(second.exit_code, 0, "{:?}", second.summary.failures_by_code);
    assert_eq!(second.summary.rows_read, N as u64);
    assert_eq!(outcome(&second, "created"), (N / 2) as u64);
    assert_eq!(outcome(&second, "updated"), (N / 2) as u64);
    assert!(w.writes() > writes_before);
    assert_exactly_once(&w, N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_invalid_rows_stop_the_run_before_any_write() {
    let w = World::plain().await;
    let csv = format!("{HEADER}A,bad1,,,\nB,bad2,,,\nC,bad3,,,\nD,d@x.com,4,,\n");
    let run = w
        .import(&csv, MAPPING, "run", |a| a.max_errors = Some(2))
        .await;
    assert_eq!(run.exit_code, 1);
    assert!(run.fatal.as_deref().unwrap().contains("--max-errors"));
    assert_eq!(run.summary.stopped, Some(Stop::MaxErrors));
    assert_eq!(w.writes(), 0);
    // The invalid rows are still reported.
    let failures = std::fs::read_to_string(run.run_dir.join("failures.csv")).unwrap();
    assert_eq!(failures.lines().count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_searches_a_few_keys_in_a_big_account_and_lists_a_small_one() {
    let w = World::new(SandboxConfig {
        seed_contacts: 3000,
        seed: 11,
        ..SandboxConfig::default()
    })
    .await;
    let csv = format!("{HEADER}Ann,ann@x.com,A,gold,\nBob,bob@x.com,B,gold,\n");
    let mut cfg_rows = String::new();
    let run = w.import(&csv, MAPPING, "few", |_| {}).await;
    assert_eq!(run.lookup, Strategy::Search);
    let choice: Value =
        serde_json::from_slice(&std::fs::read(run.run_dir.join("lookup.json")).unwrap()).unwrap();
    assert_eq!(choice["strategy"], "search");
    assert!(choice["index_requests"].as_u64().unwrap() > 150, "{choice}");
    assert!(
        choice["reason"]
            .as_str()
            .unwrap()
            .contains("search is cheaper")
    );
    // One listing page (to learn the total), no paging through the account.
    assert_eq!(w.sb.stats().count("GET", route::CONTACTS), 1);
    assert_eq!(outcome(&run, "created"), 2);

    // Many keys for the same account: the index.
    for i in 0..400 {
        cfg_rows.push_str(&format!("P{i},p{i}@x.com,P{i},,\n"));
    }
    let run = w
        .import(&format!("{HEADER}{cfg_rows}"), MAPPING, "many", |a| {
            a.dry_run = true;
        })
        .await;
    assert_eq!(run.lookup, Strategy::Index);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_times_span_the_whole_run() {
    // Latency makes the run last long enough to tell its start from its end.
    let w = World::new(SandboxConfig {
        latency: Duration::from_millis(20),
        ..SandboxConfig::default()
    })
    .await;
    let mut csv = HEADER.to_owned();
    for i in 0..8 {
        csv.push_str(&format!("N{i},n{i}@x.com,I{i},free,Oslo\n"));
    }
    let called = chrono::Utc::now();
    let run = w
        .import(&csv, MAPPING, "run", |a| {
            a.concurrency = doto_bulk::api::Concurrency::Fixed(1)
        })
        .await;
    let returned = chrono::Utc::now();
    assert_eq!(run.exit_code, 0);
    let s: Value =
        serde_json::from_slice(&std::fs::read(run.run_dir.join("summary.json")).unwrap()).unwrap();
    let at = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(s[k].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let (started, finished) = (at("started_at"), at("finished_at"));
    // Millisecond timestamps: within the call, in order.
    let ms = chrono::Duration::milliseconds(1);
    assert!(called - ms <= started && finished <= returned + ms, "{s}");
    let elapsed = s["elapsed_s"].as_f64().unwrap();
    assert!(elapsed > 0.1, "the run took {elapsed} s");
    let span = (finished - started).num_milliseconds() as f64 / 1000.0;
    assert!(
        span >= elapsed - 0.05,
        "started_at..finished_at is {span} s, the run {elapsed} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_cannot_be_read_to_its_end_is_not_imported_and_exits_1() {
    let w = World::plain().await;
    let file = w.path("cut.xlsx");
    crate::source::cut_xlsx(&file, 30, 12);
    let map = w.write(
        "m.yaml",
        "version: 1\nfields:\n  name: Name\n  email: Email\n  identifier: ID\n",
    );
    let mut args = Args::new(&file, &map);
    args.out = Some(w.path("run"));
    let run = run_import(&args, w.config(), true, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(run.exit_code, 1);
    assert!(
        matches!(run.summary.stopped, Some(Stop::ReadError(_))),
        "{:?}",
        run.summary.stopped
    );
    let fatal = run.fatal.as_deref().unwrap();
    assert!(
        fatal.contains("reading failed at row 12") && fatal.contains("nothing was imported"),
        "{fatal}"
    );
    let e = run.summary.read_error.as_deref().unwrap();
    assert!(e.contains("cut.xlsx"), "{e}");
    assert_eq!(w.writes(), 0, "a file read in part is not imported");
    assert!(run.run_dir.join("summary.json").exists());
}
