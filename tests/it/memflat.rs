//! Memory flat in rows (issue 13, item 6): the import reads the file twice (a first pass keeping
//! a hash and a few bits per row, a second streaming the rows into the write phase), so what the
//! refactor could break is checked here: a file that changes between the passes is refused,
//! rows sharing a key (or a phone) further apart than the write phase's window still run in file
//! order, and a 20,000-row import reports every row once, in file order, with its duplicates.
use std::collections::BTreeMap;

use doto_bulk::exit::Stop;
use doto_bulk::pipeline::engine::WINDOW;
use doto_bulk::pipeline::import::{ACTIONS, Feed, ImportReports, scan_rows};
use doto_bulk::pipeline::input::Input;
use doto_bulk::report::{RunDir, Summary};
use doto_bulk::sandbox::route;

use crate::identity::PHONE_MAPPING;
use crate::import::{HEADER, MAPPING, World, outcome};

/// results.csv: `_row` → (action, contact_id, duplicate_of, _warnings), and the rows in the
/// order written.
fn results(run: &std::path::Path) -> (Vec<u64>, BTreeMap<u64, [String; 4]>) {
    let mut r = csv::Reader::from_path(run.join("results.csv")).unwrap();
    let mut order = Vec::new();
    let mut by_row = BTreeMap::new();
    for x in r.records() {
        let x = x.unwrap();
        let line: u64 = x[0].parse().unwrap();
        order.push(line);
        let cols = [1, 2, 4, 5].map(|i| x[i].to_owned());
        assert!(by_row.insert(line, cols).is_none(), "line {line} twice");
    }
    (order, by_row)
}

/// Read `file` once (pass 1), let `change` rewrite it, then stream it again into reports:
/// why the second pass stopped.
async fn second_pass_after(w: &World, body: &str, change: impl FnOnce(&std::path::Path)) -> Stop {
    let file = w.write("f.csv", body);
    let map = w.write("f.yaml", MAPPING);
    let input = Input::open(&file, &map).unwrap();
    let keys = input.match_keys().to_vec();
    let headers = input.headers.clone();
    let scan = scan_rows(input.source, input.resolved, &keys, || {});
    assert_eq!((scan.rows, scan.valid, scan.key_count), (4, 4, 8));
    change(&file);
    let again = Input::open(&file, &map).unwrap();
    let mut feed = Feed::start(again.source, again.resolved, &keys, scan);
    let dir = RunDir::create(Some(&w.path("run")), "import").unwrap();
    let summary = Summary::new("import", &file, &map, &ACTIONS);
    let mut out = ImportReports::create(dir, &headers, summary, true).unwrap();
    out.drain(&mut feed)
        .await
        .unwrap()
        .expect("the change is found")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_between_the_two_reads_is_refused_at_the_changed_row() {
    let w = World::plain().await;
    let body = format!(
        "{HEADER}Ann,ann@x.com,A,free,Paris\nBob,bob@x.com,B,free,Lyon\n\
         Cy,cy@x.com,C,free,Nice\nDi,di@x.com,D,free,Oslo\n"
    );
    let edited = |f: &std::path::Path| {
        let text = std::fs::read_to_string(f).unwrap();
        std::fs::write(f, text.replace("Cy,cy@x.com", "Cy,cy@y.com")).unwrap();
    };
    let stop = second_pass_after(&w, &body, edited).await;
    let Stop::ReadError(why) = stop else {
        panic!("{stop:?}")
    };
    assert!(why.contains("f.csv changed during the import"), "{why}");
    assert!(why.contains("line 4 is not what it was"), "{why}");
    let cut = |f: &std::path::Path| {
        let text = std::fs::read_to_string(f).unwrap();
        std::fs::write(f, text.replace("Di,di@x.com,D,free,Oslo\n", "")).unwrap();
    };
    let w = World::plain().await;
    let Stop::ReadError(why) = second_pass_after(&w, &body, cut).await else {
        panic!("a shorter file is a changed one")
    };
    assert!(why.contains("it now ends after 3 rows"), "{why}");
    // Unchanged, the second pass reads it to the end without a word.
    let w = World::plain().await;
    let file = w.write("same.csv", &body);
    let map = w.write("same.yaml", MAPPING);
    let input = Input::open(&file, &map).unwrap();
    let keys = input.match_keys().to_vec();
    let scan = scan_rows(input.source, input.resolved, &keys, || {});
    let again = Input::open(&file, &map).unwrap();
    let mut feed = Feed::start(again.source, again.resolved, &keys, scan);
    let dir = RunDir::create(Some(&w.path("run")), "import").unwrap();
    let summary = Summary::new("import", &file, &map, &ACTIONS);
    let mut out = ImportReports::create(dir, &again.headers, summary, true).unwrap();
    assert!(out.drain(&mut feed).await.unwrap().is_none());
}

/// Rows further apart than the engine's window that share an email, an identifier or a phone
/// (dry run: no request per row): the first in file order creates, the later ones update it (or
/// lose the phone), in order. The 20,000-row test below does the same for real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_sharing_a_key_further_apart_than_the_window_run_in_file_order() {
    let w = World::plain().await;
    let n = WINDOW * 2 + 100;
    let mut csv = String::from("Name,Email,ID,Phone\n");
    for i in 0..n {
        let line = i + 2;
        let row = match i {
            0 => "First,ann@x.com,A,+442079460000".to_owned(),
            1 => "Phone One,p1@x.com,P1,+442079461111".to_owned(),
            _ if i == WINDOW + 10 => "Second,ann@x.com,,".to_owned(),
            _ if i == WINDOW + 20 => "Phone Two,p2@x.com,P2,+442079461111".to_owned(),
            _ if i == n - 1 => "Last,,A,".to_owned(),
            _ => format!("Row {line},r{line}@x.com,R{line},"),
        };
        csv.push_str(&row);
        csv.push('\n');
    }
    let run = w.import(&csv, PHONE_MAPPING, "far", |_| {}).await;
    assert_eq!(run.exit_code, 0, "{:?}", run.summary);
    assert_eq!(outcome(&run, "updated"), 2);
    assert_eq!(outcome(&run, "created"), n as u64 - 2);
    let stored = w.by_email();
    assert_eq!(stored["ann@x.com"]["name"], "Last");
    assert_eq!(stored["ann@x.com"]["identifier"], "A");
    assert_eq!(stored["p1@x.com"]["phone_number"], "+442079461111");
    assert!(stored["p2@x.com"]["phone_number"].is_null());
    let (order, rows) = results(&run.run_dir);
    assert!(order.windows(2).all(|p| p[0] < p[1]), "file order");
    let ann = &rows[&2][1];
    let second = (WINDOW + 12) as u64;
    assert_eq!(
        rows[&second][..3],
        ["updated".into(), ann.clone(), "2".into()]
    );
    assert_eq!(
        rows[&(n as u64 + 1)][..3],
        ["updated".into(), ann.clone(), "2".into()]
    );
    assert_eq!(rows[&((WINDOW + 22) as u64)][3], "phone_in_use");
    // The first row's contact was remembered: no search was needed to find it again.
    assert_eq!(w.sb.stats().count("GET", route::SEARCH), 0);
}

/// 20,000 rows with in-file duplicates and invalid rows spread through: every row reported
/// once in file order, the counts and the stored contacts those of the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20000_row_import_reports_every_row_once_in_file_order() {
    let w = World::plain().await;
    let n = 20_000;
    let mut csv = String::from(HEADER);
    let (mut dupes, mut invalid) = (BTreeMap::new(), 0);
    for i in 0..n {
        let line = i + 2;
        match i % 100 {
            // An earlier row's contact again, further back than the engine's window (an update,
            // a duplicate of its first line).
            37 if i >= 5000 => {
                let first = line - 4970;
                csv.push_str(&format!("Again {line},u{first}@x.com,U{first},gold,Rome\n"));
                dupes.insert(line as u64, first as u64);
            }
            64 => {
                // No key left once the email is refused: invalid.
                csv.push_str(&format!("Bad {line},not-an-email,,free,Oslo\n"));
                invalid += 1;
            }
            _ => csv.push_str(&format!("Row {line},u{line}@x.com,U{line},free,Lyon\n")),
        }
    }
    let run = w.import(&csv, MAPPING, "big", |_| {}).await;
    let created = n as u64 - dupes.len() as u64 - invalid;
    assert_eq!(outcome(&run, "created"), created);
    assert_eq!(outcome(&run, "updated"), dupes.len() as u64);
    assert_eq!(outcome(&run, "invalid"), invalid);
    assert_eq!(run.summary.rows_read, n as u64);
    assert_eq!(run.summary.duplicates_in_file, dupes.len() as u64);
    let (order, rows) = results(&run.run_dir);
    let expected: Vec<u64> = (2..n as u64 + 2).collect();
    assert_eq!(order, expected, "every row once, in file order");
    for (line, first) in &dupes {
        let r = &rows[line];
        assert_eq!(r[0], "updated");
        assert_eq!(
            r[1], rows[first][1],
            "line {line} updates line {first}'s contact"
        );
        assert_eq!(r[2], first.to_string());
    }
    let stored = w.by_email();
    assert_eq!(stored.len() as u64, created);
    let again = &stored["u4969@x.com"];
    assert_eq!(again["name"], "Again 9939");
    assert_eq!(again["custom_attributes"]["plan"], "gold");
    let failures = std::fs::read_to_string(run.run_dir.join("failures.csv")).unwrap();
    assert_eq!(failures.lines().count() as u64, invalid + 1);
    assert!(
        failures.contains("Bad 66,not-an-email"),
        "the fields as read"
    );
}

/// Stopped by `--max-errors` in the write phase, the rows never started are passed over, but
/// the invalid rows past the stop (here beyond the window) are still in failures.csv, as when
/// the whole file was held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_early_still_reports_the_invalid_rows_after_the_stop() {
    let w = World::plain().await;
    let mut csv = format!(
        "{HEADER}Ann,ann@x.com,A1,free,Oslo\nAnn,ann@x.com,A2,free,Oslo\n\
         Bob,bob@x.com,B1,free,Oslo\nBob,bob@x.com,B2,free,Oslo\n"
    );
    for i in 0..WINDOW * 2 {
        csv.push_str(&format!("Row {i},r{i}@x.com,R{i},free,Lyon\n"));
    }
    csv.push_str("Bad,not-an-email,,free,Oslo\n");
    let run = w
        .import(&csv, MAPPING, "stop", |a| a.max_errors = Some(1))
        .await;
    assert_eq!(run.summary.stopped, Some(Stop::MaxErrors));
    assert!(
        run.summary.rows_read < (WINDOW * 2) as u64,
        "{:?}",
        run.summary
    );
    let failures = std::fs::read_to_string(run.run_dir.join("failures.csv")).unwrap();
    let last = WINDOW * 2 + 6;
    assert!(
        failures.contains(&format!("not-an-email,,free,Oslo,{last},")),
        "{failures}"
    );
    assert_eq!(outcome(&run, "invalid"), 1);
    assert!(outcome(&run, "failed") >= 1);
}
