//! The in-memory database: contacts, notes and conversations of every account, the indexes that
//! uniqueness checks use (email, phone, identifier per account), the validation rules of the real
//! `Contact` model, and the listing/search queries with their caches.
//!
//! Uniqueness is checked like Rails does it: validations first (a 422), then the insert, where only
//! the database's unique indexes (email, identifier) are enforced (a 500). Phone numbers have no
//! index, which is why two racing creates with the same phone can both succeed.
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::search::{Entry, SearchIndex};

/// A row of the `contacts` table.
#[derive(Debug, Clone)]
pub struct Contact {
    pub id: u64,
    pub account_id: u64,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub identifier: Option<String>,
    pub blocked: bool,
    pub additional_attributes: Map<String, Value>,
    pub custom_attributes: Map<String, Value>,
    pub last_activity_at: Option<i64>,
    pub created_at: i64,
    pub contact_inboxes: Vec<Value>,
    /// Lower-cased copies for case-insensitive search and sort, kept in step by `refresh_keys`.
    lname: Option<String>,
    lphone: Option<String>,
    /// The rendered JSON with and without `contact_inboxes`, refreshed on every write, so listing
    /// and search concatenate strings instead of building and serialising values per request.
    json: [String; 2],
}

impl Contact {
    fn refresh_keys(&mut self) {
        self.lname = self.name.as_deref().map(downcase);
        self.lphone = self.phone_number.as_deref().map(downcase);
    }

    /// Recompute the cached JSON (after the id or any rendered field changed).
    fn refresh_json(&mut self) {
        self.json = [
            self.render(false).to_string(),
            self.render(true).to_string(),
        ];
    }

    /// The cached JSON text of [`Contact::render`].
    pub fn json(&self, with_inboxes: bool) -> &str {
        &self.json[usize::from(with_inboxes)]
    }

    /// Listed by `GET /contacts` only with a non-empty email, phone or identifier.
    pub fn is_listed(&self) -> bool {
        let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        present(&self.email) || present(&self.phone_number) || present(&self.identifier)
    }

    /// The contact as the API renders it.
    pub fn render(&self, with_inboxes: bool) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("email".into(), json!(self.email));
        m.insert("phone_number".into(), json!(self.phone_number));
        m.insert("identifier".into(), json!(self.identifier));
        m.insert("blocked".into(), json!(self.blocked));
        m.insert("thumbnail".into(), json!(""));
        m.insert("availability_status".into(), json!("offline"));
        m.insert(
            "additional_attributes".into(),
            Value::Object(self.additional_attributes.clone()),
        );
        m.insert(
            "custom_attributes".into(),
            Value::Object(self.custom_attributes.clone()),
        );
        if let Some(t) = self.last_activity_at {
            m.insert("last_activity_at".into(), json!(t));
        }
        // No `updated_at`: the real contact view does not render it.
        m.insert("created_at".into(), json!(self.created_at));
        if with_inboxes {
            m.insert(
                "contact_inboxes".into(),
                Value::Array(self.contact_inboxes.clone()),
            );
        }
        Value::Object(m)
    }
}

/// A row of the `notes` table.
#[derive(Debug, Clone)]
pub struct Note {
    pub id: u64,
    pub account_id: u64,
    pub contact_id: u64,
    pub user_id: u64,
    pub content: String,
    pub created_at: i64,
}

impl Note {
    /// As the API renders it: the real note template reads `account_id` and `contact_id` from
    /// something that does not have them, so clients see both as `null`.
    pub fn render(&self, user: &User) -> Value {
        json!({
            "id": self.id, "content": self.content, "account_id": null, "contact_id": null,
            "user": user.render(), "created_at": self.created_at, "updated_at": self.created_at,
        })
    }

    /// As stored, for the side endpoints and tests: the API rendering with the real ids.
    pub fn stored(&self, user: &User) -> Value {
        let mut v = self.render(user);
        v["account_id"] = json!(self.account_id);
        v["contact_id"] = json!(self.contact_id);
        v
    }
}

/// A conversation; only seeding creates them (the contacts API only reads them).
#[derive(Debug, Clone)]
pub struct Conversation {
    pub display_id: u64,
    pub account_id: u64,
    pub contact_id: u64,
    pub inbox_id: u64,
    pub status: String,
    pub created_at: i64,
    pub last_activity_at: i64,
    /// The user (1 admin, 2 agent) it is assigned to.
    pub assignee_id: Option<u64>,
}

/// What seeding says about a new conversation; the store gives it its display id.
#[derive(Debug, Clone)]
pub struct NewConversation {
    pub inbox_id: u64,
    pub status: String,
    pub created_at: i64,
    pub last_activity_at: i64,
    pub assignee_id: Option<u64>,
}

impl Conversation {
    /// A stable UUID (version 4 layout) derived from the account and the display id.
    fn uuid(&self) -> String {
        let hi = mix(self.account_id ^ mix(self.display_id));
        let lo = mix(hi ^ self.display_id);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xfff,
            0x8000 | ((lo >> 48) & 0x3fff),
            lo & 0xffff_ffff_ffff
        )
    }

    /// As the real conversation partial renders it. The sandbox has no messages, labels, teams
    /// or read receipts, so those are always empty, zero or null; every inbox is an API channel.
    pub fn render(&self, contact: &Contact, assignee: Option<&User>) -> Value {
        let mut meta = json!({"sender": contact.render(false), "channel": "Channel::Api",
                              "hmac_verified": false});
        if let Some(user) = assignee {
            meta["assignee"] = user.render();
        }
        json!({
            "meta": meta, "id": self.display_id, "messages": [], "account_id": self.account_id,
            "uuid": self.uuid(), "additional_attributes": {}, "agent_last_seen_at": 0,
            "assignee_last_seen_at": 0, "can_reply": true, "contact_last_seen_at": 0,
            "custom_attributes": {}, "inbox_id": self.inbox_id, "labels": [], "muted": false,
            "snoozed_until": null, "status": self.status, "created_at": self.created_at,
            "updated_at": self.last_activity_at as f64, "timestamp": self.last_activity_at,
            "first_reply_created_at": 0, "unread_count": 0, "last_non_activity_message": null,
            "last_activity_at": self.last_activity_at, "priority": null, "waiting_since": 0,
            "sla_policy_id": null,
        })
    }
}

/// A user behind a token.
#[derive(Debug, Clone)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Administrator,
    Agent,
}

impl User {
    pub fn render(&self) -> Value {
        json!({"id": self.id, "name": self.name, "available_name": self.name, "email": self.email,
               "role": match self.role { Role::Administrator => "administrator", Role::Agent => "agent" },
               "thumbnail": ""})
    }
}

/// A create or update body after Rails' strong parameters: permitted keys only, scalars cast.
/// `Some(None)` is an explicit null.
#[derive(Debug, Clone, Default)]
pub struct ContactParams {
    pub name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub phone_number: Option<Option<String>>,
    pub identifier: Option<Option<String>>,
    /// `Some(None)`: `blocked` sent as `null` or `""`, nil for a NOT NULL column.
    pub blocked: Option<Option<bool>>,
    pub additional_attributes: Option<Map<String, Value>>,
    pub custom_attributes: Option<Map<String, Value>>,
    pub inbox_id: Option<String>,
}

/// A permitted scalar as a string column casts it: `true`/`false` become `"t"`/`"f"`, numbers their
/// decimal text; `null`, arrays and objects are not a string.
pub fn rails_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "t" } else { "f" }.to_string()),
        _ => None,
    }
}

/// A permitted scalar as `ActiveModel::Type::Boolean` casts it: `""` and `null` are nil, the
/// integer 0 and the strings `0 f F false FALSE off OFF` are false, anything else is true (`"no"`,
/// `"False"` and `0.0` included); arrays and objects are not permitted (`None`).
fn rails_bool(v: &Value) -> Option<Option<bool>> {
    const FALSE: [&str; 7] = ["0", "f", "F", "false", "FALSE", "off", "OFF"];
    match v {
        Value::Null => Some(None),
        Value::Bool(b) => Some(Some(*b)),
        Value::Number(n) => Some(Some(n.as_i64() != Some(0) && n.as_u64() != Some(0))),
        Value::String(s) if s.is_empty() => Some(None),
        Value::String(s) => Some(Some(!FALSE.contains(&s.as_str()))),
        _ => None,
    }
}

impl ContactParams {
    /// Unknown keys, and values of a shape the permit list does not accept, are dropped silently.
    pub fn from_json(body: &Value) -> ContactParams {
        let Some(obj) = body.as_object() else {
            return ContactParams::default();
        };
        let string = |k: &str| match obj.get(k) {
            Some(Value::Null) => Some(None),
            Some(v) => rails_string(v).map(Some),
            None => None,
        };
        let object = |k: &str| match obj.get(k) {
            Some(Value::Object(m)) => Some(m.clone()),
            _ => None,
        };
        let blocked = obj.get("blocked").and_then(rails_bool);
        // `params[:inbox_id].blank?` skips the inbox; anything else is looked up.
        let inbox_id = match obj.get("inbox_id") {
            None | Some(Value::Null | Value::Bool(false)) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::Array(a)) if a.is_empty() => None,
            Some(Value::Object(o)) if o.is_empty() => None,
            Some(v) => Some(rails_string(v).unwrap_or_else(|| v.to_string())),
        };
        ContactParams {
            name: string("name"),
            email: string("email"),
            phone_number: string("phone_number"),
            identifier: string("identifier"),
            blocked,
            additional_attributes: object("additional_attributes"),
            custom_attributes: object("custom_attributes"),
            inbox_id,
        }
    }
}

/// A 422 from model validation: the messages in Rails' order and the attributes they name.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub messages: Vec<String>,
    pub attributes: Vec<String>,
}

impl Invalid {
    fn push(&mut self, attr: &str, msg: String) {
        self.messages.push(msg);
        if !self.attributes.iter().any(|a| a == attr) {
            self.attributes.push(attr.to_string());
        }
    }

    pub fn body(&self) -> Value {
        json!({"message": self.messages.join(", "), "attributes": self.attributes})
    }
}

/// Why a write failed.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteError {
    Invalid(Invalid),
    /// A unique index refused the insert (a race, or two empty identifiers): the server answers 500.
    UniqueViolation(&'static str),
    /// A NUL character in a value: the pg driver refuses the string (`string contains null byte`)
    /// and Postgres refuses `\u0000` in jsonb, so the server answers 500 and nothing is written.
    NullByte,
    /// A NOT NULL column (`blocked`) set to nil: the UPDATE or INSERT fails, a 500.
    NotNull(&'static str),
    NotFound,
}

/// Sort keys of `GET /contacts?sort=`, in the order the controller declares them (`sort_on`):
/// Sift applies the active keys in this order, whatever order the `sort` parameter names them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    Email,
    Name,
    Phone,
    LastActivityAt,
    CreatedAt,
    /// `additional_attributes->>'company_name'`, and the two below likewise.
    CompanyName,
    City,
    Country,
}

/// Every key with its parameter name, in declaration order.
const SORT_KEYS: [(SortKey, &str); 8] = [
    (SortKey::Email, "email"),
    (SortKey::Name, "name"),
    (SortKey::Phone, "phone_number"),
    (SortKey::LastActivityAt, "last_activity_at"),
    (SortKey::CreatedAt, "created_at"),
    (SortKey::CompanyName, "company_name"),
    (SortKey::City, "city"),
    (SortKey::Country, "country"),
];

impl SortKey {
    /// The controller's scopes for these keys say `NULLS LAST` in both directions; the plain
    /// column sorts leave Postgres's default (NULLs first when descending).
    fn nulls_always_last(self) -> bool {
        matches!(
            self,
            SortKey::LastActivityAt | SortKey::CompanyName | SortKey::City | SortKey::Country
        )
    }
}

/// A parsed `sort` parameter. Sift splits it on commas, a leading `-` means descending, a key
/// named twice keeps its last direction, unknown keys are ignored; the active keys are applied
/// in declaration order (`sort=created_at,email` orders by email first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sort {
    /// Per key of `SORT_KEYS`: `None` when not named, `Some(desc)` otherwise.
    dirs: [Option<bool>; 8],
}

impl Sort {
    /// `None` when no known key is named: no order at all.
    pub fn parse(s: &str) -> Option<Sort> {
        let mut dirs = [None; 8];
        for part in s.split(',') {
            let (desc, k) = match part.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, part),
            };
            if let Some(i) = SORT_KEYS.iter().position(|(_, name)| *name == k) {
                dirs[i] = Some(desc);
            }
        }
        dirs.iter().any(Option::is_some).then_some(Sort { dirs })
    }

    /// The active keys and their direction (`true`: descending), in the order they apply.
    fn keys(&self) -> impl Iterator<Item = (SortKey, bool)> + '_ {
        SORT_KEYS
            .iter()
            .zip(self.dirs)
            .filter_map(|((k, _), d)| d.map(|desc| (*k, desc)))
    }
}

pub const PER_PAGE: usize = 15;
const MAX_LEN: usize = 255;
pub const NOTE_MAX: usize = 20_000;

/// Cached listing orders of one account, valid while `generation` matches the store's.
#[derive(Default)]
struct ListCache {
    valid: bool,
    generation: u64,
    listed: Vec<u64>,
    sorted: HashMap<Sort, Vec<u64>>,
}

/// The whole database.
#[derive(Default)]
pub struct Store {
    pub contacts: BTreeMap<u64, Contact>,
    by_email: HashMap<(u64, String), u64>,
    by_identifier: HashMap<(u64, String), u64>,
    /// Phone numbers have no unique index: several contacts may share one after a race.
    by_phone: HashMap<(u64, String), Vec<u64>>,
    pub notes: BTreeMap<u64, Note>,
    pub conversations: HashMap<u64, Vec<Conversation>>,
    next_contact_id: u64,
    next_note_id: u64,
    next_display_id: HashMap<u64, u64>,
    /// Bumped on every write: invalidates listing caches and reshuffles sort ties.
    generation: u64,
    cache: HashMap<u64, ListCache>,
    search_ix: HashMap<u64, SearchIndex>,
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Devise's `email_regexp`, `\A[^@\s]+@[^@\s]+\z`: one `@`, no whitespace, something either side.
fn email_format_ok(e: &str) -> bool {
    let ws = |c: char| c.is_ascii_whitespace() || c == '\u{0B}';
    match e.split_once('@') {
        Some((a, b)) => !a.is_empty() && !b.is_empty() && !b.contains('@') && !e.chars().any(ws),
        None => false,
    }
}

/// `/\+[1-9]\d{1,14}\z/`: anchored at the end only, so anything may come before the `+`.
fn phone_format_ok(p: &str) -> bool {
    let bytes = p.as_bytes();
    let digits = bytes
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let start = bytes.len() - digits;
    (2..=15).contains(&digits) && bytes[start] != b'0' && start > 0 && bytes[start - 1] == b'+'
}

/// Lower-case as Ruby's `downcase` and Postgres' `LOWER` (libc collation) do: character by
/// character, with no context, so a final `Σ` becomes `σ` (Rust's `str::to_lowercase` gives `ς`).
pub fn downcase(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

impl Store {
    pub fn new() -> Store {
        Store {
            next_contact_id: 1,
            next_note_id: 1,
            ..Default::default()
        }
    }

    pub fn contact(&self, account: u64, id: u64) -> Option<&Contact> {
        self.contacts.get(&id).filter(|c| c.account_id == account)
    }

    /// The model's validations: the length check every string column gets, then the ones
    /// `Contact` declares, in its order.
    fn validate(&self, c: &Contact) -> Result<(), Invalid> {
        let mut inv = Invalid {
            messages: vec![],
            attributes: vec![],
        };
        // `ApplicationRecord#validates_column_content_length` is a `before_validation` of the base
        // class: its errors come first, for the string columns in table order.
        for (attr, label, v) in [
            ("name", "Name", &c.name),
            ("email", "Email", &c.email),
            ("phone_number", "Phone number", &c.phone_number),
            ("identifier", "Identifier", &c.identifier),
        ] {
            if v.as_ref().is_some_and(|s| s.chars().count() > MAX_LEN) {
                inv.push(
                    attr,
                    format!("{label} is too long (maximum is {MAX_LEN} characters)"),
                );
            }
        }
        let acc = c.account_id;
        if let Some(e) = present(&c.email) {
            if self
                .by_email
                .get(&(acc, downcase(e)))
                .is_some_and(|&id| id != c.id)
            {
                inv.push("email", "Email has already been taken".into());
            }
            if !email_format_ok(e) {
                inv.push("email", "Email Invalid email".into());
            }
        }
        if let Some(i) = present(&c.identifier)
            && self
                .by_identifier
                .get(&(acc, i.to_string()))
                .is_some_and(|&id| id != c.id)
        {
            inv.push("identifier", "Identifier has already been taken".into());
        }
        if let Some(p) = present(&c.phone_number) {
            let taken = self
                .by_phone
                .get(&(acc, p.to_string()))
                .is_some_and(|ids| ids.iter().any(|&id| id != c.id));
            if taken {
                inv.push("phone_number", "Phone number has already been taken".into());
            }
            if !phone_format_ok(p) {
                inv.push(
                    "phone_number",
                    "Phone number should be in e164 format".into(),
                );
            }
        }
        if inv.messages.is_empty() {
            Ok(())
        } else {
            Err(inv)
        }
    }

    /// The unique indexes of the database: email and identifier (an empty identifier counts).
    fn check_indexes(&self, c: &Contact) -> Result<(), WriteError> {
        if let Some(e) = &c.email
            && self
                .by_email
                .get(&(c.account_id, e.clone()))
                .is_some_and(|&id| id != c.id)
        {
            return Err(WriteError::UniqueViolation(
                "index_contacts_on_email_and_account_id",
            ));
        }
        if let Some(i) = &c.identifier
            && self
                .by_identifier
                .get(&(c.account_id, i.clone()))
                .is_some_and(|&id| id != c.id)
        {
            return Err(WriteError::UniqueViolation(
                "uniq_identifier_per_account_contact",
            ));
        }
        Ok(())
    }

    fn index(&mut self, c: &Contact) {
        if let Some(e) = &c.email {
            self.by_email.insert((c.account_id, e.clone()), c.id);
        }
        if let Some(i) = &c.identifier {
            self.by_identifier.insert((c.account_id, i.clone()), c.id);
        }
        if let Some(p) = c.phone_number.as_ref().filter(|p| !p.is_empty()) {
            self.by_phone
                .entry((c.account_id, p.clone()))
                .or_default()
                .push(c.id);
        }
    }

    fn unindex(&mut self, c: &Contact) {
        if let Some(e) = &c.email
            && self.by_email.get(&(c.account_id, e.clone())) == Some(&c.id)
        {
            self.by_email.remove(&(c.account_id, e.clone()));
        }
        if let Some(i) = &c.identifier
            && self.by_identifier.get(&(c.account_id, i.clone())) == Some(&c.id)
        {
            self.by_identifier.remove(&(c.account_id, i.clone()));
        }
        if let Some(p) = &c.phone_number {
            let key = (c.account_id, p.clone());
            if let Some(ids) = self.by_phone.get_mut(&key) {
                ids.retain(|&id| id != c.id);
                if ids.is_empty() {
                    self.by_phone.remove(&key);
                }
            }
        }
    }

    fn ix_put(&mut self, c: &Contact) {
        let ix = self.search_ix.entry(c.account_id).or_default();
        ix.put(Entry {
            id: c.id,
            fields: [
                c.lname.as_deref().unwrap_or(""),
                c.email.as_deref().unwrap_or(""),
                c.lphone.as_deref().unwrap_or(""),
            ],
            identifier: c.identifier.as_deref().unwrap_or(""),
        });
        if ix.wants_compaction() {
            self.rebuild_search(c.account_id);
        }
    }

    fn ix_remove(&mut self, account: u64, id: u64) {
        let ix = self.search_ix.entry(account).or_default();
        ix.remove(id);
        if ix.wants_compaction() {
            self.rebuild_search(account);
        }
    }

    fn rebuild_search(&mut self, account: u64) {
        let mut ix = SearchIndex::default();
        for c in self.contacts.values().filter(|c| c.account_id == account) {
            ix.put(Entry {
                id: c.id,
                fields: [
                    c.lname.as_deref().unwrap_or(""),
                    c.email.as_deref().unwrap_or(""),
                    c.lphone.as_deref().unwrap_or(""),
                ],
                identifier: c.identifier.as_deref().unwrap_or(""),
            });
        }
        self.search_ix.insert(account, ix);
    }

    fn touch(&mut self) {
        self.generation += 1;
    }

    /// Build the row a create would insert (no id yet), lower-casing the email as the model does.
    pub fn build(&self, account: u64, p: &ContactParams) -> Contact {
        let t = now();
        let mut c = Contact {
            id: 0,
            account_id: account,
            name: p.name.clone().unwrap_or(Some(String::new())),
            email: p.email.clone().flatten(),
            phone_number: p.phone_number.clone().flatten(),
            identifier: p.identifier.clone().flatten(),
            blocked: p.blocked.flatten().unwrap_or(false),
            additional_attributes: p.additional_attributes.clone().unwrap_or_default(),
            custom_attributes: p.custom_attributes.clone().unwrap_or_default(),
            last_activity_at: None,
            created_at: t,
            contact_inboxes: vec![],
            lname: None,
            lphone: None,
            json: Default::default(),
        };
        normalise(&mut c);
        c
    }

    /// The validation half of a create (a SELECT per unique field in Rails).
    pub fn validate_new(&self, c: &Contact) -> Result<(), WriteError> {
        checked(c, |c| self.validate(c))
    }

    /// The INSERT half of a create: only the unique indexes are checked here. The id is taken
    /// from the sequence first, so an insert the indexes refuse leaves a gap, as in Postgres.
    pub fn insert(&mut self, mut c: Contact) -> Result<Contact, WriteError> {
        c.id = self.next_contact_id;
        self.next_contact_id += 1;
        self.check_indexes(&c)?;
        c.refresh_json();
        self.index(&c);
        self.ix_put(&c);
        self.contacts.insert(c.id, c.clone());
        self.touch();
        Ok(c)
    }

    /// An INSERT that failed after taking its id from the sequence (a NOT NULL violation).
    pub fn burn_id(&mut self) {
        self.next_contact_id += 1;
    }

    /// Insert a seeded contact as is (keeping its id when given), indexes still enforced.
    pub fn insert_seed(&mut self, mut c: Contact) -> Result<u64, WriteError> {
        normalise(&mut c);
        if c.id == 0 || self.contacts.contains_key(&c.id) {
            c.id = self.next_contact_id;
        }
        self.check_indexes(&c)?;
        self.next_contact_id = self.next_contact_id.max(c.id + 1);
        c.refresh_json();
        self.index(&c);
        self.ix_put(&c);
        let id = c.id;
        self.contacts.insert(id, c);
        self.touch();
        Ok(id)
    }

    /// PATCH/PUT: only the fields sent change; attribute objects are shallow-merged.
    pub fn update(
        &mut self,
        account: u64,
        id: u64,
        p: &ContactParams,
        replace_additional: bool,
    ) -> Result<Contact, WriteError> {
        let old = self
            .contact(account, id)
            .ok_or(WriteError::NotFound)?
            .clone();
        let mut c = old.clone();
        if let Some(v) = &p.name {
            c.name = v.clone();
        }
        if let Some(v) = &p.email {
            c.email = v.clone();
        }
        if let Some(v) = &p.phone_number {
            c.phone_number = v.clone();
        }
        if let Some(v) = &p.identifier {
            c.identifier = v.clone();
        }
        if let Some(Some(v)) = p.blocked {
            c.blocked = v;
        }
        if let Some(m) = &p.custom_attributes {
            c.custom_attributes.extend(m.clone());
        }
        if let Some(m) = &p.additional_attributes {
            if replace_additional {
                c.additional_attributes = m.clone();
            } else {
                c.additional_attributes.extend(m.clone());
            }
        }
        normalise(&mut c);
        checked(&c, |c| self.validate(c))?;
        if p.blocked == Some(None) {
            return Err(WriteError::NotNull("blocked"));
        }
        self.check_indexes(&c)?;
        c.refresh_json();
        self.unindex(&old);
        self.index(&c);
        self.ix_put(&c);
        self.contacts.insert(id, c.clone());
        self.touch();
        Ok(c)
    }

    /// `destroy_custom_attributes`: the keys named are removed from the contact's custom
    /// attributes (unknown keys are ignored), as `custom_attributes.excluding(keys)` does.
    pub fn remove_custom_attributes(
        &mut self,
        account: u64,
        id: u64,
        keys: &[String],
    ) -> Result<Contact, WriteError> {
        let c = self
            .contacts
            .get_mut(&id)
            .filter(|c| c.account_id == account)
            .ok_or(WriteError::NotFound)?;
        for k in keys {
            c.custom_attributes.remove(k);
        }
        c.refresh_json();
        let c = c.clone();
        self.touch();
        Ok(c)
    }

    /// Delete note `note_id` of contact `contact_id` (404 when the contact has no such note).
    pub fn delete_note(
        &mut self,
        account: u64,
        contact_id: u64,
        note_id: u64,
    ) -> Result<(), WriteError> {
        let mine = |n: &Note| n.account_id == account && n.contact_id == contact_id;
        if !self.notes.get(&note_id).is_some_and(mine) {
            return Err(WriteError::NotFound);
        }
        self.notes.remove(&note_id);
        self.touch();
        Ok(())
    }

    pub fn delete(&mut self, account: u64, id: u64) -> Result<(), WriteError> {
        let c = self
            .contact(account, id)
            .ok_or(WriteError::NotFound)?
            .clone();
        self.unindex(&c);
        self.contacts.remove(&id);
        self.ix_remove(account, id);
        self.notes.retain(|_, n| n.contact_id != id);
        self.conversations.remove(&id);
        self.touch();
        Ok(())
    }

    pub fn add_note(
        &mut self,
        account: u64,
        contact_id: u64,
        user_id: u64,
        content: String,
        created_at: Option<i64>,
    ) -> Note {
        let n = Note {
            id: self.next_note_id,
            account_id: account,
            contact_id,
            user_id,
            content,
            created_at: created_at.unwrap_or_else(now),
        };
        self.next_note_id += 1;
        self.notes.insert(n.id, n.clone());
        n
    }

    /// Add a conversation under the account's next display id; the contact's
    /// `last_activity_at` moves up to the conversation's.
    pub fn add_conversation(&mut self, account: u64, contact_id: u64, new: NewConversation) {
        let next = self.next_display_id.entry(account).or_insert(1);
        let conv = Conversation {
            display_id: *next,
            account_id: account,
            contact_id,
            inbox_id: new.inbox_id,
            status: new.status,
            created_at: new.created_at,
            last_activity_at: new.last_activity_at,
            assignee_id: new.assignee_id,
        };
        *next += 1;
        let activity = conv.last_activity_at;
        self.conversations.entry(contact_id).or_default().push(conv);
        if let Some(c) = self.contacts.get_mut(&contact_id) {
            c.last_activity_at = Some(c.last_activity_at.unwrap_or(0).max(activity));
            c.refresh_json();
        }
        self.touch();
    }

    /// The 20 most recent conversations in the inboxes `visible` lets through, newest activity
    /// first (the permission filter applies before the limit, as in the SQL).
    pub fn conversations_of(
        &self,
        contact_id: u64,
        visible: impl Fn(u64) -> bool,
    ) -> Vec<&Conversation> {
        let mut v: Vec<&Conversation> = self
            .conversations
            .get(&contact_id)
            .map(|v| v.iter().filter(|c| visible(c.inbox_id)).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| {
            b.last_activity_at
                .cmp(&a.last_activity_at)
                .then(b.display_id.cmp(&a.display_id))
        });
        v.truncate(20);
        v
    }

    /// Ids of the listed contacts of an account in the order a `GET /contacts` would use: the cached
    /// sorted order when `sort` is given, otherwise id order (the caller scrambles it).
    pub fn listed(&mut self, account: u64, sort: Option<Sort>) -> &[u64] {
        let Store {
            contacts,
            cache,
            generation,
            ..
        } = self;
        let generation = *generation;
        let cache = cache.entry(account).or_default();
        if !cache.valid || cache.generation != generation {
            cache.valid = true;
            cache.generation = generation;
            cache.sorted.clear();
            cache.listed = contacts
                .values()
                .filter(|c| c.account_id == account && c.is_listed())
                .map(|c| c.id)
                .collect();
        }
        match sort {
            None => &cache.listed,
            Some(s) => cache.sorted.entry(s).or_insert_with(|| {
                let mut ids = cache.listed.clone();
                sort_ids(&mut ids, contacts, s, generation);
                ids
            }),
        }
    }

    /// Ids matching a search query (already trimmed, non-blank), in id order or sorted:
    /// `ILIKE '%q%'` on name, email and phone, `LIKE '%q%'` on identifier, or `id = q`.
    pub fn search(&self, account: u64, q: &str, sort: Option<Sort>) -> Vec<u64> {
        let pat = Like::new(q);
        let lpat = Like::new(&downcase(q));
        let mut ids = match self.search_ix.get(&account) {
            // The longest literal run of the pattern prefilters; the full pattern then decides.
            Some(ix) if !q.contains(['\0', '\u{1}']) => ix.query(
                lpat.literal().as_deref(),
                pat.literal().as_deref(),
                pat.plain.is_some(),
                &|s| lpat.matches(s),
                &|s| pat.matches(s),
            ),
            _ => self
                .contacts
                .values()
                .filter(|c| c.account_id == account)
                .filter(|c| {
                    c.lname.as_deref().is_some_and(|s| lpat.matches(s))
                        || c.email.as_deref().is_some_and(|s| lpat.matches(s))
                        || c.lphone.as_deref().is_some_and(|s| lpat.matches(s))
                        || c.identifier.as_deref().is_some_and(|s| pat.matches(s))
                })
                .map(|c| c.id)
                .collect(),
        };
        // `contacts.id = :q` when q is all digits.
        if !q.is_empty()
            && q.bytes().all(|b| b.is_ascii_digit())
            && let Ok(id) = q.parse::<u64>()
            && self.contact(account, id).is_some()
            && !ids.contains(&id)
        {
            ids.push(id);
            ids.sort_unstable();
        }
        if let Some(s) = sort {
            sort_ids(&mut ids, &self.contacts, s, self.generation);
        }
        ids
    }

    /// The avatar sync's own keys in `additional_attributes` (see `SandboxConfig::server_attributes`).
    pub fn add_server_attributes(&mut self, id: u64) {
        if let Some(c) = self.contacts.get_mut(&id) {
            let seed = c
                .email
                .as_deref()
                .unwrap_or("")
                .bytes()
                .fold(id, |h, b| mix(h ^ u64::from(b)));
            c.additional_attributes
                .insert("avatar_url_hash".into(), json!(format!("{seed:016x}")));
            let at = chrono::DateTime::from_timestamp(now(), 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            c.additional_attributes
                .insert("last_avatar_sync_at".into(), json!(at));
            c.refresh_json();
            self.generation += 1;
        }
    }

    /// Set `last_activity_at` (seeding), keeping the cached JSON in step.
    pub fn set_last_activity(&mut self, id: u64, t: Option<i64>) {
        if let Some(c) = self.contacts.get_mut(&id) {
            c.last_activity_at = t;
            c.refresh_json();
            self.generation += 1;
        }
    }

    /// Forget everything (ids start again at 1).
    pub fn clear(&mut self) {
        *self = Store::new();
    }
}

/// The validations with the NUL characters where Postgres meets them: in email, phone or
/// identifier the uniqueness SELECT fails (a 500 before any 422); in the name or the attribute
/// objects only the INSERT/UPDATE after a successful validation does.
fn checked(
    c: &Contact,
    validate: impl Fn(&Contact) -> Result<(), Invalid>,
) -> Result<(), WriteError> {
    let nul = |v: &Option<String>| v.as_deref().is_some_and(|s| s.contains('\0'));
    let unique_fields = [&c.email, &c.phone_number, &c.identifier];
    if unique_fields
        .into_iter()
        .any(|v| present(v).is_some() && nul(v))
    {
        return Err(WriteError::NullByte);
    }
    validate(c).map_err(WriteError::Invalid)?;
    let in_attributes = [&c.additional_attributes, &c.custom_attributes]
        .into_iter()
        .any(|m| m.iter().any(|(k, v)| k.contains('\0') || value_has_nul(v)));
    if unique_fields.into_iter().any(nul) || nul(&c.name) || in_attributes {
        return Err(WriteError::NullByte);
    }
    Ok(())
}

/// Whether a JSON value holds a NUL character in any string or object key.
pub fn value_has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(value_has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || value_has_nul(v)),
        _ => false,
    }
}

fn normalise(c: &mut Contact) {
    // `before_validation` (`prepare_email_attribute`): the email is lower-cased, never trimmed;
    // a blank one (`""`, or only whitespace: Rails' `present?`) is stored as null.
    c.email = c
        .email
        .take()
        .filter(|e| !e.trim().is_empty())
        .map(|e| downcase(&e));
    c.refresh_keys();
}

/// `additional_attributes->>'key'`: the text of the value, NULL when absent or null.
fn attribute_text(attrs: &Map<String, Value>, key: &str) -> Option<String> {
    match attrs.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => Some(v.to_string()),
    }
}

/// Ties (rows equal on every active key) are broken by a hash of (id, generation), so they come
/// back in an order that changes after every write, as on a real database with no id
/// tie-breaker. The attribute keys compare their text as is, byte by byte (the server's
/// collation may differ on case and accents).
fn sort_ids(ids: &mut [u64], contacts: &BTreeMap<u64, Contact>, s: Sort, generation: u64) {
    let tie = |id: u64| mix(id ^ generation.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let keys: Vec<(SortKey, bool)> = s.keys().collect();
    let mut rows: Vec<(Vec<SortVal>, u64, u64)> = ids
        .iter()
        .map(|&id| {
            let c = &contacts[&id];
            let values = keys.iter().map(|&(k, _)| sort_value(c, k)).collect();
            (values, tie(id), id)
        })
        .collect();
    rows.sort_unstable_by(|a, b| {
        keys.iter()
            .zip(a.0.iter().zip(&b.0))
            .map(|(&(k, desc), (x, y))| key_order(x, y, desc, k.nulls_always_last()))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.1.cmp(&b.1))
    });
    for (slot, row) in ids.iter_mut().zip(rows) {
        *slot = row.2;
    }
}

fn sort_value(c: &Contact, key: SortKey) -> SortVal {
    match key {
        SortKey::Name => SortVal::Str(c.lname.clone()),
        SortKey::Email => SortVal::Str(c.email.clone()),
        SortKey::Phone => SortVal::Str(c.lphone.clone()),
        SortKey::LastActivityAt => SortVal::Int(c.last_activity_at),
        SortKey::CreatedAt => SortVal::Int(Some(c.created_at)),
        SortKey::CompanyName => {
            SortVal::Str(attribute_text(&c.additional_attributes, "company_name"))
        }
        SortKey::City => SortVal::Str(attribute_text(&c.additional_attributes, "city")),
        SortKey::Country => SortVal::Str(attribute_text(&c.additional_attributes, "country")),
    }
}

/// One key's order: NULLs come after every value when ascending and before them when
/// descending, as in Postgres, unless the key says `NULLS LAST`.
fn key_order(a: &SortVal, b: &SortVal, desc: bool, nulls_last: bool) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (false, false) if desc => a.cmp(b).reverse(),
        (false, false) => a.cmp(b),
        (x, y) if desc && !nulls_last => x.cmp(&y).reverse(),
        (x, y) => x.cmp(&y),
    }
}

/// A sort value; `None` (NULL) sorts after every value, as Postgres does in ascending order.
#[derive(PartialEq, Eq)]
enum SortVal {
    Str(Option<String>),
    Int(Option<i64>),
}

impl SortVal {
    fn is_null(&self) -> bool {
        matches!(self, SortVal::Str(None) | SortVal::Int(None))
    }
}

impl PartialOrd for SortVal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SortVal {
    fn cmp(&self, other: &Self) -> Ordering {
        fn nulls_last<T: Ord>(a: &Option<T>, b: &Option<T>) -> Ordering {
            match (a, b) {
                (Some(a), Some(b)) => a.cmp(b),
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
            }
        }
        match (self, other) {
            (SortVal::Str(a), SortVal::Str(b)) => nulls_last(a, b),
            (SortVal::Int(a), SortVal::Int(b)) => nulls_last(a, b),
            _ => Ordering::Equal,
        }
    }
}

/// splitmix64 finaliser: a cheap, well-mixed hash of a u64.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A SQL `LIKE '%q%'` pattern: `%` is any run, `_` is one character, `\` escapes.
struct Like {
    toks: Vec<Tok>,
    /// Fast path when `q` has no wildcard: a plain substring test.
    plain: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Tok {
    Lit(char),
    One,
    Any,
}

impl Like {
    fn new(q: &str) -> Like {
        if !q.contains(['%', '_', '\\']) {
            return Like {
                toks: vec![],
                plain: Some(q.to_string()),
            };
        }
        let mut toks = vec![Tok::Any];
        let mut chars = q.chars();
        while let Some(ch) = chars.next() {
            toks.push(match ch {
                '%' => Tok::Any,
                '_' => Tok::One,
                '\\' => Tok::Lit(chars.next().unwrap_or('\\')),
                c => Tok::Lit(c),
            });
        }
        toks.push(Tok::Any);
        Like { toks, plain: None }
    }

    /// The longest run of literal characters: every match contains it.
    fn literal(&self) -> Option<String> {
        if let Some(p) = &self.plain {
            return Some(p.clone());
        }
        let mut best = String::new();
        let mut cur = String::new();
        for t in &self.toks {
            match t {
                Tok::Lit(c) => cur.push(*c),
                _ => {
                    if cur.chars().count() > best.chars().count() {
                        best = std::mem::take(&mut cur);
                    }
                    cur.clear();
                }
            }
        }
        if cur.chars().count() > best.chars().count() {
            best = cur;
        }
        (!best.is_empty()).then_some(best)
    }

    fn matches(&self, s: &str) -> bool {
        if let Some(p) = &self.plain {
            return s.contains(p.as_str());
        }
        // ASCII text is indexed in place; other text is decoded to chars once.
        if s.is_ascii() {
            let b = s.as_bytes();
            self.wild(b.len(), |i| char::from(b[i]))
        } else {
            let text: Vec<char> = s.chars().collect();
            self.wild(text.len(), |i| text[i])
        }
    }

    /// Classic wildcard matching with one backtrack point (linear for `%` patterns).
    fn wild(&self, len: usize, at: impl Fn(usize) -> char) -> bool {
        let (mut ti, mut pi) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while ti < len {
            match self.toks.get(pi) {
                Some(Tok::Any) => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(Tok::One) => {
                    ti += 1;
                    pi += 1;
                }
                Some(Tok::Lit(c)) if *c == at(ti) => {
                    ti += 1;
                    pi += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        self.toks[pi..].iter().all(|t| *t == Tok::Any)
    }
}

/// Render helpers shared by the routes and the handle.
pub fn render_all(store: &Store) -> Vec<Value> {
    store
        .contacts
        .values()
        .map(|c| {
            let mut v = c.render(true);
            v["account_id"] = json!(c.account_id);
            v
        })
        .collect()
}

pub fn total_pages(count: usize) -> usize {
    count.div_ceil(PER_PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_regex_is_anchored_at_the_end_only() {
        assert!(phone_format_ok("+14155552671"));
        assert!(phone_format_ok("tel:+14155552671"));
        assert!(phone_format_ok("+12"));
        assert!(!phone_format_ok("+1"));
        assert!(!phone_format_ok("+1 555 123 4567"));
        assert!(!phone_format_ok("14155552671"));
        assert!(!phone_format_ok("+04155552671"));
        assert!(!phone_format_ok("+1234567890123456"));
        assert!(phone_format_ok("+123456789012345"));
    }

    #[test]
    fn email_format_is_one_at_and_no_whitespace() {
        assert!(email_format_ok("a@b"));
        assert!(!email_format_ok(" a@b.com"));
        assert!(!email_format_ok("a@b.com "));
        assert!(!email_format_ok("a@@b.com"));
        assert!(!email_format_ok("a@b@c"));
        assert!(!email_format_ok("ab.com"));
    }

    #[test]
    fn indexed_search_agrees_with_a_scan_of_every_contact() {
        let mut store = Store::new();
        super::super::seed::generate(&mut store, 1, 400, 11);
        // Writes after the index was built: updates, deletes, new contacts.
        let p = ContactParams {
            name: Some(Some("Zoë Jane_Doe".into())),
            ..Default::default()
        };
        store.update(1, 5, &p, false).unwrap();
        store.delete(1, 7).unwrap();
        let c = store.build(
            1,
            &ContactParams {
                identifier: Some(Some("USER_x".into())),
                ..Default::default()
            },
        );
        store.insert(c).unwrap();
        for q in [
            "smith",
            "GARCIA",
            "j_ne",
            "%",
            "_",
            "user_10",
            "+44",
            "1",
            "a%b",
            "müller",
            "zoë",
            "ZOË",
            "USER",
            "user",
            "jane_doe",
            "e\\_d",
            "5",
            "7",
            "@gmail.com",
        ] {
            let pat = Like::new(q);
            let lpat = Like::new(&downcase(q));
            let mut expected: Vec<u64> = store
                .contacts
                .values()
                .filter(|c| {
                    c.lname.as_deref().is_some_and(|s| lpat.matches(s))
                        || c.email.as_deref().is_some_and(|s| lpat.matches(s))
                        || c.lphone.as_deref().is_some_and(|s| lpat.matches(s))
                        || c.identifier.as_deref().is_some_and(|s| pat.matches(s))
                        || (q.bytes().all(|b| b.is_ascii_digit()) && q.parse() == Ok(c.id))
                })
                .map(|c| c.id)
                .collect();
            expected.sort_unstable();
            assert_eq!(store.search(1, q, None), expected, "q = {q:?}");
        }
    }

    #[test]
    fn like_wildcards() {
        assert!(Like::new("jane").matches("mary.jane@x.com"));
        // `_` is one character, not one byte.
        assert!(Like::new("m_ller").matches("herr müller"));
        assert!(!Like::new("m__ller").matches("herr müller"));
        assert!(Like::new("j_ne").matches("mary.jane@x.com"));
        assert!(Like::new("m%x.com").matches("mary.jane@x.com"));
        assert!(!Like::new("j_ne").matches("jne"));
        assert!(Like::new("50\\%").matches("50% off"));
        assert!(!Like::new("50\\%").matches("500 off"));
    }
}
