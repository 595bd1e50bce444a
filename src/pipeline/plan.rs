//! What one row should do to the account, decided from the row and what is known of the stored
//! contact: create, update with only the fields that differ, nothing (`unchanged`), skip or fail
//! (the mapping's `existing`/`missing` policies and `--mode`), or fail as a conflict when two of
//! its keys match two different contacts. Pure functions: no I/O, table-tested below.
use serde_json::{Map, Value, json};

use crate::api::{Contact, ContactPatch, NewContact};
use crate::mapping::{
    ContactDraft, ExistingPolicy, IdentifierChange, IdentityPolicy, MissingPolicy, PhoneInUse,
};
use crate::model::{ErrorCode, Field, RowError, RowWarning, Scalar};

use super::lookup::{Key, Known};

/// Placeholder ids of contacts a dry run would create (never sent, never reported).
pub const FAKE_ID_BASE: u64 = 1 << 62;

/// `contact 12`, or what a dry run's placeholder id stands for.
fn contact(id: u64) -> String {
    match id < FAKE_ID_BASE {
        true => format!("contact {id}"),
        false => "the contact an earlier row creates".into(),
    }
}

/// `--mode`: which writes the run may make at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Create the missing, update the existing (per the mapping's policies).
    #[default]
    Upsert,
    /// Only create; rows whose contact exists are skipped.
    CreateOnly,
    /// Only update; rows whose contact is missing are skipped.
    UpdateOnly,
}

/// The policies that decide a row, resolved once.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub existing: ExistingPolicy,
    pub missing: MissingPolicy,
    pub mode: Mode,
    /// `match.identifier_change` and `match.on_phone_in_use`.
    pub identity: IdentityPolicy,
}

/// The default policies (upsert, an identifier change is a conflict, a phone in use is left out),
/// for unit tests.
#[cfg(test)]
pub(crate) const UPSERT: Policy = Policy {
    existing: ExistingPolicy::Update,
    missing: MissingPolicy::Create,
    mode: Mode::Upsert,
    identity: IdentityPolicy {
        identifier_change: IdentifierChange::Conflict,
        phone_in_use: PhoneInUse::Drop,
    },
};

/// One field a write changes: its stored value before and the row's value after.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

/// What a row does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Create(NewContact),
    Update {
        id: u64,
        patch: ContactPatch,
        changes: Vec<Change>,
    },
    Unchanged {
        id: u64,
    },
    Skip {
        id: Option<u64>,
        reason: RowError,
    },
    Fail {
        id: Option<u64>,
        error: RowError,
    },
}

impl Action {
    /// `create`, `update`, `unchanged`, `skip`, `fail` (plan.jsonl).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Create(_) => "create",
            Action::Update { .. } => "update",
            Action::Unchanged { .. } => "unchanged",
            Action::Skip { .. } => "skip",
            Action::Fail { .. } => "fail",
        }
    }
}

/// The contact the row's match keys point at: `Err` when they point at two different contacts.
fn matched<'a>(keys: &[Key], known: &'a Known) -> Result<Option<&'a Contact>, RowError> {
    let mut found: Option<(&Key, &Contact)> = None;
    for k in keys {
        if let Some(c) = known.find(k) {
            match found {
                Some((k0, c0)) if c0.id != c.id => {
                    return Err(RowError::new(
                        ErrorCode::Conflict,
                        Some(field_of(k)),
                        format!(
                            "{} matches contact {} but {} matches contact {}",
                            k0.label(),
                            c0.id,
                            k.label(),
                            c.id
                        ),
                    ));
                }
                Some(_) => {}
                None => found = Some((k, c)),
            }
        }
    }
    Ok(found.map(|(_, c)| c))
}

fn field_of(k: &Key) -> &'static str {
    match k {
        Key::Email(_) => Field::Email.as_str(),
        Key::Identifier(_) => Field::Identifier.as_str(),
        Key::Phone(_) => Field::PhoneNumber.as_str(),
    }
}

/// An identifier is identity: the row matched `c` (by email) but carries another identifier than
/// the one `c` has. A blank identifier on either side is not a conflict.
fn identifier_conflict(draft: &ContactDraft, c: &Contact, policy: Policy) -> Option<RowError> {
    let row = draft.identifier.as_ref()?.as_str();
    let stored = c.identifier.as_deref().filter(|i| !i.is_empty())?;
    if row == stored || policy.identity.identifier_change == IdentifierChange::Overwrite {
        return None;
    }
    let email = draft.email.as_ref().map_or("", |e| e.as_str());
    Some(RowError::new(
        ErrorCode::IdentifierConflict,
        Some(Field::Identifier.as_str()),
        format!(
            "email {email} matches {} whose identifier is {stored:?}, but the row's identifier \
             is {row:?}: not the same person (match.identifier_change: overwrite replaces it)",
            contact(c.id)
        ),
    ))
}

/// Decide what the row does.
pub fn decide(draft: &ContactDraft, keys: &[Key], known: &Known, policy: Policy) -> Action {
    let contact = match matched(keys, known) {
        Ok(c) => c,
        Err(error) => return Action::Fail { id: None, error },
    };
    match contact {
        None => {
            if policy.mode == Mode::UpdateOnly {
                return skip(None, "no contact matches and --mode is update-only");
            }
            match policy.missing {
                MissingPolicy::Skip => skip(None, "no contact matches and match.missing is skip"),
                MissingPolicy::Create => Action::Create(new_contact(draft)),
            }
        }
        Some(c) => {
            if let Some(error) = identifier_conflict(draft, c, policy) {
                return Action::Fail {
                    id: Some(c.id),
                    error,
                };
            }
            if policy.mode == Mode::CreateOnly {
                return skip(
                    Some(c.id),
                    &format!("contact {} exists and --mode is create-only", c.id),
                );
            }
            match policy.existing {
                ExistingPolicy::Skip => skip(
                    Some(c.id),
                    &format!("contact {} exists and match.existing is skip", c.id),
                ),
                ExistingPolicy::Fail => Action::Fail {
                    id: Some(c.id),
                    error: RowError::new(
                        ErrorCode::PolicyRejected,
                        None,
                        format!("contact {} exists and match.existing is fail", c.id),
                    ),
                },
                ExistingPolicy::Update => {
                    let (patch, changes) = diff(draft, c);
                    if patch.is_empty() {
                        Action::Unchanged { id: c.id }
                    } else {
                        Action::Update {
                            id: c.id,
                            patch,
                            changes,
                        }
                    }
                }
            }
        }
    }
}

/// Who holds the phone a row writes, when it is not the row's contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneHolder {
    /// A contact the run knows (the index, or an earlier row of the file).
    Contact(u64),
    /// The server refused the phone as taken (a 422 naming `phone_number`) without saying by whom.
    Refused,
}

/// Phones are unique on the server: when the phone `action` writes is held by another contact
/// (`refused`: the server said so), the write goes without it and a `phone_in_use` warning says
/// who holds it (`match.on_phone_in_use: drop`), or the row fails (`fail`). `row_of`: the
/// earlier line of the file whose contact is the holder, if one is (named instead of the contact,
/// so that the reports do not depend on the ids the server gave).
pub fn phone_in_use(
    action: Action,
    draft: &ContactDraft,
    known: &Known,
    policy: Policy,
    (refused, row_of): (bool, &dyn Fn(u64) -> Option<u64>),
) -> (Action, Option<RowWarning>) {
    let Some(phone) = draft.phone_number.as_ref().map(|p| p.as_str()) else {
        return (action, None);
    };
    let target = match &action {
        Action::Create(n) if n.phone_number.is_some() => None,
        Action::Update { id, patch, .. } if matches!(patch.phone_number, Some(Some(_))) => {
            Some(*id)
        }
        _ => return (action, None),
    };
    let holder = match known.find(&Key::phone(phone)).map(|c| c.id) {
        Some(h) if Some(h) != target => PhoneHolder::Contact(h),
        _ if refused => PhoneHolder::Refused,
        _ => return (action, None),
    };
    let by = match holder {
        PhoneHolder::Contact(h) => match row_of(h) {
            Some(line) => format!("the contact of row {line}, which has the same phone"),
            None => contact(h),
        },
        PhoneHolder::Refused => "another contact (the server refused it as taken)".into(),
    };
    if policy.identity.phone_in_use == PhoneInUse::Fail {
        let error = RowError::new(
            ErrorCode::PhoneInUse,
            Some(Field::PhoneNumber.as_str()),
            format!("phone {phone} is held by {by} (match.on_phone_in_use: fail)"),
        );
        return (Action::Fail { id: target, error }, None);
    }
    let (column, original) = match &draft.phone_cell {
        Some((column, text)) => (column.clone(), text.clone()),
        None => (None, phone.to_owned()),
    };
    let warning = RowWarning {
        code: ErrorCode::PhoneInUse,
        field: Some(Field::PhoneNumber.as_str().into()),
        column,
        original,
        message: format!("phone {phone} is held by {by}: the row was imported without it"),
    };
    (without_phone(action), Some(warning))
}

/// `action` with its phone left out (an update left with nothing to write is `unchanged`).
fn without_phone(action: Action) -> Action {
    match action {
        Action::Create(mut n) => {
            n.phone_number = None;
            Action::Create(n)
        }
        Action::Update {
            id,
            mut patch,
            mut changes,
        } => {
            patch.phone_number = None;
            changes.retain(|c| c.field != Field::PhoneNumber.as_str());
            if patch.is_empty() {
                Action::Unchanged { id }
            } else {
                Action::Update { id, patch, changes }
            }
        }
        other => other,
    }
}

fn skip(id: Option<u64>, why: &str) -> Action {
    Action::Skip {
        id,
        reason: RowError::new(ErrorCode::PolicyRejected, None, why),
    }
}

/// The body of the create that makes the contact the row describes.
pub fn new_contact(draft: &ContactDraft) -> NewContact {
    let mut n = NewContact::default();
    for f in Field::scalars() {
        if let Some(v) = draft.scalar(f) {
            n.set_scalar(f, v);
        }
    }
    for f in Field::attribute_maps() {
        if let (Some(to), Some(from)) = (n.attributes_mut(f), draft.attributes(f)) {
            to.clone_from(from);
        }
    }
    n
}

/// The patch that makes `stored` say what the row says, and the changes it makes. Only the
/// fields the row sets are compared; attribute keys the row does not set (server-added ones such
/// as `last_avatar_sync_at`) are ignored, since the server merges attribute objects.
pub fn diff(draft: &ContactDraft, stored: &Contact) -> (ContactPatch, Vec<Change>) {
    let mut d = Diff {
        stored,
        patch: ContactPatch::default(),
        changes: Vec::new(),
    };
    for f in Field::scalars() {
        if let Some(want) = draft.scalar(f) {
            d.write(f, want);
        }
    }
    for &f in &draft.clear {
        d.clear(f);
    }
    for f in Field::attribute_maps() {
        if let Some(want) = draft.attributes(f) {
            d.merge(f, want);
        }
    }
    (d.patch, d.changes)
}

/// A diff being built: the patch and the changes it records, against one stored contact.
struct Diff<'a> {
    stored: &'a Contact,
    patch: ContactPatch,
    changes: Vec<Change>,
}

impl Diff<'_> {
    /// The row sets scalar `f` to `want`: written when the stored value differs (emails compared
    /// in lower case).
    fn write(&mut self, f: Field, want: Scalar) {
        let have = self.stored.scalar(f).compared(f);
        let after = want.to_json();
        if have != after {
            self.patch.set_scalar(f, want);
            self.changes.push(Change {
                field: f.as_str().into(),
                before: have,
                after,
            });
        }
    }

    /// `blank: clear`: a blank cell clears a stored value (text becomes null, never an empty
    /// identifier; a boolean becomes false), unless the row also writes the field.
    fn clear(&mut self, f: Field) {
        let have = self.stored.scalar(f);
        if self.patch.scalar(f).is_some() || !have.is_set() {
            return;
        }
        self.patch.set_scalar(f, Scalar::Null);
        let after = self.patch.scalar(f).map_or(Value::Null, Scalar::to_json);
        self.changes.push(Change {
            field: f.as_str().into(),
            before: have.to_json(),
            after,
        });
    }

    /// The attribute keys of `f` whose value differs (a null clears a stored value; a null for a
    /// key the contact does not have changes nothing).
    fn merge(&mut self, f: Field, want: &Map<String, Value>) {
        let have = self.stored.attributes(f);
        let mut out = Map::new();
        for (k, v) in want {
            let h = have.and_then(|m| m.get(k)).unwrap_or(&Value::Null);
            if h != v {
                out.insert(k.clone(), v.clone());
                self.changes.push(Change {
                    field: format!("{f}.{k}"),
                    before: h.clone(),
                    after: v.clone(),
                });
            }
        }
        if let Some(slot) = self.patch.attributes_mut(f) {
            *slot = (!out.is_empty()).then_some(out);
        }
    }
}

/// `stored` with `patch` applied the way the server applies it (attribute objects shallow-merged):
/// what a dry run assumes the contact becomes.
pub fn apply_patch(stored: &Contact, patch: &ContactPatch) -> Contact {
    let mut c = stored.clone();
    for f in Field::scalars() {
        if let Some(v) = patch.scalar(f) {
            c.set_scalar(f, v);
        }
    }
    for f in Field::attribute_maps() {
        if let (Some(to), Some(m)) = (c.attributes_mut(f), patch.attributes(f)) {
            to.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    c
}

/// The contact a create would make (a dry run gives it a placeholder id).
pub fn created(id: u64, new: &NewContact) -> Contact {
    let mut c: Contact = serde_json::from_value(json!({ "id": id })).expect("minimal contact");
    for f in Field::scalars() {
        c.set_scalar(f, new.scalar(f).unwrap_or(Scalar::Null));
    }
    for f in Field::attribute_maps() {
        if let (Some(to), Some(from)) = (c.attributes_mut(f), new.attributes(f)) {
            to.clone_from(from);
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalise::{Email, Identifier};

    fn stored(v: Value) -> Contact {
        serde_json::from_value(v).unwrap()
    }

    fn draft(email: &str, ident: Option<&str>, name: &str) -> ContactDraft {
        ContactDraft {
            name: Some(name.into()),
            email: Some(Email::parse(email).unwrap()),
            identifier: ident.map(|i| Identifier::parse(i).unwrap().unwrap()),
            ..ContactDraft::default()
        }
    }

    #[test]
    fn only_differing_fields_are_patched_and_server_keys_are_ignored() {
        let c = stored(json!({"id": 7, "name": "Ann", "email": "ann@x.com",
            "additional_attributes": {"city": "Lyon", "avatar_url_hash": "abc"},
            "custom_attributes": {"plan": "free"}}));
        let mut d = draft("ann@x.com", None, "Ann");
        d.additional_attributes.insert("city".into(), json!("Lyon"));
        d.custom_attributes.insert("plan".into(), json!("gold"));
        let (p, ch) = diff(&d, &c);
        assert_eq!(p.name, None);
        assert_eq!(p.email, None);
        assert_eq!(p.additional_attributes, None);
        assert_eq!(p.custom_attributes.unwrap()["plan"], json!("gold"));
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].field, "custom_attributes.plan");
        assert_eq!(ch[0].before, json!("free"));
    }

    #[test]
    fn blank_keeps_unless_clear() {
        let c = stored(json!({"id": 7, "name": "Ann", "phone_number": "+14155552671"}));
        let d = ContactDraft {
            name: Some("Ann".into()),
            ..ContactDraft::default()
        };
        assert!(diff(&d, &c).0.is_empty());
        let d = ContactDraft {
            clear: vec![Field::PhoneNumber],
            ..d
        };
        let (p, ch) = diff(&d, &c);
        assert_eq!(p.phone_number, Some(None));
        assert_eq!(ch[0].before, json!("+14155552671"));
    }

    #[test]
    fn decisions_follow_matches_and_policies() {
        let mut k = Known::new();
        k.insert(stored(json!({"id": 1, "email": "a@x.com", "name": "A"})));
        k.insert(stored(json!({"id": 2, "identifier": "B2", "name": "B"})));
        let keys = |d: &ContactDraft| super::super::lookup::all_keys(d);

        let d = draft("new@x.com", None, "N");
        assert_eq!(decide(&d, &keys(&d), &k, UPSERT).name(), "create");
        let d = draft("A@X.com", None, "A");
        assert_eq!(
            decide(&d, &keys(&d), &k, UPSERT),
            Action::Unchanged { id: 1 }
        );
        let d = draft("a@x.com", None, "A2");
        assert_eq!(decide(&d, &keys(&d), &k, UPSERT).name(), "update");
        // Email → contact 1, identifier → contact 2: a conflict.
        let d = draft("a@x.com", Some("B2"), "A");
        match decide(&d, &keys(&d), &k, UPSERT) {
            Action::Fail { error, .. } => assert_eq!(error.code, ErrorCode::Conflict),
            other => panic!("{other:?}"),
        }
        let skip_existing = Policy {
            existing: ExistingPolicy::Skip,
            ..UPSERT
        };
        let d = draft("a@x.com", None, "A2");
        assert_eq!(decide(&d, &keys(&d), &k, skip_existing).name(), "skip");
        let fail_existing = Policy {
            existing: ExistingPolicy::Fail,
            ..UPSERT
        };
        assert_eq!(decide(&d, &keys(&d), &k, fail_existing).name(), "fail");
        let update_only = Policy {
            mode: Mode::UpdateOnly,
            ..UPSERT
        };
        let d = draft("new@x.com", None, "N");
        assert_eq!(decide(&d, &keys(&d), &k, update_only).name(), "skip");
        let create_only = Policy {
            mode: Mode::CreateOnly,
            ..UPSERT
        };
        let d = draft("a@x.com", None, "A2");
        assert_eq!(decide(&d, &keys(&d), &k, create_only).name(), "skip");
    }

    #[test]
    fn an_email_match_with_another_identifier_is_a_conflict_unless_blank_or_allowed() {
        let mut k = Known::new();
        k.insert(stored(
            json!({"id": 1, "email": "a@x.com", "identifier": "A1"}),
        ));
        k.insert(stored(json!({"id": 2, "email": "b@x.com"})));
        let keys = |d: &ContactDraft| super::super::lookup::all_keys(d);
        let d = draft("a@x.com", Some("A2"), "A");
        match decide(&d, &keys(&d), &k, UPSERT) {
            Action::Fail { id, error } => {
                assert_eq!((id, error.code), (Some(1), ErrorCode::IdentifierConflict));
                assert!(error.message.contains("\"A1\"") && error.message.contains("\"A2\""));
            }
            other => panic!("{other:?}"),
        }
        let overwrite = Policy {
            identity: IdentityPolicy {
                identifier_change: IdentifierChange::Overwrite,
                ..UPSERT.identity
            },
            ..UPSERT
        };
        assert_eq!(decide(&d, &keys(&d), &k, overwrite).name(), "update");
        // Blank on the row, blank on the contact: no conflict.
        let d = draft("a@x.com", None, "A");
        assert_eq!(decide(&d, &keys(&d), &k, UPSERT).name(), "update");
        let d = draft("b@x.com", Some("B9"), "B");
        assert_eq!(decide(&d, &keys(&d), &k, UPSERT).name(), "update");
    }

    #[test]
    fn a_phone_held_by_another_contact_is_left_out_or_fails_the_row() {
        use crate::normalise::PhoneE164;
        let mut k = Known::new();
        k.insert(stored(
            json!({"id": 5, "email": "h@x.com", "phone_number": "+33612345678"}),
        ));
        k.insert(stored(json!({"id": 6, "email": "u@x.com", "name": "U"})));
        let with_phone = |email: &str, name: &str| ContactDraft {
            phone_number: PhoneE164::parse("+33612345678", None, false).ok(),
            ..draft(email, None, name)
        };
        let keys = |d: &ContactDraft| {
            use crate::mapping::MatchKey;
            super::super::lookup::match_keys(&[MatchKey::Email, MatchKey::Identifier], d)
        };
        // The row decided, then its phone checked (`refused`: the server said it is taken).
        let in_use = |d: &ContactDraft, p: Policy, refused: bool| {
            phone_in_use(decide(d, &keys(d), &k, p), d, &k, p, (refused, &|_| None))
        };
        let d = with_phone("new@x.com", "N");
        let (a, w) = in_use(&d, UPSERT, false);
        match a {
            Action::Create(n) => assert_eq!(n.phone_number, None),
            other => panic!("{other:?}"),
        }
        let w = w.unwrap();
        assert_eq!(
            (w.code, w.original.as_str()),
            (ErrorCode::PhoneInUse, "+33612345678")
        );
        assert!(w.message.contains("contact 5"), "{}", w.message);
        // An update that only wanted the phone has nothing left to do.
        let d = with_phone("u@x.com", "U");
        let (a, _) = in_use(&d, UPSERT, false);
        assert_eq!(a, Action::Unchanged { id: 6 });
        // The holder itself keeps it; a phone nobody is known to hold, unless refused, too.
        let d = with_phone("h@x.com", "H");
        let (a, w) = in_use(&d, UPSERT, false);
        assert!(w.is_none() && a.name() == "update", "{a:?}");
        let mut free = with_phone("new@x.com", "N");
        free.phone_number = PhoneE164::parse("+33612345679", None, false).ok();
        assert!(in_use(&free, UPSERT, false).1.is_none());
        let (_, w) = in_use(&free, UPSERT, true);
        assert!(w.unwrap().message.contains("refused"));
        let fail = Policy {
            identity: IdentityPolicy {
                phone_in_use: PhoneInUse::Fail,
                ..UPSERT.identity
            },
            ..UPSERT
        };
        let d = with_phone("new@x.com", "N");
        match in_use(&d, fail, false) {
            (Action::Fail { error, .. }, None) => assert_eq!(error.code, ErrorCode::PhoneInUse),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_patch_applied_locally_then_diffed_is_empty() {
        let c = stored(json!({"id": 3, "name": "Old", "custom_attributes": {"a": 1, "b": 2}}));
        let mut d = draft("c@x.com", Some("C3"), "New");
        d.custom_attributes.insert("a".into(), json!(5));
        let (p, _) = diff(&d, &c);
        let after = apply_patch(&c, &p);
        assert_eq!(after.custom_attributes["b"], json!(2));
        assert!(diff(&d, &after).0.is_empty());
    }
}
