//! `doto-bulk mapping init`: on every shipped sample it drafts a mapping that loads, resolves
//! against the file (or one the loader refuses with init's sentence asking for `--phone-region`,
//! then drafted with it), validates it as is, and found the email, phone and name columns; it never
//! overwrites a file; the binary says what it decided and what it could not.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use doto_bulk::cmd::mapping::{InitOptions, init, init_with};
use doto_bulk::cmd::validate::{Args, run_validate};
use doto_bulk::mapping::Mapping;
use doto_bulk::mapping::guess::{ASK_REGION, Draft, Role};
use doto_bulk::normalise::Region;
use doto_bulk::source;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (sample, its email column, its phone columns best first, its name columns).
const EXPECTED: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "hubspot-contacts.csv",
        "Email",
        &["Mobile Phone Number", "Phone Number"],
        &["First Name", "Last Name"],
    ),
    (
        "salesforce-contacts.csv",
        "Email",
        &["Mobile", "Phone"],
        &["First Name", "Last Name"],
    ),
    (
        "pipedrive-persons.csv",
        "Person - Email",
        &["Person - Phone"],
        &["Person - Name"],
    ),
    (
        "zoho-contacts.xlsx",
        "Email",
        &["Mobile", "Phone"],
        &["First Name", "Last Name"],
    ),
    (
        "chatwoot-contacts.csv",
        "email",
        &["phone_number"],
        &["name"],
    ),
    (
        "messy.csv",
        "Email",
        &["Mobile Phone Number", "Phone Number"],
        &["First Name", "Last Name"],
    ),
    (
        "quickstart.csv",
        "Email",
        &["Phone"],
        &["First Name", "Last Name"],
    ),
    // The layouts of issue 12 and other views (samples added by the `layouts` slice).
    (
        "hubspot-default-view.csv",
        "Email",
        &["Phone Number"],
        &["First Name", "Last Name"],
    ),
    (
        "salesforce-report.csv",
        "Email",
        &["Phone"],
        &["First Name", "Last Name"],
    ),
    (
        "salesforce-dataloader.csv",
        "Email",
        &["MobilePhone", "Phone"],
        &["FirstName", "LastName"],
    ),
    (
        "pipedrive-people-labels.csv",
        "Person - Email - Work",
        &[
            "Person - Phone - Mobile",
            "Person - Phone - Work",
            "Person - Phone - Home",
            "Person - Phone - Other",
        ],
        &["Person - Name", "Person - First name", "Person - Last name"],
    ),
    (
        "zoho-contacts-export.csv",
        "Email",
        &["Mobile", "Phone"],
        &["Contact Name", "First Name", "Last Name"],
    ),
    (
        "zoho-leads.csv",
        "Email",
        &["Mobile", "Phone"],
        &["First Name", "Last Name"],
    ),
    (
        "chatwoot-default.csv",
        "email",
        &["phone_number"],
        &["name"],
    ),
    ("chatwoot-labels.csv", "email", &["phone_number"], &["name"]),
    // Address books and a mailing list (the `hunt` slice).
    (
        "google-contacts.csv",
        "E-mail 1 - Value",
        &["Phone 1 - Value", "Phone 2 - Value"],
        &["First Name", "Last Name"],
    ),
    (
        "google-contacts-legacy.csv",
        "E-mail 1 - Value",
        &["Phone 1 - Value", "Phone 2 - Value"],
        &["Name", "Given Name", "Family Name"],
    ),
    (
        "outlook-contacts.csv",
        "E-mail Address",
        OUTLOOK_PHONES,
        &["First Name", "Last Name"],
    ),
    (
        "outlook-contacts-eu.csv",
        "E-mail Address",
        OUTLOOK_PHONES,
        &["First Name", "Last Name"],
    ),
    (
        "mailchimp-audience.csv",
        "Email Address",
        &["Phone Number"],
        &["First Name", "Last Name"],
    ),
    // Localised Outlook, Brevo, Zendesk, LinkedIn (the `hunt2` slice).
    (
        "outlook-contacts-de.csv",
        "E-Mail-Adresse",
        &[
            "Mobiltelefon",
            "Haupttelefon",
            "Telefon geschäftlich",
            "Telefon (privat)",
            "Telefon Firma",
            "Weiteres Telefon",
        ],
        &["Vorname", "Nachname"],
    ),
    (
        "outlook-contacts-fr.csv",
        "Adresse de messagerie",
        &[
            "Tél. mobile",
            "Téléphone principal",
            "Téléphone (bureau)",
            "Téléphone (domicile)",
            "Téléphone (autre)",
            "Téléphone société",
        ],
        &["Prénom", "Nom"],
    ),
    (
        "outlook-contacts-es.csv",
        "E-mail Address",
        &[
            "Mobile Phone",
            "Business Phone 2",
            "Home Phone 2",
            "Teléfono principal",
            "Teléfono del trabajo",
            "Otro teléfono",
            "Particular",
        ],
        &["Nombre", "Apellidos"],
    ),
    (
        "brevo-contacts.csv",
        "EMAIL",
        &["SMS", "WHATSAPP", "LANDLINE_NUMBER"],
        &["FIRSTNAME", "LASTNAME"],
    ),
    ("zendesk-users.csv", "email", &["phone"], &["name"]),
    (
        "linkedin-connections.csv",
        "Email Address",
        &[],
        &["First Name", "Last Name"],
    ),
];

const OUTLOOK_PHONES: &[&str] = &[
    "Mobile Phone",
    "Primary Phone",
    "Business Phone",
    "Home Phone",
    "Other Phone",
    "Business Phone 2",
    "Home Phone 2",
    "Company Main Phone",
];

/// `init` on `file`; a draft whose phone region is undecided is refused by the loader with
/// init's sentence, and drafted again with `--phone-region US --force` as the sentence says.
fn init_deciding_region(file: &Path, out: &Path) -> Draft {
    let ctx = file.display();
    let d = init(file, Some(out)).unwrap_or_else(|e| panic!("{ctx}: {e:#}"));
    if !d.region_undecided {
        return d;
    }
    let err = Mapping::load(out).unwrap_err();
    assert!(format!("{err:#}").contains(ASK_REGION), "{ctx}: {err:#}");
    let mut opts = InitOptions {
        force: true,
        ..InitOptions::default()
    };
    opts.draft.region = Region::parse("US");
    init_with(file, Some(out), &opts).unwrap_or_else(|e| panic!("{ctx}: {e:#}"))
}

#[test]
fn init_on_every_sample_drafts_a_mapping_that_validates_it() {
    let dir = tempfile::tempdir().unwrap();
    // Every sample file is covered.
    let n = std::fs::read_dir(root().join("samples")).unwrap().count();
    assert_eq!(n, EXPECTED.len(), "a sample without an init expectation");
    for (i, (sample, email, phones, names)) in EXPECTED.iter().enumerate() {
        let file = root().join("samples").join(sample);
        let out = dir.path().join(format!("m{i}.yaml"));
        let d = init_deciding_region(&file, &out);
        assert_eq!(
            d.roles[&Role::Email][0],
            *email,
            "{sample}: the first email column"
        );
        let got_phones = d.roles.get(&Role::Phone).cloned().unwrap_or_default();
        assert_eq!(got_phones, phones.to_vec(), "{sample}");
        let found: Vec<String> = [Role::FullName, Role::FirstName, Role::LastName]
            .iter()
            .flat_map(|r| d.roles.get(r).cloned().unwrap_or_default())
            .collect();
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        let mut got = found.clone();
        got.sort();
        assert_eq!(got, want, "{sample}");

        // The file on disk loads and resolves against the sample's headers…
        let m = Mapping::load(&out).unwrap_or_else(|e| panic!("{sample}: {e:#}\n{}", d.yaml));
        let src = source::open(&file, &m.source_options()).unwrap();
        m.resolve(src.headers())
            .unwrap_or_else(|e| panic!("{sample}: {e:#}"));
        // …and validate accepts it as is and reads every row.
        let args = Args::new(&file, &out, Some(&dir.path().join(format!("run{i}"))));
        let v = run_validate(&args, true, &AtomicBool::new(false))
            .unwrap_or_else(|e| panic!("{sample}: {e:#}"));
        let valid = v.summary.outcomes.get("valid").copied().unwrap_or(0);
        assert!(valid > 0, "{sample}: nothing valid\n{}", d.yaml);
        assert!(v.summary.stopped.is_none(), "{sample}");
        // Every column is named in the draft (mapped, or listed commented out ready to enable):
        // nothing of the file is silently dropped.
        let yaml = std::fs::read_to_string(&out).unwrap();
        for h in src.headers() {
            let named = yaml.contains(&format!("\"{h}\"")) || yaml.contains(&format!("{{{h}}}"));
            assert!(named, "{sample}: {h} unmapped\n{yaml}");
        }
    }
}

#[test]
fn init_refuses_to_overwrite_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mine.yaml");
    std::fs::write(&out, "keep me").unwrap();
    let err = init(&root().join("samples/hubspot-contacts.csv"), Some(&out)).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
}

#[test]
fn init_binary_reports_decisions_and_undecided_points() {
    let dir = tempfile::tempdir().unwrap();
    // No country column and local numbers: the region cannot be decided.
    let file = dir.path().join("people.csv");
    std::fs::write(
        &file,
        "Full Name,E-Mail,Cell,Customer Number,Favourite Colour\n\
         Ann Lee,ann@example.com,07911 123456,C-1,red\n\
         Bob Roe,bob@example.com,+33 6 12 34 56 78,C-2,blue\n",
    )
    .unwrap();
    let out = dir.path().join("people.yaml");
    let o = Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
        .args(["mapping", "init"])
        .arg(&file)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("decided: email: \"E-Mail\""), "{stderr}");
    assert!(
        stderr.contains("could not decide: phone region"),
        "{stderr}"
    );
    let yaml = std::fs::read_to_string(&out).unwrap();
    assert!(
        yaml.contains("favourite_colour: \"Favourite Colour\""),
        "{yaml}"
    );
    assert!(yaml.contains("Could not decide"), "{yaml}");
    // A second run refuses, names the file, and exits non-zero.
    let o = Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
        .args(["mapping", "init"])
        .arg(&file)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("people.yaml"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn init_on_a_zoho_summary_sheet_title_fails_cleanly_instead_of_panicking() {
    // Zoho's export summary sheet: a title in A1, its en dash across the byte where the
    // `contact - ` prefix ends. `mapping init` took it for the header and panicked (exit 101).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zoho-summary.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "Contacts – Export Summary").unwrap();
    ws.write_string(2, 0, "Records: 12").unwrap();
    wb.save(&path).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
        .args(["mapping", "init"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("zoho-summary.xlsx") && stderr.contains("no column looks like a name"),
        "{stderr}"
    );
    // With a real Pipedrive-style header behind an en dash, the column is recognised.
    let path = dir.path().join("dash.csv");
    std::fs::write(&path, "Person – Name,Person – Email\nAnn,ann@example.com\n").unwrap();
    let d = doto_bulk::cmd::mapping::draft_for(&path).unwrap();
    assert_eq!(d.roles[&Role::Email], vec!["Person – Email"]);
}
