//! Layouts of round two (the `hunt2` slice): Brevo (country codes without `+`), Zendesk users,
//! LinkedIn's `Connections.csv` (a `Notes:` preamble above the header), and Outlook in German,
//! French and Spanish (translated headers, Windows-1252). Each sample is written in its export's
//! header row; `mapping init` names the layout and drafts a mapping that validates and imports
//! into the sandbox every row with a name and a valid key, with nothing wrong stored (no date of
//! birth or national id, phones in E.164 read with the right country).
use std::path::PathBuf;

use doto_bulk::cmd::mapping::init_with_region;
use doto_bulk::mapping::Mapping;
use doto_bulk::source;
use serde_json::Value;

use crate::import::World;
use crate::layouts2::{assert_e164, find, import, init_validate_import, stored};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const GERMAN: &str = "Anrede,Vorname,Weitere Vornamen,Nachname,Suffix,Firma,Abteilung,Position,Straße geschäftlich,Straße geschäftlich 2,Straße geschäftlich 3,Ort geschäftlich,Region geschäftlich,Postleitzahl geschäftlich,Land/Region geschäftlich,Straße privat,Straße privat 2,Straße privat 3,Ort privat,Bundesland/Kanton privat,Postleitzahl privat,Land/Region privat,Weitere Straße,Weitere Straße 2,Weitere Straße 3,Weiterer Ort,Weiteres/r Bundesland/Kanton,Weitere Postleitzahl,Weiteres/e Land/Region,Telefon Assistent,Fax geschäftlich,Telefon geschäftlich,Telefon geschäftlich 2,Rückmeldung,Autotelefon,Telefon Firma,Fax privat,Telefon (privat),Telefon (privat 2),ISDN,Mobiltelefon,Weiteres Fax,Weiteres Telefon,Pager,Haupttelefon,Mobiltelefon 2,Telefon für Hörbehinderte,Telex,Abrechnungsinformation,Assistent(in),Benutzer 1,Benutzer 2,Benutzer 3,Benutzer 4,Beruf,Büro,E-Mail-Adresse,E-Mail-Typ,E-Mail: Angezeigter Name,E-Mail 2: Adresse,E-Mail 2: Typ,E-Mail 2: Angezeigter Name,E-Mail 3: Adresse,E-Mail 3: Typ,E-Mail 3: Angezeigter Name,Empfohlen von,Geburtstag,Geschlecht,Hobby,Initialen,Internet Frei/Gebucht,Jahrestag,Kategorien,Kinder,Konto,Name des/r Vorgesetzten,Notizen,Organisationsnr.,Ort,Partner,Postfach geschäftlich,Postfach privat,Priorität,Privat,Reisekilometer,Sozialversicherungsnr.,Sprache,Stichwörter,Vertraulichkeit,Verzeichnisserver,Webseite,Weiteres Postfach";

/// The first line of each sample, as its export writes it (decoded), and its encoding.
const VERBATIM: &[(&str, &str, Enc)] = &[
    ("samples/outlook-contacts-de.csv", GERMAN, Enc::Windows1252),
    (
        "samples/outlook-contacts-fr.csv",
        r#""Titre","Prénom","Deuxième prénom","Nom","Suffixe","Surnom","Société ","Service ","Titre","Rue (bureau)""#,
        Enc::Windows1252,
    ),
    (
        "samples/brevo-contacts.csv",
        "CONTACT ID,EMAIL,FIRSTNAME,LASTNAME,SMS,LANDLINE_NUMBER,WHATSAPP",
        Enc::Utf8,
    ),
    (
        "samples/zendesk-users.csv",
        "name,email,external_id,details,notes,phone,role,restriction,organization,tags",
        Enc::Utf8,
    ),
    ("samples/linkedin-connections.csv", "Notes:", Enc::Utf8),
];

#[derive(Clone, Copy, PartialEq)]
enum Enc {
    Utf8,
    Windows1252,
}

#[test]
fn every_sample_is_written_in_its_exports_header_row() {
    for (sample, first, enc) in VERBATIM {
        let raw = std::fs::read(root().join(sample)).unwrap();
        let text = match enc {
            Enc::Utf8 => String::from_utf8(raw.clone()).unwrap(),
            Enc::Windows1252 => {
                assert!(std::str::from_utf8(&raw).is_err(), "{sample}: not 1252");
                raw.iter().map(|&b| cp1252(b)).collect()
            }
        };
        let line = text.lines().next().unwrap();
        assert!(line.starts_with(first), "{sample}: {line}");
    }
    // LinkedIn's header comes after its preamble, as LinkedIn writes it.
    let li = std::fs::read_to_string(root().join("samples/linkedin-connections.csv")).unwrap();
    let lines: Vec<&str> = li.lines().collect();
    assert!(lines[1].starts_with("\"When exporting your connection data"));
    assert_eq!(lines[2], "");
    assert_eq!(
        lines[3],
        "First Name,Last Name,URL,Email Address,Company,Position,Connected On"
    );
    // The reader finds the German header whole, 92 columns.
    let src = source::open(
        &root().join("samples/outlook-contacts-de.csv"),
        &Default::default(),
    )
    .unwrap();
    let want: Vec<&str> = GERMAN.split(',').collect();
    assert_eq!(src.headers(), want.as_slice());
}

/// The Windows-1252 byte as a character (the samples use Latin-1 letters only).
fn cp1252(b: u8) -> char {
    char::from(b)
}

/// One sample: its layout as init names it, the documented counts (rows, valid, invalid), the
/// sensitive columns init must list but never enable.
struct Case {
    sample: &'static str,
    layout: &'static str,
    counts: (u64, u64, u64),
    sensitive: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        sample: "samples/outlook-contacts-de.csv",
        layout: "Outlook contacts CSV (German Outlook: Vorname, Nachname, E-Mail-Adresse)",
        counts: (5, 4, 1),
        sensitive: &["Geburtstag", "Sozialversicherungsnr."],
    },
    Case {
        sample: "samples/outlook-contacts-fr.csv",
        layout: "Outlook contacts CSV (French Outlook: Prénom, Nom, Adresse de messagerie)",
        counts: (4, 3, 1),
        sensitive: &["Anniversaire", "Code gouvernement"],
    },
    Case {
        sample: "samples/outlook-contacts-es.csv",
        layout: "Outlook contacts CSV (Spanish Outlook: Nombre, Apellidos, Dirección de correo electrónico)",
        counts: (4, 3, 1),
        sensitive: &["Birthday", "Government ID Number"],
    },
    Case {
        sample: "samples/brevo-contacts.csv",
        layout: "Brevo contacts export",
        counts: (7, 7, 0),
        sensitive: &[],
    },
    Case {
        sample: "samples/zendesk-users.csv",
        layout: "Zendesk Support users CSV",
        counts: (6, 5, 1),
        sensitive: &[],
    },
    Case {
        sample: "samples/linkedin-connections.csv",
        layout: "LinkedIn connections export (Connections.csv)",
        counts: (6, 5, 1),
        sensitive: &[],
    },
];

/// Values written in the samples that must never be stored: dates of birth, national ids.
const NEVER: &[&str] = &[
    "12.4.1968",
    "65 120468 M 123",
    "14/07/1975",
    "2 75 07 75 123 456 78",
    "3/5/1982",
    "12345678Z",
];

/// Nothing wrong stored: no date of birth or national id, E.164 phones, a key on every contact.
fn assert_clean(ctx: &str, contacts: &[Value]) {
    for c in contacts {
        let text = c.to_string();
        for n in NEVER {
            assert!(!text.contains(n), "{ctx}: {n} was stored: {c}");
        }
        assert_e164(ctx, c);
        assert!(
            ["email", "phone_number", "identifier"]
                .iter()
                .any(|k| c[k].is_string()),
            "{ctx}: stored without a key: {c}"
        );
    }
}

/// `mapping init` → `validate` → `import --sandbox`: every row with a name and a valid key
/// arrives, and nothing wrong is stored. No sample needs `--phone-region`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_then_validate_then_import_brings_every_row_with_a_key() {
    for case in CASES {
        let (d, contacts) = init_validate_import(case.sample, None, case.counts).await;
        let ctx = format!("{}\n{}", case.sample, d.yaml);
        assert_eq!(d.layout, case.layout, "{ctx}");
        for col in case.sensitive {
            let listed: Vec<&str> = (d.yaml.lines())
                .filter(|l| l.starts_with("#  ") && l.contains(&format!(": \"{col}\"")))
                .collect();
            assert_eq!(listed.len(), 1, "{col}: {ctx}");
            assert!(listed[0].contains("never enabled"), "{ctx}");
            let enabled =
                (d.yaml.lines()).any(|l| !l.starts_with('#') && l.contains(&format!("\"{col}\"")));
            assert!(!enabled, "{col} enabled: {ctx}");
        }
        assert_clean(case.sample, &contacts);
    }
}

async fn shipped(sample: &str, mapping: &str, counts: [u64; 3]) -> Vec<Value> {
    let w = World::plain().await;
    let got = import(&w, &root().join(sample), &root().join(mapping), None).await;
    assert_eq!(got, counts, "{sample} with {mapping}");
    let contacts = stored(&w);
    assert_clean(sample, &contacts);
    contacts
}

/// Brevo's numbers carry their country code without `+`: each is read as that country's, never
/// as a local number of some default region; a number with no country code is left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brevo_numbers_are_read_with_their_country_code() {
    let c = shipped(
        "samples/brevo-contacts.csv",
        "mappings/brevo.yaml",
        [7, 0, 0],
    )
    .await;
    let emma = find(&c, "email", "emma.dubois@example.fr");
    assert_eq!(emma["phone_number"], "+33612345678");
    assert_eq!(emma["identifier"], "brevo-1");
    assert_eq!(emma["custom_attributes"]["brevo_landline"], "33140203040");
    let jakob = find(&c, "email", "jakob.mueller@example.de");
    assert_eq!(jakob["phone_number"], "+4915112345678");
    assert_eq!(jakob["name"], "Jakob Müller");
    // A phone alone, matched by its contact id.
    let soren = find(&c, "identifier", "brevo-3");
    assert_eq!(soren["phone_number"], "+4520123456");
    assert!(soren["email"].is_null(), "{soren}");
    assert_eq!(
        find(&c, "email", "mick.parker@example.com")["phone_number"],
        "+14155552671"
    );
    // WhatsApp alone gives the phone.
    assert_eq!(
        find(&c, "email", "li.wei@example.cn")["phone_number"],
        "+8613800138000"
    );
    // 0612345678 has no country code: left out, never read as some country's local number.
    let zoe = find(&c, "email", "zoe.martin@example.fr");
    assert!(zoe["phone_number"].is_null(), "{zoe}");
    assert_eq!(
        find(&c, "email", "aiko.sato@example.jp")["name"],
        "愛子 佐藤"
    );
}

/// `international: true` ignores the region: `4930901820` is Berlin whatever the default says;
/// without it, the same digits read as a national number of the default region.
#[test]
fn international_digits_never_take_the_default_region() {
    use doto_bulk::source::Record;
    let yaml = |intl: &str| {
        format!(
            "version: 1\ndefaults:\n  phone_region: US\nmatch:\n  on: [email]\nfields:\n  name: Name\n  email: Email\n  phone_number: {{ from: SMS{intl} }}\n"
        )
    };
    let headers: Vec<String> = vec!["Name".into(), "Email".into(), "SMS".into()];
    let rec = |v: &str| Record {
        line: 2,
        fields: vec!["Ann".into(), "ann@example.com".into(), v.into()],
        numeric: Vec::new(),
    };
    let phone = |m: &Mapping, v: &str| {
        let d = m.resolve(&headers).unwrap().apply(&rec(v)).unwrap();
        serde_json::to_value(&d.phone_number).unwrap()
    };
    let m = Mapping::parse(&yaml(", international: true"), "m.yaml").unwrap();
    assert_eq!(phone(&m, "4930901820"), "+4930901820");
    assert_eq!(phone(&m, "+4930901820"), "+4930901820");
    assert_eq!(phone(&m, "0049 30 901820"), "+4930901820");
    // No country code: left out (a warning), not read as a US number.
    assert_eq!(phone(&m, "2125550143"), Value::Null);
    assert_eq!(phone(&m, "0612345678"), Value::Null);
    let plain = Mapping::parse(&yaml(""), "m.yaml").unwrap();
    assert_eq!(phone(&plain, "2125550143"), "+12125550143");
    // Only the phone takes it.
    let err = Mapping::parse(
        "version: 1\nmatch:\n  on: [email]\nfields:\n  name: Name\n  email: { from: E, international: true }\n",
        "m.yaml",
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("`international:` only applies to fields.phone_number"),
        "{err:#}"
    );
}

/// Localised Outlook with the shipped mapping: translated columns read, each row's country (the
/// business one, else the home one) gives its local numbers' country.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localised_outlook_reads_translated_columns_and_each_rows_country() {
    let de = shipped(
        "samples/outlook-contacts-de.csv",
        "mappings/outlook.yaml",
        [4, 1, 0],
    )
    .await;
    let j = find(&de, "email", "juergen.mueller@example.de");
    assert_eq!(j["name"], "Jürgen Müller");
    assert_eq!(j["phone_number"], "+4915112345678");
    assert_eq!(j["custom_attributes"]["job_title"], "Geschäftsführer");
    assert_eq!(
        j["additional_attributes"]["company_name"],
        "Müller & Söhne GmbH"
    );
    assert_eq!(j["custom_attributes"]["outlook_categories"], "Kunden");
    // Austria, from Land/Region privat: not a German number.
    let lukas = find(&de, "email", "lukas.brunner@example.at");
    assert_eq!(lukas["phone_number"], "+436641234567");
    assert_eq!(
        find(&de, "phone_number", "+493012345678")["name"],
        "Anna Schäfer"
    );
    assert_eq!(
        find(&de, "email", "claudia.keller@example.ch")["phone_number"],
        "+41791234567"
    );
    let fr = shipped(
        "samples/outlook-contacts-fr.csv",
        "mappings/outlook.yaml",
        [3, 1, 0],
    )
    .await;
    let h = find(&fr, "email", "helene.lefevre@example.fr");
    assert_eq!(h["name"], "Hélène Lefèvre");
    assert_eq!(h["phone_number"], "+33612345678");
    assert_eq!(
        h["additional_attributes"]["company_name"],
        "Société Générale Démo"
    );
    // "Titre" is the honorific and the job title: neither read.
    assert!(h["custom_attributes"]["job_title"].is_null(), "{h}");
    assert_eq!(
        find(&fr, "phone_number", "+32470123456")["name"],
        "François Dupont"
    );
    let es = shipped(
        "samples/outlook-contacts-es.csv",
        "mappings/outlook.yaml",
        [3, 1, 0],
    )
    .await;
    let m = find(&es, "email", "maria.fernandez@example.es");
    assert_eq!(m["name"], "María José Fernández Ruiz");
    assert_eq!(m["phone_number"], "+34612345678");
    assert_eq!(m["custom_attributes"]["job_title"], "Jefa de compras");
    assert_eq!(
        find(&es, "email", "lucia.pena@example.mx")["phone_number"],
        "+525512345678"
    );
}

/// LinkedIn: the header after the preamble, the profile URL as the key; Zendesk: the external
/// id as the key, `role` not taken for a job title.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linkedin_and_zendesk_rows_arrive_by_their_ids() {
    let li = shipped(
        "samples/linkedin-connections.csv",
        "mappings/linkedin.yaml",
        [5, 1, 0],
    )
    .await;
    let p = find(
        &li,
        "identifier",
        "linkedin-https://www.linkedin.com/in/priya-sharma-1a2b3c",
    );
    assert_eq!(p["name"], "Priya Sharma");
    assert_eq!(p["additional_attributes"]["company_name"], "Stripe, Inc.");
    assert_eq!(
        p["custom_attributes"]["linkedin_connected_on"],
        "12 Mar 2024"
    );
    assert_eq!(
        find(&li, "email", "arjun.mehta@example.com")["custom_attributes"]["job_title"],
        "Engineering Manager, Payments"
    );
    assert_eq!(
        find(
            &li,
            "identifier",
            "linkedin-https://www.linkedin.com/in/neha-k"
        )["name"],
        "Neha"
    );
    let zd = shipped(
        "samples/zendesk-users.csv",
        "mappings/zendesk.yaml",
        [5, 1, 0],
    )
    .await;
    let olu = find(&zd, "identifier", "zendesk-CRM-1004");
    assert_eq!(olu["phone_number"], "+2348031234567");
    assert!(olu["email"].is_null(), "{olu}");
    let ana = find(&zd, "email", "ana.garcia@example.es");
    assert_eq!(ana["custom_attributes"]["zendesk_role"], "end-user");
    assert!(ana["custom_attributes"]["job_title"].is_null(), "{ana}");
    assert_eq!(ana["additional_attributes"]["company_name"], "Acme Iberia");
    assert_eq!(
        find(&zd, "email", "noname@example.com")["name"],
        "noname@example.com"
    );
    // The LinkedIn draft says where the header is, below the preamble.
    let d = init_with_region(
        &root().join("samples/linkedin-connections.csv"),
        Some(&tempfile::tempdir().unwrap().path().join("l.yaml")),
        None,
    )
    .unwrap();
    assert!(
        (d.decided.iter()).any(|x| x.starts_with("header: line 4; the 3 line(s) above it")),
        "{:?}",
        d.decided
    );
    // The draft leaves Zendesk's role out of the job title too.
    let dir = tempfile::tempdir().unwrap();
    let d = init_with_region(
        &root().join("samples/zendesk-users.csv"),
        Some(&dir.path().join("z.yaml")),
        None,
    )
    .unwrap();
    assert!(!d.yaml.contains("job_title"), "{}", d.yaml);
    assert!(d.yaml.contains("#  role: \"role\""), "{}", d.yaml);
}
