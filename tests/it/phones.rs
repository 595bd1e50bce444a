//! Phone and email repairs (issue 11 items 2, 4, 5; issue 14 item 6): what `PhoneE164::read`
//! repairs and how a mapping reports it (a warning naming the column, with the original value),
//! `region_from` with states and provinces, unknown countries, numbers read with the default
//! region, `region_doubt`, and an XLSX number cell that lost its `0` through `validate` and
//! `import`.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use doto_bulk::cmd::import::{Args as ImportArgs, run_import};
use doto_bulk::cmd::validate::{Args, run_validate};
use doto_bulk::mapping::{ContactDraft, Mapping};
use doto_bulk::model::{ErrorCode, RowError, RowWarning};
use doto_bulk::normalise::{Email, PhoneE164, Region};
use doto_bulk::source::Record;

use crate::import::World;

fn region(s: &str) -> Option<Region> {
    Some(Region::parse(s).unwrap_or_else(|| panic!("region {s}")))
}

/// `raw` read in region `r` (not a number cell): the E.164 and the repairs' codes and messages.
fn read(raw: &str, r: &str) -> (String, Vec<(ErrorCode, String)>) {
    let p = PhoneE164::read(raw, region(r), false).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
    let reps = p.repairs.into_iter().map(|x| (x.code, x.message)).collect();
    (p.phone.as_str().to_owned(), reps)
}

// ---------------------------------------------------------------- the normaliser

#[test]
fn vanity_numbers_are_read_on_the_keypad_and_reported() {
    let (p, reps) = read("1-800-FLOWERS", "US");
    assert_eq!(p, "+18003569377");
    assert_eq!(reps.len(), 1);
    assert_eq!(reps[0].0, ErrorCode::PhoneVanity);
    assert!(reps[0].1.contains("FLOWERS") && reps[0].1.contains("3569377"));
    assert_eq!(read("+1 800 GO FEDEX", "GB").0, "+18004633339");
    // A lone letter among digits is a typo, not a word: refused, never read as a digit.
    for raw in ["3518O79447", "07912 3456l8", "1-800-A-LAWYER"] {
        let e = PhoneE164::read(raw, region("GB"), false).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidPhone, "{raw:?}");
        assert!(e.message.contains("contains letters"), "{}", e.message);
    }
}

#[test]
fn tel_doubled_plus_and_invisible_characters_are_removed_and_reported() {
    for (raw, r, want, says) in [
        ("tel:+1-415-555-2676", "GB", "+14155552676", "\"tel:\""),
        ("TEL: 020 7946 0963", "GB", "+442079460963", "\"TEL:\""),
        (
            "++44 20 7946 0963",
            "US",
            "+442079460963",
            "1 of 2 '+' signs",
        ),
        ("020\u{200b}7946 0963", "GB", "+442079460963", "U+200B"),
        (
            "\u{feff}+44 20\u{00ad}7946 0963",
            "GB",
            "+442079460963",
            "U+FEFF, U+00AD",
        ),
    ] {
        let (p, reps) = read(raw, r);
        assert_eq!(p, want, "{raw:?}");
        assert_eq!(reps.len(), 1, "{raw:?}: {reps:?}");
        assert_eq!(reps[0].0, ErrorCode::PhoneCleaned);
        assert!(reps[0].1.contains(says), "{raw:?}: {}", reps[0].1);
    }
    // A clean number reports nothing.
    assert_eq!(read("020 7946 0963", "GB").1, []);
}

#[test]
fn an_extension_is_kept_out_of_the_number_and_named_in_the_warning() {
    for (raw, ext) in [
        ("+1 415 555 2671 x123", "123"),
        ("(415) 555-2671 ext. 45", "45"),
        ("415-555-2671;ext=77", "77"),
    ] {
        let (p, reps) = read(raw, "US");
        assert_eq!(p, "+14155552671");
        assert_eq!(reps.len(), 1);
        assert_eq!(reps[0].0, ErrorCode::PhoneExtension);
        assert!(
            reps[0].1.contains(&format!("extension {ext}")),
            "{}",
            reps[0].1
        );
    }
}

#[test]
fn a_lost_prefix_is_put_back_only_when_one_number_fits() {
    let p = PhoneE164::read("7400155129", region("GB"), true).unwrap();
    assert_eq!(p.phone.as_str(), "+447400155129");
    assert_eq!(p.repairs[0].code, ErrorCode::PhoneLostPrefix);
    assert!(p.repairs[0].message.contains("+447400155129"));
    assert!(p.national);
    // The lost '+': read with its own country code, not the region's rules.
    let p = PhoneE164::read("447400155129", region("US"), true).unwrap();
    assert_eq!(p.phone.as_str(), "+447400155129");
    assert!(!p.national);
    // GB 020 3121 3728 lost its 0, or Egypt's +20 3 121 3728 lost its '+': refused.
    let e = PhoneE164::read("2031213728", region("GB"), true).unwrap_err();
    assert_eq!(e.code, ErrorCode::PhoneLostPrefix);
    assert!(
        e.message.contains("+442031213728") && e.message.contains("+20"),
        "{}",
        e.message
    );
    // The same digits typed as text are what the user wrote.
    assert_eq!(read("2031213728", "GB"), ("+442031213728".into(), vec![]));
}

#[test]
fn email_domains_keep_the_form_they_were_given() {
    let puny = Email::parse("User@XN--BCHER-KVA.example").unwrap();
    assert_eq!(puny.as_str(), "user@xn--bcher-kva.example");
    let uni = Email::parse("user@Bücher.example").unwrap();
    assert_eq!(uni.as_str(), "user@bücher.example");
    // Still checked: a Punycode label that does not decode is refused.
    assert_eq!(
        Email::parse("user@xn--zz.example").unwrap_err().code,
        ErrorCode::InvalidEmail
    );
}

// ---------------------------------------------------------------- the mapping

const HEADERS: [&str; 5] = ["Name", "Email", "Mobile", "Country", "Mailing State"];

fn mapping(default: Option<&str>, region_col: &str) -> Mapping {
    let defaults = default.map_or(String::new(), |d| {
        format!("defaults:\n  phone_region: {d}\n")
    });
    let y = format!(
        "version: 1\n{defaults}fields:\n  name: Name\n  email: Email\n  \
         phone_number: {{ from: Mobile, region_from: \"{region_col}\" }}\n"
    );
    Mapping::parse(&y, "test.yaml").unwrap_or_else(|e| panic!("{e:#}"))
}

/// Apply a mapping to one row of HEADERS; `numeric` flags the phone as a number cell.
fn row(m: &Mapping, cells: [&str; 5], numeric: bool) -> Result<ContactDraft, Vec<RowError>> {
    let h: Vec<String> = HEADERS.iter().map(|s| s.to_string()).collect();
    let rec = Record {
        line: 2,
        fields: cells.iter().map(|s| s.to_string()).collect(),
        numeric: vec![false, false, numeric, false, false],
    };
    m.resolve(&h).unwrap().apply(&rec)
}

fn ok(m: &Mapping, cells: [&str; 5]) -> ContactDraft {
    row(m, cells, false).unwrap_or_else(|e| panic!("{cells:?}: {e:?}"))
}

fn phone_of(d: &ContactDraft) -> &str {
    d.phone_number.as_ref().map_or("", |p| p.as_str())
}

fn codes(d: &ContactDraft) -> Vec<ErrorCode> {
    d.warnings.iter().map(|w| w.code).collect()
}

#[test]
fn a_repair_is_a_warning_with_column_field_and_original_value() {
    let m = mapping(Some("GB"), "Country");
    let d = ok(
        &m,
        ["Ann", "ann@x.com", "tel:020\u{200b}7946 0963 x12", "GB", ""],
    );
    assert_eq!(phone_of(&d), "+442079460963");
    assert_eq!(
        codes(&d),
        [ErrorCode::PhoneCleaned, ErrorCode::PhoneExtension]
    );
    let w: &RowWarning = &d.warnings[1];
    assert_eq!(w.field.as_deref(), Some("phone_number"));
    assert_eq!(w.column.as_deref(), Some("Mobile"));
    assert_eq!(w.original, "tel:020\u{200b}7946 0963 x12");
    assert!(
        w.message.starts_with("column \"Mobile\": extension 12"),
        "{}",
        w.message
    );
    // The row's own country: not "read with the default region".
    assert_eq!(d.phone_read_as, None);
}

#[test]
fn a_numeric_cell_that_lost_its_zero_is_repaired_in_the_mapping() {
    let m = mapping(Some("GB"), "Country");
    let d = row(&m, ["Ann", "ann@x.com", "7400155129", "", ""], true).unwrap();
    assert_eq!(phone_of(&d), "+447400155129");
    assert_eq!(codes(&d), [ErrorCode::PhoneLostPrefix]);
    assert_eq!(d.warnings[0].original, "7400155129");
    // Ambiguous: the phone is left out, its refusal a warning (the field-level policy).
    let d = row(&m, ["Ann", "ann@x.com", "2031213728", "", ""], true).unwrap();
    assert_eq!(phone_of(&d), "");
    assert_eq!(codes(&d), [ErrorCode::PhoneLostPrefix]);
}

#[test]
fn an_unknown_country_falls_back_to_the_default_region_with_a_warning() {
    let m = mapping(Some("US"), "Country");
    let d = ok(&m, ["Ann", "ann@x.com", "(415) 555-2671", "Atlantis", ""]);
    assert_eq!(phone_of(&d), "+14155552671");
    assert_eq!(codes(&d), [ErrorCode::UnknownRegion]);
    let msg = &d.warnings[0].message;
    assert!(
        msg.contains("column \"Country\": \"Atlantis\" is not a country")
            && msg.contains("the default region US was used"),
        "{msg}"
    );
    assert_eq!(d.phone_read_as, region("US"));
    // With its country code the country column does not matter: no warning.
    let d = ok(&m, ["Ann", "ann@x.com", "+44 20 7946 0963", "Atlantis", ""]);
    assert_eq!((phone_of(&d), codes(&d)), ("+442079460963", vec![]));
    // No default region: the phone is left out, the warning naming the country value.
    let m = mapping(None, "Country");
    let d = ok(&m, ["Ann", "ann@x.com", "(415) 555-2671", "Atlantis", ""]);
    assert_eq!(
        (phone_of(&d), codes(&d)),
        ("", vec![ErrorCode::InvalidPhone])
    );
    let msg = &d.warnings[0].message;
    assert!(
        msg.contains("\"Atlantis\" is not a country") && msg.contains("no default region"),
        "{msg}"
    );
}

#[test]
fn a_state_column_gives_us_and_canada() {
    let m = mapping(Some("GB"), "Mailing State");
    for (state, phone, want) in [
        ("CO", "(303) 555-0123", "+13035550123"),
        ("AZ", "602 555 0199", "+16025550199"),
        ("Ontario", "416-555-0134", "+14165550134"),
        ("British Columbia", "604 555 0101", "+16045550101"),
        ("ny", "212 555 0100", "+12125550100"),
    ] {
        let d = ok(&m, ["Ann", "ann@x.com", phone, "", state]);
        assert_eq!(phone_of(&d), want, "{state}");
        assert_eq!(codes(&d), [], "{state}");
        assert_eq!(d.phone_read_as, None, "the row's own region, {state}");
    }
}

#[test]
fn a_code_that_is_a_country_and_a_state_is_read_by_the_column_and_a_difference_reported() {
    // A state column under a header that does not say so: CO is Colombia, and the US reading is
    // reported because it differs.
    let m = mapping(Some("GB"), "Country");
    let d = ok(&m, ["Ann", "ann@x.com", "(303) 555-0123", "CO", ""]);
    assert_eq!(phone_of(&d), "+573035550123");
    assert_eq!(codes(&d), [ErrorCode::RegionDoubt]);
    let msg = &d.warnings[0].message;
    assert!(
        msg.contains("read as CO (+573035550123); column \"Country\": \"CO\" points to US, where it is +13035550123"),
        "{msg}"
    );
    // In a country column DE is Germany; read as Delaware the number is another valid one.
    let m = mapping(Some("GB"), "Country");
    let d = ok(&m, ["Ann", "ann@x.com", "302 555 0100", "DE", ""]);
    assert_eq!(phone_of(&d), "+493025550100");
    assert_eq!(codes(&d), [ErrorCode::RegionDoubt]);
    assert!(
        d.warnings[0].message.contains("+13025550100"),
        "{}",
        d.warnings[0].message
    );
    // In a column named State, DE is Delaware.
    let m = mapping(Some("GB"), "Mailing State");
    let d = ok(&m, ["Ann", "ann@x.com", "302 555 0100", "", "DE"]);
    assert_eq!(phone_of(&d), "+13025550100");
    assert_eq!(codes(&d), []);
    // Codes that are countries only, or states only, are not in doubt; nor is a number that
    // reads the same or is invalid in the other region (CA: Canada or California, both +1).
    let m = mapping(Some("GB"), "Country");
    for (phone, c) in [
        ("416 555 0134", "CA"),
        ("030 1234567", "DE"),
        ("212 555 0100", "NY"),
    ] {
        let d = ok(&m, ["Ann", "ann@x.com", phone, c, ""]);
        assert_eq!(codes(&d), [], "{phone} {c}");
    }
}

#[test]
fn numbers_read_with_the_default_region_are_marked() {
    let m = mapping(Some("DE"), "Country");
    let d = ok(&m, ["Ann", "ann@x.com", "030 1234567", "", ""]);
    assert_eq!(d.phone_read_as, region("DE"));
    for (phone, country) in [
        ("+49 30 1234567", ""),
        ("00 49 30 1234567", ""),
        ("030 1234567", "DE"),
    ] {
        let d = ok(&m, ["Ann", "ann@x.com", phone, country, ""]);
        assert_eq!(d.phone_read_as, None, "{phone:?} {country:?}");
    }
}

#[test]
fn an_email_in_another_country_that_reads_the_number_too_gives_region_doubt() {
    let m = mapping(Some("DE"), "Country");
    let d = ok(&m, ["Jan", "jan@example.nl", "020 123 4567", "", ""]);
    assert_eq!(phone_of(&d), "+49201234567");
    assert_eq!(codes(&d), [ErrorCode::RegionDoubt]);
    let msg = &d.warnings[0].message;
    assert!(
        msg.contains("read as DE (+49201234567)")
            && msg.contains("\"jan@example.nl\"")
            && msg.contains("NL, where it is +31201234567"),
        "{msg}"
    );
    // Not for a generic or same-country domain, a number with its country code, the row's own
    // country, or a number the other country does not read.
    for (email, phone, country) in [
        ("jan@example.com", "020 123 4567", ""),
        ("jan@example.io", "020 123 4567", ""),
        ("jan@example.de", "020 123 4567", ""),
        ("jan@example.nl", "+49 201 234567", ""),
        ("jan@example.nl", "020 123 4567", "DE"),
        ("jan@example.nl", "0151 23456789", ""),
    ] {
        let d = ok(&m, ["Jan", email, phone, country, ""]);
        assert_eq!(codes(&d), [], "{email} {phone} {country}");
    }
    // The table: ISO codes, .uk is GB, generic and generic-used country codes name nothing.
    assert_eq!(Region::of_email("jan@example.co.uk"), region("GB"));
    assert_eq!(Region::of_email("jan@uol.com.br"), region("BR"));
    assert_eq!(Region::of_email("jan@example.co"), None);
    assert_eq!(Region::of_email("jan@example.eu"), None);
}

// ---------------------------------------------------------------- an XLSX file end to end

const XLSX_MAPPING: &str = "version: 1\ndefaults:\n  phone_region: GB\nfields:\n  name: Name\n  \
                            email: Email\n  phone_number: { from: Phone, region_from: Country }\n";

/// Row 2: a GB mobile typed into a number cell (the 0 is gone); row 3: a London number whose
/// digits also read as Egypt's with a '+' put back (refused); row 4: `tel:` and an extension.
fn phones_xlsx(path: &Path) {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["Name", "Email", "Phone", "Country"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    ws.write_string(1, 0, "Ann").unwrap();
    ws.write_string(1, 1, "ann@example.com").unwrap();
    ws.write_number(1, 2, 7_400_155_129.0).unwrap();
    ws.write_string(1, 3, "United Kingdom").unwrap();
    ws.write_string(2, 0, "Bob").unwrap();
    ws.write_string(2, 1, "bob@example.com").unwrap();
    ws.write_number(2, 2, 2_031_213_728.0).unwrap();
    ws.write_string(2, 3, "GB").unwrap();
    ws.write_string(3, 0, "Cy").unwrap();
    ws.write_string(3, 1, "cy@example.com").unwrap();
    ws.write_string(3, 2, "tel:+44 20 7946 0963 ext. 7")
        .unwrap();
    wb.save(path).unwrap();
}

#[test]
fn an_xlsx_number_cell_that_lost_its_zero_validates() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("phones.xlsx");
    phones_xlsx(&x);
    let map = dir.path().join("m.yaml");
    std::fs::write(&map, XLSX_MAPPING).unwrap();
    let args = Args::new(&x, &map, Some(&dir.path().join("run")));
    let v = run_validate(&args, true, &AtomicBool::new(false)).unwrap();
    assert_eq!(v.summary.rows_read, 3);
    let res = std::fs::read_to_string(v.run_dir.join("results.csv")).unwrap();
    let action = |line: &str| {
        res.lines()
            .find(|l| l.starts_with(&format!("{line},")))
            .unwrap_or_else(|| panic!("line {line} in {res}"))
            .split(',')
            .nth(1)
            .unwrap()
            .to_owned()
    };
    assert_eq!(action("2"), "valid", "{res}");
    assert_eq!(action("4"), "valid", "{res}");
    // Row 3's phone is ambiguous; the field-level policy decides whether the row still goes in.
    let fails = std::fs::read_to_string(v.run_dir.join("failures.csv")).unwrap_or_default();
    let warned = std::fs::read_to_string(v.run_dir.join("warnings.csv")).unwrap_or_default();
    assert!(
        fails.contains("phone_lost_prefix") || warned.contains("phone_lost_prefix"),
        "row 3 is reported: {fails}{warned}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xlsx_number_cell_that_lost_its_zero_is_imported_with_its_zero() {
    let w = World::plain().await;
    let x = w.path("phones.xlsx");
    phones_xlsx(&x);
    let map = w.write("m.yaml", XLSX_MAPPING);
    let mut args = ImportArgs::new(&x, &map);
    args.out = Some(w.path("run"));
    let run = run_import(&args, w.config(), true, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    assert_eq!(run.summary.rows_read, 3);
    let stored = w.by_email();
    assert_eq!(stored["ann@example.com"]["phone_number"], "+447400155129");
    assert_eq!(stored["cy@example.com"]["phone_number"], "+442079460963");
    // Bob's digits fit two numbers: whatever the row policy, no guessed number is stored.
    if let Some(bob) = stored.get("bob@example.com") {
        assert!(bob["phone_number"].is_null(), "{bob}");
    }
}
