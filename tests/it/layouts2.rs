//! Layouts the team had not seen (the `hunt` slice): Google Contacts (current and older export),
//! Outlook (comma and the European `;` / Windows-1252 file), Mailchimp's audience export. Each
//! sample is written in its export's real header row; `mapping init` names the layout and drafts a
//! mapping that validates and imports into the sandbox every row with a valid key, with nothing
//! wrong stored (no `a ::: b` cell as one value, no date of birth, phones in E.164).
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use doto_bulk::cmd::mapping::init_with_region;
use doto_bulk::cmd::validate::{Args, run_validate};
use doto_bulk::mapping::Mapping;
use doto_bulk::normalise::Region;
use doto_bulk::source;
use serde_json::Value;

use crate::import::{World, outcome};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (sample, its header row as the export writes it, delimiter).
const VERBATIM: &[(&str, &str, u8)] = &[
    (
        "samples/google-contacts.csv",
        "First Name,Middle Name,Last Name,Phonetic First Name,Phonetic Middle Name,Phonetic Last Name,Name Prefix,Name Suffix,Nickname,File As,Organization Name,Organization Title,Organization Department,Birthday,Notes,Photo,Labels,E-mail 1 - Label,E-mail 1 - Value,E-mail 2 - Label,E-mail 2 - Value,Phone 1 - Label,Phone 1 - Value,Phone 2 - Label,Phone 2 - Value,Address 1 - Label,Address 1 - Formatted,Address 1 - Street,Address 1 - City,Address 1 - PO Box,Address 1 - Region,Address 1 - Postal Code,Address 1 - Country,Address 1 - Extended Address,Website 1 - Label,Website 1 - Value",
        b',',
    ),
    (
        "samples/google-contacts-legacy.csv",
        "Name,Given Name,Additional Name,Family Name,Yomi Name,Given Name Yomi,Additional Name Yomi,Family Name Yomi,Name Prefix,Name Suffix,Initials,Nickname,Short Name,Maiden Name,Birthday,Gender,Location,Billing Information,Directory Server,Mileage,Occupation,Hobby,Sensitivity,Priority,Subject,Notes,Group Membership,E-mail 1 - Type,E-mail 1 - Value,Phone 1 - Type,Phone 1 - Value,Phone 2 - Type,Phone 2 - Value,Organization 1 - Type,Organization 1 - Name,Organization 1 - Yomi Name,Organization 1 - Title,Organization 1 - Department,Organization 1 - Symbol,Organization 1 - Location,Organization 1 - Job Description",
        b',',
    ),
    ("samples/outlook-contacts.csv", OUTLOOK, b','),
    ("samples/outlook-contacts-eu.csv", OUTLOOK, b';'),
    (
        "samples/mailchimp-audience.csv",
        r#""Email Address","First Name","Last Name",Address,"Phone Number",Birthday,TAGS,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES"#,
        b',',
    ),
];

const OUTLOOK: &str = "First Name,Middle Name,Last Name,Title,Suffix,Initials,Web Page,Gender,Birthday,Anniversary,Location,Language,Internet Free Busy,Notes,E-mail Address,E-mail 2 Address,E-mail 3 Address,Primary Phone,Home Phone,Home Phone 2,Mobile Phone,Pager,Home Fax,Home Address,Home Street,Home Street 2,Home Street 3,Home Address PO Box,Home City,Home State,Home Postal Code,Home Country,Spouse,Children,Manager's Name,Assistant's Name,Referred By,Company Main Phone,Business Phone,Business Phone 2,Business Fax,Assistant's Phone,Company,Job Title,Department,Office Location,Organizational ID Number,Profession,Account,Business Address,Business Street,Business Street 2,Business Street 3,Business Address PO Box,Business City,Business State,Business Postal Code,Business Country,Other Phone,Other Fax,Other Address,Other Street,Other Street 2,Other Street 3,Other Address PO Box,Other City,Other State,Other Postal Code,Other Country,Callback,Car Phone,ISDN,Radio Phone,TTY/TDD Phone,Telex,User 1,User 2,User 3,User 4,Keywords,Mileage,Hobby,Billing Information,Directory Server,Sensitivity,Priority,Private,Categories";

/// Dates of birth written in the samples: never stored.
const BIRTHDAYS: &[&str] = &["1906-12-09", "--04-12", "1990-02-14", "5/17/1980", "04/12"];

fn headers_of(row: &str, delimiter: u8) -> Vec<String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .from_reader(row.as_bytes());
    let rec = r.records().next().unwrap().unwrap();
    rec.iter().map(str::to_owned).collect()
}

#[test]
fn every_sample_is_written_in_its_exports_header_row() {
    for (sample, header, delimiter) in VERBATIM {
        let src = source::open(&root().join(sample), &Default::default())
            .unwrap_or_else(|e| panic!("{sample}: {e:#}"));
        assert_eq!(
            src.headers(),
            headers_of(&header.replace(';', ","), b',').as_slice(),
            "{sample}"
        );
        let raw = std::fs::read(root().join(sample)).unwrap();
        let first = raw.split(|&b| b == b'\n').next().unwrap();
        let utf16 = first.starts_with(b"\xff\xfe");
        assert!(
            utf16 || first.contains(delimiter),
            "{sample}: not {delimiter}-delimited"
        );
    }
    // The European Outlook file is what such a Windows writes: ';' and Windows-1252 bytes.
    let eu = std::fs::read(root().join("samples/outlook-contacts-eu.csv")).unwrap();
    assert!(
        std::str::from_utf8(&eu).is_err() && eu.contains(&0xFC),
        "ü as 0xFC"
    );
    // Older Gmail wrote its Google CSV in UTF-16 LE with a BOM.
    let legacy = std::fs::read(root().join("samples/google-contacts-legacy.csv")).unwrap();
    assert_eq!(&legacy[..4], b"\xff\xfeN\0");
}

/// One sample: its region argument (none when every local number has its row's country), the
/// layout init names, and the documented counts (rows, valid, invalid).
struct Case {
    sample: &'static str,
    region: Option<&'static str>,
    layout: &'static str,
    counts: (u64, u64, u64),
}

const CASES: &[Case] = &[
    Case {
        sample: "samples/google-contacts.csv",
        region: None,
        layout: "Google Contacts CSV (Google CSV export)",
        counts: (10, 9, 1),
    },
    Case {
        sample: "samples/google-contacts-legacy.csv",
        region: None,
        layout: "Google Contacts CSV (older export: Name, Given Name, E-mail 1 - Type)",
        counts: (6, 5, 1),
    },
    Case {
        sample: "samples/outlook-contacts.csv",
        region: Some("US"),
        layout: "Outlook contacts CSV",
        counts: (8, 7, 1),
    },
    Case {
        sample: "samples/outlook-contacts-eu.csv",
        region: Some("DE"),
        layout: "Outlook contacts CSV",
        counts: (5, 5, 0),
    },
    Case {
        sample: "samples/mailchimp-audience.csv",
        region: Some("US"),
        layout: "Mailchimp audience export",
        counts: (6, 5, 1),
    },
];

pub(crate) fn stored(w: &World) -> Vec<Value> {
    (w.sb.contacts().into_iter())
        .filter(|c| {
            c["account_id"]
                .as_u64()
                .is_none_or(|a| a == w.sb.account_id)
        })
        .collect()
}

/// Nothing wrong stored: no multi-value cell as one value, no date of birth, E.164 phones,
/// lower-case emails.
fn assert_clean(ctx: &str, contacts: &[Value]) {
    for c in contacts {
        let text = c.to_string();
        for b in BIRTHDAYS {
            assert!(!text.contains(b), "{ctx}: a date of birth was stored: {c}");
        }
        if let Some(e) = c["email"].as_str() {
            assert!(!e.contains(":::") && !e.contains(' '), "{ctx}: {c}");
            assert_eq!(e, e.to_lowercase(), "{ctx}: {c}");
        }
        assert_e164(ctx, c);
        assert!(
            c["email"].is_string() || c["phone_number"].is_string(),
            "{ctx}: stored without a key: {c}"
        );
    }
}

/// A stored phone, if any, is in E.164.
pub(crate) fn assert_e164(ctx: &str, c: &Value) {
    if let Some(p) = c["phone_number"].as_str() {
        let digits = p.strip_prefix('+').unwrap_or("");
        assert!(
            (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()),
            "{ctx}: phone {p:?} is not E.164"
        );
    }
}

pub(crate) async fn import(
    w: &World,
    file: &Path,
    mapping: &Path,
    region: Option<Region>,
) -> Vec<u64> {
    let run = w
        .import_file(file, mapping, "run", |a| a.phone_region = region)
        .await;
    assert_eq!(run.fatal, None, "{}", file.display());
    ["created", "invalid", "failed"]
        .iter()
        .map(|k| outcome(&run, k))
        .collect()
}

/// `mapping init` → `validate` → `import --sandbox` on each sample: every row with a valid key
/// arrives, and nothing wrong is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_then_validate_then_import_brings_every_row_with_a_key() {
    for case in CASES {
        let region = case.region.and_then(Region::parse);
        let (d, contacts) = init_validate_import(case.sample, region, case.counts).await;
        let ctx = format!("{}\n{}", case.sample, d.yaml);
        assert_eq!(d.layout, case.layout, "{ctx}");
        // The date of birth is listed, commented out, never enabled.
        let listed: Vec<&str> = (d.yaml.lines())
            .filter(|l| l.contains("birthday: \"Birthday\""))
            .collect();
        assert_eq!(listed.len(), 1, "{ctx}");
        assert!(listed[0].starts_with("#  birthday:"), "{ctx}");
        assert!(listed[0].contains("never enabled"), "{ctx}");
        assert_clean(case.sample, &contacts);
    }
}

/// `mapping init` on `sample`, then `validate` and `import --sandbox` with the draft: the
/// documented (rows, valid, invalid) both times, every valid row stored. The draft and the
/// stored contacts, for the caller's checks.
pub(crate) async fn init_validate_import(
    sample: &str,
    region: Option<Region>,
    counts: (u64, u64, u64),
) -> (doto_bulk::mapping::guess::Draft, Vec<Value>) {
    let file = root().join(sample);
    let w = World::plain().await;
    let drafted = w.path("draft.yaml");
    let d = init_with_region(&file, Some(&drafted), region)
        .unwrap_or_else(|e| panic!("{sample}: {e:#}"));
    let ctx = format!("{sample}\n{}", d.yaml);
    assert!(!d.region_undecided, "{ctx}");
    let mut args = Args::new(&file, &drafted, Some(&w.path("validate")));
    args.phone_region = region;
    let v = run_validate(&args, true, &AtomicBool::new(false))
        .unwrap_or_else(|e| panic!("{ctx}: {e:#}"));
    let n = |k: &str| v.summary.outcomes.get(k).copied().unwrap_or(0);
    let (rows, valid, invalid) = counts;
    let found = (v.summary.rows_read, n("valid"), n("invalid"));
    assert_eq!(found, counts, "{ctx}");
    let got = import(&w, &file, &drafted, region).await;
    assert_eq!(got, [valid, invalid, 0], "{ctx}");
    let contacts = stored(&w);
    assert_eq!(contacts.len() as u64, valid, "{ctx}");
    assert_eq!(valid + invalid, rows);
    (d, contacts)
}

pub(crate) fn find<'a>(contacts: &'a [Value], key: &str, value: &str) -> &'a Value {
    (contacts.iter())
        .find(|c| c[key].as_str() == Some(value))
        .unwrap_or_else(|| panic!("no contact with {key} {value}: {contacts:#?}"))
}

/// The Google sample with the shipped mapping: the first usable value of an `a ::: b` cell is
/// the email or phone, the whole cell is kept as text, and a contact with a phone alone arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_multi_value_cells_give_their_first_usable_value() {
    let w = World::plain().await;
    let file = root().join("samples/google-contacts.csv");
    let mapping = root().join("mappings/google.yaml");
    assert_eq!(import(&w, &file, &mapping, None).await, [9, 1, 0]);
    let contacts = stored(&w);
    assert_clean("google.yaml", &contacts);
    let ann = find(&contacts, "email", "ann.lee@example.com");
    assert_eq!(
        ann["custom_attributes"]["email_1"],
        "ann.lee@example.com ::: ann@lee.example.org"
    );
    assert_eq!(ann["phone_number"], "+447911123456");
    // `bob(at)example.com ::: bob.marsh@example.com`: the second value, the first one warned.
    let bob = find(&contacts, "email", "bob.marsh@example.com");
    assert_eq!(bob["name"], "Bob Marsh");
    let li = find(&contacts, "email", "li.xiaolong@example.cn");
    assert_eq!(li["phone_number"], "+8613800138000");
    let ravi = find(&contacts, "phone_number", "+447911223344");
    assert!(ravi["email"].is_null(), "{ravi}");
    assert_eq!(ravi["name"], "Ravi Patel");
    // An organisation without a person's name is named after it.
    let acme = find(&contacts, "email", "office@acme-plumbing.example.com");
    assert_eq!(acme["name"], "Acme Plumbing");
    assert_eq!(
        find(&contacts, "email", "grace.hopper@example.com")["name"],
        "Grace Brewster Hopper"
    );
}

/// The draft for a Google file reads `a ::: b` cells value by value and matches on the phone too.
#[test]
fn the_google_draft_splits_multi_value_cells_and_matches_on_the_phone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.yaml");
    let file = root().join("samples/google-contacts.csv");
    let d = init_with_region(&file, Some(&out), None).unwrap();
    let line = |f: &str| {
        (d.yaml.lines())
            .find(|l| l.starts_with(&format!("  {f}:")))
            .unwrap_or_else(|| panic!("no {f}:\n{}", d.yaml))
            .to_owned()
    };
    assert!(line("email").contains(r#"split: ":::""#), "{}", d.yaml);
    assert!(
        line("phone_number").contains(r#"split: ":::""#),
        "{}",
        d.yaml
    );
    assert!(d.yaml.contains("on: [email, phone_number]"), "{}", d.yaml);
    // Every Google export gets it, for rows past the sample (the older sample's phones are
    // all single values).
    let l = dir.path().join("l.yaml");
    let legacy = root().join("samples/google-contacts-legacy.csv");
    let d = init_with_region(&legacy, Some(&l), None).unwrap();
    let phone = d.yaml.lines().find(|l| l.starts_with("  phone_number:"));
    assert!(phone.unwrap().contains(r#"split: ":::""#), "{}", d.yaml);
    // A file of another layout without such cells gets no `split:`.
    let o = dir.path().join("o.yaml");
    let d = init_with_region(&root().join("samples/outlook-contacts.csv"), Some(&o), None).unwrap();
    assert!(!d.yaml.contains("split:"), "{}", d.yaml);
}

#[test]
fn split_is_refused_where_it_reads_nothing() {
    let base = "version: 1\nfields:\n  name: Name\n";
    for (spec, want) in [
        (
            r#"  email: { from: Email, split: "" }"#,
            "`split:` is blank",
        ),
        (
            r#"  email: { const: "a@example.com", split: ":::" }"#,
            "`split:` applies to the values of `from:` columns",
        ),
        (
            r#"  phone_number: { template: "{Phone}", split: ":::" }"#,
            "`split:` applies to the values of `from:` columns",
        ),
    ] {
        let yaml = format!("{base}{spec}\n");
        let err = Mapping::parse(&yaml, "m.yaml").expect_err(spec);
        assert!(format!("{err:#}").contains(want), "{spec}: {err:#}");
    }
    let ok = format!("{base}  email: {{ template: \"{{Email}}\", from: [Other], split: \";\" }}\n");
    Mapping::parse(&ok, "m.yaml").unwrap();
}
