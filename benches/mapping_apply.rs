//! Throughput of `Resolved::apply` (the per-row hot path of the mapping) on a file from
//! `gen_contacts.py`, against a hand-written converter of the same columns run in the same
//! process: the ratio is what the mapping's generality costs. Phone parsing belongs to
//! `normalise` and dominates when included, so both variants are measured with and without it.
//!
//! Usage: cargo bench --bench mapping_apply -- CONTACTS.csv [REPEATS [no-phone]]
use std::hint::black_box;
use std::time::Instant;

use doto_bulk::mapping::{ContactDraft, Mapping};
use doto_bulk::normalise::{Email, PhoneE164, Region};
use doto_bulk::source::Record;

const WITH_PHONE: &str = r#"version: 1
defaults: { phone_region: US }
match: { on: [email] }
fields:
  name: { template: "{first_name} {last_name}" }
  email: email
  phone_number: { from: phone, region_from: country }
custom_attributes:
  plan: { from: plan, lowercase: true, map: { gold: premium } }
  signup_date: { from: signup_date, type: date }
additional_attributes:
  company_name: company
notes:
  - { template: "Imported: {company}" }
"#;

fn read(path: &str) -> (Vec<String>, Vec<Record>) {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .expect("open csv");
    let headers = r.headers().unwrap().iter().map(str::to_owned).collect();
    let recs = r
        .records()
        .enumerate()
        .map(|(i, rec)| Record {
            line: i as u64 + 2,
            fields: rec.unwrap().iter().map(str::to_owned).collect(),
            numeric: Vec::new(),
        })
        .collect();
    (headers, recs)
}

/// The same conversion written by hand for this one layout: the floor.
fn by_hand(rec: &Record, phone: bool) -> bool {
    let f = &rec.fields;
    let mut d = ContactDraft {
        name: Some(format!("{} {}", f[0].trim(), f[1].trim())),
        ..Default::default()
    };
    let mut ok = true;
    match Email::parse(&f[2]) {
        Ok(e) => d.email = Some(e),
        Err(_) => ok = false,
    }
    if phone && !f[3].trim().is_empty() {
        let region = Region::parse(&f[4]).or(Region::parse("US"));
        match PhoneE164::parse(&f[3], region, false) {
            Ok(p) => d.phone_number = Some(p),
            Err(_) => ok = false,
        }
    }
    let plan = f[6].trim().to_lowercase();
    let plan = if plan == "gold" {
        "premium".into()
    } else {
        plan
    };
    d.custom_attributes.insert("plan".into(), plan.into());
    d.custom_attributes
        .insert("signup_date".into(), f[7].trim().to_owned().into());
    d.additional_attributes
        .insert("company_name".into(), f[5].trim().to_owned().into());
    d.notes.push(format!("Imported: {}", f[5].trim()));
    black_box(&d);
    ok
}

/// Rows per second over `threads` threads, best of `repeats`.
fn rate(
    recs: &[Record],
    threads: usize,
    repeats: usize,
    f: &(dyn Fn(&Record) -> bool + Sync),
) -> (f64, usize) {
    let mut best = 0.0f64;
    let mut ok = 0;
    for _ in 0..repeats {
        let t = Instant::now();
        let chunk = recs.len().div_ceil(threads);
        ok = std::thread::scope(|s| {
            let hs: Vec<_> = recs
                .chunks(chunk)
                .map(|c| s.spawn(move || c.iter().filter(|r| f(r)).count()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
        });
        best = best.max(recs.len() as f64 / t.elapsed().as_secs_f64());
    }
    (best, ok)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    // `cargo test --all-targets` runs this with no file: nothing to measure then.
    let Some(path) = args.first() else {
        println!("usage: cargo bench --bench mapping_apply -- CONTACTS.csv [REPEATS [no-phone]]");
        return;
    };
    let repeats: usize = args.get(1).map(|r| r.parse().unwrap()).unwrap_or(3);
    let (headers, recs) = read(path);

    let no_phone = WITH_PHONE.replace(
        "  phone_number: { from: phone, region_from: country }\n",
        "",
    );
    println!("rows: {}", recs.len());
    println!(
        "{:<28} {:>7} {:>12} {:>9}",
        "variant", "threads", "rows/s", "valid"
    );
    let skip_phone = args.get(2).is_some_and(|a| a == "no-phone");
    for (label, yaml, phone) in [
        ("no phone", no_phone.as_str(), false),
        ("with phone", WITH_PHONE, true),
    ] {
        if phone && skip_phone {
            continue;
        }
        let r = Mapping::parse(yaml, "bench.yaml")
            .unwrap()
            .resolve(&headers)
            .unwrap();
        let apply = |rec: &Record| black_box(r.apply(rec)).is_ok();
        let hand = |rec: &Record| by_hand(rec, phone);
        // Phone parsing is slow until `normalise` tunes the phone library: a sample will do.
        let (reps, sample) = if phone {
            (1, &recs[..recs.len().min(20_000)])
        } else {
            (repeats, &recs[..])
        };
        for threads in [1, 2] {
            let (m, mok) = rate(sample, threads, reps, &apply);
            let (h, hok) = rate(sample, threads, reps, &hand);
            println!(
                "{:<28} {threads:>7} {m:>12.0} {mok:>9}",
                format!("mapping, {label}")
            );
            println!(
                "{:<28} {threads:>7} {h:>12.0} {hok:>9}",
                format!("by hand, {label}")
            );
            println!(
                "{:<28} {threads:>7} {:>12.2}",
                format!("ratio mapping/by hand"),
                m / h
            );
        }
    }
}
