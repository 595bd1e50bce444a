//! `mapping init`'s guesswork: recognise the usual CRM header names (HubSpot, Salesforce report and
//! Data Loader, Pipedrive, Zoho, Chatwoot, plain spreadsheets) and a sample of values, and write a
//! commented mapping YAML that `validate` accepts as is. Pure functions over headers and rows, so
//! the command (`cmd::mapping`) only reads the file and writes the result.
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::normalise::Region;

/// What a column was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Email,
    Mobile,
    Phone,
    FirstName,
    LastName,
    FullName,
    Company,
    City,
    Country,
    RecordId,
}

/// Known header names per role, normalised (see [`norm`]), most preferred first.
const ALIASES: &[(Role, &[&str])] = &[
    (
        Role::Email,
        &[
            "email",
            "emailaddress",
            "mail",
            "primaryemail",
            "emailwork",
            "workemail",
            "businessemail",
            "email1",
            "emailhome",
            "personalemail",
            "homeemail",
            "emailother",
            "otheremail",
            "secondaryemail",
            "email2",
        ],
    ),
    (
        Role::Mobile,
        &[
            "mobilephonenumber",
            "mobilephone",
            "mobile",
            "mobilenumber",
            "phonemobile",
            "cellphone",
            "cell",
            "cellular",
            "handy",
            "whatsapp",
        ],
    ),
    (
        Role::Phone,
        &[
            "phonenumber",
            "phone",
            "telephone",
            "telephonenumber",
            "tel",
            "primaryphone",
            "phonework",
            "workphone",
            "businessphone",
            "officephone",
            "phonehome",
            "homephone",
            "phoneother",
            "otherphone",
            "phone1",
            "phone2",
        ],
    ),
    (
        Role::FirstName,
        &["firstname", "givenname", "first", "forename", "fname"],
    ),
    (
        Role::LastName,
        &["lastname", "surname", "familyname", "last", "lname"],
    ),
    (
        Role::FullName,
        &[
            "name",
            "fullname",
            "contactname",
            "displayname",
            "personname",
        ],
    ),
    (
        Role::Company,
        &[
            "companyname",
            "company",
            "accountname",
            "organization",
            "organisation",
            "organizationname",
            "organisationname",
            "org",
            "account",
            "employer",
        ],
    ),
    (
        Role::City,
        &[
            "city",
            "mailingcity",
            "town",
            "addresscity",
            "postaladdresscity",
            "locality",
            "othercity",
        ],
    ),
    (
        Role::Country,
        &[
            "countryregion",
            "country",
            "mailingcountry",
            "countrycode",
            "addresscountry",
            "postaladdresscountry",
            "countryname",
            "othercountry",
        ],
    ),
    (
        Role::RecordId,
        &[
            "recordid",
            "contactid",
            "id",
            "personid",
            "customerid",
            "contactrecordid",
            "externalid",
        ],
    ),
];

/// A header reduced to lowercase letters and digits: `Country/Region`, `country_region` and
/// `COUNTRY REGION` are one name.
pub fn norm(h: &str) -> String {
    h.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The header without an entity prefix (`Person - Email` → `Email`, `Contact.Email`, `Account.Name`
/// → `Name` is not wanted, so only person/contact prefixes go).
/// Any dash counts as the prefix's `-` (`Person – Email` with an en dash is Pipedrive's too).
fn strip_entity(h: &str) -> &str {
    let t = h.trim();
    for p in ["person - ", "person.", "contact - ", "contact."] {
        if let Some(rest) = strip_prefix_folded(t, p).filter(|r| !r.is_empty()) {
            return rest.trim();
        }
    }
    t
}

/// `t` without `prefix`, compared character by character, ASCII case-insensitively, any dash
/// matching `-`. Never slices inside a character, whatever `t` holds.
fn strip_prefix_folded<'t>(t: &'t str, prefix: &str) -> Option<&'t str> {
    let mut chars = t.chars();
    for want in prefix.chars() {
        let c = chars.next()?;
        let dash = want == '-' && matches!(c, '‐' | '‑' | '‒' | '–' | '—' | '―' | '−');
        if !c.eq_ignore_ascii_case(&want) && !dash {
            return None;
        }
    }
    Some(chars.as_str())
}

/// The role a header is known as, with its preference rank (lower is better), if any.
pub fn recognise(header: &str) -> Option<(Role, usize)> {
    let full = norm(header);
    let bare = norm(strip_entity(header));
    for cand in [&full, &bare] {
        for (role, names) in ALIASES {
            if let Some(rank) = names.iter().position(|n| n == cand) {
                return Some((*role, rank));
            }
        }
    }
    None
}

/// An attribute key for a header: snake_case ASCII, entity prefix dropped (`Person - Label` →
/// `label`, `Lifecycle Stage` → `lifecycle_stage`).
pub fn snake_key(header: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in strip_entity(header).chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && prev_lower {
                out.push('_');
            }
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c.to_ascii_lowercase());
        } else {
            prev_lower = false;
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
        }
    }
    let out = out.trim_end_matches('_').to_string();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("column_{out}").trim_end_matches('_').to_string()
    } else {
        out
    }
}

/// The identifier prefix, from the headers' style (and the id values, for Zoho's `zcrm_`).
pub fn guess_prefix(headers: &[String], id_values: &[&str]) -> (&'static str, &'static str) {
    let has = |n: &str| headers.iter().any(|h| norm(h) == n);
    if id_values.iter().any(|v| v.starts_with("zcrm_")) || headers.iter().any(|h| h == "Record Id")
    {
        return ("zoho-", "Zoho CRM (zcrm_ record ids / \"Record Id\")");
    }
    if headers
        .iter()
        .filter(|h| h.trim().to_ascii_lowercase().starts_with("person - "))
        .count()
        >= 2
    {
        return ("pipedrive-", "Pipedrive (\"Person - \" columns)");
    }
    if headers.iter().any(|h| h == "phone_number")
        && (has("customattributes") || has("additionalattributes"))
    {
        return ("chatwoot-", "Chatwoot (its export's column names)");
    }
    if headers.iter().any(|h| h == "Record ID")
        && (has("countryregion") || has("lifecyclestage") || has("contactowner"))
    {
        return ("hubspot-", "HubSpot (\"Record ID\", \"Country/Region\")");
    }
    if (has("contactid") || headers.iter().any(|h| h == "Id"))
        && headers.iter().any(|h| {
            let n = norm(h);
            n.starts_with("mailing") || n.starts_with("account")
        })
    {
        return (
            "sf-",
            "Salesforce (\"Contact ID\"/\"Id\" with Mailing/Account columns)",
        );
    }
    ("import-", "no known CRM layout")
}

/// A cell that looks like an email address.
fn looks_like_email(v: &str) -> bool {
    let v = v.trim();
    match v.split_once('@') {
        Some((a, b)) => !a.is_empty() && b.contains('.') && !v.contains(' '),
        None => false,
    }
}

/// The decisions `init` made, for the mapping's comments and stderr.
#[derive(Debug, Default)]
pub struct Draft {
    /// The mapping YAML, comments included.
    pub yaml: String,
    /// One line per decision.
    pub decided: Vec<String>,
    /// One line per thing it could not decide.
    pub undecided: Vec<String>,
    /// Columns per role, as chosen (the best first).
    pub roles: HashMap<Role, Vec<String>>,
}

/// A YAML double-quoted scalar. Characters YAML does not allow in a document (C0 and C1
/// controls, DEL, U+FEFF, U+FFFE/U+FFFF) are escaped, so any header text reads back as itself.
fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ' '..='~' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FEFE}' => out.push(c),
            '\u{FF00}'..='\u{FFFD}' | '\u{10000}'.. => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// A template placeholder for a column: braces in the name doubled would not round-trip, so they
/// are rare enough to be left as they are.
fn ph(col: &str) -> String {
    format!("{{{}}}", col.trim())
}

/// Draft a mapping from a file's headers and a sample of its rows (fields in header order).
/// `file` is only used in the comments. Fails when no column can serve as a match key.
pub fn draft(file: &str, headers: &[String], rows: &[Vec<String>]) -> anyhow::Result<Draft> {
    let mut d = Draft::default();
    let col = |i: usize| -> Vec<&str> {
        rows.iter()
            .filter_map(|r| r.get(i).map(String::as_str))
            .filter(|v| !v.trim().is_empty())
            .collect()
    };
    // Best column per role: lowest alias rank, then leftmost. Headers starting with `_` (a
    // failures.csv fed back) are never mapped.
    let mut by_role: HashMap<Role, Vec<(usize, usize)>> = HashMap::new();
    let mut used = vec![false; headers.len()];
    for (i, h) in headers.iter().enumerate() {
        if h.trim().is_empty() || h.starts_with('_') {
            used[i] = true;
            continue;
        }
        if let Some((role, rank)) = recognise(h) {
            by_role.entry(role).or_default().push((rank, i));
        }
    }
    for v in by_role.values_mut() {
        v.sort();
    }
    // Email by the data when no header says so: the column whose values are mostly addresses.
    if let Entry::Vacant(slot) = by_role.entry(Role::Email) {
        let best = (0..headers.len())
            .filter(|&i| !used[i] && recognise(&headers[i]).is_none())
            .map(|i| {
                let v = col(i);
                let hits = v.iter().filter(|x| looks_like_email(x)).count();
                (hits * 2 > v.len() && hits > 0, hits, i)
            })
            .filter(|x| x.0)
            .max_by_key(|x| x.1);
        if let Some((_, _, i)) = best {
            slot.insert(vec![(0, i)]);
            d.decided.push(format!(
                "email: column {} (its values are email addresses)",
                q(&headers[i])
            ));
        }
    }
    let pick = |role: Role| -> Vec<usize> {
        by_role
            .get(&role)
            .map(|v| v.iter().map(|x| x.1).collect())
            .unwrap_or_default()
    };
    let name_of = |i: usize| headers[i].trim().to_string();

    let emails = pick(Role::Email);
    let mut phones = pick(Role::Mobile);
    phones.extend(pick(Role::Phone));
    let firsts = pick(Role::FirstName);
    let lasts = pick(Role::LastName);
    let fulls = pick(Role::FullName);
    let ids = pick(Role::RecordId);
    let company = pick(Role::Company).first().copied();
    let city = pick(Role::City).first().copied();
    let country = pick(Role::Country).first().copied();

    let mut fields: Vec<String> = Vec::new();

    // name
    let name_line = if let Some(&f) = fulls.first() {
        used[f] = true;
        let mut from = vec![q(&name_of(f))];
        if let Some(&e) = emails.first() {
            from.push(q(&name_of(e)));
        }
        d.decided.push(format!(
            "name: column {} (the email when it is blank)",
            q(&name_of(f))
        ));
        format!("  name: {{ from: [{}] }}", from.join(", "))
    } else if !firsts.is_empty() || !lasts.is_empty() {
        let parts: Vec<String> = firsts
            .first()
            .into_iter()
            .chain(lasts.first())
            .map(|&i| {
                used[i] = true;
                ph(&name_of(i))
            })
            .collect();
        let t = parts.join(" ");
        d.decided.push(format!("name: template {}", q(&t)));
        format!("  name: {{ template: {} }}", q(&t))
    } else if let Some(&e) = emails.first() {
        d.undecided.push(format!(
            "name: no name column; the email ({}) stands in for it",
            q(&name_of(e))
        ));
        format!("  name: {}  # no name column found", q(&name_of(e)))
    } else if let Some(&i) = ids.first() {
        d.undecided.push(format!(
            "name: no name or email column; the record id ({}) stands in for it",
            q(&name_of(i))
        ));
        format!("  name: {}  # no name column found", q(&name_of(i)))
    } else {
        anyhow::bail!(
            "{file}: no column looks like a name, an email or a record id (headers: {}); \
             write the mapping by hand (docs/mapping.md)",
            headers.join(", ")
        );
    };
    fields.push(name_line);
    d.roles.insert(
        Role::FullName,
        fulls.first().map(|&i| vec![name_of(i)]).unwrap_or_default(),
    );
    d.roles.insert(
        Role::FirstName,
        firsts
            .first()
            .map(|&i| vec![name_of(i)])
            .unwrap_or_default(),
    );
    d.roles.insert(
        Role::LastName,
        lasts.first().map(|&i| vec![name_of(i)]).unwrap_or_default(),
    );

    // email: the best, others as fallbacks
    if !emails.is_empty() {
        for &i in &emails {
            used[i] = true;
        }
        let list: Vec<String> = emails.iter().map(|&i| name_of(i)).collect();
        d.decided.push(format!(
            "email: {}",
            list.iter().map(|s| q(s)).collect::<Vec<_>>().join(" then ")
        ));
        fields.push(if list.len() == 1 {
            format!("  email: {}", q(&list[0]))
        } else {
            format!(
                "  email: {{ from: [{}] }}",
                list.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
            )
        });
        d.roles.insert(Role::Email, list);
    } else {
        d.undecided.push("email: no email column found".into());
    }

    // phone: mobiles first, then the others; region from the country column
    let mut region_note = String::new();
    let mut default_region: Option<&'static str> = None;
    if let Some(c) = country {
        let mut counts: HashMap<&'static str, usize> = HashMap::new();
        let mut unknown = 0;
        for v in col(c) {
            match Region::parse(v) {
                Some(r) => *counts.entry(r.as_str()).or_default() += 1,
                None => unknown += 1,
            }
        }
        let mut best: Vec<(&'static str, usize)> = counts.into_iter().collect();
        best.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        match best.first() {
            Some(&(code, n)) if best.get(1).is_none_or(|s| s.1 < n) => {
                default_region = Some(code);
                d.decided.push(format!(
                    "default phone region: {code}, the most common value of {} ({n} rows)",
                    q(&name_of(c))
                ));
            }
            Some(_) => d.undecided.push(format!(
                "default phone region: no single most common country in {}; set defaults.phone_region for rows without one",
                q(&name_of(c))
            )),
            None => d.undecided.push(format!(
                "default phone region: no value of {} is a country I know",
                q(&name_of(c))
            )),
        }
        if unknown > 0 {
            region_note = format!(
                " ({unknown} sampled values of {} are not countries I know)",
                q(&name_of(c))
            );
        }
    }
    if !phones.is_empty() {
        for &i in &phones {
            used[i] = true;
        }
        let list: Vec<String> = phones.iter().map(|&i| name_of(i)).collect();
        let from = if list.len() == 1 {
            q(&list[0])
        } else {
            format!(
                "[{}]",
                list.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
            )
        };
        let region = country
            .map(|c| format!(", region_from: {}", q(&name_of(c))))
            .unwrap_or_default();
        d.decided.push(format!(
            "phone_number: {}{}",
            list.iter().map(|s| q(s)).collect::<Vec<_>>().join(" then "),
            country
                .map(|c| format!(", region from {}{region_note}", q(&name_of(c))))
                .unwrap_or_default()
        ));
        if country.is_none() {
            // Without a country column only +country code numbers are safe.
            let local = phones
                .iter()
                .flat_map(|&i| col(i))
                .filter(|v| !v.trim_start().starts_with('+') && !v.trim_start().starts_with("00"))
                .count();
            if local > 0 {
                d.undecided.push(format!(
                    "phone region: no country column and {local} sampled numbers have no +country code; set defaults.phone_region"
                ));
            } else {
                d.decided.push(
                    "phone region: none needed, every sampled number has its +country code".into(),
                );
            }
        }
        fields.push(format!("  phone_number: {{ from: {from}{region} }}"));
        d.roles.insert(Role::Phone, list);
    } else {
        d.undecided
            .push("phone_number: no phone column found".into());
    }

    // identifier
    let mut keys = Vec::new();
    if let Some(&i) = ids.first() {
        used[i] = true;
        let (prefix, why) = guess_prefix(headers, &col(i));
        d.decided.push(format!(
            "identifier: {} with prefix {} ({why})",
            q(&name_of(i)),
            q(prefix)
        ));
        fields.push(format!(
            "  identifier: {{ from: {}, prefix: {} }}",
            q(&name_of(i)),
            q(prefix)
        ));
        keys.push("identifier");
        d.roles.insert(Role::RecordId, vec![name_of(i)]);
    } else {
        d.undecided
            .push("identifier: no record id column; contacts are matched by email only".into());
    }
    if !emails.is_empty() {
        keys.push("email");
    }
    if keys.is_empty() {
        anyhow::bail!(
            "{file}: no email and no record id column, so rows could not be matched to contacts \
             (headers: {}); write the mapping by hand (docs/mapping.md)",
            headers.join(", ")
        );
    }

    // additional attributes: company, city, country
    let mut additional = Vec::new();
    for (key, c) in [
        ("company_name", company),
        ("city", city),
        ("country", country),
    ] {
        if let Some(i) = c {
            used[i] = true;
            additional.push(format!("  {key}: {}", q(&name_of(i))));
            d.decided
                .push(format!("additional_attributes.{key}: {}", q(&name_of(i))));
        }
    }
    // everything else: custom attributes, as text
    let mut custom = Vec::new();
    let mut keys_seen: Vec<String> = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if used[i] {
            continue;
        }
        let mut k = snake_key(h);
        if keys_seen.contains(&k) {
            let base = k.clone();
            let mut n = 2;
            while keys_seen.contains(&k) {
                k = format!("{base}_{n}");
                n += 1;
            }
        }
        keys_seen.push(k.clone());
        // Ruby hash text (Chatwoot's attribute columns): spread its keys, into the attribute map
        // the column is named after.
        let vals = col(i);
        if !vals.is_empty()
            && vals
                .iter()
                .all(|v| super::ruby_hash::parse(v).is_ok_and(|x| x.is_object()))
        {
            let line = format!("  {k}: {{ from: {}, type: ruby_hash }}", q(h.trim()));
            d.decided.push(format!(
                "{}: Ruby hash text, its keys spread into the attributes",
                q(h.trim())
            ));
            if norm(h) == "additionalattributes" {
                additional.push(line);
            } else {
                custom.push(line);
            }
            continue;
        }
        custom.push(format!("  {k}: {}", q(h.trim())));
    }
    if !custom.is_empty() {
        d.decided.push(format!(
            "custom_attributes: the {} other columns, as text",
            custom.len()
        ));
    }
    let skipped: Vec<&String> = headers
        .iter()
        .filter(|h| h.trim().is_empty() || h.starts_with('_'))
        .collect();
    if !skipped.is_empty() {
        d.undecided.push(format!(
            "{} blank or `_`-prefixed columns left out",
            skipped.len()
        ));
    }

    // The YAML.
    let mut y = String::new();
    y.push_str(&format!(
        "# Drafted by `doto-bulk mapping init` from {file} ({} columns, {} rows sampled).\n",
        headers.len(),
        rows.len()
    ));
    y.push_str("# Check it, then: doto-bulk validate FILE -m THIS_FILE (reference: docs/mapping.md)\n#\n# Decided:\n");
    for l in &d.decided {
        y.push_str(&format!("#   - {l}\n"));
    }
    if d.undecided.is_empty() {
        y.push_str("# Could not decide: nothing.\n");
    } else {
        y.push_str("# Could not decide (check these):\n");
        for l in &d.undecided {
            y.push_str(&format!("#   - {l}\n"));
        }
    }
    y.push_str("version: 1\n");
    match default_region {
        Some(r) => y.push_str(&format!(
            "defaults:\n  phone_region: {r}  # for numbers without +country code and no country in the row\n"
        )),
        None => y.push_str("# defaults:\n#   phone_region: US  # no default region: set one if numbers lack +country code\n"),
    }
    y.push_str(&format!(
        "match:\n  on: [{}]  # record id first: it survives an email change\n  existing: update\n  missing: create\n  blank: keep\n",
        keys.join(", ")
    ));
    y.push_str("fields:\n");
    for f in &fields {
        y.push_str(f);
        y.push('\n');
    }
    if !custom.is_empty() {
        y.push_str("# every other column, as a text attribute (add `type:` for numbers, dates, bools)\ncustom_attributes:\n");
        for c in &custom {
            y.push_str(c);
            y.push('\n');
        }
    }
    if !additional.is_empty() {
        y.push_str("additional_attributes:\n");
        for c in &additional {
            y.push_str(c);
            y.push('\n');
        }
    }
    d.yaml = y;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn recognises_crm_headers_whatever_their_case_and_punctuation() {
        let cases = [
            ("Email", Role::Email),
            ("E-mail", Role::Email),
            ("email_address", Role::Email),
            ("Person - Email", Role::Email),
            ("Person - Email - Work", Role::Email),
            ("Mobile Phone Number", Role::Mobile),
            ("MobilePhone", Role::Mobile),
            ("Person - Phone - Mobile", Role::Mobile),
            ("phone_number", Role::Phone),
            ("Phone Number", Role::Phone),
            ("First Name", Role::FirstName),
            ("FirstName", Role::FirstName),
            ("first_name", Role::FirstName),
            ("Last Name", Role::LastName),
            ("Person - Name", Role::FullName),
            ("name", Role::FullName),
            ("Account Name", Role::Company),
            ("Person - Organization", Role::Company),
            ("Company Name", Role::Company),
            ("Mailing City", Role::City),
            ("Country/Region", Role::Country),
            ("Mailing Country", Role::Country),
            ("Person - Postal address - Country", Role::Country),
            ("Record ID", Role::RecordId),
            ("Record Id", Role::RecordId),
            ("Contact ID", Role::RecordId),
            ("Id", Role::RecordId),
            ("Person - ID", Role::RecordId),
        ];
        for (header, role) in cases {
            assert_eq!(recognise(header).map(|r| r.0), Some(role), "{header}");
        }
        for other in [
            "Lifecycle Stage",
            "Lead Source",
            "Title",
            "custom_attributes",
            "Notes",
        ] {
            assert_eq!(recognise(other), None, "{other}");
        }
    }

    #[test]
    fn mobile_is_preferred_and_other_phones_are_fallbacks() {
        let hs = h(&["Email", "Phone Number", "Mobile Phone Number", "Name"]);
        let d = draft("f.csv", &hs, &[]).unwrap();
        assert_eq!(
            d.roles[&Role::Phone],
            vec!["Mobile Phone Number", "Phone Number"]
        );
        assert!(
            d.yaml
                .contains(r#"phone_number: { from: ["Mobile Phone Number", "Phone Number"] }"#),
            "{}",
            d.yaml
        );
    }

    #[test]
    fn snake_keys_drop_entity_prefixes_and_punctuation() {
        assert_eq!(snake_key("Lifecycle Stage"), "lifecycle_stage");
        assert_eq!(snake_key("Person - Label"), "label");
        assert_eq!(snake_key("LeadSource"), "lead_source");
        assert_eq!(snake_key("  Plan (tier) "), "plan_tier");
        assert_eq!(snake_key("2023"), "column_2023");
        assert_eq!(snake_key("%%"), "column");
    }

    #[test]
    fn prefix_follows_the_header_style() {
        let p = |hs: &[&str], ids: &[&str]| guess_prefix(&h(hs), ids).0;
        assert_eq!(p(&["Record ID", "Country/Region"], &[]), "hubspot-");
        assert_eq!(p(&["Record Id", "Mailing City"], &["zcrm_1"]), "zoho-");
        assert_eq!(p(&["Contact ID", "Mailing City"], &[]), "sf-");
        assert_eq!(p(&["Id", "AccountId", "Email"], &[]), "sf-");
        assert_eq!(p(&["Person - ID", "Person - Name"], &[]), "pipedrive-");
        assert_eq!(
            p(&["id", "phone_number", "custom_attributes"], &[]),
            "chatwoot-"
        );
        assert_eq!(p(&["ID", "Email"], &[]), "import-");
    }

    #[test]
    fn default_region_is_the_most_common_country_or_undecided() {
        let hs = h(&["Name", "Email", "Phone", "Country"]);
        let row = |c: &str| vec!["A".into(), "a@x.io".into(), "0123".into(), c.to_string()];
        let d = draft("f.csv", &hs, &[row("France"), row("FR"), row("Germany")]).unwrap();
        assert!(d.yaml.contains("phone_region: FR"), "{}", d.yaml);
        let d = draft("f.csv", &hs, &[row("France"), row("Germany")]).unwrap();
        assert!(!d.yaml.contains("\n  phone_region:"), "{}", d.yaml);
        assert!(d.undecided.iter().any(|u| u.contains("phone region")));
    }

    #[test]
    fn email_found_by_its_values_when_the_header_is_unknown() {
        let hs = h(&["Full Name", "Contact", "Notes"]);
        let rows = vec![
            vec!["Ann".into(), "ann@example.com".into(), "x".into()],
            vec!["Bob".into(), "bob@example.com".into(), "y@".into()],
        ];
        let d = draft("f.csv", &hs, &rows).unwrap();
        assert_eq!(d.roles[&Role::Email], vec!["Contact"]);
        assert!(d.yaml.contains("  notes: \"Notes\""), "{}", d.yaml);
    }

    #[test]
    fn ruby_hash_columns_are_spread() {
        let hs = h(&[
            "name",
            "email",
            "custom_attributes",
            "additional_attributes",
            "x",
        ]);
        let rows = vec![vec![
            "Ann".into(),
            "a@x.io".into(),
            r#"{"plan"=>"pro"}"#.into(),
            "{}".into(),
            "{not}".into(),
        ]];
        let d = draft("f.csv", &hs, &rows).unwrap();
        let y = &d.yaml;
        assert!(
            y.contains(r#"custom_attributes: { from: "custom_attributes", type: ruby_hash }"#),
            "{y}"
        );
        let add = y.split("additional_attributes:\n").nth(1).unwrap();
        assert!(add.contains("type: ruby_hash"), "{y}");
        assert!(y.contains(r#"  x: "x""#), "{y}");
    }

    #[test]
    fn refuses_a_file_with_nothing_to_match_on() {
        let err = draft("f.csv", &h(&["Colour", "Size"]), &[]).unwrap_err();
        assert!(err.to_string().contains("f.csv"), "{err}");
    }
}
