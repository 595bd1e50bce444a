//! The binary killed with SIGKILL at several points and resumed ends with the same contacts and
//! notes as an uninterrupted run. The sandbox lives in this test process (a killed process would
//! take an in-process sandbox with it); the binary reaches it with `--base-url`/`--account-id` and
//! `DOTO_API_TOKEN`.
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use doto_bulk::sandbox::{SandboxConfig, SandboxHandle};
use serde_json::Value;

use super::{MAPPING_WITH_NOTE, World, ctrl_c_exits_130, faulty_world_rows, seed_half};

fn spawn_import(sb: &SandboxHandle, file: &Path, map: &Path, run: &Path, resume: bool) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_doto-bulk"));
    cmd.arg("import")
        .arg(file)
        .arg("-m")
        .arg(map)
        .args(["--rate", "2000/s", "--concurrency", "8", "-q"])
        .args(["--base-url", &sb.base_url])
        .args(["--account-id", &sb.account_id.to_string()])
        .env("DOTO_API_TOKEN", &sb.admin_token)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if resume {
        cmd.arg("--resume").arg(run);
    } else {
        cmd.arg("--out").arg(run);
    }
    cmd.spawn().unwrap()
}

/// What the account holds, comparable across sandboxes: contacts by email (without ids and
/// timestamps) with the notes of each.
fn state(sb: &SandboxHandle) -> BTreeMap<String, (Value, Vec<String>)> {
    let contacts = sb.contacts();
    let mut email_of: BTreeMap<u64, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for c in contacts {
        let email = c["email"].as_str().unwrap_or_default().to_owned();
        email_of.insert(c["id"].as_u64().unwrap(), email.clone());
        let v = serde_json::json!({
            "name": c["name"], "identifier": c["identifier"],
            "custom_attributes": c["custom_attributes"],
            "additional_attributes": c["additional_attributes"],
        });
        assert!(
            out.insert(email.clone(), (v, vec![])).is_none(),
            "duplicate contact {email}"
        );
    }
    for n in sb.notes() {
        let email = &email_of[&n["contact_id"].as_u64().unwrap()];
        out.get_mut(email)
            .unwrap()
            .1
            .push(n["content"].as_str().unwrap().to_owned());
    }
    for (_, notes) in out.values_mut() {
        notes.sort();
    }
    out
}

fn writes(sb: &SandboxHandle) -> u64 {
    let s = sb.stats();
    s.log
        .iter()
        .filter(|e| e.method == "POST" || e.method == "PATCH")
        .count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_at_several_points_and_resumed_ends_like_an_uninterrupted_run() {
    const N: usize = 240;
    let csv = faulty_world_rows(N);
    // The reference: one uninterrupted run.
    let reference = World::new(SandboxConfig::default()).await;
    seed_half(&reference, N);
    let file = reference.write("f.csv", &csv);
    let map = reference.write("m.yaml", MAPPING_WITH_NOTE);
    let out = spawn_import(&reference.sb, &file, &map, &reference.path("run"), false)
        .wait_with_output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = state(&reference.sb);
    assert_eq!(want.len(), N);

    // The same import killed after 40, 150 and 300 writes, resumed each time.
    let w = World::new(SandboxConfig {
        // Slow enough that the kills land mid-run.
        latency: Duration::from_millis(5),
        ..SandboxConfig::default()
    })
    .await;
    seed_half(&w, N);
    let run = w.path("run");
    let mut kills = 0;
    for (i, at) in [40u64, 150, 300].into_iter().enumerate() {
        let mut child = spawn_import(&w.sb, &file, &map, &run, i > 0);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if writes(&w.sb) >= at {
                child.kill().unwrap(); // SIGKILL
                kills += 1;
                break;
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let _ = child.wait();
    }
    assert!(kills >= 2, "the run ended before it could be killed");
    let out = spawn_import(&w.sb, &file, &map, &run, true)
        .wait_with_output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = state(&w.sb);
    assert_eq!(got.len(), want.len());
    for (email, v) in &want {
        assert_eq!(got.get(email), Some(v), "{email}");
    }
    let summary: Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["rows_read"], N);
    assert_eq!(summary["outcomes"]["created"], N / 2, "{summary}");
    if summary["outcomes"]["updated"] != N / 2 {
        let results = std::fs::read_to_string(run.join("results.csv")).unwrap();
        let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
        for l in results
            .lines()
            .filter(|l| !l.contains(",updated,") && !l.contains(",created,"))
        {
            eprintln!("RESULT {l}");
            let row = l.split(',').next().unwrap();
            for j in journal
                .lines()
                .filter(|j| j.contains(&format!("\"row\":{row},")))
            {
                eprintln!("  JOURNAL {j}");
            }
        }
    }
    assert_eq!(summary["outcomes"]["updated"], N / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_lets_writes_in_flight_finish_flushes_the_reports_and_exits_130() {
    const N: usize = 300;
    let w = World::new(SandboxConfig {
        latency: Duration::from_millis(20),
        ..SandboxConfig::default()
    })
    .await;
    let file = w.write("f.csv", &faulty_world_rows(N));
    let map = w.write("m.yaml", MAPPING_WITH_NOTE);
    let run = w.path("run");
    let child = spawn_import(&w.sb, &file, &map, &run, false);
    let deadline = Instant::now() + Duration::from_secs(60);
    while writes(&w.sb) < 30 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    ctrl_c_exits_130(child);
    let summary: Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["stopped"], "interrupted");
    let done = summary["rows_read"].as_u64().unwrap();
    assert!(done > 0 && done < N as u64, "{summary}");
    // Every row reported as created has its contact and its note: nothing was cut mid-row.
    let stored = w.sb.contacts().len() as u64;
    assert_eq!(summary["outcomes"]["created"].as_u64().unwrap(), stored);
    assert_eq!(w.sb.notes().len() as u64, stored);
    let results = std::fs::read_to_string(run.join("results.csv")).unwrap();
    assert_eq!(results.lines().count() as u64, done + 1);
}
