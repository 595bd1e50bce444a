//! The shipped mappings against the layouts each CRM really exports (issue 12): the five header
//! rows copied verbatim from real exports (each has a sample in that exact layout), the other
//! views of each CRM (all properties, API names, leads, single or label-split columns, fewer
//! columns), and columns that must never be imported (dates of birth, identity numbers,
//! passwords). Each loads; each sample gives the counts of docs/samples.md; a layout a mapping
//! was not written for fails with a hint naming the column it should use.
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use doto_bulk::cmd::validate::{Args, run_validate};
use doto_bulk::mapping::Mapping;
use doto_bulk::source::{self, Record};

use crate::samples::{documented, documented_other};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The header rows of issue 12, verbatim, each with the sample written in it and its mapping.
const VERBATIM: &[(&str, &str, &str)] = &[
    (
        "samples/hubspot-default-view.csv",
        "mappings/hubspot.yaml",
        r#""Record ID","First Name","Last Name","Email","Phone Number","Contact owner","Primary Associated Company ID","Last Activity Date","Lead Status","Create Date","Additional email addresses","Associated Company""#,
    ),
    (
        "samples/chatwoot-default.csv",
        "mappings/chatwoot.yaml",
        "id,name,email,phone_number",
    ),
    (
        "samples/chatwoot-labels.csv",
        "mappings/chatwoot.yaml",
        "\u{feff}id,name,email,phone_number,labels",
    ),
    (
        "samples/zoho-contacts-export.csv",
        "mappings/zoho.yaml",
        "Record Id,Contact Owner.id,Contact Owner,Lead Source,First Name,Last Name,Producer Name.id,Producer Name,Email,Title,Phone,Fax,Mobile,Date of Birth,Created By.id,Created By,Modified By.id,Modified By,Created Time,Modified Time,Contact Name,Mailing Street,Mailing City,Mailing State,Mailing Zip,Email Opt Out,Salutation,Secondary Email,Last Activity Time,Tag",
    ),
    (
        "samples/salesforce-report.csv",
        "mappings/salesforce.yaml",
        "Salutation,First Name,Last Name,Title,Mailing Street,Mailing City,Mailing State/Province,Mailing Zip/Postal Code,Mailing Country,Phone,Email,Contact Record Type,Account Name,Account Owner,Lead Source",
    ),
    (
        "samples/pipedrive-people-labels.csv",
        "mappings/pipedrive.yaml",
        "\u{feff}Person - ID;Person - Name;Person - First name;Person - Last name;Person - Organization;Person - Email - Work;Person - Email - Home;Person - Email - Other;Person - Phone - Work;Person - Phone - Home;Person - Phone - Mobile;Person - Phone - Other;Person - Owner;Person - Job title;Person - Notes;Person - Open deals;Person - Won deals;Person - Lost deals;Person - Email messages count;Person - Last email sent;Person - Last email received",
    ),
];

/// Other views of each CRM, header only (`,`-separated), with the mapping that must read them.
/// Some hold columns no shipped mapping may import (see [`SENSITIVE`]).
const VIEWS: &[(&str, &str)] = &[
    // HubSpot "All properties on records", with a custom SSN property.
    (
        "mappings/hubspot.yaml",
        "Record ID,First Name,Last Name,Email,Phone Number,Mobile Phone Number,Fax Number,Street Address,City,State/Region,Postal Code,Country/Region,Job Title,Company Name,Website URL,Lifecycle Stage,Lead Status,Contact owner,Create Date,Last Activity Date,Date of birth,Marketing contact status,Social Security Number",
    ),
    // HubSpot before "Record ID", and a view with only the needed columns.
    (
        "mappings/hubspot.yaml",
        "Contact ID,First Name,Last Name,Email,Phone Number,Company Name,Lifecycle Stage",
    ),
    ("mappings/hubspot.yaml", "First Name,Last Name,Email"),
    // Salesforce report with the record id and a birthdate; a report with the least.
    (
        "mappings/salesforce.yaml",
        "Contact ID,First Name,Last Name,Email,Mobile,Phone,Birthdate,Mailing Country,Account Name",
    ),
    ("mappings/salesforce.yaml", "First Name,Last Name,Email"),
    // Salesforce by API name: a Data Loader query, the weekly data export's Contact.csv.
    (
        "mappings/salesforce-dataloader.yaml",
        "Id,FirstName,LastName,Email,Phone,MobilePhone,MailingCountry,Birthdate",
    ),
    (
        "mappings/salesforce-dataloader.yaml",
        "Id,IsDeleted,AccountId,LastName,FirstName,Salutation,Name,MailingStreet,MailingCity,MailingState,MailingPostalCode,MailingCountry,Phone,Fax,MobilePhone,HomePhone,Email,Title,Department,LeadSource,Birthdate,OwnerId,CreatedDate",
    ),
    // Data Loader's upper-case headers, quoted as it writes them.
    (
        "mappings/salesforce-dataloader-caps.yaml",
        r#""ID","ACCOUNTID","LASTNAME","FIRSTNAME","SALUTATION","NAME","MAILINGCITY","MAILINGCOUNTRY","PHONE","MOBILEPHONE","EMAIL","TITLE","BIRTHDATE""#,
    ),
    (
        "mappings/salesforce-dataloader-caps.yaml",
        "ID,FIRSTNAME,LASTNAME",
    ),
    // Pipedrive with single columns, with labels but only some of them, with a password field.
    (
        "mappings/pipedrive.yaml",
        "Person - ID,Person - Name,Person - Email,Person - Phone,Person - Organization,Person - Owner",
    ),
    (
        "mappings/pipedrive.yaml",
        "Person - Name,Person - Email - Work,Person - Phone - Mobile,Person - Portal password",
    ),
    // Zoho contacts with a country and a national id custom field; Zoho leads.
    (
        "mappings/zoho.yaml",
        "Record Id,First Name,Last Name,Email,Mobile,Phone,Mailing Country,Date of Birth,National ID",
    ),
    ("mappings/zoho.yaml", "First Name,Last Name,Email"),
    (
        "mappings/zoho-leads.yaml",
        "Record Id,Lead Owner,Company,First Name,Last Name,Title,Email,Phone,Mobile,Lead Source,Lead Status,Industry,Annual Revenue,Street,City,State,Zip Code,Country,Description,Date of Birth,Tax ID",
    ),
    // Chatwoot: the richer export of some versions.
    (
        "mappings/chatwoot.yaml",
        "id,name,email,phone_number,identifier,additional_attributes,custom_attributes,created_at,last_activity_at,labels",
    ),
];

/// Words of a header that holds a value no shipped mapping may import.
const SENSITIVE: &[&str] = &[
    "birth",
    "birthdate",
    "ssn",
    "social security",
    "password",
    "tax id",
    "national id",
];

fn is_sensitive(h: &str) -> bool {
    let l = h.to_lowercase();
    SENSITIVE.iter().any(|s| l.contains(s))
}

/// A made-up cell for a header: an email, a phone, an id, a secret for a sensitive column.
fn cell(h: &str, i: usize) -> String {
    let l = h.to_lowercase();
    if is_sensitive(h) {
        format!("SECRET-{i}")
    } else if l.contains("mail") && !l.contains("count") && !l.contains("opt") {
        format!("person{i}@example.com")
    } else if l.contains("phone") || l.contains("mobile") {
        format!("+1415555{:04}", 2600 + i)
    } else if l == "id" || l.ends_with(" id") || l.ends_with("record id") {
        format!("{}", 1000 + i)
    } else {
        format!("Value {i}")
    }
}

fn split(header: &str) -> Vec<String> {
    let sep = if header.contains(';') { b';' } else { b',' };
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(sep)
        .from_reader(header.trim_start_matches('\u{feff}').as_bytes());
    let rec = r.records().next().unwrap().unwrap();
    rec.iter().map(str::to_owned).collect()
}

/// Every layout: the verbatim rows and the other views, with their mappings.
fn layouts() -> Vec<(&'static str, Vec<String>)> {
    let verbatim = VERBATIM.iter().map(|(_, m, h)| (*m, split(h)));
    verbatim
        .chain(VIEWS.iter().map(|(m, h)| (*m, split(h))))
        .collect()
}

#[test]
fn every_verbatim_layout_has_a_sample_written_in_it() {
    for (sample, mapping, header) in VERBATIM {
        let m = Mapping::load(&root().join(mapping)).unwrap();
        let src = source::open(&root().join(sample), &m.source_options())
            .unwrap_or_else(|e| panic!("{sample}: {e:#}"));
        assert_eq!(src.headers(), split(header).as_slice(), "{sample}");
        let raw = std::fs::read(root().join(sample)).unwrap();
        let first = raw.split(|&b| b == b'\n').next().unwrap();
        let first = String::from_utf8(first.to_vec()).unwrap();
        assert_eq!(
            first.trim_end_matches('\r'),
            *header,
            "{sample}: not verbatim"
        );
        assert!(
            documented()
                .iter()
                .any(|e| e.sample == *sample && e.mapping == *mapping),
            "{sample} with {mapping} is not in docs/samples.md"
        );
    }
}

#[test]
fn every_shipped_mapping_reads_every_layout_of_its_crm_and_never_a_sensitive_column() {
    for (mapping, headers) in layouts() {
        let ctx = format!("{mapping} on {headers:?}");
        let m = Mapping::load(&root().join(mapping)).unwrap_or_else(|e| panic!("{e:#}"));
        let r = m
            .resolve(&headers)
            .unwrap_or_else(|e| panic!("{ctx}: {e:#}"));
        for i in 1..=2 {
            let rec = Record {
                line: i as u64 + 1,
                fields: headers.iter().map(|h| cell(h, i)).collect(),
                numeric: Vec::new(),
            };
            let d = r
                .apply(&rec)
                .unwrap_or_else(|e| panic!("{ctx}: row {i}: {e:?}"));
            assert!(
                d.name.as_deref().is_some_and(|n| !n.is_empty()),
                "{ctx}: {d:?}"
            );
            let has_key = d.email.is_some() || d.identifier.is_some();
            assert!(has_key, "{ctx}: no match key: {d:?}");
            let text = format!("{d:?}");
            assert!(
                !text.contains("SECRET"),
                "{ctx}: a sensitive column was mapped: {text}"
            );
        }
    }
}

/// Each shipped mapping's required columns are only a name source and a key: dropping any other
/// column of a layout still loads.
#[test]
fn every_column_but_the_name_and_key_is_optional() {
    for (mapping, headers) in layouts() {
        let m = Mapping::load(&root().join(mapping)).unwrap();
        for drop in &headers {
            let fewer: Vec<String> = headers.iter().filter(|h| *h != drop).cloned().collect();
            if m.resolve(&fewer).is_ok() {
                continue;
            }
            let l = drop.to_lowercase();
            // Zoho leads need their Company (it tells a leads export from a contacts one).
            let needed = ["name", "email", "id", "person - name", "company"]
                .iter()
                .any(|w| l == *w || l.ends_with(&format!(" {w}")) || l.starts_with("first"))
                || l.contains("firstname")
                || l.contains("lastname");
            assert!(needed, "{mapping}: dropping {drop:?} stops it");
        }
    }
}

/// The shipped mapping of one export on another export of the same CRM stops before the first
/// row, and the hint names the column that export has.
#[test]
fn a_mapping_on_the_other_export_names_the_column_to_use() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "samples/salesforce-dataloader.csv",
            "mappings/salesforce.yaml",
            r#"column "First Name" is not in the file's headers; closest: "FirstName""#,
        ),
        (
            "samples/salesforce-report.csv",
            "mappings/salesforce-dataloader.yaml",
            r#"column "FirstName" is not in the file's headers; closest: "First Name""#,
        ),
    ];
    for (i, (sample, mapping, want)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("run{i}"));
        let args = Args::new(&root().join(sample), &root().join(mapping), Some(&out));
        let err = run_validate(&args, true, &AtomicBool::new(false))
            .err()
            .unwrap_or_else(|| panic!("{mapping} loaded {sample}"));
        let msg = format!("{err:#}");
        assert!(msg.contains(want), "{sample} with {mapping}: {msg}");
    }
}

/// A hand-written mapping naming Pipedrive's single phone column, on the label-split export: the
/// hint lists the split phone columns, not "Person - Name" (a few edits away).
#[test]
fn the_hint_finds_the_label_split_columns() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("mine.yaml");
    std::fs::write(
        &mapping,
        "version: 1\nfields:\n  name: \"Person - Name\"\n  email: \"Person - Email\"\n  phone_number: \"Person - Phone\"\n",
    )
    .unwrap();
    let sample = root().join("samples/pipedrive-people-labels.csv");
    let args = Args::new(&sample, &mapping, Some(&dir.path().join("run")));
    let err = run_validate(&args, true, &AtomicBool::new(false)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains(r#"mine.yaml:4: column "Person - Email" is not in the file's headers; closest: "Person - Email - Work", "Person - Email - Home", "Person - Email - Other""#),
        "{msg}"
    );
    assert!(
        msg.contains(r#"mine.yaml:5: column "Person - Phone" is not in the file's headers; closest: "Person - Phone - Work", "Person - Phone - Home", "Person - Phone - Other""#),
        "{msg}"
    );
}

/// Every sample of a CRM, with every shipped mapping of that CRM, gives the documented counts:
/// its own mapping's (first table of docs/samples.md), another mapping's that reads it too (the
/// second table); a pair in neither table must fail to load.
#[test]
fn every_mapping_of_a_crm_on_every_sample_of_it_gives_the_documented_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (own, other) = (documented(), documented_other());
    let docs: Vec<_> = own.iter().chain(&other).collect();
    let mappings: Vec<String> = std::fs::read_dir(root().join("mappings"))
        .unwrap()
        .map(|e| format!("mappings/{}", e.unwrap().file_name().into_string().unwrap()))
        .collect();
    let crm = |p: &str| {
        let stem = p.rsplit('/').next().unwrap();
        stem.split(['-', '.']).next().unwrap().to_owned()
    };
    let mut checked = 0;
    for sample in own.iter().map(|e| &e.sample) {
        for mapping in mappings.iter().filter(|m| crm(m) == crm(sample)) {
            let doc = docs
                .iter()
                .find(|e| &e.sample == sample && &e.mapping == mapping);
            let out = dir.path().join(format!("run{checked}"));
            let mut args = Args::new(&root().join(sample), &root().join(mapping), Some(&out));
            args.phone_region = doc.and_then(|e| e.phone_region);
            let got = run_validate(&args, true, &AtomicBool::new(false));
            checked += 1;
            let Some(e) = doc else {
                assert!(got.is_err(), "{sample} with {mapping} loads: document it");
                continue;
            };
            let v = got.unwrap_or_else(|err| panic!("{sample} with {mapping}: {err:#}"));
            let n = |k: &str| v.summary.outcomes.get(k).copied().unwrap_or(0);
            assert_eq!(
                (v.summary.rows_read, n("valid"), n("invalid"), n("skipped")),
                (e.rows, e.valid, e.invalid, e.skipped),
                "{sample} with {mapping}"
            );
        }
    }
    assert!(checked >= 18, "{checked}");
}

/// An optional column written another way in the file (`Record Id` for HubSpot's `Record ID`)
/// is not silently skipped: the notice names the header that is likely meant.
#[test]
fn an_optional_column_spelt_another_way_is_named_in_the_notice() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hubspot.csv");
    std::fs::write(
        &file,
        "Record Id,First Name,Last Name,Email\n7,Ann,Lee,ann@example.com\n",
    )
    .unwrap();
    let out = dir.path().join("run");
    let args = Args::new(&file, &root().join("mappings/hubspot.yaml"), Some(&out));
    let v = run_validate(&args, true, &AtomicBool::new(false)).unwrap();
    assert_eq!(v.exit_code, 0);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let notes: Vec<&str> = summary["header_warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    let id = notes
        .iter()
        .find(|n| n.contains("fields.identifier"))
        .unwrap_or_else(|| panic!("{notes:?}"));
    assert!(
        id.contains(r#"the file has "Record Id": write it so for "Record ID" to read it"#),
        "{id}"
    );
    // Columns that are simply absent get no such guess.
    let city = notes.iter().find(|n| n.contains(".city")).unwrap();
    assert!(!city.contains("the file has"), "{city}");
}
