//! The mapping file: loading (strict YAML, errors with lines), resolving against headers (missing
//! columns with suggestions), and applying to records (value specs, modifiers, types, phones,
//! row errors). The examples of `docs/mapping.md` and PRODUCT.md are run here too.
use doto_bulk::api::Contact;
use doto_bulk::mapping::{
    BlankPolicy, ContactDraft, ExistingPolicy, Mapping, MatchKey, MissingPolicy,
};
use doto_bulk::model::{ErrorCode, Field, FieldKind, RowError};
use doto_bulk::normalise::Region;
use doto_bulk::pipeline::plan::{apply_patch, created, diff, new_contact};
use doto_bulk::pipeline::revert::plan_restore;
use doto_bulk::sink::columns::{CORE, Cell, Column, Timestamps, cell};
use doto_bulk::source::Record;
use serde_json::{Map, Value, json};

fn load(yaml: &str) -> Mapping {
    Mapping::parse(yaml, "test.yaml").unwrap_or_else(|e| panic!("mapping should load: {e:#}"))
}

fn load_err(yaml: &str) -> String {
    format!(
        "{:#}",
        Mapping::parse(yaml, "test.yaml").expect_err("mapping should not load")
    )
}

fn headers(h: &[&str]) -> Vec<String> {
    h.iter().map(|s| s.to_string()).collect()
}

fn record(cells: &[&str]) -> Record {
    Record {
        line: 2,
        fields: cells.iter().map(|s| s.to_string()).collect(),
        numeric: Vec::new(),
    }
}

/// Load, resolve against `h`, apply to one row.
fn apply(yaml: &str, h: &[&str], row: &[&str]) -> Result<ContactDraft, Vec<RowError>> {
    load(yaml)
        .resolve(&headers(h))
        .unwrap_or_else(|e| panic!("mapping should resolve: {e:#}"))
        .apply(&record(row))
}

fn ok(yaml: &str, h: &[&str], row: &[&str]) -> ContactDraft {
    apply(yaml, h, row).unwrap_or_else(|e| panic!("row should map: {e:?}"))
}

/// `yaml` with `defaults: { required: true }`: a bad value fails the row (the strictness these
/// tests check; without it the field is left out with a warning, see tests/it/fields.rs).
fn strict(yaml: &str) -> String {
    match yaml.find("defaults:\n") {
        Some(i) => {
            let at = i + "defaults:\n".len();
            format!("{}  required: true\n{}", &yaml[..at], &yaml[at..])
        }
        None => yaml.replacen(
            "version: 1\n",
            "version: 1\ndefaults:\n  required: true\n",
            1,
        ),
    }
}

fn errs(yaml: &str, h: &[&str], row: &[&str]) -> Vec<RowError> {
    match apply(&strict(yaml), h, row) {
        Ok(d) => panic!("row should fail, gave {d:?}"),
        Err(e) => e,
    }
}

fn attr(d: &ContactDraft, key: &str) -> Value {
    d.custom_attributes.get(key).cloned().unwrap_or(Value::Null)
}

/// A minimal valid mapping plus one custom attribute `v` with the given spec.
fn with_attr(spec: &str) -> String {
    format!("version: 1\nfields:\n  name: Name\n  email: Email\ncustom_attributes:\n  v: {spec}\n")
}

const NE: [&str; 2] = ["Name", "Email"];

fn attr_of(spec: &str, extra_headers: &[&str], extra: &[&str]) -> Result<Value, Vec<RowError>> {
    let mut h: Vec<&str> = NE.to_vec();
    h.extend_from_slice(extra_headers);
    let mut row = vec!["Ann", "ann@example.com"];
    row.extend_from_slice(extra);
    apply(&strict(&with_attr(spec)), &h, &row).map(|d| attr(&d, "v"))
}

// ---------------------------------------------------------------- value specs

#[test]
fn bare_string_is_a_column() {
    let d = ok(
        "version: 1\nfields:\n  name: Full Name\n  email: Email\n",
        &["Email", "Full Name"],
        &["ann@example.com", "  Ann Lee  "],
    );
    assert_eq!(d.name.as_deref(), Some("Ann Lee"));
    assert_eq!(d.email.unwrap().as_str(), "ann@example.com");
}

#[test]
fn column_names_yaml_would_read_as_numbers_or_booleans_keep_their_text() {
    let y = "version: 1\nfields:\n  name: N\n  email: { from: 00123 }\ncustom_attributes:\n  a: yes\n  b: { from: 1.50 }\n  c: { from: [Off, 2023] }\n";
    let h = ["N", "00123", "yes", "1.50", "Off", "2023"];
    let d = ok(y, &h, &["Ann", "a@x.com", "A", "B", "", "C"]);
    assert_eq!(d.name.as_deref(), Some("Ann"));
    assert_eq!(d.email.as_ref().unwrap().as_str(), "a@x.com");
    assert_eq!(attr(&d, "a"), json!("A"));
    assert_eq!(attr(&d, "b"), json!("B"));
    assert_eq!(attr(&d, "c"), json!("C"));
}

#[test]
fn from_a_list_takes_the_first_non_blank_column() {
    let y = "version: 1\nfields:\n  name: { from: [Nick, Name, Email] }\n  email: Email\n";
    let h = ["Nick", "Name", "Email"];
    assert_eq!(ok(y, &h, &["", "  ", "a@x.com"]).name.unwrap(), "a@x.com");
    assert_eq!(ok(y, &h, &["", "Ann", "a@x.com"]).name.unwrap(), "Ann");
    assert_eq!(
        ok(y, &h, &["Annie", "Ann", "a@x.com"]).name.unwrap(),
        "Annie"
    );
}

#[test]
fn template_placeholders_are_columns_and_blank_parts_collapse() {
    let y =
        "version: 1\nfields:\n  name: { template: \"{First} {Middle} {Last}\" }\n  email: Email\n";
    let h = ["First", "Middle", "Last", "Email"];
    let name = |f, m, l| ok(y, &h, &[f, m, l, "a@x.com"]).name.unwrap();
    assert_eq!(name("Ann", "B.", "Lee"), "Ann B. Lee");
    assert_eq!(name("Ann", "", "Lee"), "Ann Lee");
    assert_eq!(name("", "", "Lee"), "Lee");
    assert_eq!(name("Ann", " ", ""), "Ann");
    assert_eq!(name("", "B.", ""), "B.");
}

#[test]
fn template_with_all_placeholders_blank_is_blank() {
    let y = "version: 1\nfields:\n  name: { template: \"{First} {Last}\", default: Unknown }\n  email: Email\nnotes:\n  - { template: \"Owner: {Owner}\" }\n  - Comment\n";
    let h = ["First", "Last", "Email", "Owner", "Comment"];
    let d = ok(y, &h, &["", " ", "a@x.com", "", "  "]);
    assert_eq!(d.name.as_deref(), Some("Unknown"));
    assert!(d.notes.is_empty(), "blank notes are skipped: {:?}", d.notes);
    let d = ok(y, &h, &["Ann", "", "a@x.com", "Sam", "call back"]);
    assert_eq!(d.notes, ["Owner: Sam", "call back"]);
}

#[test]
fn template_braces_escape_and_unclosed_placeholders_fail_at_load() {
    let y = "version: 1\nfields:\n  name: { template: \"{{{First}}}\" }\n  email: Email\n";
    let d = ok(y, &["First", "Email"], &["Ann", "a@x.com"]);
    assert_eq!(d.name.as_deref(), Some("{Ann}"));
    let e = load_err("version: 1\nfields:\n  name: { template: \"{First\" }\n  email: Email\n");
    assert!(
        e.contains("test.yaml:3:") && e.contains("not closed"),
        "{e}"
    );
}

#[test]
fn const_and_its_value_alias() {
    let y = "version: 1\nfields:\n  name: Name\n  email: Email\ncustom_attributes:\n  source: { const: hubspot }\n  tier: { value: \"3\", type: integer }\n";
    let d = ok(y, &NE, &["Ann", "a@x.com"]);
    assert_eq!(attr(&d, "source"), json!("hubspot"));
    assert_eq!(attr(&d, "tier"), json!(3));
    let e = load_err(&with_attr("{ const: abc, type: integer }"));
    assert!(
        e.contains("test.yaml:6:") && e.contains("not an integer"),
        "{e}"
    );
}

#[test]
fn exactly_one_source_per_spec() {
    let e = load_err(&with_attr("{ from: A, const: b }"));
    assert!(e.contains("only one of"), "{e}");
    let e = load_err(&with_attr("{ lowercase: true }"));
    assert!(e.contains("say where the value comes from"), "{e}");
}

// ---------------------------------------------------------------- modifiers

#[test]
fn prefix_and_suffix_apply_to_non_blank_values_only() {
    assert_eq!(
        attr_of(
            "{ from: X, prefix: \"crm-\", suffix: \"!\" }",
            &["X"],
            &[" 42 "]
        )
        .unwrap(),
        json!("crm-42!")
    );
    assert_eq!(
        attr_of("{ from: X, prefix: \"crm-\" }", &["X"], &[" "]).unwrap(),
        Value::Null,
        "a blank stays blank (no key at all)"
    );
    assert_eq!(
        attr_of(
            "{ from: X, prefix: \"crm-\", default: none }",
            &["X"],
            &[""]
        )
        .unwrap(),
        json!("none"),
        "the default is used as written"
    );
}

#[test]
fn lowercase_uppercase_and_trim() {
    assert_eq!(
        attr_of("{ from: X, lowercase: true }", &["X"], &["ÉCOLE Gold"]).unwrap(),
        json!("école gold")
    );
    assert_eq!(
        attr_of("{ from: X, uppercase: true }", &["X"], &["gold"]).unwrap(),
        json!("GOLD")
    );
    assert_eq!(
        attr_of("{ from: X, trim: false }", &["X"], &["  padded "]).unwrap(),
        json!("  padded ")
    );
    assert_eq!(
        attr_of("{ from: X }", &["X"], &["  padded "]).unwrap(),
        json!("padded")
    );
    let e = load_err(&with_attr("{ from: X, lowercase: true, uppercase: true }"));
    assert!(e.contains("not both"), "{e}");
}

#[test]
fn map_table_matches_case_insensitively_and_passes_others_through() {
    let spec = "{ from: X, map: { Gold: premium, \"N/A\": \"\" }, default: free }";
    let v = |cell| attr_of(spec, &["X"], &[cell]).unwrap();
    assert_eq!(v("gold"), json!("premium"));
    assert_eq!(v(" GOLD "), json!("premium"));
    assert_eq!(v("silver"), json!("silver"));
    assert_eq!(v("n/a"), json!("free"), "mapped to blank, then the default");
    assert_eq!(v(""), json!("free"));
    let e = load_err(&with_attr("{ from: X, map: { a: b, A: c } }"));
    assert!(e.contains("listed twice"), "{e}");
}

#[test]
fn map_values_are_checked_against_the_type_at_load() {
    let ok_spec = "{ from: X, type: bool, map: { active: yes, lapsed: no } }";
    assert_eq!(attr_of(ok_spec, &["X"], &["Active"]).unwrap(), json!(true));
    let e = load_err(&with_attr(
        "{ from: X, type: bool, map: { active: maybe } }",
    ));
    assert!(e.contains("map value \"maybe\""), "{e}");
}

// ---------------------------------------------------------------- types

#[test]
fn integer_and_number_types() {
    let i = |c| attr_of("{ from: X, type: integer }", &["X"], &[c]);
    assert_eq!(i("42").unwrap(), json!(42));
    assert_eq!(i(" -7 ").unwrap(), json!(-7));
    let e = i("4.5").unwrap_err();
    assert_eq!(e[0].code, ErrorCode::InvalidValue);
    assert_eq!(e[0].message, "column \"X\": \"4.5\" is not an integer");
    assert_eq!(e[0].field.as_deref(), Some("X"));
    let n = |c| attr_of("{ from: X, type: number }", &["X"], &[c]);
    assert_eq!(n("4.5").unwrap(), json!(4.5));
    assert_eq!(n("3").unwrap(), json!(3));
    assert!(n("3").unwrap().is_i64(), "an integer stays an integer");
    assert_eq!(n("1e3").unwrap(), json!(1000.0));
    for bad in ["NaN", "inf", "1,5", "abc"] {
        assert_eq!(
            n(bad).unwrap_err()[0].code,
            ErrorCode::InvalidValue,
            "{bad}"
        );
    }
}

#[test]
fn bool_accepts_the_documented_words_in_any_case() {
    let b = |c| attr_of("{ from: X, type: bool }", &["X"], &[c]);
    for t in ["true", "TRUE", "yes", "Y", "1", "x", "X"] {
        assert_eq!(b(t).unwrap(), json!(true), "{t}");
    }
    for f in ["false", "No", "n", "0"] {
        assert_eq!(b(f).unwrap(), json!(false), "{f}");
    }
    let e = b("maybe").unwrap_err();
    assert!(
        e[0].message
            .starts_with("column \"X\": \"maybe\" is not a yes/no value"),
        "{e:?}"
    );
}

#[test]
fn date_type_accepts_iso_formats_and_excel_serials() {
    let d = |c| {
        attr_of(
            "{ from: X, type: date, formats: [\"%m/%d/%Y\"] }",
            &["X"],
            &[c],
        )
    };
    assert_eq!(d("2023-07-17").unwrap(), json!("2023-07-17"));
    assert_eq!(d("07/17/2023").unwrap(), json!("2023-07-17"));
    assert_eq!(d("2023-07-17T09:15:00").unwrap(), json!("2023-07-17"));
    // Excel's day 1 is 1900-01-01 and it counts a 29 February 1900 that never was.
    assert_eq!(d("44927").unwrap(), json!("2023-01-01"));
    assert_eq!(d("45123").unwrap(), json!("2023-07-16"));
    assert_eq!(d("45123.25").unwrap(), json!("2023-07-16"));
    assert_eq!(d("59").unwrap(), json!("1900-02-28"));
    assert_eq!(d("61").unwrap(), json!("1900-03-01"));
    for bad in ["60", "2023-02-30", "17/07/2023", "-5", "soon", "99999999"] {
        let e = d(bad).unwrap_err();
        assert_eq!(e[0].code, ErrorCode::InvalidValue, "{bad}");
        assert!(
            e[0].message.contains(&format!("{bad:?} is not a date")),
            "{e:?}"
        );
    }
}

#[test]
fn datetime_type_writes_iso_8601() {
    let d = |c| {
        attr_of(
            "{ from: X, type: datetime, formats: [\"%d/%m/%Y %H:%M\"] }",
            &["X"],
            &[c],
        )
    };
    assert_eq!(d("17/07/2023 10:30").unwrap(), json!("2023-07-17T10:30:00"));
    assert_eq!(
        d("2023-07-17T10:30:00Z").unwrap(),
        json!("2023-07-17T10:30:00Z")
    );
    assert_eq!(
        d("2023-07-17T10:30:00-05:00").unwrap(),
        json!("2023-07-17T15:30:00Z")
    );
    assert_eq!(d("2023-07-17 10:30").unwrap(), json!("2023-07-17T10:30:00"));
    assert_eq!(d("2023-07-17").unwrap(), json!("2023-07-17T00:00:00"));
    assert_eq!(d("45123.75").unwrap(), json!("2023-07-16T18:00:00"));
    assert_eq!(d("tomorrow").unwrap_err()[0].code, ErrorCode::InvalidValue);
    // One format needs no list.
    let one = attr_of(
        "{ from: X, type: date, formats: \"%d/%m/%Y\" }",
        &["X"],
        &["17/07/2023"],
    );
    assert_eq!(one.unwrap(), json!("2023-07-17"));
}

#[test]
fn bad_date_formats_and_misplaced_options_fail_at_load() {
    let e = load_err(&with_attr("{ from: X, type: date, formats: [\"%Q\"] }"));
    assert!(
        e.contains("test.yaml:6:") && e.contains("not a valid date format"),
        "{e}"
    );
    let e = load_err(&with_attr("{ from: X, formats: [\"%Y\"] }"));
    assert!(e.contains("`formats:` only applies"), "{e}");
    let e = load_err(&with_attr("{ from: X, type: integer, prefix: a }"));
    assert!(e.contains("prefix"), "{e}");
    let e = load_err(&with_attr("{ from: X, type: colour }"));
    assert!(e.contains("colour"), "{e}");
    let e = load_err("version: 1\nfields:\n  name: { from: N, type: integer }\n  email: E\n");
    assert!(
        e.contains("fields.name") && e.contains("only applies to attributes"),
        "{e}"
    );
}

#[test]
fn blocked_is_a_bool_field() {
    let y = "version: 1\nfields:\n  name: Name\n  email: Email\n  blocked: Unsubscribed\n";
    let h = ["Name", "Email", "Unsubscribed"];
    assert_eq!(ok(y, &h, &["Ann", "a@x.com", "Yes"]).blocked, Some(true));
    assert_eq!(ok(y, &h, &["Ann", "a@x.com", "0"]).blocked, Some(false));
    assert_eq!(ok(y, &h, &["Ann", "a@x.com", ""]).blocked, None);
    let e = errs(y, &h, &["Ann", "a@x.com", "perhaps"]);
    assert_eq!(e[0].code, ErrorCode::InvalidValue);
    assert_eq!(e[0].field.as_deref(), Some("Unsubscribed"));
}

// ---------------------------------------------------------------- phones

const PHONE: &str = "version: 1\ndefaults:\n  phone_region: US\nfields:\n  name: Name\n  email: Email\n  phone_number: { from: Mobile, region_from: Country }\n";
const PHONE_H: [&str; 4] = ["Name", "Email", "Mobile", "Country"];

fn phone(mobile: &str, country: &str) -> Result<String, Vec<RowError>> {
    apply(
        &strict(PHONE),
        &PHONE_H,
        &["Ann", "a@x.com", mobile, country],
    )
    .map(|d| {
        d.phone_number
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default()
    })
}

#[test]
fn region_from_an_iso_code_per_row() {
    assert_eq!(phone("020 7946 0018", "GB").unwrap(), "+442079460018");
    assert_eq!(phone("020 7946 0018", "gb").unwrap(), "+442079460018");
    assert_eq!(phone("06 12 34 56 78", "FR").unwrap(), "+33612345678");
}

#[test]
fn region_from_an_english_country_name() {
    // The name → region table belongs to `normalise::Region::parse`; whatever it knows, the
    // mapping must use it for the row, and refuse a name it does not know with a clear error.
    match Region::parse("United Kingdom") {
        Some(_) => assert_eq!(
            phone("020 7946 0018", "United Kingdom").unwrap(),
            "+442079460018"
        ),
        None => {
            let e = phone("020 7946 0018", "United Kingdom").unwrap_err();
            assert!(
                e[0].message.contains("\"United Kingdom\" is not a country"),
                "{e:?}"
            );
        }
    }
}

#[test]
fn a_blank_country_falls_back_to_the_default_region() {
    assert_eq!(phone("(415) 555-2671", "").unwrap(), "+14155552671");
    assert_eq!(phone("+44 20 7946 0018", "").unwrap(), "+442079460018");
}

#[test]
fn an_unknown_country_is_an_error_unless_the_number_has_its_country_code() {
    assert_eq!(
        phone("+44 20 7946 0018", "Narnia").unwrap(),
        "+442079460018"
    );
    let e = phone("020 7946 0018", "Narnia").unwrap_err();
    assert_eq!(e[0].code, ErrorCode::InvalidPhone);
    assert_eq!(e[0].field.as_deref(), Some("Mobile"));
    assert!(
        e[0].message
            .starts_with("column \"Mobile\": \"020 7946 0018\""),
        "{e:?}"
    );
    assert!(
        e[0].message
            .contains("column \"Country\": \"Narnia\" is not a country"),
        "{e:?}"
    );
}

#[test]
fn an_invalid_phone_names_the_column_and_the_value() {
    let e = phone("+44 20", "GB").unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].code, ErrorCode::InvalidPhone);
    assert_eq!(e[0].field.as_deref(), Some("Mobile"));
    assert!(
        e[0].message.starts_with("column \"Mobile\": \"+44 20\""),
        "{e:?}"
    );
}

#[test]
fn no_region_anywhere_means_only_international_numbers_pass() {
    let y = "version: 1\nfields:\n  name: Name\n  email: Email\n  phone_number: Mobile\n";
    let h = ["Name", "Email", "Mobile"];
    let d = ok(y, &h, &["Ann", "a@x.com", "+1 415 555 2671"]);
    assert_eq!(d.phone_number.unwrap().as_str(), "+14155552671");
    let e = errs(y, &h, &["Ann", "a@x.com", "415 555 2671"]);
    assert_eq!(e[0].code, ErrorCode::InvalidPhone);
}

#[test]
fn region_from_only_on_phone_and_the_default_region_must_exist() {
    let e = load_err("version: 1\nfields:\n  name: { from: N, region_from: C }\n  email: E\n");
    assert!(
        e.contains("test.yaml:3:") && e.contains("region_from"),
        "{e}"
    );
    let e = load_err(
        "version: 1\ndefaults:\n  phone_region: Atlantis\nfields:\n  name: N\n  email: E\n",
    );
    assert!(
        e.contains("test.yaml:3:") && e.contains("\"Atlantis\""),
        "{e}"
    );
}

// ---------------------------------------------------------------- row errors

#[test]
fn missing_name_names_the_columns_it_looked_at() {
    let y = "version: 1\nfields:\n  name: { template: \"{First} {Last}\" }\n  email: Email\n";
    let e = errs(y, &["First", "Last", "Email"], &["", " ", "a@x.com"]);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].code, ErrorCode::MissingName);
    assert_eq!(e[0].field.as_deref(), Some("name"));
    assert_eq!(
        e[0].message,
        "no name: columns \"First\", \"Last\" are all blank"
    );
}

#[test]
fn a_fallback_column_avoids_missing_name() {
    let y = "version: 1\nfields:\n  name: { from: [Name, Email] }\n  email: Email\n";
    let d = ok(y, &NE, &["", "Ann@X.com"]);
    assert_eq!(d.name.as_deref(), Some("Ann@X.com"));
}

#[test]
fn missing_key_when_every_match_key_is_blank() {
    let y = "version: 1\nmatch:\n  on: [identifier, email]\nfields:\n  name: Name\n  email: Email\n  identifier: ID\n";
    let h = ["Name", "Email", "ID"];
    let e = errs(y, &h, &["Ann", "", " "]);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].code, ErrorCode::MissingKey);
    assert_eq!(
        e[0].field.as_deref(),
        Some("identifier"),
        "the first key tried"
    );
    assert!(
        e[0].message.contains("identifier: column \"ID\" is blank"),
        "{e:?}"
    );
    assert!(
        e[0].message.contains("email: column \"Email\" is blank"),
        "{e:?}"
    );
    // One key is enough.
    assert_eq!(
        ok(y, &h, &["Ann", "", "7"]).identifier.unwrap().as_str(),
        "7"
    );
    // An invalid key is reported as invalid, not also as missing.
    let e = errs(y, &h, &["Ann", "not-an-email", ""]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].code, ErrorCode::InvalidEmail);
    assert_eq!(e[0].field.as_deref(), Some("Email"));
    assert!(
        e[0].message
            .starts_with("column \"Email\": \"not-an-email\""),
        "{e:?}"
    );
}

#[test]
fn too_long_strings_are_refused_with_the_column() {
    let long = "a".repeat(256);
    let y = "version: 1\nmatch:\n  on: [email]\nfields:\n  name: Name\n  email: Email\n  identifier: ID\n";
    // A name is cut to the limit (a `truncated` warning, tests/it/fields.rs); an identifier cut
    // would be another key: refused.
    let e = errs(y, &["Name", "Email", "ID"], &[&long, "a@x.com", &long]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].code, ErrorCode::TooLong);
    assert_eq!(e[0].field.as_deref(), Some("ID"));
    assert!(e[0].message.starts_with("column \"ID\": \"aaaa"), "{e:?}");
    assert!(
        e[0].message
            .ends_with("is 256 characters long (at most 255)"),
        "{e:?}"
    );
    // 255 characters, multi-byte: fine.
    let edge = "é".repeat(255);
    assert_eq!(
        ok(y, &["Name", "Email", "ID"], &[&edge, "a@x.com", ""])
            .name
            .unwrap(),
        edge
    );
}

#[test]
fn all_the_rows_errors_are_collected() {
    let y = "version: 1\ndefaults:\n  phone_region: GB\nfields:\n  name: Name\n  email: Email\n  phone_number: Phone\ncustom_attributes:\n  n: { from: N, type: integer }\n";
    let e = errs(
        y,
        &["Name", "Email", "Phone", "N"],
        &["", "bad@", "12", "x"],
    );
    let codes: Vec<ErrorCode> = e.iter().map(|e| e.code).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::MissingName,
            ErrorCode::InvalidEmail,
            ErrorCode::InvalidPhone,
            ErrorCode::InvalidValue
        ]
    );
}

#[test]
fn damaged_text_is_reported_once_per_column() {
    let y = "version: 1\nfields:\n  name: Name\n  email: Email\nnotes:\n  - Name\n  - { template: \"Hi {Name}\" }\n";
    let e = errs(y, &NE, &["Ann\u{7}", "a@x.com"]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].code, ErrorCode::InvisibleCharacters);
    assert_eq!(e[0].field.as_deref(), Some("Name"));
}

#[test]
fn blank_clear_lists_blank_fields_and_nulls_attributes() {
    let y = "version: 1\nmatch:\n  on: [email]\n  blank: clear\nfields:\n  name: Name\n  email: Email\n  phone_number: Phone\n  identifier: ID\n  blocked: B\ncustom_attributes:\n  plan: Plan\n";
    let h = ["Name", "Email", "Phone", "ID", "B", "Plan"];
    let d = ok(y, &h, &["Ann", "a@x.com", "", "", "", ""]);
    assert_eq!(
        d.clear,
        [Field::Identifier, Field::PhoneNumber, Field::Blocked]
    );
    assert_eq!(d.custom_attributes.get("plan"), Some(&Value::Null));
    let keep = y.replace("blank: clear", "blank: keep");
    let d = ok(&keep, &h, &["Ann", "a@x.com", "", "", "", ""]);
    assert!(d.clear.is_empty());
    assert!(d.custom_attributes.is_empty());
}

// ---------------------------------------------------------------- loading

#[test]
fn unknown_keys_are_errors_naming_the_key_and_line() {
    for (yaml, key, line) in [
        ("version: 1\nfeilds:\n  name: N\n", "feilds", 2),
        ("version: 1\nfields:\n  name: N\n  emial: E\n", "emial", 4),
        (
            "version: 1\nfields:\n  name: N\n  email: { from: E, lowercse: true }\n",
            "lowercse",
            4,
        ),
        (
            "version: 1\nsource:\n  sheet: 2\n  header: 3\n",
            "header",
            4,
        ),
        (
            "version: 1\nmatch:\n  existing: update\n  blanks: keep\n",
            "blanks",
            4,
        ),
        ("version: 1\ndefaults:\n  region: GB\n", "region", 3),
    ] {
        let e = load_err(yaml);
        assert!(
            e.contains(&format!("test.yaml:{line}:")) && e.contains(&format!("`{key}`")),
            "{key}: {e}"
        );
    }
}

#[test]
fn bad_values_are_errors_with_lines() {
    let e = load_err("version: 2\nfields:\n  name: N\n  email: E\n");
    assert!(e.contains("test.yaml:1:") && e.contains("version 2"), "{e}");
    let e = load_err("version: 1\nmatch:\n  existing: merge\nfields:\n  name: N\n  email: E\n");
    assert!(e.contains("test.yaml:3:") && e.contains("merge"), "{e}");
    let e = load_err("version: 1\nsource:\n  delimiter: \"ab\"\nfields:\n  name: N\n  email: E\n");
    assert!(e.contains("test.yaml:3:") && e.contains("delimiter"), "{e}");
    let e = load_err("version: 1\nsource:\n  encoding: klingon\nfields:\n  name: N\n  email: E\n");
    assert!(e.contains("test.yaml:3:") && e.contains("klingon"), "{e}");
    let e = load_err("version: 1\nmatch:\n  on: [email]\nfields:\n  name: N\n  identifier: I\n");
    assert!(
        e.contains("test.yaml:3:") && e.contains("fields.email is not mapped"),
        "{e}"
    );
    let e = load_err("version: 1\nfields:\n  email: E\n");
    assert!(e.contains("fields.name is not mapped"), "{e}");
    let e = load_err("version: 1\nfields:\n  name: N\n");
    assert!(e.contains("fields.email or fields.identifier"), "{e}");
    let e = load_err("  \n");
    assert!(e.contains("test.yaml: the mapping file is empty"), "{e}");
    let e = load_err("version: 1\nfields:\n  name:\n    - A\n  email: E\n");
    assert!(
        e.contains("test.yaml:3:") && e.contains("{ from: [A, B] }"),
        "{e}"
    );
    let e = load_err("version: 1\nfields:\n  name: N\n  name: M\n  email: E\n");
    assert!(e.contains("test.yaml:4:") && e.contains("duplicate"), "{e}");
}

#[test]
fn source_options_and_policies_are_exposed() {
    let m = load(
        "version: 1\nsource:\n  sheet: Contacts\n  header_row: 3\n  delimiter: \";\"\n  encoding: windows-1252\nmatch:\n  on: [email, identifier]\n  existing: fail\n  missing: skip\n  blank: clear\nfields:\n  email: E\n  identifier: I\n",
    );
    let o = m.source_options();
    assert_eq!(o.sheet.as_deref(), Some("Contacts"));
    assert_eq!(o.header_row, Some(3));
    assert_eq!(o.delimiter, Some(b';'));
    assert_eq!(o.encoding.as_deref(), Some("windows-1252"));
    assert_eq!(m.match_keys(), [MatchKey::Email, MatchKey::Identifier]);
    assert_eq!(m.existing_policy(), ExistingPolicy::Fail);
    assert_eq!(m.missing_policy(), MissingPolicy::Skip);
    assert_eq!(m.blank_policy(), BlankPolicy::Clear);
    let tab =
        load("version: 1\nsource:\n  delimiter: tab\n  sheet: 2\nfields:\n  name: N\n  email: E\n");
    assert_eq!(tab.source_options().delimiter, Some(b'\t'));
    assert_eq!(tab.source_options().sheet.as_deref(), Some("2"));
    // Defaults: keys of [identifier, email] that are mapped; update / create / keep.
    let d = load("version: 1\nfields:\n  name: N\n  email: E\n");
    assert_eq!(d.match_keys(), [MatchKey::Email]);
    assert_eq!(d.existing_policy(), ExistingPolicy::Update);
    assert_eq!(d.missing_policy(), MissingPolicy::Create);
    assert_eq!(d.blank_policy(), BlankPolicy::Keep);
    assert_eq!(d.source_options().delimiter, None);
}

#[test]
fn load_reads_a_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("crm.yaml");
    std::fs::write(
        &p,
        "version: 1\nfields:\n  name: N\n  email: E\n  phone: P\n",
    )
    .unwrap();
    let e = format!("{:#}", Mapping::load(&p).unwrap_err());
    assert!(
        e.contains(&format!("{}:5:", p.display())) && e.contains("`phone`"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        Mapping::load(&dir.path().join("nope.yaml")).unwrap_err()
    );
    assert!(e.contains("nope.yaml"), "{e}");
}

// ---------------------------------------------------------------- resolving

#[test]
fn a_missing_column_names_the_file_line_and_closest_headers() {
    let m = load(
        "version: 1\nfields:\n  name: Name\n  email: email adress\n  phone_number: { from: [Mobile Phone, Phone] }\n",
    );
    let e = format!(
        "{:#}",
        m.resolve(&headers(&[
            "Name",
            "Email Address",
            "Mobile Phone Number",
            "Phone",
            "_row"
        ]))
        .unwrap_err()
    );
    assert!(
        e.contains("2 columns named in the mapping are not in the file"),
        "{e}"
    );
    assert!(
        e.contains("test.yaml:4: column \"email adress\" is not in the file's headers; closest: \"Email Address\""),
        "{e}"
    );
    assert!(
        e.lines().any(|l| l
            == "test.yaml:5: column \"Mobile Phone\" is not in the file's headers; closest: \"Mobile Phone Number\", \"Phone\""),
        "{e}"
    );
    assert!(
        !e.contains("_row"),
        "report columns are never suggested: {e}"
    );
}

#[test]
fn each_column_is_checked_once_and_block_lists_keep_their_lines() {
    let m = load(
        "version: 1\nfields:\n  name: { template: \"{Nom} {Nom}\" }\n  email:\n    from:\n      - Email\n      - Courriel\nnotes:\n  - Nom\n",
    );
    let e = format!("{:#}", m.resolve(&headers(&["Name", "Email"])).unwrap_err());
    assert_eq!(e.matches("\"Nom\"").count(), 1, "{e}");
    assert!(e.contains("test.yaml:3: column \"Nom\""), "{e}");
    assert!(e.contains("test.yaml:7: column \"Courriel\""), "{e}");
    assert!(e.contains("closest: \"Name\""), "{e}");
}

#[test]
fn with_nothing_close_the_headers_are_listed() {
    let m = load("version: 1\nfields:\n  name: Zzzzzz\n  email: Email\n");
    let e = format!(
        "{:#}",
        m.resolve(&headers(&["Email", "Phone"])).unwrap_err()
    );
    assert!(e.contains("the headers are: \"Email\", \"Phone\""), "{e}");
}

#[test]
fn underscore_columns_are_never_mapped_and_are_ignored_when_fed_back() {
    let m = load("version: 1\nfields:\n  name: Name\n  email: Email\n");
    // failures.csv: original columns plus the report's underscore columns.
    let h = headers(&[
        "Name",
        "Email",
        "_row",
        "_error_code",
        "_error_field",
        "_error_message",
    ]);
    let d = m
        .resolve(&h)
        .unwrap()
        .apply(&record(&[
            "Ann",
            "a@x.com",
            "7",
            "invalid_email",
            "Email",
            "column …",
        ]))
        .unwrap();
    assert_eq!(d.email.unwrap().as_str(), "a@x.com");
    let m =
        load("version: 1\nfields:\n  name: Name\n  email: Email\ncustom_attributes:\n  r: _row\n");
    let e = format!("{:#}", m.resolve(&h).unwrap_err());
    assert!(
        e.contains("column \"_row\"") && e.contains("never mapped"),
        "{e}"
    );
}

#[test]
fn headers_with_stray_spaces_match_and_the_first_duplicate_wins() {
    let m = load("version: 1\nfields:\n  name: Name\n  email: Email\n");
    let d = m
        .resolve(&headers(&["Name", " Email ", "Name"]))
        .unwrap()
        .apply(&record(&["First", "a@x.com", "Second"]))
        .unwrap();
    assert_eq!(d.name.as_deref(), Some("First"));
    assert_eq!(d.email.unwrap().as_str(), "a@x.com");
}

#[test]
fn short_records_read_as_blank_cells() {
    let m = load("version: 1\nfields:\n  name: Name\n  email: Email\n  phone_number: Phone\n");
    let d = m
        .resolve(&headers(&["Name", "Email", "Phone"]))
        .unwrap()
        .apply(&record(&["Ann", "a@x.com"]))
        .unwrap();
    assert_eq!(d.phone_number, None);
}

#[test]
fn a_resolved_mapping_is_shared_across_threads() {
    let m = load("version: 1\nfields:\n  name: Name\n  email: Email\n");
    let r = std::sync::Arc::new(m.resolve(&headers(&NE)).unwrap());
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let r = r.clone();
            std::thread::spawn(move || {
                (0..500)
                    .filter(|i| {
                        r.apply(&record(&[&format!("N{t}-{i}"), &format!("u{i}@x.com")]))
                            .is_ok()
                    })
                    .count()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 500);
    }
}

// ---------------------------------------------------------------- documented examples

/// The example of the mapping shape in PRODUCT.md, verbatim.
const PRODUCT_EXAMPLE: &str = r#"version: 1
source:
  sheet: Contacts            # xlsx: sheet name or 1-based index (default: first sheet)
  header_row: 1              # rows above it are skipped
  # csv: delimiter and encoding are detected (UTF-8 with/without BOM, UTF-16 BOM, Windows-1252;
  # , ; TAB |) unless given here
defaults:
  phone_region: US           # for numbers written without +country code
match:
  on: [identifier, email]    # dedupe keys, tried in order
  existing: update           # update | skip | fail
  missing: create            # create | skip
  blank: keep                # a blank cell never erases a stored value, unless `clear`
fields:
  name: { template: "{First Name} {Last Name}" }
  email: Email
  phone_number: { from: ["Mobile Phone Number", "Phone Number"], region_from: "Country/Region" }
  identifier: { from: "Record ID", prefix: "hubspot-" }
  blocked: { from: "Unsubscribed", type: bool }
custom_attributes:
  plan: { from: Plan, lowercase: true, map: { gold: premium }, default: free }
  signup_date: { from: "Create Date", type: date, formats: ["%m/%d/%Y", "%Y-%m-%d %H:%M"] }
additional_attributes:
  company_name: "Company Name"
  city: City
notes:
  - { template: "Imported from HubSpot. Owner: {Contact owner}" }
"#;

#[test]
fn the_product_example_loads_and_applies() {
    let m = load(PRODUCT_EXAMPLE);
    assert_eq!(m.match_keys(), [MatchKey::Identifier, MatchKey::Email]);
    assert_eq!(m.source_options().sheet.as_deref(), Some("Contacts"));
    let h = [
        "Record ID",
        "First Name",
        "Last Name",
        "Email",
        "Phone Number",
        "Mobile Phone Number",
        "Country/Region",
        "Unsubscribed",
        "Plan",
        "Create Date",
        "Company Name",
        "City",
        "Contact owner",
        "Lifecycle Stage",
    ];
    let r = m.resolve(&headers(&h)).unwrap();
    let d = r
        .apply(&record(&[
            "1001",
            "Jane",
            "Doe",
            " Jane@Example.COM ",
            "",
            "(415) 555-2671",
            "",
            "No",
            "GOLD",
            "07/17/2023",
            "Acme",
            "Lyon",
            "Sam",
            "lead",
        ]))
        .unwrap();
    let got = serde_json::to_value(&d).unwrap();
    assert_eq!(
        got,
        json!({
            "name": "Jane Doe",
            "email": "jane@example.com",
            "phone_number": "+14155552671",
            "identifier": "hubspot-1001",
            "blocked": false,
            "custom_attributes": {"plan": "premium", "signup_date": "2023-07-17"},
            "additional_attributes": {"company_name": "Acme", "city": "Lyon"},
            "clear": [],
            "notes": ["Imported from HubSpot. Owner: Sam"],
        })
    );
    // A sparse row: fallback phone column, default plan, the second date format, no owner.
    let d = r
        .apply(&record(&[
            "1002",
            "",
            "Roe",
            "",
            "+44 20 7946 0018",
            "",
            "GB",
            "",
            "",
            "2023-01-05 09:00",
            "",
            "",
            "",
            "",
        ]))
        .unwrap();
    assert_eq!(d.name.as_deref(), Some("Roe"));
    assert_eq!(d.phone_number.unwrap().as_str(), "+442079460018");
    assert_eq!(d.custom_attributes["plan"], json!("free"));
    assert_eq!(d.custom_attributes["signup_date"], json!("2023-01-05"));
    assert!(d.notes.is_empty());
    assert!(d.additional_attributes.is_empty());
}

/// (row cells, Ok(expected JSON subset) | Err(expected message part), expected warning parts)
type DocRow = (Vec<String>, Result<Value, String>, Vec<String>);

/// One ```yaml block of docs/mapping.md with its test comments.
struct DocExample {
    line: usize,
    yaml: String,
    headers: Vec<String>,
    rows: Vec<DocRow>,
    load_error: Option<String>,
}

fn doc_examples() -> Vec<DocExample> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/mapping.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, l)) = lines.next() {
        if l.trim() != "```yaml" {
            continue;
        }
        let mut ex = DocExample {
            line: n + 1,
            yaml: String::new(),
            headers: Vec::new(),
            rows: Vec::new(),
            load_error: None,
        };
        for (_, l) in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            ex.yaml.push_str(l);
            ex.yaml.push('\n');
            let cells = |s: &str| {
                s.split('|')
                    .map(|c| c.trim().to_owned())
                    .collect::<Vec<_>>()
            };
            if let Some(h) = l.strip_prefix("# headers:") {
                ex.headers = cells(h);
            } else if let Some(r) = l.strip_prefix("# row:") {
                ex.rows.push((cells(r), Ok(Value::Null), Vec::new()));
            } else if let Some(g) = l.strip_prefix("# gives:") {
                let v: Value = serde_json::from_str(g.trim())
                    .unwrap_or_else(|e| panic!("docs line {}: bad gives JSON: {e}", ex.line));
                ex.rows.last_mut().expect("gives after a row").1 = Ok(v);
            } else if let Some(e) = l.strip_prefix("# error:") {
                ex.rows.last_mut().expect("error after a row").1 = Err(e.trim().to_owned());
            } else if let Some(w) = l.strip_prefix("# warning:") {
                let row = ex.rows.last_mut().expect("warning after a row");
                row.2.push(w.trim().to_owned());
            } else if let Some(e) = l.strip_prefix("# load-error:") {
                ex.load_error = Some(e.trim().to_owned());
            }
        }
        out.push(ex);
    }
    out
}

/// Every key of `want` is in `got` with the same value (objects compared key by key).
fn contains(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|gv| contains(gv, v))),
        _ => got == want,
    }
}

#[test]
fn every_docs_example_loads_and_does_what_it_says() {
    let examples = doc_examples();
    assert!(examples.len() >= 8, "found {} yaml blocks", examples.len());
    let mut rows_checked = 0;
    for ex in &examples {
        let at = format!("docs/mapping.md block at line {}", ex.line);
        if let Some(want) = &ex.load_error {
            let e = format!("{:#}", Mapping::parse(&ex.yaml, "doc.yaml").expect_err(&at));
            assert!(e.contains(want), "{at}: {e}");
            continue;
        }
        let m = Mapping::parse(&ex.yaml, "doc.yaml").unwrap_or_else(|e| panic!("{at}: {e:#}"));
        assert!(!ex.headers.is_empty(), "{at}: no `# headers:` comment");
        let r = m
            .resolve(&ex.headers)
            .unwrap_or_else(|e| panic!("{at}: {e:#}"));
        for (cells, want, warnings) in &ex.rows {
            assert_eq!(cells.len(), ex.headers.len(), "{at}: row {cells:?}");
            let rec = Record {
                line: 2,
                fields: cells.clone(),
                numeric: Vec::new(),
            };
            match (r.apply(&rec), want) {
                (Ok(d), Ok(w)) => {
                    let got = serde_json::to_value(&d).unwrap();
                    assert!(
                        contains(&got, w),
                        "{at}: row {cells:?}\n got {got}\nwant {w}"
                    );
                    // Every warning the docs name, and no other.
                    assert_eq!(d.warnings.len(), warnings.len(), "{at}: {:?}", d.warnings);
                    for w in warnings {
                        assert!(
                            d.warnings.iter().any(|x| x.message.contains(w)),
                            "{at}: {:?} lacks {w:?}",
                            d.warnings
                        );
                    }
                }
                (Err(e), Err(w)) => {
                    assert!(
                        e.iter().any(|e| e.message.contains(w)),
                        "{at}: {e:?} lacks {w:?}"
                    )
                }
                (got, want) => panic!("{at}: row {cells:?} gave {got:?}, want {want:?}"),
            }
            rows_checked += 1;
        }
    }
    assert!(
        rows_checked >= 10,
        "only {rows_checked} example rows checked"
    );
}

// ---------------------------------------------------------------- the field table

/// A cell of each kind of field, and the value the API then holds.
fn sample(kind: FieldKind) -> (&'static str, Value) {
    match kind {
        FieldKind::Text => ("Ann", json!("Ann")),
        FieldKind::Email => ("Ann@Example.com", json!("ann@example.com")),
        FieldKind::Phone => ("+44 20 7946 0958", json!("+442079460958")),
        FieldKind::Identifier => ("ID-1", json!("ID-1")),
        FieldKind::Bool => ("yes", json!(true)),
        FieldKind::Attributes => unreachable!("attributes are mapped key by key"),
    }
}

/// Whatever the field table lists flows through every stage without being named: a mapping of
/// every scalar field (and both attribute objects), the diff against an empty contact, the patch,
/// the create, the export's cells, and revert's restore. A field added to the table is tested
/// here with no change to the test.
#[test]
fn every_field_of_the_table_flows_through_mapping_diff_patch_export_and_revert() {
    let mut yaml = String::from("version: 1\nfields:\n");
    for name in Field::SCALAR_NAMES {
        yaml.push_str(&format!("  {name}: {name}\n"));
    }
    yaml.push_str("custom_attributes:\n  plan: plan\nadditional_attributes:\n  city: city\n");
    let mut h: Vec<&str> = Field::SCALAR_NAMES.to_vec();
    h.extend(["plan", "city"]);
    let mut row: Vec<&str> = Field::scalars().map(|f| sample(f.kind()).0).collect();
    row.extend(["gold", "Lyon"]);
    let draft = ok(&yaml, &h, &row);

    let empty: Contact = serde_json::from_value(json!({"id": 1})).unwrap();
    let (patch, changes) = diff(&draft, &empty);
    let mut expected: Vec<String> = Field::scalars().map(|f| f.to_string()).collect();
    expected.extend([
        "custom_attributes.plan".into(),
        "additional_attributes.city".into(),
    ]);
    let changed: Vec<&String> = changes.iter().map(|c| &c.field).collect();
    assert_eq!(changed, expected.iter().collect::<Vec<_>>());

    let stored = apply_patch(&empty, &patch);
    for f in Field::scalars() {
        assert_eq!(stored.scalar(f).to_json(), sample(f.kind()).1, "{f}");
    }
    assert_eq!(stored.custom_attributes["plan"], "gold");
    assert_eq!(stored.additional_attributes["city"], "Lyon");
    assert!(diff(&draft, &stored).0.is_empty());
    let made = created(1, &new_contact(&draft));
    assert_eq!(made, stored);

    for f in Field::scalars() {
        assert!(CORE.contains(&f.as_str()), "{f} is not an export column");
        let column = Column::parse(f.as_str()).unwrap();
        let want = match sample(f.kind()).1 {
            Value::Bool(b) => Cell::Bool(b),
            v => Cell::Text(v.as_str().unwrap().to_owned()),
        };
        assert_eq!(cell(&stored, &column, Timestamps::Iso), want, "{f}");
    }

    let before: Map<String, Value> = changes
        .iter()
        .map(|c| (c.field.clone(), c.before.clone()))
        .collect();
    let after: Map<String, Value> = changes
        .iter()
        .map(|c| (c.field.clone(), c.after.clone()))
        .collect();
    let r = plan_restore(&stored, &before, &after);
    assert!(r.changed_since.is_empty(), "{:?}", r.changed_since);
    assert_eq!(r.remove_custom, ["plan"]);
    assert_eq!(r.nulled, ["additional_attributes.city"]);
    let restored = apply_patch(&stored, &r.patch);
    for f in Field::scalars() {
        assert_eq!(restored.scalar(f), empty.scalar(f), "{f}");
    }
}

#[test]
fn fields_keys_come_from_the_field_table() {
    let e = load_err("version: 1\nfields:\n  name: Name\n  phone: Phone\n");
    assert!(e.contains("phone"), "{e}");
    assert!(e.starts_with("test.yaml:4:"), "{e}");
    assert!(e.contains(&Field::SCALAR_NAMES.join(", ")), "{e}");
    // An attribute object is not a field of `fields:`.
    let e = load_err("version: 1\nfields:\n  name: Name\n  custom_attributes: X\n");
    assert!(e.contains("custom_attributes"), "{e}");
    let e = load_err("version: 1\nfields:\n  name: Name\n  email: E\n  name: N\n");
    assert!(e.contains("name"), "{e}");
}
