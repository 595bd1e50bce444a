//! Identity (issue 13): an identifier is a person (an email match with another identifier is a
//! conflict, against the account and inside one file); phones are unique, so rows sharing one run
//! in file order and the first wins, every run; a 422 naming only the phone sends no search;
//! searches throttled by their own limit do not hold the writes back; notes are added once.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use doto_bulk::api::Client;
use doto_bulk::mapping::{IdentifierChange, PhoneInUse};
use doto_bulk::model::{ErrorCode, Outcome};
use doto_bulk::pipeline::engine::{Engine, EngineOptions, RowResult};
use doto_bulk::pipeline::import::read_rows;
use doto_bulk::pipeline::input::Input;
use doto_bulk::pipeline::journal::Ledger;
use doto_bulk::pipeline::lookup::{Strategy, look_up};
use doto_bulk::pipeline::plan::{Mode, Policy};
use doto_bulk::sandbox::{FaultKind, Faults, RateLimits, SandboxConfig, route};
use serde_json::{Value, json};

use crate::import::{HEADER, MAPPING, MAPPING_WITH_NOTE, World, outcome, results};

pub const PHONE_MAPPING: &str = r#"version: 1
match:
  on: [email, identifier]
fields:
  name: Name
  email: Email
  identifier: ID
  phone_number: Phone
"#;

const PHONE_HEADER: &str = "Name,Email,ID,Phone\n";

/// failures.csv as `_row` → (error code, message).
fn failures(run: &std::path::Path) -> BTreeMap<u64, (String, String)> {
    let mut r = csv::Reader::from_path(run.join("failures.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (row, code, msg) = (col("_row"), col("_error_code"), col("_error_message"));
    r.records()
        .map(|x| {
            let x = x.unwrap();
            let line = x[row].parse().unwrap();
            (line, (x[code].to_owned(), x[msg].to_owned()))
        })
        .collect()
}

/// The write phase of an import of `csv` run directly (no journal, index lookup), every row's
/// result in file order: what the reports are made of, warnings included.
async fn engine_results(w: &World, csv: &str, mapping: &str, policy: Policy) -> Vec<RowResult> {
    let file = w.write("engine.csv", csv);
    let map = w.write("engine.yaml", mapping);
    let input = Input::open(&file, &map).unwrap();
    let keys = input.match_keys().to_vec();
    let rows = read_rows(input.source, input.resolved, &keys, || {});
    let client = Client::new(w.config()).unwrap();
    let lookup = look_up(&client, Strategy::Index, &rows.keys(), 4, true)
        .await
        .unwrap();
    let opts = EngineOptions {
        policy,
        dry_run: false,
        max_errors: None,
        interrupt: Arc::new(AtomicBool::new(false)),
        concurrency: 8,
    };
    let engine = Engine::new(client, lookup.known, None, Ledger::default(), opts);
    let mut out = Vec::new();
    engine
        .run_stream(futures::stream::iter(rows.rows), |r| {
            out.push(r);
            Ok(())
        })
        .await;
    out.sort_by_key(|r| r.idx);
    out
}

fn policy(identifier_change: IdentifierChange, phone_in_use: PhoneInUse) -> Policy {
    Policy {
        existing: doto_bulk::mapping::ExistingPolicy::Update,
        missing: doto_bulk::mapping::MissingPolicy::Create,
        mode: Mode::Upsert,
        identity: doto_bulk::mapping::IdentityPolicy {
            identifier_change,
            phone_in_use,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_matching_a_contact_with_another_identifier_is_a_conflict() {
    let w = World::plain().await;
    let ann = w.seed(json!({"name": "Ann", "email": "ann@x.com", "identifier": "A1"}));
    let bob = w.seed(json!({"name": "Bob", "email": "bob@x.com", "identifier": "B1"}));
    let cat = w.seed(json!({"name": "Cat", "email": "cat@x.com"}));
    let csv = format!(
        "{HEADER}Ann Other,ann@x.com,A2,gold,Paris\n\
         Bob New,bob@x.com,,gold,Lyon\n\
         Cat,cat@x.com,C1,free,Oslo\n"
    );
    let run = w.import(&csv, MAPPING, "run", |_| {}).await;
    assert_eq!(outcome(&run, "failed"), 1);
    assert_eq!(outcome(&run, "updated"), 2);
    let (code, message) = &failures(&run.run_dir)[&2];
    assert_eq!(code, "identifier_conflict");
    for part in [&ann.to_string(), "\"A1\"", "\"A2\""] {
        assert!(message.contains(part), "{message}");
    }
    let stored = w.by_email();
    // Not written at all: the identifier and the name stay.
    assert_eq!(stored["ann@x.com"]["identifier"], "A1");
    assert_eq!(stored["ann@x.com"]["name"], "Ann");
    // A blank identifier on the row, or on the contact, is no conflict.
    assert_eq!(stored["bob@x.com"]["identifier"], "B1");
    assert_eq!(stored["bob@x.com"]["name"], "Bob New");
    assert_eq!(stored["cat@x.com"]["identifier"], "C1");
    assert_eq!(
        (
            stored["bob@x.com"]["id"].as_u64(),
            stored["cat@x.com"]["id"].as_u64()
        ),
        (Some(bob), Some(cat))
    );

    // The mapping may allow it.
    let overwrite = MAPPING.replace("match:\n", "match:\n  identifier_change: overwrite\n");
    let run = w.import(&csv, &overwrite, "overwrite", |_| {}).await;
    assert_eq!(outcome(&run, "failed"), 0);
    assert_eq!(w.by_email()["ann@x.com"]["identifier"], "A2");
    assert_eq!(w.by_email()["ann@x.com"]["id"], ann);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_one_file_the_second_identifier_for_an_email_is_the_conflict() {
    let w = World::plain().await;
    let csv = format!(
        "{HEADER}Pat,pat@x.com,R1,free,Paris\n\
         Pat Two,pat@x.com,R2,gold,Lyon\n\
         Pat,PAT@x.com,R1,gold,Paris\n"
    );
    // A dry run sees the same conflict, with the contact row 2 would create.
    let plan = w.import(&csv, MAPPING, "plan", |a| a.dry_run = true).await;
    let (code, message) = &failures(&plan.run_dir)[&3];
    assert_eq!(code, "identifier_conflict");
    assert!(
        message.contains("the contact an earlier row creates"),
        "{message}"
    );
    assert!(w.sb.contacts().is_empty());
    for (i, out) in ["one", "two"].into_iter().enumerate() {
        let run = w.import(&csv, MAPPING, out, |_| {}).await;
        let res = results(&run.run_dir);
        // The second time, row 2 puts its plan back and row 4 its own again.
        let first = if i == 0 { "created" } else { "updated" };
        assert_eq!(res[&2].0, first, "{out}");
        assert_eq!(res[&3].0, "failed", "{out}");
        assert_eq!(res[&4].0, "updated", "{out}");
        assert_eq!(failures(&run.run_dir)[&3].0, "identifier_conflict");
        // One person, one contact: never split, never re-identified.
        let stored = w.by_email();
        assert_eq!(w.sb.contacts().len(), 1, "{out}");
        assert_eq!(stored["pat@x.com"]["identifier"], "R1");
        assert_eq!(stored["pat@x.com"]["custom_attributes"]["plan"], "gold");
    }
}

/// Rows sharing phones (families, a switchboard), one phone held by a contact of the account.
fn shared_phone_rows() -> String {
    let mut csv = PHONE_HEADER.to_owned();
    for i in 0..24 {
        // Rows 2k and 2k + 1 share a phone.
        let phone = format!("+3361234{:04}", i / 2);
        csv.push_str(&format!("P{i},p{i}@x.com,id-{i},{phone}\n"));
    }
    csv.push_str("Late,late@x.com,id-late,+33699999999\n");
    csv
}

/// email → phone of every stored contact.
fn phones(w: &World) -> BTreeMap<String, Value> {
    w.by_email()
        .into_iter()
        .map(|(e, c)| (e, c["phone_number"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_sharing_a_phone_the_first_in_file_order_wins_every_run() {
    let mut first_state = None;
    for run_no in 0..20 {
        let w = World::new(SandboxConfig {
            // A create racing another with the same phone would pass the check.
            race_window: Duration::from_millis(5),
            ..SandboxConfig::default()
        })
        .await;
        let holder = w.seed(json!({"name": "Switchboard", "email": "sb@x.com",
            "phone_number": "+33699999999"}));
        let run = w
            .import(&shared_phone_rows(), PHONE_MAPPING, "run", |a| {
                a.concurrency = doto_bulk::api::Concurrency::Fixed(8);
            })
            .await;
        assert_eq!(outcome(&run, "created"), 25, "run {run_no}");
        assert_eq!(run.exit_code, 0, "run {run_no}");
        let state = phones(&w);
        for i in 0..24 {
            let want = match i % 2 {
                0 => json!(format!("+3361234{:04}", i / 2)),
                _ => Value::Null,
            };
            assert_eq!(state[&format!("p{i}@x.com")], want, "run {run_no}, row {i}");
        }
        assert_eq!(state["late@x.com"], Value::Null);
        assert_eq!(state["sb@x.com"], "+33699999999");
        assert_eq!(w.by_email()["sb@x.com"]["id"], holder);
        match &first_state {
            None => first_state = Some(state),
            Some(s) => assert_eq!(s, &state, "run {run_no} differs from the first"),
        }
        if run_no == 19 {
            // Imported again into the same account: the phones' holders are known, nothing
            // is written and nothing moves.
            let writes = w.writes();
            let again = w
                .import(&shared_phone_rows(), PHONE_MAPPING, "again", |_| {})
                .await;
            assert_eq!(outcome(&again, "unchanged"), 25);
            assert_eq!(w.writes(), writes);
            assert_eq!(Some(phones(&w)), first_state);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_in_use_is_left_out_with_a_warning_naming_its_holder_or_fails_the_row() {
    let w = World::plain().await;
    let holder = w.seed(json!({"name": "Switchboard", "email": "sb@x.com",
        "phone_number": "+33699999999"}));
    let csv = format!(
        "{PHONE_HEADER}Ann,ann@x.com,A,+33611111111\n\
         Ben,ben@x.com,B,+33611111111\n\
         Cat,cat@x.com,C,+33699999999\n"
    );
    let drop = policy(IdentifierChange::Conflict, PhoneInUse::Drop);
    let r = engine_results(&w, &csv, PHONE_MAPPING, drop).await;
    assert!(r[0].warnings.is_empty(), "{:?}", r[0].warnings);
    // Ben shares Ann's phone: named by her row (line 2), the holder of the account by its id.
    for (res, by) in [
        (&r[1], "the contact of row 2".to_owned()),
        (&r[2], format!("contact {holder}")),
    ] {
        assert_eq!(res.outcome, Outcome::Created);
        assert_eq!(res.warnings.len(), 1, "{:?}", res.warnings);
        let warning = &res.warnings[0];
        assert_eq!(warning.code, ErrorCode::PhoneInUse);
        assert_eq!(warning.field.as_deref(), Some("phone_number"));
        assert!(warning.message.contains(&by), "{warning}");
    }
    assert_eq!(r[1].warnings[0].original, "+33611111111");
    // Nothing was sent with a phone someone holds.
    let s = w.sb.stats();
    assert_eq!(s.count_status("POST", route::CONTACTS, 422), 0);

    // `on_phone_in_use: fail`: the row fails instead.
    let w = World::plain().await;
    w.seed(json!({"name": "Switchboard", "email": "sb@x.com", "phone_number": "+33699999999"}));
    let fail = policy(IdentifierChange::Conflict, PhoneInUse::Fail);
    let r = engine_results(&w, &csv, PHONE_MAPPING, fail).await;
    assert_eq!(r[1].errors[0].code, ErrorCode::PhoneInUse);
    assert_eq!(r[2].errors[0].code, ErrorCode::PhoneInUse);
    assert_eq!(w.by_email().len(), 2, "only Ann was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_422_naming_only_the_phone_sends_no_search() {
    let w = World::plain().await;
    w.seed(json!({"name": "Switchboard", "email": "sb@x.com", "phone_number": "+33699999999"}));
    let yan = w.seed(json!({"name": "Yan", "email": "yan@x.com"}));
    // Search lookup: the account's phones are unknown, only the server can say one is taken.
    let csv = format!(
        "{PHONE_HEADER}New,new@x.com,,+33699999999\n\
         Yan,yan@x.com,,+33699999999\n"
    );
    let run = w
        .import(&csv, PHONE_MAPPING, "run", |a| a.lookup = Strategy::Search)
        .await;
    let s = w.sb.stats();
    // The lookup's one search per email, none after the refusals.
    assert_eq!(s.count("GET", route::SEARCH), 2);
    assert_eq!(s.count_status("POST", route::CONTACTS, 422), 1);
    assert_eq!(s.count_status("PATCH", route::CONTACT, 422), 1);
    assert_eq!(outcome(&run, "created"), 1);
    // Yan's update wanted only the phone: nothing left to write.
    assert_eq!(outcome(&run, "unchanged"), 1);
    assert_eq!(run.exit_code, 0);
    let stored = w.by_email();
    assert_eq!(stored["new@x.com"]["phone_number"], Value::Null);
    assert_eq!(stored["yan@x.com"]["phone_number"], Value::Null);
    assert_eq!(stored["yan@x.com"]["id"], yan);
    assert_eq!(stored["sb@x.com"]["phone_number"], "+33699999999");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_waiting_for_the_search_limit_do_not_hold_the_writes_back() {
    const N: usize = 120;
    let w = World::new(SandboxConfig {
        limits: RateLimits {
            search: Some(2),
            window: Duration::from_secs(1),
            ..RateLimits::default()
        },
        // A create answered 500 has an unknown outcome: its row searches its keys before
        // sending it again.
        faults: Faults {
            rate: 0.08,
            kinds: vec![FaultKind::Before, FaultKind::After],
            seed: 7,
            burst_len: 1,
        },
        ..SandboxConfig::default()
    })
    .await;
    let mut csv = HEADER.to_owned();
    for i in 0..N {
        csv.push_str(&format!("P{i},p{i}@x.com,id-{i},free,C\n"));
    }
    let run = w
        .import(&csv, MAPPING, "run", |a| {
            a.lookup = Strategy::Index;
            a.concurrency = doto_bulk::api::Concurrency::Fixed(4);
        })
        .await;
    assert_eq!(run.exit_code, 0, "{:?}", run.summary.failures_by_code);
    assert_eq!(w.by_email().len(), N);
    let s = w.sb.stats();
    let faults: u64 = s.faults.values().sum();
    let searches = s.count("GET", route::SEARCH);
    assert!(
        faults >= 8,
        "too few faults to mean anything: {:?}",
        s.faults
    );
    assert!(
        s.count_status("GET", route::SEARCH, 429) > 0,
        "the search limit was never hit ({searches} searches)"
    );
    // The searches took several windows; the creates of the rows that needed none were all
    // made before the last window of searches (only the rows that searched create late).
    let last_search = s
        .log
        .iter()
        .filter(|e| e.route == route::SEARCH && e.admitted)
        .map(|e| e.epoch_ms)
        .max()
        .unwrap();
    let creates: Vec<u64> = s
        .log
        .iter()
        .filter(|e| e.route == route::CONTACTS && e.method == "POST" && e.admitted)
        .map(|e| e.epoch_ms)
        .collect();
    let first = creates.iter().min().unwrap();
    assert!(
        last_search - first >= 6000,
        "the searches spanned less than 6 windows: nothing to compare"
    );
    // Every row that needed no search (at most one per fault did) was created in the first
    // seconds, while the searches went on for many more; rows holding their write slot while
    // waiting for a search would let about 2 rows through per window instead.
    let early = creates.iter().filter(|&&t| t < first + 3000).count() as u64;
    eprintln!(
        "search lane: {N} rows, {faults} faults, {searches} searches over {} ms, {} creates, \
         {early} in the first 3 s",
        last_search - first,
        creates.len()
    );
    assert!(
        early >= N as u64 - faults,
        "only {early} creates in the first 3 s: the writes waited for the searches"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_are_added_once_across_duplicates_updates_and_re_imports() {
    let w = World::plain().await;
    let old = w.seed(json!({"name": "Old", "email": "old@x.com", "identifier": "O"}));
    // Row 3 repeats row 2's person (an in-file duplicate with a change); rows 4 and 5 update a
    // contact of the account.
    let csv = format!(
        "{HEADER}Ann,ann@x.com,A,free,Paris\n\
         Ann,ann@x.com,A,gold,Paris\n\
         Old,old@x.com,O,free,Oslo\n\
         Old,old@x.com,O,gold,Oslo\n"
    );
    let first = w.import(&csv, MAPPING_WITH_NOTE, "one", |_| {}).await;
    assert_eq!(outcome(&first, "created"), 1);
    assert_eq!(outcome(&first, "updated"), 3);
    let notes = |w: &World| {
        let mut v: Vec<(u64, String)> =
            w.sb.notes()
                .iter()
                .map(|n| {
                    let id = n["contact_id"].as_u64().or(n["contact"]["id"].as_u64());
                    (id.unwrap(), n["content"].as_str().unwrap().to_owned())
                })
                .collect();
        v.sort();
        v
    };
    let ann = w.by_email()["ann@x.com"]["id"].as_u64().unwrap();
    let mut want = vec![
        (ann, "imported A".to_owned()),
        (old, "imported O".to_owned()),
    ];
    want.sort();
    assert_eq!(notes(&w), want);
    let summary: Value =
        serde_json::from_slice(&std::fs::read(first.run_dir.join("summary.json")).unwrap())
            .unwrap();
    // One read of notes, for the one contact of the account the run updated.
    assert_eq!(summary["requests"]["note_checks"], 1);
    assert_eq!(w.sb.stats().count("GET", route::NOTES), 1);

    // Again, with a change on every row: every row updates, no note is added.
    let again = csv.replace("Paris", "Rome").replace("Oslo", "Bergen");
    let second = w.import(&again, MAPPING_WITH_NOTE, "two", |_| {}).await;
    assert_eq!(outcome(&second, "updated"), 4);
    assert_eq!(notes(&w), want);

    // Revert lists the notes the first import added (and deletes those it knows the id of).
    let revert = doto_bulk::cmd::revert::Args::new(&first.run_dir);
    let mut revert = revert;
    revert.out = Some(w.path("revert"));
    revert.dry_run = true;
    revert.force = true;
    let r = doto_bulk::cmd::revert::run_revert(
        &revert,
        w.config(),
        true,
        Arc::new(AtomicBool::new(false)),
    )
    .await
    .unwrap();
    let listed = std::fs::read_to_string(r.run_dir.join("notes.csv")).unwrap();
    let mut lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines[0], "contact_id,note_id,row,note,fate");
    assert_eq!(lines.len(), 3, "{listed}");
    let ann_note = format!("{ann},");
    lines[1..].sort_by_key(|l| !l.starts_with(&ann_note));
    assert!(lines[1].starts_with(&ann_note) && lines[1].ends_with(",2,1,deleted_with_contact"));
    assert!(lines[2].starts_with(&format!("{old},")) && lines[2].ends_with(",4,1,to_delete"));
}

#[test]
fn the_identity_policies_are_read_from_the_match_section() {
    use doto_bulk::mapping::{IdentityPolicy, Mapping};
    let m = Mapping::parse(MAPPING, "<inline>").unwrap();
    assert_eq!(m.identity_policy(), IdentityPolicy::default());
    let text = MAPPING.replace(
        "match:\n",
        "match:\n  identifier_change: overwrite\n  on_phone_in_use: fail\n",
    );
    let p = Mapping::parse(&text, "<inline>").unwrap().identity_policy();
    assert_eq!(p.identifier_change, IdentifierChange::Overwrite);
    assert_eq!(p.phone_in_use, PhoneInUse::Fail);
    let bad = MAPPING.replace("match:\n", "match:\n  on_phone_in_use: keep\n");
    let err = format!("{:#}", Mapping::parse(&bad, "<inline>").unwrap_err());
    assert!(err.contains("<inline>"), "{err}");
}
