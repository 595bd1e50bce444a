//! The shipped samples (`samples/`) against their shipped mappings (`mappings/`): each is
//! validated and its counts must be exactly the ones documented in `docs/samples.md`, read from
//! that page's table so the page and the files cannot drift apart.
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use doto_bulk::cmd::validate::{Args, run_validate};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One row of the counts table in docs/samples.md.
#[derive(Debug)]
pub(crate) struct Expected {
    pub(crate) sample: String,
    pub(crate) mapping: String,
    /// The `args` column: `--phone-region CC` for a layout without a country column, else none.
    pub(crate) phone_region: Option<doto_bulk::normalise::Region>,
    pub(crate) rows: u64,
    pub(crate) valid: u64,
    pub(crate) invalid: u64,
    pub(crate) skipped: u64,
}

/// The table whose header is `| sample | mapping | args | rows | valid | invalid | skipped |`.
pub(crate) fn documented() -> Vec<Expected> {
    table("mapping")
}

/// The table of the other mappings of a sample's CRM that read it too: its header is
/// `| sample | other mapping | args | rows | valid | invalid | skipped |`.
pub(crate) fn documented_other() -> Vec<Expected> {
    table("other mapping")
}

fn table(mapping_column: &str) -> Vec<Expected> {
    let text = std::fs::read_to_string(root().join("docs/samples.md")).unwrap();
    let header =
        format!("|sample|{mapping_column}|args|rows|valid|invalid|skipped|").replace(' ', "");
    let mut lines = text.lines().skip_while(|l| l.replace(' ', "") != header);
    assert!(
        lines.next().is_some(),
        "docs/samples.md has no {header} table"
    );
    lines
        .skip(1) // the |---| line
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let c: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(c.len(), 7, "docs/samples.md: bad table row {l:?}");
            let n = |i: usize| {
                c[i].parse::<u64>()
                    .unwrap_or_else(|_| panic!("{l:?}: {}", c[i]))
            };
            Expected {
                sample: c[0].to_string(),
                mapping: c[1].to_string(),
                phone_region: phone_region_arg(c[2]),
                rows: n(3),
                valid: n(4),
                invalid: n(5),
                skipped: n(6),
            }
        })
        .collect()
}

/// The `args` cell: blank, or `` `--phone-region CC` `` (the only option the table gives).
fn phone_region_arg(cell: &str) -> Option<doto_bulk::normalise::Region> {
    let words: Vec<&str> = cell.trim_matches('`').split_whitespace().collect();
    match words[..] {
        [] => None,
        ["--phone-region", cc] => {
            Some(doto_bulk::cli::parse_phone_region(cc).unwrap_or_else(|e| panic!("{cell}: {e}")))
        }
        _ => panic!("docs/samples.md: args {cell:?}: only `--phone-region CC` is understood"),
    }
}

#[test]
fn every_sample_is_documented_and_every_documented_sample_exists() {
    let docs = documented();
    assert!(docs.len() >= 6, "{docs:?}");
    let listed: Vec<&str> = docs.iter().map(|e| e.sample.as_str()).collect();
    for entry in std::fs::read_dir(root().join("samples")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name == "quickstart.csv" {
            continue; // the README's sample, documented there
        }
        let rel = format!("samples/{name}");
        assert!(
            listed.contains(&rel.as_str()),
            "{rel} is not in docs/samples.md"
        );
    }
    for e in &docs {
        assert!(root().join(&e.sample).is_file(), "{} is missing", e.sample);
        assert!(
            root().join(&e.mapping).is_file(),
            "{} is missing",
            e.mapping
        );
    }
    // The brief's layouts: at least one XLSX, one Windows-1252 CSV, one ';'-delimited CSV.
    assert!(listed.iter().any(|s| s.ends_with(".xlsx")));
    let bytes = |s: &str| std::fs::read(root().join(s)).unwrap();
    assert!(
        listed.iter().any(|s| s.ends_with(".csv")
            && std::str::from_utf8(&bytes(s)).is_err()
            && bytes(s).contains(&0xE9)),
        "no Windows-1252 sample (é as the single byte 0xE9)"
    );
    assert!(listed.iter().any(|s| {
        let b = bytes(s);
        s.ends_with(".csv") && b.split(|&c| c == b'\n').next().unwrap().contains(&b';')
    }));
}

#[test]
fn every_sample_validates_with_its_documented_counts() {
    let dir = tempfile::tempdir().unwrap();
    for (i, e) in documented().iter().enumerate() {
        let out = dir.path().join(format!("run{i}"));
        let mut args = Args::new(
            &root().join(&e.sample),
            &root().join(&e.mapping),
            Some(&out),
        );
        args.phone_region = e.phone_region;
        let v = run_validate(&args, true, &AtomicBool::new(false))
            .unwrap_or_else(|err| panic!("{}: {err:#}", e.sample));
        let got = |k: &str| v.summary.outcomes.get(k).copied().unwrap_or(0);
        let found = (
            v.summary.rows_read,
            got("valid"),
            got("invalid"),
            got("skipped"),
        );
        assert_eq!(
            found,
            (e.rows, e.valid, e.invalid, e.skipped),
            "{} with {}: (rows, valid, invalid, skipped) differ from docs/samples.md",
            e.sample,
            e.mapping
        );
        assert!(Path::new(&out).join("summary.json").is_file());
    }
}

#[test]
fn messy_sample_reports_each_kind_of_trouble() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = Args::new(
        &root().join("samples/messy.csv"),
        &root().join("mappings/hubspot.yaml"),
        Some(&out),
    );
    let v = run_validate(&args, true, &AtomicBool::new(false)).unwrap();
    // A row fails for what leaves it nothing to import; a bad value only leaves its field out.
    let codes = &v.summary.failures_by_code;
    for code in ["missing_name", "ragged_row"] {
        assert!(
            codes.get(code).copied().unwrap_or(0) >= 1,
            "{code} missing: {codes:?}"
        );
    }
    let warned = &v.summary.warnings;
    for code in ["invalid_email", "invalid_phone", "invalid_value"] {
        assert!(
            warned.get(code).copied().unwrap_or(0) >= 1,
            "{code} missing: {warned:?}"
        );
    }
    assert_eq!(v.summary.duplicates_in_file, 1);
    let warnings = std::fs::read_to_string(out.join("warnings.csv")).unwrap();
    assert!(warnings.contains("bob@@example.com"), "{warnings}");
}

#[test]
fn chatwoot_sample_attributes_are_spread_from_ruby_hash_text() {
    use doto_bulk::mapping::Mapping;
    use doto_bulk::source;
    let m = Mapping::load(&root().join("mappings/chatwoot.yaml")).unwrap();
    let src = source::open(
        &root().join("samples/chatwoot-contacts.csv"),
        &m.source_options(),
    )
    .unwrap();
    let r = m.resolve(src.headers()).unwrap();
    let drafts: Vec<_> = src.map(|rec| r.apply(&rec.unwrap()).unwrap()).collect();
    let first = &drafts[0];
    assert_eq!(first.custom_attributes["plan"], "pro");
    assert_eq!(first.custom_attributes["seats"], 5);
    assert_eq!(first.additional_attributes["city"], "Lyon");
    assert_eq!(first.additional_attributes["company_name"], "Acme");
    // The spec's own key is not an attribute; the text was not kept whole.
    assert!(!first.custom_attributes.contains_key("from_chatwoot"));
    // A string value holding `, ` and `=>` stays one value.
    let farah = drafts
        .iter()
        .find(|d| d.name.as_deref() == Some("Farah Khan"))
        .unwrap();
    assert_eq!(farah.custom_attributes["note"], "a, b => c");
    assert_eq!(
        serde_json::to_value(&first.identifier).unwrap(),
        "chatwoot-1"
    );
}

/// With `blank: clear`, a blank Ruby hash cell names no key, so nothing is cleared (not even the
/// spec's own key, which is never an attribute).
#[test]
fn blank_ruby_hash_cell_clears_nothing() {
    use doto_bulk::mapping::Mapping;
    use doto_bulk::source::Record;
    let m = Mapping::parse(
        "version: 1\nmatch:\n  on: [email]\n  blank: clear\nfields:\n  name: name\n  email: email\n\
         custom_attributes:\n  spread: { from: attrs, type: ruby_hash }\n  tier: tier\n",
        "inline.yaml",
    )
    .unwrap();
    let headers: Vec<String> = ["name", "email", "attrs", "tier"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r = m.resolve(&headers).unwrap();
    let rec = |attrs: &str| Record {
        line: 2,
        fields: vec![
            "Ann".into(),
            "ann@example.com".into(),
            attrs.into(),
            "".into(),
        ],
        numeric: Vec::new(),
    };
    let d = r.apply(&rec("")).unwrap();
    assert!(!d.custom_attributes.contains_key("spread"), "{d:?}");
    // The plain attribute is still cleared: the policy is on.
    assert_eq!(
        d.custom_attributes.get("tier"),
        Some(&serde_json::Value::Null)
    );
    let d = r.apply(&rec(r#"{"plan"=>"pro"}"#)).unwrap();
    assert_eq!(d.custom_attributes["plan"], "pro");
    assert!(!d.custom_attributes.contains_key("spread"));
}

/// The Windows-1252 Salesforce report is decoded, not read as mojibake, and its ids prefixed.
#[test]
fn salesforce_sample_is_decoded_from_windows_1252() {
    use doto_bulk::mapping::Mapping;
    use doto_bulk::source;
    let m = Mapping::load(&root().join("mappings/salesforce.yaml")).unwrap();
    let src = source::open(
        &root().join("samples/salesforce-contacts.csv"),
        &m.source_options(),
    )
    .unwrap();
    let r = m.resolve(src.headers()).unwrap();
    let drafts: Vec<_> = src.map(|rec| r.apply(&rec.unwrap()).unwrap()).collect();
    assert_eq!(drafts[0].name.as_deref(), Some("Amélie Léger"));
    assert_eq!(
        drafts[0].additional_attributes["company_name"],
        "Société Générale Démo"
    );
    assert_eq!(
        serde_json::to_value(&drafts[0].identifier).unwrap(),
        "sf-0035g00000AbCdEAAV"
    );
    // French local numbers took the row's Mailing Country.
    assert_eq!(
        serde_json::to_value(&drafts[0].phone_number).unwrap(),
        "+33611223344"
    );
}
