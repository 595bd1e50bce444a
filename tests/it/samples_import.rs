//! Every shipped sample imported end to end into a fresh sandbox: with its shipped mapping (the
//! counts of docs/samples.md, what the server stores, a second import writing nothing), with the
//! mapping `mapping init` drafts for it, and the README's first command run as the binary.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use doto_bulk::cmd::import::{Args, ImportRun, run_import};
use doto_bulk::sandbox::route;
use serde_json::Value;

use crate::import::{World, outcome};
use crate::samples::documented;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `import FILE -m MAPPING [--phone-region CC] --sandbox --out W/out`.
async fn import_with(
    w: &World,
    file: &Path,
    mapping: &Path,
    region: Option<doto_bulk::normalise::Region>,
    out: &str,
) -> ImportRun {
    let mut args = Args::new(file, mapping);
    args.out = Some(w.path(out));
    args.phone_region = region;
    run_import(&args, w.config(), true, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap_or_else(|e| panic!("{}: {e:#}", file.display()))
}

/// The `prefix:` of the mapping's `identifier` field, read from its YAML text ("" without one);
/// `None` when it maps no identifier (an address book or a mailing list: no record id).
fn identifier_prefix(mapping: &Path) -> Option<String> {
    let text = std::fs::read_to_string(mapping).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("identifier:") && l.starts_with("  "))?;
    // `prefix: "hubspot-"` (quoted, as every shipped mapping writes it), other keys after it.
    let prefix = line
        .split_once("prefix:")
        .and_then(|(_, p)| p.trim().strip_prefix('"')?.split_once('"'))
        .map(|(p, _)| p.to_owned());
    Some(prefix.unwrap_or_default())
}

fn is_e164(p: &str) -> bool {
    let digits = p.strip_prefix('+').unwrap_or("");
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Data lines of failures.csv (its header excluded), read as CSV so quoted line breaks count once.
fn failure_lines(run_dir: &Path) -> u64 {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(run_dir.join("failures.csv"))
        .unwrap();
    let mut n = 0;
    for rec in r.byte_records() {
        rec.unwrap();
        n += 1;
    }
    n
}

fn account_contacts(w: &World) -> Vec<Value> {
    w.sb.contacts()
        .into_iter()
        .filter(|c| {
            c["account_id"]
                .as_u64()
                .is_none_or(|a| a == w.sb.account_id)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_imports_into_the_sandbox_with_its_documented_counts() {
    let docs = documented();
    assert!(docs.len() >= 6, "{docs:?}");
    for e in &docs {
        let (file, mapping) = (root().join(&e.sample), root().join(&e.mapping));
        let ctx = format!("{} with {}", e.sample, e.mapping);
        let w = World::plain().await;
        let run = import_with(&w, &file, &mapping, e.phone_region, "one").await;
        let s = &run.summary;
        assert_eq!(run.fatal, None, "{ctx}");
        assert_eq!(s.rows_read, e.rows, "{ctx}: rows read");
        assert_eq!(outcome(&run, "invalid"), e.invalid, "{ctx}: invalid");
        assert_eq!(outcome(&run, "skipped"), e.skipped, "{ctx}: skipped");
        assert_eq!(outcome(&run, "failed"), 0, "{ctx}: failed");
        let (created, updated, unchanged) = (
            outcome(&run, "created"),
            outcome(&run, "updated"),
            outcome(&run, "unchanged"),
        );
        // An in-file duplicate is an update (or unchanged) of the earlier row's contact: every
        // valid row is written or found, and only the first row of a key creates.
        assert_eq!(created + updated + unchanged, e.valid, "{ctx}: {s:?}");
        assert_eq!(created, e.valid - s.duplicates_in_file, "{ctx}: {s:?}");
        assert_eq!(s.outcomes.values().sum::<u64>(), e.rows, "{ctx}");
        let want_exit = if e.invalid > 0 { 3 } else { 0 };
        assert_eq!(run.exit_code, want_exit, "{ctx}");

        let stored = account_contacts(&w);
        assert_eq!(stored.len() as u64, created, "{ctx}: contacts stored");
        let prefix = identifier_prefix(&mapping);
        assert!(
            prefix.as_ref().is_none_or(|p| !p.is_empty()),
            "{ctx}: the mapping has no prefix"
        );
        for c in &stored {
            if let Some(p) = c["phone_number"].as_str() {
                assert!(is_e164(p), "{ctx}: phone {p:?} is not E.164: {c}");
            }
            if let Some(m) = c["email"].as_str() {
                assert_eq!(m, m.to_lowercase(), "{ctx}: email not lower-case: {c}");
            }
            // A layout without a record id column (a Salesforce report) matches on email alone.
            // An address book (Google, Outlook) matches on the phone too: a contact may have it alone.
            if let (Some(id), Some(prefix)) = (c["identifier"].as_str(), &prefix) {
                assert!(
                    id.starts_with(prefix) && id.len() > prefix.len(),
                    "{ctx}: identifier {id:?} lacks {prefix:?}: {c}"
                );
            } else {
                let by_phone = prefix.is_none() && c["phone_number"].is_string();
                assert!(
                    c["email"].is_string() || by_phone,
                    "{ctx}: no key stored: {c}"
                );
            }
        }
        // (LinkedIn's connections have no phone column.)
        let maps_phone = std::fs::read_to_string(&mapping)
            .unwrap()
            .contains("  phone_number:");
        assert!(
            !maps_phone || stored.iter().any(|c| c["phone_number"].is_string()),
            "{ctx}: no phone stored at all"
        );
        assert_eq!(
            failure_lines(&run.run_dir),
            e.invalid,
            "{ctx}: failures.csv"
        );

        // The same file again: found, compared, nothing sent.
        let before = fields(&w);
        let stats = w.sb.stats();
        let (posts, patches, writes) = (
            stats.count("POST", route::CONTACTS),
            stats.count("PATCH", route::CONTACT),
            w.writes(),
        );
        let again = import_with(&w, &file, &mapping, e.phone_region, "two").await;
        let stats = w.sb.stats();
        let dups = s.duplicates_in_file;
        assert_eq!(
            stats.count("POST", route::CONTACTS),
            posts,
            "{ctx}: created again"
        );
        assert_eq!(outcome(&again, "created"), 0, "{ctx}");
        assert_eq!(outcome(&again, "invalid"), e.invalid, "{ctx}");
        assert_eq!(again.summary.duplicates_in_file, dups, "{ctx}");
        if dups == 0 {
            assert_eq!(w.writes(), writes, "{ctx}: the second import wrote");
            assert_eq!(stats.count("PATCH", route::CONTACT), patches, "{ctx}");
            assert_eq!(
                outcome(&again, "unchanged"),
                e.valid,
                "{ctx}: {:?}",
                again.summary
            );
        } else {
            // Rows sharing a key apply in file order; when they disagree (messy.csv's line 10
            // changes line 2's lifecycle stage), the earlier row differs from what the later one
            // stored, so each of them writes again. Only those rows may: the rest is unchanged.
            let rewritten = stats.count("PATCH", route::CONTACT) - patches;
            assert!(rewritten <= 2 * dups, "{ctx}: {rewritten} updates");
            assert_eq!(outcome(&again, "updated"), rewritten, "{ctx}");
            assert_eq!(
                outcome(&again, "unchanged"),
                e.valid - rewritten,
                "{ctx}: {:?}",
                again.summary
            );
        }
        // Either way the account ends as the first import left it.
        assert_eq!(fields(&w), before, "{ctx}");
    }
}

/// The imported fields of every contact in the account, by id.
fn fields(w: &World) -> Vec<(u64, Value)> {
    let keys = [
        "name",
        "email",
        "phone_number",
        "identifier",
        "custom_attributes",
        "additional_attributes",
    ];
    let mut v: Vec<(u64, Value)> = account_contacts(w)
        .into_iter()
        .map(|c| {
            let f = keys.iter().map(|k| (k.to_string(), c[*k].clone()));
            (c["id"].as_u64().unwrap(), Value::Object(f.collect()))
        })
        .collect();
    v.sort_by_key(|(id, _)| *id);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_init_then_import_works_for_every_sample() {
    for e in documented() {
        let file = root().join(&e.sample);
        let w = World::plain().await;
        let drafted = w.path("draft.yaml");
        // The documented command: with `--phone-region` where the layout has no country; and
        // where init says the region is undecided (a row with a local number and no country),
        // again with the `--phone-region` its sentence asks for.
        let d = doto_bulk::cmd::mapping::init_with_region(&file, Some(&drafted), e.phone_region)
            .unwrap_or_else(|err| panic!("{}: {err:#}", e.sample));
        let region = match d.region_undecided {
            false => e.phone_region,
            true => {
                std::fs::remove_file(&drafted).unwrap();
                let us = doto_bulk::normalise::Region::parse("US");
                doto_bulk::cmd::mapping::init_with_region(&file, Some(&drafted), us).unwrap();
                us
            }
        };
        let run = import_with(&w, &file, &drafted, region, "run").await;
        let ctx = format!("{} with its drafted mapping: {:?}", e.sample, run.summary);
        assert!(
            matches!(run.exit_code, 0 | 3),
            "{ctx}: exit {}",
            run.exit_code
        );
        assert_eq!(run.fatal, None, "{ctx}");
        assert!(outcome(&run, "created") >= 1, "{ctx}");
        assert_eq!(run.summary.rows_read, e.rows, "{ctx}");
        assert_eq!(run.summary.outcomes.values().sum::<u64>(), e.rows, "{ctx}");
        assert_eq!(
            account_contacts(&w).len() as u64,
            outcome(&run, "created"),
            "{ctx}"
        );
    }
}

/// The README's first command, in a debug build: `import samples/quickstart.csv -m
/// mappings/quickstart.yaml --sandbox` (plus `--out`, to keep the run directory in a temp dir).
#[test]
fn readme_first_command_imports_the_quickstart_sample() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
        .current_dir(root())
        .args([
            "import",
            "samples/quickstart.csv",
            "-m",
            "mappings/quickstart.yaml",
            "--sandbox",
            "--out",
        ])
        .arg(&run_dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(&run_dir.display().to_string()), "{text}");
    assert!(text.contains("created"), "no summary: {text}");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("summary.json")).unwrap()).unwrap();
    let rows = summary["rows_read"].as_u64().unwrap();
    let data_lines = std::fs::read_to_string(root().join("samples/quickstart.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .count() as u64;
    assert_eq!(rows, data_lines, "{summary}");
    let outcomes = summary["outcomes"].as_object().unwrap();
    let sum: u64 = outcomes.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(sum, rows, "{summary}");
    assert!(outcomes["created"].as_u64().unwrap() >= 1, "{summary}");
    // Exit 0: nothing invalid or failed.
    for k in ["invalid", "failed"] {
        assert_eq!(
            outcomes.get(k).and_then(Value::as_u64).unwrap_or(0),
            0,
            "{summary}"
        );
    }
}
