//! `mapping init` on the exports people really have (issue 12): the five real header rows
//! (HubSpot default view, Chatwoot with BOM, Zoho contacts, Salesforce report, Pipedrive `;` +
//! BOM label-split), each drafted, validated and imported into the sandbox with the draft as
//! written; the phone region chain and its refused placeholder; repeated headers; `--include`
//! and sensitive columns; `--force`; no panic on any header row.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use doto_bulk::cmd::import::{Args as ImportArgs, run_import};
use doto_bulk::cmd::mapping::{InitOptions, init, init_with};
use doto_bulk::cmd::validate::{Args, run_validate};
use doto_bulk::mapping::Mapping;
use doto_bulk::mapping::guess::{ASK_REGION, Options, draft_with};
use doto_bulk::normalise::Region;
use proptest::prelude::*;
use serde_json::Value;

use crate::import::{World, outcome};

/// What a layout's draft must do: the layout it is taken for, rows read, rows that arrive (every
/// row with a valid key), and some (email, phone) pairs stored as E.164.
struct Expected {
    layout: &'static str,
    rows: u64,
    created: u64,
    phones: &'static [(&'static str, &'static str)],
    /// A value that must not reach the server (a sensitive column's).
    never_stored: Option<&'static str>,
}

const HUBSPOT: &str = "\"Record ID\",\"First Name\",\"Last Name\",\"Email\",\"Phone Number\",\"Contact owner\",\"Primary Associated Company ID\",\"Last Activity Date\",\"Lead Status\",\"Create Date\",\"Additional email addresses\",\"Associated Company\"\n\
\"101\",\"Émilie\",\"Rousseau\",\"emilie@rousseau.fr\",\"06 12 34 56 78\",\"Sam Owens\",\"9001\",\"2024-01-02\",\"NEW\",\"2023-05-01\",\"e.r@autre.fr\",\"Rousseau SARL\"\n\
\"102\",\"\",\"\",\"solo@exemple.fr\",\"01 42 68 53 00\",\"Sam Owens\",\"\",\"\",\"\",\"2023-05-02\",\"\",\"\"\n\
\"103\",\"Zoë\",\"Ørsted\",\"\",\"\",\"Sam Owens\",\"\",\"\",\"\",\"2023-05-03\",\"\",\"\"\n";

const CHATWOOT: &str = "\u{FEFF}id,name,email,phone_number,labels\n\
1,Ana Lima,ana@example.com,+5511912345678,vip\n\
2,,only@example.com,,\n\
3,José Ñúñez,,+34612345678,\"a,b\"\n";

const ZOHO: &str = "Record Id,Contact Owner.id,Contact Owner,Lead Source,First Name,Last Name,Producer Name.id,Producer Name,Email,Title,Phone,Fax,Mobile,Date of Birth,Created By.id,Created By,Modified By.id,Modified By,Created Time,Modified Time,Contact Name,Mailing Street,Mailing City,Mailing State,Mailing Zip,Email Opt Out,Salutation,Secondary Email,Last Activity Time,Tag\n\
zcrm_1579374000010700001,157937400001,Kim Ray,Web,Jane,Doe,,,jane@doe.example,Manager,(415) 555-2671,,(415) 555-2672,1980-07-14,1,Kim,1,Kim,2024-01-01 10:00:00,2024-01-01 10:00:00,Jane Doe,1 Main St,San Francisco,CA,94105,false,Ms.,,,vip\n\
zcrm_1579374000010700002,157937400001,Kim Ray,Web,,,,,mail.only@doe.example,,(415) 555-2673,,,,1,Kim,1,Kim,2024-01-01 10:00:00,2024-01-01 10:00:00,,,Austin,TX,73301,false,,,,\n\
zcrm_1579374000010700003,157937400001,Kim Ray,Web,Ünal,Çelik,,,,,,,,1975-02-03,1,Kim,1,Kim,2024-01-01 10:00:00,2024-01-01 10:00:00,Ünal Çelik,,Albany,NY,12207,false,Mr.,,,\n";

const SALESFORCE: &str = "Salutation,First Name,Last Name,Title,Mailing Street,Mailing City,Mailing State/Province,Mailing Zip/Postal Code,Mailing Country,Phone,Email,Contact Record Type,Account Name,Account Owner,Lead Source\n\
Mr.,Björn,Ström,CTO,Storgatan 1,Stockholm,,11122,Sweden,070 123 45 67,bjorn@strom.example,Business,Ström AB,Pat Lee,Web\n\
Ms.,,,,,,,,,,only@sf.example,,,,\n\
Dr.,Nadia,Khan,,,London,,,United Kingdom,020 7946 0018,,Business,,,\n";

const PIPEDRIVE: &str = "\u{FEFF}Person - ID;Person - Name;Person - First name;Person - Last name;Person - Organization;Person - Email - Work;Person - Email - Home;Person - Email - Other;Person - Phone - Work;Person - Phone - Home;Person - Phone - Mobile;Person - Phone - Other;Person - Owner;Person - Job title;Person - Notes;Person - Open deals;Person - Won deals;Person - Lost deals;Person - Email messages count;Person - Last email sent;Person - Last email received\n\
1;Jürgen Groß;Jürgen;Groß;Groß GmbH;j@gross.de;;;030 1234567;;0151 23456789;;Max;CEO;Met at the fair;1;0;0;3;;\n\
2;;;;;;anna@beispiel.de;;;;;;Max;;;0;0;0;0;;\n\
3;Łukasz Nowak;Łukasz;Nowak;;;;;;;;;Max;;;0;0;0;0;;\n";

/// The other views of these CRMs (issue 12, item 1's list).
const HUBSPOT_ALL: &str = "Record ID,First Name,Last Name,Email,Phone Number,Mobile Phone Number,Company Name,City,State/Region,Country/Region,Lifecycle Stage,Create Date,Contact owner,Job Title,Date of birth,Website URL,Industry,Annual Revenue,Number of Employees,Lead Status,Postal Code\n\
51,Jane,Doe,jane@acme.example,,07911 123456,Acme Ltd,London,,United Kingdom,customer,2023-07-17 10:30,Sam,CEO,1970-03-04,acme.example,Retail,,,,\n\
52,,,only@acme.example,020 7946 0018,,,,,United Kingdom,lead,,,,,,,,,,\n";

const SF_DATA_LOADER: &str = "Id,FirstName,LastName,Email,Phone,MobilePhone,MailingCity,MailingState,MailingCountry,AccountId,Title,Birthdate\n\
0035g00000AbCdEAAV,Jane,Roe,jane@roe.example,(415) 555-2671,,San Jose,CA,USA,001xx,VP,1970-01-01\n\
0035g00000AbCdFAAV,Amélie,Léger,,,+33 6 11 22 33 44,,,,,,\n";

const ZOHO_LEADS: &str = "Record Id,Lead Owner.id,Lead Owner,Company,First Name,Last Name,Title,Email,Phone,Mobile,Lead Source,Lead Status,Street,City,State,Zip Code,Country,Description\n\
zcrm_1579374000010800001,1,Kim,Groß GmbH,Jörg,Groß,CTO,jorg@gross.example,,0151 23456789,Web,New,Hauptstr. 1,Berlin,,10115,Germany,Met at the fair\n\
zcrm_1579374000010800002,1,Kim,,,,,lead.only@gross.example,,,Web,New,,,,,Germany,\n";

const PIPEDRIVE_SINGLE: &str = "\u{FEFF}Person - ID;Person - Name;Person - Email;Person - Phone;Person - Organization;Person - Label;Person - Owner\n\
7;Pieter de Vries;pieter@devries.nl;06 12345678;De Vries BV;Customer;Max\n\
8;;solo@devries.nl;;;;Max\n";

fn cases() -> Vec<(&'static str, &'static str, Expected)> {
    vec![
        (
            "hubspot.csv",
            HUBSPOT,
            Expected {
                layout: "HubSpot contacts export (default view)",
                rows: 3,
                created: 3,
                phones: &[
                    ("emilie@rousseau.fr", "+33612345678"),
                    ("solo@exemple.fr", "+33142685300"),
                ],
                never_stored: None,
            },
        ),
        (
            "chatwoot.csv",
            CHATWOOT,
            Expected {
                layout: "Chatwoot contacts export (default columns)",
                rows: 3,
                created: 3,
                phones: &[("ana@example.com", "+5511912345678")],
                never_stored: None,
            },
        ),
        (
            "zoho.csv",
            ZOHO,
            Expected {
                layout: "Zoho CRM contacts export",
                rows: 3,
                created: 3,
                phones: &[
                    ("jane@doe.example", "+14155552672"),
                    ("mail.only@doe.example", "+14155552673"),
                ],
                never_stored: Some("1980-07-14"),
            },
        ),
        (
            "salesforce.csv",
            SALESFORCE,
            Expected {
                layout: "Salesforce contact report",
                rows: 3,
                // The third row has neither an email nor a record id: no key, not imported.
                created: 2,
                phones: &[("bjorn@strom.example", "+46701234567")],
                never_stored: None,
            },
        ),
        (
            "pipedrive.csv",
            PIPEDRIVE,
            Expected {
                layout: "Pipedrive people export (e-mail and phone split by label)",
                rows: 3,
                created: 3,
                phones: &[("j@gross.de", "+4915123456789")],
                never_stored: None,
            },
        ),
    ]
}

/// The other views: HubSpot all properties, Salesforce Data Loader, Zoho leads, Pipedrive single.
fn other_views() -> Vec<(&'static str, &'static str, Expected)> {
    vec![
        (
            "hubspot-all.csv",
            HUBSPOT_ALL,
            Expected {
                layout: "HubSpot contacts export (all properties)",
                rows: 2,
                created: 2,
                phones: &[
                    ("jane@acme.example", "+447911123456"),
                    ("only@acme.example", "+442079460018"),
                ],
                never_stored: Some("1970-03-04"),
            },
        ),
        (
            "sf-data-loader.csv",
            SF_DATA_LOADER,
            Expected {
                layout: "Salesforce Data Loader export (API field names)",
                rows: 2,
                created: 2,
                phones: &[("jane@roe.example", "+14155552671")],
                never_stored: Some("1970-01-01"),
            },
        ),
        (
            "zoho-leads.csv",
            ZOHO_LEADS,
            Expected {
                layout: "Zoho CRM leads export",
                rows: 2,
                created: 2,
                phones: &[("jorg@gross.example", "+4915123456789")],
                never_stored: None,
            },
        ),
        (
            "pipedrive-single.csv",
            PIPEDRIVE_SINGLE,
            Expected {
                layout: "Pipedrive people export (one e-mail and phone column)",
                rows: 2,
                created: 2,
                phones: &[("pieter@devries.nl", "+31612345678")],
                never_stored: None,
            },
        ),
    ]
}

async fn import(
    w: &World,
    file: &Path,
    mapping: &Path,
    out: &str,
) -> doto_bulk::cmd::import::ImportRun {
    let mut args = ImportArgs::new(file, mapping);
    args.out = Some(w.path(out));
    run_import(&args, w.config(), true, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap_or_else(|e| panic!("{}: {e:#}", file.display()))
}

/// Draft `file`'s mapping, validate the file with it, import it into a fresh sandbox: the layout
/// is named, the draft loads as written, and every row with a valid key arrives.
async fn check_layout(file: &Path, e: &Expected) {
    let w = World::plain().await;
    let map = w.path("draft.yaml");
    let ctx = file.display().to_string();
    let d = init(file, Some(&map)).unwrap_or_else(|err| panic!("{ctx}: {err:#}"));
    assert_eq!(d.layout, e.layout, "{ctx}");
    let yaml = std::fs::read_to_string(&map).unwrap();
    assert!(
        yaml.contains(&format!("# Layout: {}\n", e.layout)),
        "{ctx}\n{yaml}"
    );
    assert!(!d.region_undecided, "{ctx}\n{yaml}");
    Mapping::load(&map).unwrap_or_else(|err| panic!("{ctx}: {err:#}\n{yaml}"));

    let v = run_validate(
        &Args::new(file, &map, Some(&w.path("validate"))),
        true,
        &AtomicBool::new(false),
    )
    .unwrap_or_else(|err| panic!("{ctx}: {err:#}"));
    let valid = v.summary.outcomes.get("valid").copied().unwrap_or(0);
    assert_eq!(v.summary.rows_read, e.rows, "{ctx}");
    assert_eq!(valid, e.created, "{ctx}: {:?}\n{yaml}", v.summary);

    let run = import(&w, file, &map, "run").await;
    let s = format!("{ctx}: {:?}\n{yaml}", run.summary);
    assert_eq!(run.fatal, None, "{s}");
    assert_eq!(run.summary.rows_read, e.rows, "{s}");
    assert_eq!(outcome(&run, "created"), e.created, "{s}");
    let stored = w.by_email();
    let all = w.sb.contacts();
    assert_eq!(all.len() as u64, e.created, "{s}");
    for (email, phone) in e.phones {
        let c = stored
            .get(*email)
            .unwrap_or_else(|| panic!("{s}: {email} missing"));
        assert_eq!(c["phone_number"], Value::from(*phone), "{s}");
        assert!(c["name"].as_str().is_some_and(|n| !n.is_empty()), "{s}");
    }
    if let Some(secret) = e.never_stored {
        let text = serde_json::to_string(&all).unwrap();
        assert!(!text.contains(secret), "{s}: {secret} stored");
        assert!(d.warnings.iter().any(|w| w.contains("sensitive")), "{s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_real_layout_and_view_is_recognised_drafted_and_imported_as_drafted() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<(PathBuf, Expected)> = (cases().into_iter())
        .chain(other_views())
        .map(|(name, body, e)| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            (p, e)
        })
        .collect();
    for (path, e) in &files {
        check_layout(path, e).await;
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
}

fn h(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn rows(list: &[&[&str]]) -> Vec<Vec<String>> {
    list.iter().map(|r| h(r)).collect()
}

#[test]
fn the_region_comes_from_the_flag_then_country_then_state_then_email_domains() {
    let hs = h(&["Name", "Email", "Phone", "Country", "State"]);
    let r = rows(&[
        &["A", "a@x.nl", "020 123 4567", "Germany", "TX"],
        &["B", "b@x.nl", "020 123 4568", "Germany", "TX"],
    ]);
    let region = |hs: &[String], r: &[Vec<String>], given: Option<&str>| {
        let opts = Options {
            region: given.and_then(Region::parse),
            include: Vec::new(),
        };
        let d = draft_with("f.csv", hs, r, &opts).unwrap();
        let line = d
            .yaml
            .lines()
            .find(|l| l.starts_with("  phone_region:"))
            .map(str::to_owned);
        (line, d.yaml)
    };
    let (l, y) = region(&hs, &r, Some("FR"));
    assert!(l.unwrap().starts_with("  phone_region: FR"), "{y}");
    let (l, y) = region(&hs, &r, None);
    assert!(l.unwrap().starts_with("  phone_region: DE"), "{y}");
    assert!(y.contains("region_from: \"Country\""), "{y}");
    // Without the country column: the state's country, and each row's state gives its region.
    let drop = |k: usize| -> (Vec<String>, Vec<Vec<String>>) {
        let hs2 = hs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != k)
            .map(|x| x.1.clone())
            .collect();
        let r2 = r
            .iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .filter(|(i, _)| *i != k)
                    .map(|x| x.1.clone())
                    .collect()
            })
            .collect();
        (hs2, r2)
    };
    let (hs2, r2) = drop(3);
    let (l, y) = region(&hs2, &r2, None);
    assert!(l.unwrap().starts_with("  phone_region: US"), "{y}");
    assert!(y.contains("region_from: \"State\""), "{y}");
    // Neither: the email domains (.nl on every sampled address).
    let (hs3, r3) = {
        let (a, b) = drop(4);
        let hs = a[..3].to_vec();
        let r = b.iter().map(|row| row[..3].to_vec()).collect::<Vec<_>>();
        (hs, r)
    };
    let (l, y) = region(&hs3, &r3, None);
    assert!(l.unwrap().starts_with("  phone_region: NL"), "{y}");
}

#[test]
fn an_undecided_region_is_a_placeholder_the_loader_refuses_with_the_same_sentence() {
    let hs3 = h(&["Name", "Email", "Phone"]);
    // Generic domains: undecided, a placeholder the loader refuses with init's sentence.
    let generic = rows(&[
        &["A", "a@gmail.com", "020 123 4567"],
        &["B", "b@x.nl", "020 1"],
    ]);
    let d = draft_with("f.csv", &hs3, &generic, &Options::default()).unwrap();
    assert!(d.region_undecided, "{}", d.yaml);
    assert!(d.yaml.contains("  phone_region: UNDECIDED\n"), "{}", d.yaml);
    let err = Mapping::parse(&d.yaml, "draft.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(ASK_REGION) && err.starts_with("draft.yaml:"),
        "{err}"
    );
    // Every number with +country code: no region needed, nothing asked.
    let intl = rows(&[&["A", "a@gmail.com", "+44 20 7946 0018"]]);
    let d = draft_with("f.csv", &hs3, &intl, &Options::default()).unwrap();
    assert!(
        !d.region_undecided && !d.yaml.contains("UNDECIDED"),
        "{}",
        d.yaml
    );
    Mapping::parse(&d.yaml, "draft.yaml").unwrap();
}

/// Run the binary with `args`, then `file`, then `flag` and `map`: (success, stderr).
fn run_on(args: &[&str], file: &Path, flag: &str, map: &Path) -> (bool, String) {
    let o = bin()
        .args(args)
        .arg(file)
        .arg(flag)
        .arg(map)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn the_binary_asks_for_the_region_in_one_sentence_and_validate_repeats_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("people.csv");
    std::fs::write(&file, "Name,Email,Phone\nAnn,ann@gmail.com,07911 123456\n").unwrap();
    let map = dir.path().join("m.yaml");
    let (ok, stderr) = run_on(&["mapping", "init"], &file, "-o", &map);
    assert!(ok && stderr.contains(ASK_REGION), "{stderr}");
    let (ok, stderr) = run_on(&["validate"], &file, "-m", &map);
    assert!(!ok && stderr.contains(ASK_REGION), "{stderr}");
    // validate given --phone-region reads the same draft, the number read as GB.
    let (ok, stderr) = run_on(&["validate", "--phone-region", "GB"], &file, "-m", &map);
    assert!(ok && !stderr.contains(ASK_REGION), "{stderr}");
    // With --phone-region (and --force to replace the draft) it loads and reads the number.
    let init = ["-q", "mapping", "init", "--force", "--phone-region", "GB"];
    let (ok, stderr) = run_on(&init, &file, "-o", &map);
    assert!(ok, "{stderr}");
    let yaml = std::fs::read_to_string(&map).unwrap();
    assert!(yaml.contains("  phone_region: GB"), "{yaml}");
    Mapping::load(&map).unwrap();
}

/// Write `csv`, draft its mapping with `init`, validate the file with the draft as written.
fn draft_then_validate(
    csv: &str,
) -> (doto_bulk::mapping::guess::Draft, doto_bulk::report::Summary) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.csv");
    std::fs::write(&file, csv).unwrap();
    let map = dir.path().join("m.yaml");
    let d = init(&file, Some(&map)).unwrap();
    let args = Args::new(&file, &map, Some(&dir.path().join("v")));
    let v = run_validate(&args, true, &AtomicBool::new(false)).unwrap();
    (d, v.summary)
}

#[test]
fn repeated_headers_become_numbered_fallbacks() {
    let (d, summary) = draft_then_validate(
        "name,email,email,phone,phone\nAnn,,ann@example.com,,+44 20 7946 0018\n",
    );
    assert!(
        d.yaml.contains(r#"email: { from: ["email", "email#2"] }"#),
        "{}",
        d.yaml
    );
    assert!(
        d.yaml.contains(r#"from: ["phone", "phone#2"]"#),
        "{}",
        d.yaml
    );
    assert!(!d.yaml.contains(r#"["email", "email"]"#), "{}", d.yaml);
    assert_eq!(summary.outcomes.get("valid"), Some(&1), "{summary:?}");
}

/// Headers that look sensitive, in the include tests.
const SENSITIVE: &[&str] = &["SSN", "Portal Password", "Tax ID", "DOB", "IBAN"];

#[test]
fn only_recognised_and_included_columns_are_imported_and_sensitive_ones_never_by_default() {
    let mut hs = h(&["Name", "Email", "Plan", "Shoe Size"]);
    hs.extend(h(SENSITIVE));
    let r = rows(&[&[
        "Ann",
        "a@x.io",
        "pro",
        "9",
        "123-45-6789",
        "hunter2",
        "99",
        "1980-01-01",
        "DE89",
    ]]);
    let d = draft_with("f.csv", &hs, &r, &include(&[])).unwrap();
    let y = &d.yaml;
    for col in &hs[2..] {
        let line = y
            .lines()
            .find(|l| l.contains(&format!("\"{col}\"")))
            .unwrap_or_else(|| panic!("{col} not listed\n{y}"));
        assert!(line.starts_with('#'), "{col} enabled: {line}\n{y}");
    }
    let warn = d.warnings.join("\n");
    for col in SENSITIVE {
        assert!(warn.contains(&format!("\"{col}\"")), "{col}: {warn}");
    }
    assert!(!warn.contains("Shoe Size"), "{warn}");
    assert!(y.contains(&format!("# Warning: {}", d.warnings[0])), "{y}");
}

fn include_case() -> (Vec<String>, Vec<Vec<String>>) {
    let hs = h(&[
        "Name",
        "Email",
        "Plan",
        "SSN",
        "Portal Password",
        "Shoe Size",
    ]);
    let r = rows(&[&["Ann", "a@x.io", "pro", "123-45-6789", "hunter2", "9"]]);
    (hs, r)
}

fn include(inc: &[&str]) -> Options {
    Options {
        region: None,
        include: inc.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn include_takes_ordinary_columns_loosely_and_a_sensitive_one_only_by_its_exact_name() {
    let (hs, r) = include_case();
    let opts = include;
    // `*` and loose spellings include ordinary columns only; an exact name includes a sensitive one.
    let d = draft_with("f.csv", &hs, &r, &opts(&["*", "ssn"])).unwrap();
    let enabled: Vec<&str> = d
        .yaml
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains("--include"))
        .collect();
    assert_eq!(enabled.len(), 2, "{}", d.yaml);
    assert!(
        d.yaml.contains("  plan: \"Plan\"") && d.yaml.contains("  shoe_size: \"Shoe Size\""),
        "{}",
        d.yaml
    );
    let d = draft_with("f.csv", &hs, &r, &opts(&["SSN"])).unwrap();
    assert!(d.yaml.contains("  ssn: \"SSN\"  # --include"), "{}", d.yaml);
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains("\"SSN\"") && w.contains("--include")),
        "{:?}",
        d.warnings
    );
    Mapping::parse(&d.yaml, "d.yaml").unwrap();
    // A column the file does not have is an error naming it.
    let err = draft_with("f.csv", &hs, &r, &opts(&["Colour"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--include \"Colour\"") && err.contains("f.csv"),
        "{err}"
    );
}

#[test]
fn a_commented_out_column_imports_once_its_hash_is_removed() {
    let hs = h(&["Name", "Email", "Shoe Size"]);
    let d = draft_with("f.csv", &hs, &[], &Options::default()).unwrap();
    let enabled = d.yaml.replace("#  shoe_size:", "  shoe_size:");
    assert_ne!(enabled, d.yaml);
    let m = Mapping::parse(&enabled, "d.yaml").unwrap();
    m.resolve(&hs).unwrap();
}

#[test]
fn template_names_fall_back_to_the_email() {
    let (d, summary) = draft_then_validate(
        "First Name,Last Name,Email\n,,solo@example.com\nAnn,,ann@example.com\n",
    );
    assert!(
        d.yaml
            .contains(r#"name: { template: "{First Name} {Last Name}", from: ["Email"] }"#),
        "{}",
        d.yaml
    );
    assert_eq!(summary.outcomes.get("valid"), Some(&2), "{summary:?}");
    assert_eq!(
        summary.errors_by_code.get("missing_name"),
        None,
        "{summary:?}"
    );
}

#[test]
fn an_existing_file_is_overwritten_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.csv");
    std::fs::write(&file, "Name,Email\nAnn,ann@example.com\n").unwrap();
    let out = dir.path().join("mine.yaml");
    std::fs::write(&out, "keep me").unwrap();
    let err = init(&file, Some(&out)).unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
    let opts = InitOptions {
        force: true,
        ..InitOptions::default()
    };
    init_with(&file, Some(&out), &opts).unwrap();
    Mapping::load(&out).unwrap();
}

/// Header words that steer the draft into its branches: CRM names, repeats, sensitive names.
fn header() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "email",
            "Email",
            "Person - Email - Work",
            "Phone",
            "Person - Phone - Mobile",
            "First Name",
            "Last Name",
            "Record Id",
            "Record ID",
            "id",
            "identifier",
            "phone_number",
            "Mailing State",
            "Country",
            "SSN",
            "Date of Birth",
            "Title",
            "Notes",
            "{Name}",
            "Na{me",
            "a#2",
            "_row",
            "",
            "Contact Name",
            "Lead Owner",
            "Name",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_header_row_makes_init_panic_and_every_draft_loads_or_asks_for_the_region(
        headers in prop::collection::vec(header(), 0..8),
        cells in prop::collection::vec(prop::collection::vec(
            prop_oneof![Just("0151 2345678".to_owned()), Just("a@b.de".to_owned()), "\\PC{0,8}"], 0..9), 0..3),
        include_all in any::<bool>(),
    ) {
        let opts = Options { region: None, include: if include_all { vec!["*".into()] } else { Vec::new() } };
        if let Ok(d) = draft_with("p.csv", &headers, &cells, &opts) {
            match Mapping::parse(&d.yaml, "d.yaml") {
                Ok(_) => prop_assert!(!d.region_undecided),
                Err(e) => prop_assert!(d.region_undecided && e.to_string().contains(ASK_REGION), "{e:#}\n{}", d.yaml),
            }
        }
    }
}
