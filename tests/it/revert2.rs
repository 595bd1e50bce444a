//! Revert leaves the account as it was (issue 19) and tells the truth about it (issue 15 item 5):
//! the attribute keys and notes an import added are removed too, under injected faults and
//! across a resume; a server without the two removal routes gets `partly_restored` and exit 3;
//! an agent's token stops before the first write; results.csv and the summary agree. The
//! sandbox's two removal endpoints are checked here too, in both flavours.
use doto_bulk::api::Concurrency;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use doto_bulk::api::{ApiError, ApiToken, Client, ClientConfig, Served};
use doto_bulk::cmd::revert::{Args, RevertRun, run_revert};
use doto_bulk::exit::Stop;
use doto_bulk::sandbox::{FaultKind, Faults, Flavour, SandboxConfig, route};
use serde_json::{Value, json};

use crate::import::{HEADER, MAPPING_WITH_NOTE, World};
use crate::revert::{all_writes, spawn_revert, wait_for_writes};

/// Contacts of the account by id, and every note: the whole state an import may change.
fn snapshot(w: &World) -> (BTreeMap<u64, Value>, Vec<Value>) {
    let contacts = w.sb.contacts().into_iter();
    let contacts = contacts.filter(|c| c["account_id"] == json!(w.sb.account_id));
    let contacts = contacts.map(|c| (c["id"].as_u64().unwrap(), c)).collect();
    (contacts, w.sb.notes())
}

/// Revert the import in `imp` one contact at a time (so that the sandbox's seeded faults fall
/// on the same writes on every run).
async fn revert(w: &World, out: &str, config: ClientConfig, resume: bool) -> RevertRun {
    let mut args = Args::new(&w.path("imp"));
    args.concurrency = Concurrency::Fixed(1);
    match resume {
        true => args.resume = Some(w.path(out)),
        false => args.out = Some(w.path(out)),
    }
    let never = Arc::new(AtomicBool::new(false));
    run_revert(&args, config, true, never).await.unwrap()
}

/// `n` contacts with a note each; the even ones have a plan and a city, the odd ones neither.
/// Returns the CSV that updates each (plan, city, name) and creates `n` more, all with a note.
fn seed_and_csv(w: &World, n: usize) -> String {
    let mut csv = HEADER.to_owned();
    for i in 0..n {
        let mut c = json!({"name": format!("Old{i}"), "email": format!("old{i}@x.com"),
            "identifier": format!("O{i}"), "notes": [{"content": format!("kept {i}")}],
            "custom_attributes": {"keep": "k"}, "additional_attributes": {"src": "crm"}});
        if i % 2 == 0 {
            c["custom_attributes"]["plan"] = json!("free");
            c["additional_attributes"]["city"] = json!("Lyon");
        }
        w.seed(c);
        csv.push_str(&format!("New{i},old{i}@x.com,O{i},gold,Oslo\n"));
        csv.push_str(&format!("Made{i},new{i}@x.com,N{i},pro,Rome\n"));
    }
    csv
}

/// Writes committed but answered with a 500 or a closed connection, and plain 500s.
fn faulty(seed: u64) -> SandboxConfig {
    SandboxConfig {
        faults: Faults {
            rate: 0.25,
            kinds: vec![FaultKind::After, FaultKind::Drop, FaultKind::Before],
            seed,
            burst_len: 2,
        },
        ..SandboxConfig::default()
    }
}

/// results.csv as (contact_id → (action, left, nulled)), and the count per action.
fn read_results(w: &World, out: &str) -> (BTreeMap<u64, [String; 3]>, BTreeMap<String, u64>) {
    let mut rows = BTreeMap::new();
    let mut counts = BTreeMap::new();
    let mut r = csv::Reader::from_path(w.path(out).join("results.csv")).unwrap();
    for rec in r.deserialize::<BTreeMap<String, String>>() {
        let rec = rec.unwrap();
        *counts.entry(rec["action"].clone()).or_insert(0) += 1;
        let id = rec["contact_id"].parse().unwrap();
        rows.insert(
            id,
            [0, 1, 2].map(|i| rec[["action", "left", "nulled"][i]].clone()),
        );
    }
    (rows, counts)
}

fn summary(w: &World, out: &str) -> Value {
    let text = std::fs::read_to_string(w.path(out).join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The summary says what results.csv says: the same counts, the same left and nulled keys.
fn assert_summary_matches_results(w: &World, out: &str) {
    let (rows, counts) = read_results(w, out);
    let s = summary(w, out);
    assert_eq!(s["outcomes"], json!(counts), "{s}");
    assert_eq!(s["contacts"], json!(rows.len()));
    for (i, key) in [(1, "left"), (2, "nulled")] {
        let csv: BTreeMap<String, String> = rows
            .iter()
            .filter(|(_, r)| !r[i].is_empty())
            .map(|(id, r)| (id.to_string(), r[i].clone()))
            .collect();
        assert_eq!(s[key], json!(csv), "{key}");
    }
    let not_reverted = rows
        .values()
        .filter(|r| ["skipped", "failed", "partly_restored"].contains(&r[0].as_str()));
    assert_eq!(s["not_reverted"], json!(not_reverted.count()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_under_faults_brings_back_the_whole_state_but_for_nulled_additional_keys() {
    // Which writes draw a fault depends on the order they reach the sandbox, which timing can
    // change: a seed whose faults missed a kind of write is run again with the next one, so that
    // the test always covers every kind (each run's end state is checked all the same).
    for seed in 11..16 {
        if revert_under_faults(seed).await {
            return;
        }
    }
    panic!("five seeds and the faults never reached every kind of write the revert makes");
}

/// One import then revert under faults drawn from `seed`, its end state checked; whether the
/// faults reached every kind of write the revert makes.
async fn revert_under_faults(seed: u64) -> bool {
    let w = World::new(faulty(seed)).await;
    let csv = seed_and_csv(&w, 12);
    let (before, notes_before) = snapshot(&w);
    let run = w
        .import(&csv, MAPPING_WITH_NOTE, "imp", |a| {
            a.concurrency = Concurrency::Fixed(1)
        })
        .await;
    assert_eq!(run.exit_code, 0, "{:?}", run.summary.outcomes);
    assert_eq!(w.sb.notes().len(), notes_before.len() + 24);

    w.sb.reset_stats();
    let mut r = revert(&w, "rev", w.config(), false).await;
    // Contacts that failed under the faults are finished by a resume.
    for _ in 0..3 {
        if r.exit_code == 0 {
            break;
        }
        r = revert(&w, "rev", w.config(), true).await;
    }
    assert_eq!(r.exit_code, 0, "{:?}", r.counts);
    // The faults reached every kind of write the revert makes (over the first pass and its
    // resumes: how far the first pass gets before the breaker stops it depends on timing).
    let log = w.sb.stats().log;
    let covered = [
        route::NOTE,
        route::DESTROY_CUSTOM_ATTRIBUTES,
        route::CONTACT,
    ]
    .iter()
    .all(|on| log.iter().any(|e| e.route == *on && e.fault.is_some()));
    assert_summary_matches_results(&w, "rev");

    // Equal to the state before the import, except the odd contacts' city: added by the
    // import, it cannot be removed, so it is null.
    let expected = with_nulled_city(&before);
    let (after, notes_after) = snapshot(&w);
    assert_eq!(after, expected);
    assert_eq!(notes_after, notes_before);
    let (rows, _) = read_results(&w, "rev");
    let nulled = rows
        .values()
        .filter(|r| r[2] == "additional_attributes.city");
    assert_eq!(nulled.count(), 6, "the nulled keys are listed");

    // A second revert writes nothing and says every contact is unchanged.
    let writes = all_writes(&w);
    let again = revert(&w, "rev2", w.config(), false).await;
    assert_eq!(again.exit_code, 0);
    assert_eq!((again.writes, all_writes(&w)), (0, writes));
    assert_eq!(again.counts, BTreeMap::from([("unchanged".to_owned(), 24)]));
    assert_summary_matches_results(&w, "rev2");
    covered
}

/// `before` with the additional keys the import added (city, on the odd contacts) null.
fn with_nulled_city(before: &BTreeMap<u64, Value>) -> BTreeMap<u64, Value> {
    let mut expected = before.clone();
    for c in expected.values_mut() {
        if c["additional_attributes"].get("city").is_none() {
            c["additional_attributes"]["city"] = Value::Null;
        }
    }
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_killed_amid_the_removals_and_resumed_ends_in_the_same_state() {
    let w = World::new(SandboxConfig {
        latency: std::time::Duration::from_millis(15),
        ..SandboxConfig::default()
    })
    .await;
    let csv = seed_and_csv(&w, 20);
    let (before, notes_before) = snapshot(&w);
    let run = w.import(&csv, MAPPING_WITH_NOTE, "imp", |_| {}).await;
    assert_eq!(run.exit_code, 0, "{:?}", run.summary.outcomes);
    let rev = w.path("rev");
    let from = all_writes(&w);
    let mut child = spawn_revert(&w, "imp", &["--out".as_ref(), rev.as_os_str()]);
    // Past the first contacts' PATCH, before the last ones' removals.
    wait_for_writes(&w, &mut child, from, 25);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        all_writes(&w) - from < 60,
        "killed too late to prove anything"
    );
    assert_ne!(snapshot(&w).1, notes_before, "the kill left work to resume");

    let out = spawn_revert(&w, "imp", &["--resume".as_ref(), rev.as_os_str()])
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(snapshot(&w), (with_nulled_city(&before), notes_before));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_removal_routes_leaves_keys_and_notes_and_exits_3() {
    let w = World::new(SandboxConfig {
        flavour: Flavour::Doto,
        no_removal_routes: true,
        ..SandboxConfig::default()
    })
    .await;
    let csv = seed_and_csv(&w, 2);
    let (before, _) = snapshot(&w);
    let run = w.import(&csv, MAPPING_WITH_NOTE, "imp", |_| {}).await;
    assert_eq!(run.exit_code, 0, "{:?}", run.summary.outcomes);
    let r = revert(&w, "rev", w.config(), false).await;
    assert_eq!(r.exit_code, 3, "{:?}", r.counts);
    assert_eq!(r.counts["deleted"], 2);
    assert_eq!(r.counts["partly_restored"], 2);
    assert_summary_matches_results(&w, "rev");

    let (rows, _) = read_results(&w, "rev");
    let notes = w.sb.notes();
    let (odd, even) = (before.keys().nth(1).unwrap(), before.keys().next().unwrap());
    let note_of = |id: &u64| {
        let n = notes.iter().rev().find(|n| n["contact_id"] == json!(id));
        format!("note {}", n.unwrap()["id"])
    };
    // The odd one gained a plan key (not removable here) and a note; the even one a note.
    assert_eq!(
        rows[odd][1],
        format!("custom_attributes.plan;{}", note_of(odd))
    );
    assert_eq!(rows[even][1], note_of(even));
    assert_eq!(rows[odd][2], "additional_attributes.city");
    // The fields PATCH can restore are restored.
    let (after, _) = snapshot(&w);
    assert_eq!(after[even], before[even]);
    assert_eq!(after[odd]["name"], before[odd]["name"]);
    assert_eq!(after[odd]["custom_attributes"]["plan"], "gold");
}

fn flavoured(flavour: Flavour) -> SandboxConfig {
    SandboxConfig {
        flavour,
        ..SandboxConfig::default()
    }
}

/// A client of the world's sandbox with the agent's token.
fn agent(w: &World) -> ClientConfig {
    let mut c = w.config();
    c.token = ApiToken::new(w.sb.agent_token.clone()).unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_token_stops_the_revert_before_the_first_write_with_the_hint() {
    for flavour in [Flavour::Chatwoot, Flavour::Doto] {
        let w = World::new(flavoured(flavour)).await;
        let csv = seed_and_csv(&w, 3);
        w.import(&csv, MAPPING_WITH_NOTE, "imp", |_| {}).await;
        let imported = snapshot(&w);
        w.sb.reset_stats();
        let r = revert(&w, "rev", agent(&w), false).await;
        assert_eq!(r.exit_code, 1, "{flavour:?}");
        let Some(Stop::Fatal(msg)) = &r.stopped else {
            panic!("{:?}", r.stopped)
        };
        assert!(msg.contains("administrator"), "{msg}");
        assert_eq!(snapshot(&w), imported, "nothing was written");
        // The one request that found out: a DELETE of no contact, refused.
        assert_eq!(all_writes(&w), 1);
        assert_eq!(r.writes, 0);
    }
}

#[test]
fn the_binary_exits_1_with_the_hint_when_the_token_may_not_delete() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = rt.block_on(async {
        let w = World::plain().await;
        let csv = seed_and_csv(&w, 1);
        w.import(&csv, MAPPING_WITH_NOTE, "imp", |_| {}).await;
        w
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
        .arg("revert")
        .arg(w.path("imp"))
        .arg("--out")
        .arg(w.path("rev"))
        .args(["--base-url", &w.sb.base_url])
        .args(["--account-id", &w.sb.account_id.to_string()])
        .env("DOTO_API_TOKEN", &w.sb.agent_token)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("administrator's token"), "{stderr}");
    assert!(
        !stderr.contains(&w.sb.agent_token),
        "the token is never printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_removal_endpoints_answer_as_the_server_does_in_both_flavours() {
    for flavour in [Flavour::Chatwoot, Flavour::Doto] {
        let w = World::new(flavoured(flavour)).await;
        let id = w.seed(json!({"name": "A", "email": "a@x.com",
            "custom_attributes": {"plan": "gold", "tier": 2, "keep": true},
            "notes": [{"content": "one"}, {"content": "two"}]}));
        let other = w.seed(json!({"name": "B", "email": "b@x.com", "notes": [{"content": "b"}]}));
        let client = Client::new(w.config()).unwrap();
        let keys = ["plan".to_owned(), "tier".to_owned(), "nope".to_owned()];
        let Served::Done(c) = client
            .contacts()
            .destroy_custom_attributes(id, &keys)
            .await
            .unwrap()
        else {
            panic!("served")
        };
        assert_eq!(
            c.custom_attributes,
            json!({"keep": true}).as_object().cloned().unwrap()
        );
        assert_eq!(
            w.by_email()["a@x.com"]["custom_attributes"],
            json!({"keep": true})
        );
        // The raw body: wrapped in `payload` as `show` is, by flavour.
        let url = format!(
            "{}/api/v1/accounts/{}/contacts/{id}/destroy_custom_attributes",
            w.sb.base_url, w.sb.account_id
        );
        let body: Value = reqwest::Client::new()
            .post(url)
            .header("api_access_token", &w.sb.admin_token)
            .json(&json!({"custom_attributes": ["keep"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let shown = match flavour {
            Flavour::Chatwoot => &body["payload"],
            Flavour::Doto => &body,
        };
        assert_eq!(shown["custom_attributes"], json!({}), "{body}");

        let notes = w.sb.notes();
        let note_of = |c: u64| {
            notes.iter().find(|n| n["contact_id"] == json!(c)).unwrap()["id"]
                .as_u64()
                .unwrap()
        };
        let (mine, theirs) = (note_of(id), note_of(other));
        let contacts = client.contacts();
        assert_eq!(
            contacts.delete_note(id, mine).await.unwrap(),
            Served::Done(())
        );
        assert_eq!(w.sb.notes().len(), 2);
        // A note of another contact, a note gone, a contact gone: 404 on the record.
        for (c, n) in [(id, theirs), (id, mine), (999, theirs)] {
            let e = contacts.delete_note(c, n).await.unwrap_err();
            assert!(matches!(e, ApiError::NotFound { .. }), "{e}");
        }
        let e = contacts
            .destroy_custom_attributes(999, &keys)
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::NotFound { .. }), "{e}");
        assert_eq!(w.sb.stats().count("DELETE", route::NOTE), 4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_routes_the_client_says_not_served_not_not_found() {
    let w = World::new(SandboxConfig {
        no_removal_routes: true,
        ..SandboxConfig::default()
    })
    .await;
    let id = w.seed(json!({"name": "A", "email": "a@x.com",
        "custom_attributes": {"plan": "gold"}, "notes": [{"content": "one"}]}));
    let note = w.sb.notes()[0]["id"].as_u64().unwrap();
    let client = Client::new(w.config()).unwrap();
    let contacts = client.contacts();
    let keys = ["plan".to_owned()];
    let served = contacts.destroy_custom_attributes(id, &keys).await.unwrap();
    assert_eq!(served, Served::NotServed);
    assert_eq!(
        contacts.delete_note(id, note).await.unwrap(),
        Served::NotServed
    );
    assert_eq!(w.sb.notes().len(), 1);
    assert_eq!(w.by_email()["a@x.com"]["custom_attributes"]["plan"], "gold");
}
