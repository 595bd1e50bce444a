//! `mapping init`'s guesswork: recognise the usual CRM header names (HubSpot, Salesforce report and
//! Data Loader, Pipedrive, Zoho, Chatwoot, Google, Outlook in English, German, French and
//! Spanish, Mailchimp, Brevo, Zendesk, LinkedIn, plain spreadsheets) and a sample of values, and write a
//! commented mapping YAML that `validate` accepts as is. It maps what it recognises (and the
//! columns asked for with `--include`), lists every other column as a commented-out line, never
//! enables a column that looks sensitive, and decides the phone region or says it cannot (a
//! placeholder the loader refuses). Pure functions over headers and rows, so the command
//! (`cmd::mapping`) only reads the file and writes the result.
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::normalise::Region;
use crate::source::column_names;
use crate::words::count;

mod layout;
mod sensitive;

pub use layout::Layout;
pub use sensitive::sensitive;

/// The `defaults.phone_region` a draft holds when it could not decide the region: the loader
/// refuses it with [`ASK_REGION`].
pub const UNDECIDED_REGION: &str = "UNDECIDED";

/// The one sentence `mapping init` prints, and the loader repeats, when the region is undecided.
pub const ASK_REGION: &str = "the phone region is undecided: some phone numbers have no \
     +country code and neither a country or state in their row nor one country their email \
     domains agree on, so give --phone-region CC (an ISO code such as GB) to validate and import, \
     or run `doto-bulk mapping init` again with it, or replace UNDECIDED in \
     defaults.phone_region with the country of those numbers";

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
    /// A state or province (gives the phone region when there is no country column).
    State,
    RecordId,
    JobTitle,
    Notes,
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
            // Google Contacts (`E-mail 1 - Value`) and Outlook (`E-mail 2 Address`).
            "email1value",
            "email2value",
            "email3value",
            "email4value",
            "email2address",
            "email3address",
            // Outlook in German, French, Spanish.
            "emailadresse",
            "email2adresse",
            "email3adresse",
            "adressedemessagerie",
            "adressedemessagerie2",
            "adressedemessagerie3",
            "direccióndecorreoelectrónico",
            "direccióndecorreoelectrónico2",
            "direccióndelcorreoelectrónico3",
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
            // Brevo; Outlook in German, French, Spanish.
            "sms",
            "whatsapp",
            "mobiltelefon",
            "télmobile",
            "téléphonemobile",
            "téléphoneportable",
            "teléfonomóvil",
            "móvil",
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
            // Google Contacts (`Phone 1 - Value`) and Outlook.
            "phone1value",
            "phone2value",
            "phone3value",
            "businessphone2",
            "homephone2",
            "companymainphone",
            // Brevo; Outlook in German, French, Spanish.
            "landlinenumber",
            "haupttelefon",
            "telefongeschäftlich",
            "telefonprivat",
            "telefonfirma",
            "weiterestelefon",
            "téléphoneprincipal",
            "téléphonebureau",
            "téléphonedomicile",
            "téléphoneautre",
            "téléphonesociété",
            "teléfonoprincipal",
            "teléfonodeltrabajo",
            "otroteléfono",
            // Spanish Outlook's home phone.
            "particular",
        ],
    ),
    (
        Role::FirstName,
        &[
            "firstname",
            "givenname",
            "first",
            "forename",
            "fname",
            "vorname",
            "prénom",
            "nombre",
        ],
    ),
    (
        Role::LastName,
        &[
            "lastname",
            "surname",
            "familyname",
            "last",
            "lname",
            "nachname",
            "nom",
            "apellidos",
        ],
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
            "associatedcompany",
            "org",
            "account",
            "employer",
            "organization1name",
            "firma",
            "société",
            "organización",
            "empresa",
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
            "address1city",
            "businesscity",
            "homecity",
            "othercity",
            "ortgeschäftlich",
            "ortprivat",
            "villebureau",
            "villedomicile",
            "ciudaddetrabajo",
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
            "address1country",
            "businesscountryregion",
            "businesscountry",
            "homecountryregion",
            "homecountry",
            "othercountryregion",
            "othercountry",
            "landregiongeschäftlich",
            "landregionprivat",
            "paysrégionbureau",
            "paysbureau",
            "paysrégiondomicile",
            "paysdomicile",
            "paísoregióndeltrabajo",
            "paísoregióndeldomicilio",
        ],
    ),
    (
        Role::State,
        &[
            "state",
            "mailingstate",
            "mailingstateprovince",
            "stateprovince",
            "province",
            "stateregion",
            "addressstate",
            "address1region",
            "businessstate",
            "homestate",
            "otherstate",
            "regiongeschäftlich",
            "bundeslandkantonprivat",
            "déprégionbureau",
            "provinciaoestadodetrabajo",
        ],
    ),
    (
        Role::RecordId,
        &[
            "recordid",
            "contactid",
            "id",
            "personid",
            "identifier",
            "customerid",
            "contactrecordid",
            "externalid",
        ],
    ),
    (
        Role::JobTitle,
        &[
            "jobtitle",
            // Outlook in Spanish (its honorific keeps the English "Title").
            "puesto",
            "title",
            "position",
            "jobposition",
            "role",
            "organizationtitle",
            "organization1title",
        ],
    ),
    (
        Role::Notes,
        &[
            "notes",
            "note",
            "description",
            "comments",
            "comment",
            "notizen",
            "notas",
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

/// Whether a header row names a contact's columns (an email, a name or a record id): a line of
/// preamble above the real header does not.
pub fn names_a_contact(headers: &[String]) -> bool {
    use Role::*;
    headers.iter().any(|h| {
        recognise(h)
            .is_some_and(|(r, _)| matches!(r, Email | FirstName | LastName | FullName | RecordId))
    })
}

/// An attribute key for a header: snake_case ASCII, entity prefix dropped (`Person - Label` →
/// `label`, `Lifecycle Stage` → `lifecycle_stage`).
pub fn snake_key(header: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in strip_entity(header).chars().flat_map(fold_latin) {
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

/// An accented Latin letter as its ASCII letters (`é` → `e`, `ß` → `ss`), for attribute keys of
/// French, German or Spanish headers (`Téléphone (voiture)` → `telephone_voiture`); any other
/// character as it is.
fn fold_latin(c: char) -> impl Iterator<Item = char> {
    let s: &str = match c.to_lowercase().next().unwrap_or(c) {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
        'æ' => "ae",
        'ç' => "c",
        'è' | 'é' | 'ê' | 'ë' => "e",
        'ì' | 'í' | 'î' | 'ï' => "i",
        'ñ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => "o",
        'œ' => "oe",
        'ß' => "ss",
        'ù' | 'ú' | 'û' | 'ü' => "u",
        'ý' | 'ÿ' => "y",
        _ => "",
    };
    let upper = c.is_uppercase();
    let mut out: Vec<char> = s.chars().collect();
    if out.is_empty() {
        out.push(c);
    } else if upper {
        out.iter_mut().for_each(|x| *x = x.to_ascii_uppercase());
    }
    out.into_iter()
}

/// The identifier prefix and why, from the layout (see [`Layout`]).
pub fn guess_prefix(headers: &[String], id_values: &[&str]) -> (&'static str, &'static str) {
    let l = layout::detect(headers, id_values);
    (l.prefix, l.name)
}

/// A cell that looks like an email address.
fn looks_like_email(v: &str) -> bool {
    let v = v.trim();
    match v.split_once('@') {
        Some((a, b)) => !a.is_empty() && b.contains('.') && !v.contains(' '),
        None => false,
    }
}

/// A phone cell written without `+country code` (nor `00`): it needs a region.
fn is_local_number(v: &str) -> bool {
    let t = v.trim_start();
    !t.is_empty() && !t.starts_with('+') && !t.starts_with("00")
}

/// The decisions `init` made, for the mapping's comments and stderr.
#[derive(Debug, Default)]
pub struct Draft {
    /// The mapping YAML, comments included.
    pub yaml: String,
    /// The export layout it took the file for (see [`Layout`]).
    pub layout: String,
    /// One line per decision.
    pub decided: Vec<String>,
    /// One line per thing it could not decide.
    pub undecided: Vec<String>,
    /// Things the user must know (sensitive columns left out or enabled on request).
    pub warnings: Vec<String>,
    /// The phone region is undecided: the draft holds [`UNDECIDED_REGION`].
    pub region_undecided: bool,
    /// Columns per role, as chosen (the best first).
    pub roles: HashMap<Role, Vec<String>>,
}

/// What the user asked of the draft.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// `--phone-region`: becomes `defaults.phone_region`.
    pub region: Option<Region>,
    /// `--include COL`: columns to import as text attributes although not recognised (`*`: every
    /// column that does not look sensitive; a sensitive one only when named exactly).
    pub include: Vec<String>,
}

/// More commented-out lines than this under an empty section get it written `{}`.
const MANY_COMMENTS: usize = 40;

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

/// A template placeholder for a column.
fn ph(col: &str) -> String {
    format!("{{{}}}", col.trim())
}

/// Draft a mapping from a file's headers and a sample of its rows (fields in header order).
/// `file` is only used in the comments. Fails when no column can serve as a match key.
pub fn draft(file: &str, headers: &[String], rows: &[Vec<String>]) -> anyhow::Result<Draft> {
    draft_with(file, headers, rows, &Options::default())
}

/// [`draft`] with the user's [`Options`].
pub fn draft_with(
    file: &str,
    headers: &[String],
    rows: &[Vec<String>],
    opts: &Options,
) -> anyhow::Result<Draft> {
    draft_at(file, (headers, None), rows, opts)
}

/// [`draft_with`] for a header found below a preamble: `header.1` is its line (LinkedIn's
/// `Connections.csv` has a `Notes:` paragraph above it), said in the draft's decisions.
pub fn draft_at(
    file: &str,
    header: (&[String], Option<u64>),
    rows: &[Vec<String>],
    opts: &Options,
) -> anyhow::Result<Draft> {
    let (headers, header_line) = header;
    let mut g = Drafter {
        file,
        headers,
        names: column_names(headers),
        rows,
        used: headers
            .iter()
            .map(|h| h.trim().is_empty() || crate::source::detect::is_report_column(h))
            .collect(),
        d: Draft::default(),
        split_always: false,
    };
    if let Some(l) = header_line {
        g.d.decided.push(format!(
            "header: line {l}; the {} line(s) above it are not data (validate and import skip them too)",
            l - 1
        ));
    }
    let include = g.included(&opts.include)?;
    let mut p = g.pick_columns();
    let id_values = p.ids.first().map(|&i| g.col(i)).unwrap_or_default();
    let layout = layout::detect(headers, &id_values);
    if layout.prefix == "linkedin-" && p.ids.is_empty() {
        // A connection's profile URL is its one stable id (most connections share no email).
        p.ids.extend(headers.iter().position(|h| h.trim() == "URL"));
    }
    if layout.prefix == "zendesk-" {
        // Zendesk's `role` is end-user, agent or admin: not a job title.
        p.title = p.title.filter(|&i| norm(&headers[i]) != "role");
    }
    g.d.layout = layout.name.to_string();
    // Google writes `a ::: b` wherever a contact has two values of one label: rows past the
    // sample may have them even when the sampled ones do not.
    g.split_always = layout.prefix == "google-";
    let mut fields = vec![g.name_line(&p)?];
    fields.extend(g.email_line(&p.emails));
    let region = g.region(&p, opts.region, layout.international);
    // Every country column (business, then home), in the order the roles rank them.
    let region_cols = match region.from {
        Some(c) if p.country == Some(c) => p.countries.clone(),
        from => from.into_iter().collect(),
    };
    fields.extend(g.phone_line(&p.phones, &region_cols, layout.international));
    fields.extend(g.identifier_line(p.ids.first().copied(), &layout));
    let keys = g.match_keys(&p, &layout);
    if keys.is_empty() {
        anyhow::bail!(
            "{file}: no email and no record id column, so rows could not be matched to contacts \
             (headers: {}); write the mapping by hand (docs/mapping.md)",
            headers.join(", ")
        );
    }
    let sections = g.attributes(&p, &include);
    let mut d = g.d;
    d.region_undecided = region.default == RegionDefault::Ask;
    d.yaml = render_yaml(
        &d,
        file,
        (headers.len(), rows.len()),
        &region.default,
        &keys,
        [&fields, &sections.custom, &sections.additional],
        &sections,
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
    /// Every country column, best first (`country` is the first).
    countries: Vec<usize>,
    state: Option<usize>,
    title: Option<usize>,
    notes: Option<usize>,
}

/// The default phone region of the draft.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RegionDefault {
    /// A region, and where it came from.
    Set(&'static str, String),
    /// None needed (no phone column, or every sampled local number has its row's country).
    Unneeded,
    /// Needed and undecided: [`UNDECIDED_REGION`] is written.
    Ask,
}

/// The phone region decision: the column each row's region comes from, and the default.
struct RegionPlan {
    from: Option<usize>,
    default: RegionDefault,
}

/// The draft's attribute sections, notes and commented-out columns.
#[derive(Default)]
struct Sections {
    custom: Vec<String>,
    additional: Vec<String>,
    notes: Vec<String>,
    /// `#   key: "Column"` lines: columns not imported, ready to enable.
    off: Vec<String>,
}

/// The state of one draft: which columns are taken, and the decisions so far.
struct Drafter<'a> {
    file: &'a str,
    headers: &'a [String],
    /// How the mapping names each column (`email#2` for a repeated header).
    names: Vec<String>,
    rows: &'a [Vec<String>],
    /// Columns mapped already, or never to be mapped (blank or `_` headers).
    used: Vec<bool>,
    d: Draft,
    /// Read every email, phone and name fallback column with `split: ":::"` (a Google export).
    split_always: bool,
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
        self.names[i].clone()
    }

    fn names(&self, cols: &[usize]) -> Vec<String> {
        cols.iter().map(|&i| self.name_of(i)).collect()
    }

    fn take(&mut self, cols: &[usize]) {
        for &i in cols {
            self.used[i] = true;
        }
    }

    /// The columns `--include` names (`*`: every one that does not look sensitive). A sensitive
    /// column is only included when named exactly; a name that is no column is an error.
    fn included(&mut self, asked: &[String]) -> anyhow::Result<Vec<bool>> {
        let mut inc = vec![false; self.headers.len()];
        for a in asked {
            let a = a.trim();
            let mut found = false;
            for (i, h) in self.headers.iter().enumerate() {
                let exact = h.trim() == a || self.names[i] == a;
                let risky = sensitive(h).is_some();
                let loose = a == "*" || (!a.is_empty() && norm(h) == norm(a));
                if exact || (loose && !risky) {
                    inc[i] = true;
                    found = true;
                } else if loose && risky {
                    found |= a != "*";
                }
            }
            if !found {
                anyhow::bail!(
                    "--include {}: {} has no such column (its columns: {})",
                    q(a),
                    self.file,
                    self.headers.join(", ")
                );
            }
        }
        Ok(inc)
    }

    /// Best column per role: lowest alias rank, then leftmost; the email column by its values
    /// when no header says so. Columns that look sensitive are never given a role.
    fn pick_columns(&mut self) -> Picks {
        let mut by_role: HashMap<Role, Vec<(usize, usize)>> = HashMap::new();
        for (i, h) in self.headers.iter().enumerate() {
            if self.used[i] || sensitive(h).is_some() {
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
        let one = |role: Role| pick(role).first().copied();
        let mut phones = pick(Role::Mobile);
        phones.extend(pick(Role::Phone));
        Picks {
            emails: pick(Role::Email),
            phones,
            firsts: pick(Role::FirstName),
            lasts: pick(Role::LastName),
            fulls: pick(Role::FullName),
            ids: pick(Role::RecordId),
            company: one(Role::Company),
            city: one(Role::City),
            country: one(Role::Country),
            countries: pick(Role::Country),
            state: one(Role::State),
            title: one(Role::JobTitle),
            notes: one(Role::Notes),
        }
    }

    /// The unrecognised column whose sampled values are mostly email addresses, if any.
    fn email_by_values(&mut self) -> Option<usize> {
        let (_, _, i) = (0..self.headers.len())
            .filter(|&i| {
                let h = &self.headers[i];
                !self.used[i] && recognise(h).is_none() && sensitive(h).is_none()
            })
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

    /// `name:` from a first/last template or a full-name column, with the full name and then the
    /// email as fallbacks (an email-only row still gets a name), or what stands in for it.
    fn name_line(&mut self, p: &Picks) -> anyhow::Result<String> {
        let parts: Vec<usize> = (p.firsts.first().into_iter())
            .chain(p.lasts.first())
            .copied()
            .filter(|&i| !self.names[i].contains(['{', '}']))
            .collect();
        let fallback: Vec<usize> = (p.fulls.first().into_iter())
            .chain(&p.emails)
            .copied()
            .collect();
        let line = if !parts.is_empty() {
            self.take(&parts);
            self.take(&p.fulls[..p.fulls.len().min(1)]);
            self.template_name(&parts, &fallback)
        } else if let Some(&f) = p.fulls.first() {
            self.used[f] = true;
            let from: Vec<String> = fallback.iter().map(|&i| q(&self.name_of(i))).collect();
            self.d.decided.push(format!(
                "name: column {} (the email when it is blank)",
                q(&self.name_of(f))
            ));
            let split = self.split_opt(&fallback);
            format!("  name: {{ from: [{}]{split} }}", from.join(", "))
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
        let first = |v: &[usize]| -> Vec<String> {
            v.first().map(|&i| self.name_of(i)).into_iter().collect()
        };
        let roles = [
            (Role::FullName, first(&p.fulls)),
            (Role::FirstName, first(&p.firsts)),
            (Role::LastName, first(&p.lasts)),
        ];
        self.d.roles.extend(roles);
        Ok(line)
    }

    /// `name:` as a template of the first/last name columns `parts`, then the `or` columns
    /// (the full name, the emails) when the template is blank.
    fn template_name(&mut self, parts: &[usize], or_cols: &[usize]) -> String {
        let t = (parts.iter().map(|&i| ph(&self.name_of(i))))
            .collect::<Vec<_>>()
            .join(" ");
        let or: Vec<String> = or_cols.iter().map(|&i| q(&self.name_of(i))).collect();
        if or.is_empty() {
            self.d.decided.push(format!("name: template {}", q(&t)));
            return format!("  name: {{ template: {} }}", q(&t));
        }
        self.d.decided.push(format!(
            "name: template {}, then {} when it is blank",
            q(&t),
            or.join(" then ")
        ));
        let split = self.split_opt(or_cols);
        format!(
            "  name: {{ template: {}, from: [{}]{split} }}",
            q(&t),
            or.join(", ")
        )
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
        let split = self.split_opt(emails);
        let line = match (list.len(), split) {
            (1, "") => format!("  email: {}", quoted[0]),
            (1, _) => format!("  email: {{ from: {}{split} }}", quoted[0]),
            _ => format!("  email: {{ from: [{}]{split} }}", quoted.join(", ")),
        };
        self.d.roles.insert(Role::Email, list);
        Some(line)
    }

    /// The phone region, in order: `--phone-region`; each row's country column (else its state or
    /// province column) with the most common of its values as default; the country the email
    /// domains name when one names more than half of the sampled addresses; else undecided when
    /// a sampled number needs a region.
    /// `international`: the layout writes every number with its country code (a `+` or not), so
    /// none needs a region.
    fn region(&mut self, p: &Picks, given: Option<Region>, international: bool) -> RegionPlan {
        let from = if p.phones.is_empty() || international {
            None
        } else {
            p.country.or(p.state)
        };
        let default = match given {
            Some(r) => RegionDefault::Set(r.as_str(), "--phone-region".into()),
            None if p.phones.is_empty() || international => RegionDefault::Unneeded,
            None => self
                .common_row_region(from)
                .or_else(|| self.email_region(&p.emails))
                .unwrap_or_else(|| self.region_needed(&p.phones, from)),
        };
        match &default {
            RegionDefault::Set(r, why) => self
                .d
                .decided
                .push(format!("default phone region: {r} ({why})")),
            RegionDefault::Ask => self.d.undecided.push(format!("phone region: {ASK_REGION}")),
            // A tie in the country column does not matter when no row needs the default.
            RegionDefault::Unneeded => {
                (self.d.undecided).retain(|u| !u.starts_with("default phone region:"))
            }
        }
        RegionPlan { from, default }
    }

    /// The region most rows of column `c` give, when one is more common than any other.
    fn common_row_region(&mut self, c: Option<usize>) -> Option<RegionDefault> {
        let c = c?;
        let header = self.headers[c].clone();
        let mut counts: HashMap<&'static str, usize> = HashMap::new();
        for v in self.col(c) {
            if let Some(r) = Region::from_row(&header, v) {
                *counts.entry(r.region.as_str()).or_default() += 1;
            }
        }
        let name = q(&self.name_of(c));
        match dominant(counts) {
            Some((code, n, _)) => Some(RegionDefault::Set(
                code,
                format!(
                    "the most common value of {name}, {}",
                    count(n as u64, "sampled row")
                ),
            )),
            None => {
                self.d.undecided.push(format!(
                    "default phone region: no single most common country in {name}"
                ));
                None
            }
        }
    }

    /// The country the sampled email addresses' domains name, when one names more than half.
    fn email_region(&self, emails: &[usize]) -> Option<RegionDefault> {
        let mut counts: HashMap<&'static str, usize> = HashMap::new();
        let mut total = 0;
        for v in emails.iter().flat_map(|&i| self.col(i)) {
            total += 1;
            if let Some(r) = Region::of_email(v.trim()) {
                *counts.entry(r.as_str()).or_default() += 1;
            }
        }
        let (code, n, _) = dominant(counts)?;
        (n * 2 > total).then(|| {
            RegionDefault::Set(
                code,
                format!(
                    "the country domain of {n} of {}",
                    count(total as u64, "sampled email address")
                ),
            )
        })
    }

    /// Undecided when a sampled number without +country code has no region in its row; else
    /// none is needed.
    fn region_needed(&mut self, phones: &[usize], from: Option<usize>) -> RegionDefault {
        let header = from.map(|c| self.headers[c].clone()).unwrap_or_default();
        let lacking = (self.rows.iter())
            .filter(|r| {
                let local = phones
                    .iter()
                    .any(|&i| r.get(i).is_some_and(|v| is_local_number(v)));
                let region = from
                    .and_then(|c| r.get(c))
                    .and_then(|v| Region::from_row(&header, v));
                local && region.is_none()
            })
            .count();
        if lacking > 0 {
            RegionDefault::Ask
        } else {
            self.d.decided.push(
                "phone region: no default needed, every sampled number has its +country code or its row's country"
                    .into(),
            );
            RegionDefault::Unneeded
        }
    }

    /// `phone_number:`: mobiles first, then the others; each row's region from `region_from`.
    /// `international`: digits without `+` are read as country code and number.
    fn phone_line(
        &mut self,
        phones: &[usize],
        region_from: &[usize],
        international: bool,
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
        let region_names: Vec<String> = region_from.iter().map(|&c| q(&self.name_of(c))).collect();
        let region_name = match region_names.len() {
            0 => None,
            1 => Some(region_names[0].clone()),
            _ => Some(format!("[{}]", region_names.join(", "))),
        };
        let region = (region_name.as_ref())
            .map(|c| format!(", region_from: {c}"))
            .unwrap_or_default();
        self.d.decided.push(format!(
            "phone_number: {}{}",
            quoted.join(" then "),
            (region_name.as_ref())
                .map(|c| format!(", each row's region from {c}"))
                .unwrap_or_default()
        ));
        self.d.roles.insert(Role::Phone, list);
        let split = self.split_opt(phones);
        let intl = if international {
            self.d.decided.push(
                "phone_number: international: true (the export writes each number's country code without a +, as 33612345678)".into(),
            );
            ", international: true"
        } else {
            ""
        };
        Some(format!(
            "  phone_number: {{ from: {from}{region}{split}{intl} }}"
        ))
    }

    /// `identifier:` from the record id column, with the layout's prefix (none for a column
    /// named `identifier` in a file of no known CRM: it is the identifier already).
    fn identifier_line(&mut self, id: Option<usize>, layout: &Layout) -> Option<String> {
        let Some(i) = id else {
            self.d
                .undecided
                .push("identifier: no record id column; contacts are matched by email only".into());
            return None;
        };
        self.used[i] = true;
        let name = self.name_of(i);
        self.d.roles.insert(Role::RecordId, vec![name.clone()]);
        if *layout == layout::PLAIN && norm(&self.headers[i]) == "identifier" {
            self.d
                .decided
                .push(format!("identifier: {} as it is", q(&name)));
            return Some(format!("  identifier: {}", q(&name)));
        }
        self.d.decided.push(format!(
            "identifier: {} with prefix {} ({})",
            q(&name),
            q(layout.prefix),
            layout.name
        ));
        Some(format!(
            "  identifier: {{ from: {}, prefix: {} }}",
            q(&name),
            q(layout.prefix)
        ))
    }

    /// `match.on`: the record id first (it survives an email change), then the email.
    /// An address book's (Google, Outlook) phone too, when it has no record id: many of its
    /// contacts have a phone alone.
    fn match_keys(&mut self, p: &Picks, layout: &Layout) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if !p.ids.is_empty() {
            keys.push("identifier");
        }
        if !p.emails.is_empty() {
            keys.push("email");
        }
        if layout.phone_key && p.ids.is_empty() && !p.phones.is_empty() {
            keys.push("phone_number");
            for u in &mut self.d.undecided {
                *u = u.replace("by email only", "by email, then phone");
            }
            self.d.decided.push(format!(
                "match.on: phone_number too ({} has no record id; a contact with a phone alone is matched by it)",
                layout.name
            ));
        }
        keys
    }

    /// `, split: ":::"` when a sampled cell of `cols` holds several values the Google way
    /// (`a@x.com ::: b@y.com`), or the file is a Google export, so that each value is read on
    /// its own; else nothing.
    fn split_opt(&mut self, cols: &[usize]) -> &'static str {
        let multi: Vec<usize> = (cols.iter().copied())
            .filter(|&i| self.split_always || self.col(i).iter().any(|v| v.contains(" ::: ")))
            .collect();
        if multi.is_empty() {
            return "";
        }
        let names: Vec<String> = multi.iter().map(|&i| q(&self.name_of(i))).collect();
        let line = format!(
            "split: \":::\" for {} (a cell with several values holds \"a ::: b\": the first usable one is taken)",
            names.join(", ")
        );
        if !self.d.decided.contains(&line) {
            self.d.decided.push(line);
        }
        ", split: \":::\""
    }

    /// The attribute sections: company, city and country; the job title; Ruby hash columns
    /// spread into their keys; a notes column as a note; the `--include` columns as text; every
    /// other column commented out (one that looks sensitive named in a warning).
    fn attributes(&mut self, p: &Picks, include: &[bool]) -> Sections {
        let mut s = Sections::default();
        let mut keys_seen: Vec<String> = Vec::new();
        for (key, c, custom) in [
            ("company_name", p.company, false),
            ("city", p.city, false),
            ("country", p.country, false),
            ("job_title", p.title, true),
        ] {
            if let Some(i) = c {
                self.used[i] = true;
                let list = if custom {
                    &mut s.custom
                } else {
                    &mut s.additional
                };
                list.push(format!("  {key}: {}", q(&self.name_of(i))));
                keys_seen.push(key.to_string());
                let section = if custom { "custom" } else { "additional" };
                self.d.decided.push(format!(
                    "{section}_attributes.{key}: {}",
                    q(&self.name_of(i))
                ));
            }
        }
        if let Some(i) = p.notes {
            self.used[i] = true;
            s.notes.push(format!("  - {}", q(&self.name_of(i))));
            self.d
                .decided
                .push(format!("notes: {} as a note", q(&self.name_of(i))));
        }
        let mut risky = Vec::new();
        for (i, &included) in include.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let k = unique_key(snake_key(&self.headers[i]), &mut keys_seen);
            let what = sensitive(&self.headers[i]);
            if let Some(what) = what.filter(|_| !included) {
                risky.push(format!("{} ({what})", q(&self.name_of(i))));
            }
            self.other_column(i, &k, included, what, &mut s);
        }
        self.summarise(&s, &risky);
        s
    }

    /// Column `i`, not recognised: spread (Ruby hash text), imported (`--include`), or listed
    /// commented out.
    fn other_column(
        &mut self,
        i: usize,
        k: &str,
        included: bool,
        risky: Option<&str>,
        s: &mut Sections,
    ) {
        let name = q(&self.name_of(i));
        let vals = self.col(i);
        let spread = risky.is_none()
            && !vals.is_empty()
            && vals
                .iter()
                .all(|v| super::ruby_hash::parse(v).is_ok_and(|x| x.is_object()));
        if spread {
            // Ruby hash text (Chatwoot's attribute columns): spread its keys, into the
            // attribute map the column is named after.
            let line = format!("  {k}: {{ from: {name}, type: ruby_hash }}");
            self.d.decided.push(format!(
                "{name}: Ruby hash text, its keys spread into the attributes"
            ));
            if norm(&self.headers[i]) == "additionalattributes" {
                s.additional.push(line);
            } else {
                s.custom.push(line);
            }
        } else if included {
            s.custom.push(format!("  {k}: {name}  # --include"));
            if let Some(what) = risky {
                self.d.warnings.push(format!(
                    "{name} looks like a {what} and is imported because --include named it"
                ));
            }
        } else {
            let why = risky.map_or(String::new(), |w| {
                format!("  # looks like a {w}: never enabled by init")
            });
            s.off.push(format!("#  {k}: {name}{why}"));
        }
    }

    /// The decisions and warnings about the other columns.
    fn summarise(&mut self, s: &Sections, risky: &[String]) {
        if !s.off.is_empty() {
            self.d.decided.push(format!(
                "{} not imported: listed commented out under custom_attributes (remove the # to import one, or rerun with --include COLUMN)",
                count(s.off.len() as u64, "other column")
            ));
        }
        if !risky.is_empty() {
            self.d.warnings.push(format!(
                "columns that look sensitive are not imported: {} (to import one anyway, name it exactly with --include)",
                risky.join(", ")
            ));
        }
        let skipped = self
            .headers
            .iter()
            .filter(|h| h.trim().is_empty() || crate::source::detect::is_report_column(h))
            .count();
        if skipped > 0 {
            self.d
                .undecided
                .push(format!("{skipped} blank or `_`-prefixed columns left out"));
        }
    }
}

/// The most common key of `counts` with its count and the total, when no other is as common.
fn dominant(counts: HashMap<&'static str, usize>) -> Option<(&'static str, usize, usize)> {
    let total = counts.values().sum();
    let mut best: Vec<(&'static str, usize)> = counts.into_iter().collect();
    best.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    match best[..] {
        [(code, n), ..] if best.get(1).is_none_or(|s| s.1 < n) => Some((code, n, total)),
        _ => None,
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

/// The draft's header comment: the layout, the decisions, what it could not decide, the warnings.
fn render_comments(d: &Draft, file: &str, size: (usize, usize)) -> String {
    let mut y = format!(
        "# Drafted by `doto-bulk mapping init` from {file} ({} columns, {} rows sampled).\n# Layout: {}\n",
        size.0, size.1, d.layout
    );
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
    for w in &d.warnings {
        y.push_str(&format!("# Warning: {w}\n"));
    }
    y
}

/// The mapping YAML: the decisions as comments, then the sections. `size` is (columns, rows
/// sampled); `lines` holds the `fields`, `custom_attributes` and `additional_attributes` lines.
fn render_yaml(
    d: &Draft,
    file: &str,
    size: (usize, usize),
    region: &RegionDefault,
    keys: &[&str],
    lines: [&[String]; 3],
    s: &Sections,
) -> String {
    let mut y = render_comments(d, file, size);
    y.push_str("version: 1\n");
    match region {
        RegionDefault::Set(r, _) => y.push_str(&format!(
            "defaults:\n  phone_region: {r}  # for numbers without +country code and no country in the row\n"
        )),
        RegionDefault::Ask => y.push_str(&format!(
            "defaults:\n  # {ASK_REGION}\n  phone_region: {UNDECIDED_REGION}\n"
        )),
        RegionDefault::Unneeded => y.push_str(
            "# defaults:\n#   phone_region: US  # no default region: set one if numbers lack +country code\n",
        ),
    }
    y.push_str(&format!(
        "match:\n  on: [{}]  # record id first: it survives an email change\n  existing: update\n  missing: create\n  blank: keep\n",
        keys.join(", ")
    ));
    let [fields, custom, additional] = lines;
    let off_head = "  # not imported: remove the # of a line to import that column as text\n";
    let sections: [(&str, &[String], &[String]); 4] = [
        ("fields:\n", fields, &[]),
        ("custom_attributes:\n", custom, &s.off),
        ("additional_attributes:\n", additional, &[]),
        ("notes:\n", &s.notes, &[]),
    ];
    for (i, (head, body, off)) in sections.into_iter().enumerate() {
        if i > 0 && body.is_empty() && off.is_empty() {
            continue;
        }
        if body.is_empty() && off.len() > MANY_COMMENTS {
            // An empty section with many commented-out lines under it: `{}` gives it its value
            // (the YAML parser, looking ahead through the comments for it, gives up after 64).
            y.push_str(head.trim_end());
            y.push_str(" {}  # none imported: to import a column below, delete this {} and the # of its line\n");
        } else {
            y.push_str(head);
        }
        for l in body {
            y.push_str(l);
            y.push('\n');
        }
        if !off.is_empty() {
            y.push_str(off_head);
            for l in off {
                y.push_str(l);
                y.push('\n');
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Mapping;

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
            ("identifier", Role::RecordId),
            ("Title", Role::JobTitle),
            ("Person - Job title", Role::JobTitle),
            ("Person - Notes", Role::Notes),
            ("Mailing State", Role::State),
            ("Mailing State/Province", Role::State),
            ("Associated Company", Role::Company),
        ];
        for (header, role) in cases {
            assert_eq!(recognise(header).map(|r| r.0), Some(role), "{header}");
        }
        for other in ["Lifecycle Stage", "Lead Source", "custom_attributes", "Fax"] {
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
        // A tie, but every row has its country: no default needed.
        let d = draft("f.csv", &hs, &[row("France"), row("Germany")]).unwrap();
        assert!(!d.yaml.contains("\n  phone_region:"), "{}", d.yaml);
        assert!(
            !d.undecided.iter().any(|u| u.contains("region")),
            "{:?}",
            d.undecided
        );
        // A tie and a row without a country: undecided, the placeholder written.
        let d = draft("f.csv", &hs, &[row("France"), row("Germany"), row("")]).unwrap();
        assert!(
            d.yaml.contains("\n  phone_region: UNDECIDED\n"),
            "{}",
            d.yaml
        );
        assert!(
            d.undecided
                .iter()
                .any(|u| u.contains("no single most common"))
        );
        assert!(d.undecided.iter().any(|u| u.contains(ASK_REGION)));
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
        assert!(d.yaml.contains("notes:\n  - \"Notes\""), "{}", d.yaml);
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

    #[test]
    fn a_preamble_line_names_no_contact_and_a_header_does() {
        assert!(!names_a_contact(&h(&["Notes:"])));
        assert!(!names_a_contact(&h(&[
            "When exporting your connection data, you may notice that some of the email addresses are missing."
        ])));
        assert!(names_a_contact(&h(&["First Name", "Last Name", "URL"])));
        assert!(names_a_contact(&h(&["EMAIL", "SMS"])));
        assert!(!names_a_contact(&h(&["Phone", "City"])));
    }

    #[test]
    fn keys_of_accented_headers_keep_their_letters() {
        assert_eq!(snake_key("Téléphone (voiture)"), "telephone_voiture");
        assert_eq!(snake_key("Straße geschäftlich"), "strasse_geschaftlich");
        assert_eq!(
            snake_key("Código postal del trabajo"),
            "codigo_postal_del_trabajo"
        );
        assert_eq!(snake_key("Æble"), "aeble");
        // Letters without an ASCII form still make a word break, as before.
        assert_eq!(snake_key("Имя"), "column");
    }

    #[test]
    fn brevo_numbers_are_drafted_international_and_need_no_region() {
        let hs = h(&["CONTACT ID", "EMAIL", "FIRSTNAME", "LASTNAME", "SMS"]);
        let rows = vec![h(&["1", "a@example.fr", "Ann", "Lee", "33612345678"])];
        let d = draft("b.csv", &hs, &rows).unwrap();
        assert!(
            d.yaml
                .contains(r#"phone_number: { from: "SMS", international: true }"#),
            "{}",
            d.yaml
        );
        assert!(!d.region_undecided, "{}", d.yaml);
        assert!(
            d.yaml
                .contains(r#"identifier: { from: "CONTACT ID", prefix: "brevo-" }"#)
        );
        Mapping::parse(&d.yaml, "d.yaml").unwrap();
    }

    #[test]
    fn an_empty_section_with_many_commented_out_columns_still_loads() {
        let mut names = vec!["Name".to_string(), "Email".to_string()];
        names.extend((0..70).map(|i| format!("Extra {i}")));
        let d = draft("f.csv", &names, &[]).unwrap();
        assert!(d.yaml.contains("custom_attributes: {}"), "{}", d.yaml);
        Mapping::parse(&d.yaml, "d.yaml").unwrap();
        // A few stay ready to enable by removing their #.
        let few = draft("f.csv", &h(&["Name", "Email", "Shoe Size"]), &[]).unwrap();
        assert!(few.yaml.contains("custom_attributes:\n"), "{}", few.yaml);
    }
}
