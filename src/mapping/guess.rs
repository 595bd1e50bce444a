//! `mapping init`'s guesswork: recognise the usual CRM header names (HubSpot, Salesforce report and
//! Data Loader, Pipedrive, Zoho, Chatwoot, plain spreadsheets) and a sample of values, and write a
//! commented mapping YAML that `validate` accepts as is. Pure functions over headers and rows, so
//! the command (`cmd::mapping`) only reads the file and writes the result.
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::normalise::Region;
use crate::words::{agree, count};

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
    draft_with_region(file, headers, rows, None)
}

/// [`draft`], with the default phone region given (`--phone-region`): it becomes
/// `defaults.phone_region` instead of being guessed from a country column.
pub fn draft_with_region(
    file: &str,
    headers: &[String],
    rows: &[Vec<String>],
    region: Option<Region>,
) -> anyhow::Result<Draft> {
    let mut g = Drafter {
        file,
        headers,
        rows,
        used: headers
            .iter()
            .map(|h| h.trim().is_empty() || h.starts_with('_'))
            .collect(),
        d: Draft::default(),
    };
    let p = g.pick_columns();
    let mut fields = vec![g.name_line(&p)?];
    fields.extend(g.email_line(&p.emails));
    let (default_region, region_note) = match region {
        Some(r) => {
            let r = r.as_str();
            g.d.decided
                .push(format!("default phone region: {r} (--phone-region)"));
            (Some(r), String::new())
        }
        None => g.default_region(p.country),
    };
    fields.extend(g.phone_line(&p.phones, p.country, &region_note));
    if region.is_some() {
        g.d.undecided.retain(|u| !u.starts_with("phone region:"));
    }
    fields.extend(g.identifier_line(p.ids.first().copied()));
    let keys = g.match_keys(&p);
    if keys.is_empty() {
        anyhow::bail!(
            "{file}: no email and no record id column, so rows could not be matched to contacts \
             (headers: {}); write the mapping by hand (docs/mapping.md)",
            headers.join(", ")
        );
    }
    let (custom, additional) = g.attributes(&p);
    let mut d = g.d;
    d.yaml = render_yaml(
        &d,
        file,
        (headers.len(), rows.len()),
        default_region,
        &keys,
        [&fields, &custom, &additional],
    );
    Ok(d)
}

/// The columns chosen per role, best first.
struct Picks {
    emails: Vec<usize>,
    /// Mobiles first, then the other phones.
    phones: Vec<usize>,
    firsts: Vec<usize>,
    lasts: Vec<usize>,
    fulls: Vec<usize>,
    ids: Vec<usize>,
    company: Option<usize>,
    city: Option<usize>,
    country: Option<usize>,
}

/// The state of one draft: which columns are taken, and the decisions so far.
struct Drafter<'a> {
    file: &'a str,
    headers: &'a [String],
    rows: &'a [Vec<String>],
    /// Columns mapped already, or never to be mapped (blank or `_` headers).
    used: Vec<bool>,
    d: Draft,
}

impl<'a> Drafter<'a> {
    /// The non-blank sampled values of column `i`.
    fn col(&self, i: usize) -> Vec<&'a str> {
        self.rows
            .iter()
            .filter_map(|r| r.get(i).map(String::as_str))
            .filter(|v| !v.trim().is_empty())
            .collect()
    }

    fn name_of(&self, i: usize) -> String {
        self.headers[i].trim().to_string()
    }

    fn names(&self, cols: &[usize]) -> Vec<String> {
        cols.iter().map(|&i| self.name_of(i)).collect()
    }

    fn take(&mut self, cols: &[usize]) {
        for &i in cols {
            self.used[i] = true;
        }
    }

    /// Best column per role: lowest alias rank, then leftmost; the email column by its values
    /// when no header says so.
    fn pick_columns(&mut self) -> Picks {
        let mut by_role: HashMap<Role, Vec<(usize, usize)>> = HashMap::new();
        for (i, h) in self.headers.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            if let Some((role, rank)) = recognise(h) {
                by_role.entry(role).or_default().push((rank, i));
            }
        }
        for v in by_role.values_mut() {
            v.sort();
        }
        if let Entry::Vacant(slot) = by_role.entry(Role::Email)
            && let Some(i) = self.email_by_values()
        {
            slot.insert(vec![(0, i)]);
        }
        let pick = |role: Role| -> Vec<usize> {
            by_role
                .get(&role)
                .map(|v| v.iter().map(|x| x.1).collect())
                .unwrap_or_default()
        };
        let mut phones = pick(Role::Mobile);
        phones.extend(pick(Role::Phone));
        Picks {
            emails: pick(Role::Email),
            phones,
            firsts: pick(Role::FirstName),
            lasts: pick(Role::LastName),
            fulls: pick(Role::FullName),
            ids: pick(Role::RecordId),
            company: pick(Role::Company).first().copied(),
            city: pick(Role::City).first().copied(),
            country: pick(Role::Country).first().copied(),
        }
    }

    /// The unrecognised column whose sampled values are mostly email addresses, if any.
    fn email_by_values(&mut self) -> Option<usize> {
        let (_, _, i) = (0..self.headers.len())
            .filter(|&i| !self.used[i] && recognise(&self.headers[i]).is_none())
            .map(|i| {
                let v = self.col(i);
                let hits = v.iter().filter(|x| looks_like_email(x)).count();
                (hits * 2 > v.len() && hits > 0, hits, i)
            })
            .filter(|x| x.0)
            .max_by_key(|x| x.1)?;
        self.d.decided.push(format!(
            "email: column {} (its values are email addresses)",
            q(&self.headers[i])
        ));
        Some(i)
    }

    /// `name:` from a full-name column, a first/last template, or what stands in for it.
    fn name_line(&mut self, p: &Picks) -> anyhow::Result<String> {
        let line = if let Some(&f) = p.fulls.first() {
            self.used[f] = true;
            let mut from = vec![q(&self.name_of(f))];
            if let Some(&e) = p.emails.first() {
                from.push(q(&self.name_of(e)));
            }
            self.d.decided.push(format!(
                "name: column {} (the email when it is blank)",
                q(&self.name_of(f))
            ));
            format!("  name: {{ from: [{}] }}", from.join(", "))
        } else if !p.firsts.is_empty() || !p.lasts.is_empty() {
            let parts: Vec<usize> = p
                .firsts
                .first()
                .into_iter()
                .chain(p.lasts.first())
                .copied()
                .collect();
            self.take(&parts);
            let t = parts
                .iter()
                .map(|&i| ph(&self.name_of(i)))
                .collect::<Vec<_>>()
                .join(" ");
            self.d.decided.push(format!("name: template {}", q(&t)));
            format!("  name: {{ template: {} }}", q(&t))
        } else if let Some((i, lacks, what)) = (p.emails.first())
            .map(|&i| (i, "no name column", "the email"))
            .or_else(|| (p.ids.first()).map(|&i| (i, "no name or email column", "the record id")))
        {
            let name = q(&self.name_of(i));
            self.d
                .undecided
                .push(format!("name: {lacks}; {what} ({name}) stands in for it"));
            format!("  name: {name}  # no name column found")
        } else {
            anyhow::bail!(
                "{}: no column looks like a name, an email or a record id (headers: {}); \
                 write the mapping by hand (docs/mapping.md)",
                self.file,
                self.headers.join(", ")
            );
        };
        let first = |v: &[usize]| {
            v.first()
                .map(|&i| vec![self.name_of(i)])
                .unwrap_or_default()
        };
        let roles = [
            (Role::FullName, first(&p.fulls)),
            (Role::FirstName, first(&p.firsts)),
            (Role::LastName, first(&p.lasts)),
        ];
        self.d.roles.extend(roles);
        Ok(line)
    }

    /// `email:`: the best column, the others as fallbacks.
    fn email_line(&mut self, emails: &[usize]) -> Option<String> {
        if emails.is_empty() {
            self.d.undecided.push("email: no email column found".into());
            return None;
        }
        self.take(emails);
        let list = self.names(emails);
        let quoted: Vec<String> = list.iter().map(|s| q(s)).collect();
        self.d
            .decided
            .push(format!("email: {}", quoted.join(" then ")));
        let line = if list.len() == 1 {
            format!("  email: {}", quoted[0])
        } else {
            format!("  email: {{ from: [{}] }}", quoted.join(", "))
        };
        self.d.roles.insert(Role::Email, list);
        Some(line)
    }

    /// The default phone region: the most common country of the country column, when one is;
    /// and a note on the sampled values that are not countries.
    fn default_region(&mut self, country: Option<usize>) -> (Option<&'static str>, String) {
        let Some(c) = country else {
            return (None, String::new());
        };
        let mut counts: HashMap<&'static str, usize> = HashMap::new();
        let mut unknown = 0;
        for v in self.col(c) {
            match Region::parse(v) {
                Some(r) => *counts.entry(r.as_str()).or_default() += 1,
                None => unknown += 1,
            }
        }
        let mut best: Vec<(&'static str, usize)> = counts.into_iter().collect();
        best.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let name = q(&self.name_of(c));
        let mut region = None;
        match best.first() {
            Some(&(code, n)) if best.get(1).is_none_or(|s| s.1 < n) => {
                region = Some(code);
                self.d.decided.push(format!(
                    "default phone region: {code}, the most common value of {name} ({})",
                    count(n as u64, "row")
                ));
            }
            Some(_) => self.d.undecided.push(format!(
                "default phone region: no single most common country in {name}; set defaults.phone_region for rows without one"
            )),
            None => self.d.undecided.push(format!(
                "default phone region: no value of {name} is a known country"
            )),
        }
        let note = if unknown > 0 {
            format!(
                " ({} of {name} {})",
                count(unknown as u64, "sampled value"),
                agree(
                    unknown as u64,
                    "is not a known country",
                    "are not known countries"
                )
            )
        } else {
            String::new()
        };
        (region, note)
    }

    /// `phone_number:`: mobiles first, then the others; the region from the country column.
    fn phone_line(
        &mut self,
        phones: &[usize],
        country: Option<usize>,
        region_note: &str,
    ) -> Option<String> {
        if phones.is_empty() {
            self.d
                .undecided
                .push("phone_number: no phone column found".into());
            return None;
        }
        self.take(phones);
        let list = self.names(phones);
        let quoted: Vec<String> = list.iter().map(|s| q(s)).collect();
        let from = if list.len() == 1 {
            quoted[0].clone()
        } else {
            format!("[{}]", quoted.join(", "))
        };
        let country_name = country.map(|c| q(&self.name_of(c)));
        let region = country_name
            .as_ref()
            .map(|c| format!(", region_from: {c}"))
            .unwrap_or_default();
        self.d.decided.push(format!(
            "phone_number: {}{}",
            quoted.join(" then "),
            country_name
                .as_ref()
                .map(|c| format!(", region from {c}{region_note}"))
                .unwrap_or_default()
        ));
        if country.is_none() {
            self.region_without_country(phones);
        }
        self.d.roles.insert(Role::Phone, list);
        Some(format!("  phone_number: {{ from: {from}{region} }}"))
    }

    /// Without a country column only +country code numbers are safe: say whether all are.
    fn region_without_country(&mut self, phones: &[usize]) {
        let local = phones
            .iter()
            .flat_map(|&i| self.col(i))
            .filter(|v| !v.trim_start().starts_with('+') && !v.trim_start().starts_with("00"))
            .count();
        if local > 0 {
            self.d.undecided.push(format!(
                "phone region: no country column and {local} sampled numbers have no +country code; set defaults.phone_region"
            ));
        } else {
            self.d.decided.push(
                "phone region: none needed, every sampled number has its +country code".into(),
            );
        }
    }

    /// `identifier:` from the record id column, with a prefix guessed from the layout.
    fn identifier_line(&mut self, id: Option<usize>) -> Option<String> {
        let Some(i) = id else {
            self.d
                .undecided
                .push("identifier: no record id column; contacts are matched by email only".into());
            return None;
        };
        self.used[i] = true;
        let name = self.name_of(i);
        let (prefix, why) = guess_prefix(self.headers, &self.col(i));
        self.d.decided.push(format!(
            "identifier: {} with prefix {} ({why})",
            q(&name),
            q(prefix)
        ));
        self.d.roles.insert(Role::RecordId, vec![name.clone()]);
        Some(format!(
            "  identifier: {{ from: {}, prefix: {} }}",
            q(&name),
            q(prefix)
        ))
    }

    /// `match.on`: the record id first (it survives an email change), then the email.
    fn match_keys(&self, p: &Picks) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if !p.ids.is_empty() {
            keys.push("identifier");
        }
        if !p.emails.is_empty() {
            keys.push("email");
        }
        keys
    }

    /// `custom_attributes` and `additional_attributes`: company, city and country, then every
    /// other column as text (a Ruby hash column spread into its keys).
    fn attributes(&mut self, p: &Picks) -> (Vec<String>, Vec<String>) {
        let mut additional = Vec::new();
        for (key, c) in [
            ("company_name", p.company),
            ("city", p.city),
            ("country", p.country),
        ] {
            if let Some(i) = c {
                self.used[i] = true;
                additional.push(format!("  {key}: {}", q(&self.name_of(i))));
                self.d.decided.push(format!(
                    "additional_attributes.{key}: {}",
                    q(&self.name_of(i))
                ));
            }
        }
        let mut custom = Vec::new();
        let mut keys_seen: Vec<String> = Vec::new();
        for (i, h) in self.headers.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let k = unique_key(snake_key(h), &mut keys_seen);
            let vals = self.col(i);
            let spread = !vals.is_empty()
                && vals
                    .iter()
                    .all(|v| super::ruby_hash::parse(v).is_ok_and(|x| x.is_object()));
            if !spread {
                custom.push(format!("  {k}: {}", q(h.trim())));
                continue;
            }
            // Ruby hash text (Chatwoot's attribute columns): spread its keys, into the
            // attribute map the column is named after.
            let line = format!("  {k}: {{ from: {}, type: ruby_hash }}", q(h.trim()));
            self.d.decided.push(format!(
                "{}: Ruby hash text, its keys spread into the attributes",
                q(h.trim())
            ));
            if norm(h) == "additionalattributes" {
                additional.push(line);
            } else {
                custom.push(line);
            }
        }
        if !custom.is_empty() {
            self.d.decided.push(format!(
                "custom_attributes: the {}, as text",
                count(custom.len() as u64, "other column")
            ));
        }
        let skipped = self
            .headers
            .iter()
            .filter(|h| h.trim().is_empty() || h.starts_with('_'))
            .count();
        if skipped > 0 {
            self.d
                .undecided
                .push(format!("{skipped} blank or `_`-prefixed columns left out"));
        }
        (custom, additional)
    }
}

/// `k`, or `k_2`, `k_3`… if an earlier column took it; remembered in `seen`.
fn unique_key(k: String, seen: &mut Vec<String>) -> String {
    let mut key = k.clone();
    let mut n = 2;
    while seen.contains(&key) {
        key = format!("{k}_{n}");
        n += 1;
    }
    seen.push(key.clone());
    key
}

/// The mapping YAML: the decisions as comments, then the sections. `size` is (columns, rows
/// sampled); `lines` holds the `fields`, `custom_attributes` and `additional_attributes` lines.
fn render_yaml(
    d: &Draft,
    file: &str,
    size: (usize, usize),
    default_region: Option<&str>,
    keys: &[&str],
    lines: [&[String]; 3],
) -> String {
    let mut y = String::new();
    y.push_str(&format!(
        "# Drafted by `doto-bulk mapping init` from {file} ({}, {} sampled).\n",
        count(size.0 as u64, "column"),
        count(size.1 as u64, "row")
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
    let [fields, custom, additional] = lines;
    let sections = [
        ("fields:\n", fields),
        (
            "# every other column, as a text attribute (add `type:` for numbers, dates, bools)\ncustom_attributes:\n",
            custom,
        ),
        ("additional_attributes:\n", additional),
    ];
    for (i, (head, body)) in sections.into_iter().enumerate() {
        if i > 0 && body.is_empty() {
            continue;
        }
        y.push_str(head);
        for l in body {
            y.push_str(l);
            y.push('\n');
        }
    }
    y
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
