//! What one row should do to the account, decided from the row and what is known of the stored
//! contact: create, update with only the fields that differ, nothing (`unchanged`), skip or fail
//! (the mapping's `existing`/`missing` policies and `--mode`), or fail as a conflict when two of
//! its keys match two different contacts. Pure functions: no I/O, table-tested below.
use serde_json::{Map, Value, json};

use crate::api::{Contact, ContactPatch, NewContact};
use crate::mapping::{ExistingPolicy, MissingPolicy};
use crate::model::{ContactDraft, ErrorCode, Field, RowError};

use super::lookup::{Key, Known};

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
}

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
pub fn matched<'a>(keys: &[Key], known: &'a Known) -> Result<Option<&'a Contact>, RowError> {
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
        Key::Email(_) => "email",
        Key::Identifier(_) => "identifier",
    }
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
                MissingPolicy::Create => Action::Create(NewContact::from(draft)),
            }
        }
        Some(c) => {
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

fn skip(id: Option<u64>, why: &str) -> Action {
    Action::Skip {
        id,
        reason: RowError::new(ErrorCode::PolicyRejected, None, why),
    }
}

fn opt_json(v: Option<&str>) -> Value {
    v.map_or(Value::Null, |s| json!(s))
}

/// The patch that makes `stored` say what the row says, and the changes it makes. Only the
/// fields the row sets are compared; attribute keys the row does not set (server-added ones such
/// as `last_avatar_sync_at`) are ignored, since the server merges attribute objects.
pub fn diff(draft: &ContactDraft, stored: &Contact) -> (ContactPatch, Vec<Change>) {
    let mut p = ContactPatch::default();
    let mut changes = Vec::new();
    let mut text =
        |name: &str, want: Option<&str>, have: Option<&str>, slot: &mut Option<Option<String>>| {
            if let Some(w) = want
                && have != Some(w)
            {
                *slot = Some(Some(w.to_owned()));
                changes.push(Change {
                    field: name.into(),
                    before: opt_json(have),
                    after: json!(w),
                });
            }
        };
    text(
        "name",
        draft.name.as_deref(),
        stored.name.as_deref(),
        &mut p.name,
    );
    let stored_email = stored.email.as_deref().map(str::to_lowercase);
    text(
        "email",
        draft.email.as_ref().map(|e| e.as_str()),
        stored_email.as_deref(),
        &mut p.email,
    );
    text(
        "phone_number",
        draft.phone_number.as_ref().map(|x| x.as_str()),
        stored.phone_number.as_deref(),
        &mut p.phone_number,
    );
    text(
        "identifier",
        draft.identifier.as_ref().map(|x| x.as_str()),
        stored.identifier.as_deref(),
        &mut p.identifier,
    );
    if let Some(b) = draft.blocked
        && b != stored.blocked
    {
        p.blocked = Some(b);
        changes.push(Change {
            field: "blocked".into(),
            before: json!(stored.blocked),
            after: json!(b),
        });
    }
    // `blank: clear`: a blank cell clears a stored value (never an empty identifier: null).
    for f in &draft.clear {
        let (slot, have) = match f {
            Field::Name => (&mut p.name, stored.name.as_deref()),
            Field::Email => (&mut p.email, stored.email.as_deref()),
            Field::PhoneNumber => (&mut p.phone_number, stored.phone_number.as_deref()),
            Field::Identifier => (&mut p.identifier, stored.identifier.as_deref()),
            Field::Blocked => {
                if stored.blocked && p.blocked.is_none() {
                    p.blocked = Some(false);
                    changes.push(Change {
                        field: "blocked".into(),
                        before: json!(true),
                        after: json!(false),
                    });
                }
                continue;
            }
        };
        if slot.is_none() && have.is_some_and(|h| !h.is_empty()) {
            *slot = Some(None);
            changes.push(Change {
                field: f.as_str().into(),
                before: opt_json(have),
                after: Value::Null,
            });
        }
    }
    p.custom_attributes = attrs(
        "custom_attributes",
        &draft.custom_attributes,
        &stored.custom_attributes,
        &mut changes,
    );
    p.additional_attributes = attrs(
        "additional_attributes",
        &draft.additional_attributes,
        &stored.additional_attributes,
        &mut changes,
    );
    (p, changes)
}

/// The attribute keys whose value differs (a null clears a stored value; a null for a key the
/// contact does not have changes nothing).
fn attrs(
    prefix: &str,
    want: &Map<String, Value>,
    have: &Map<String, Value>,
    changes: &mut Vec<Change>,
) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    for (k, v) in want {
        let h = have.get(k).unwrap_or(&Value::Null);
        if h != v {
            out.insert(k.clone(), v.clone());
            changes.push(Change {
                field: format!("{prefix}.{k}"),
                before: h.clone(),
                after: v.clone(),
            });
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `stored` with `patch` applied the way the server applies it (attribute objects shallow-merged):
/// what a dry run assumes the contact becomes.
pub fn apply_patch(stored: &Contact, patch: &ContactPatch) -> Contact {
    let mut c = stored.clone();
    if let Some(v) = &patch.name {
        c.name = v.clone();
    }
    if let Some(v) = &patch.email {
        c.email = v.clone();
    }
    if let Some(v) = &patch.phone_number {
        c.phone_number = v.clone();
    }
    if let Some(v) = &patch.identifier {
        c.identifier = v.clone();
    }
    if let Some(b) = patch.blocked {
        c.blocked = b;
    }
    if let Some(m) = &patch.custom_attributes {
        c.custom_attributes
            .extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(m) = &patch.additional_attributes {
        c.additional_attributes
            .extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    c
}

/// The contact a create would make (a dry run gives it a placeholder id).
pub fn created(id: u64, new: &NewContact) -> Contact {
    let mut c: Contact = serde_json::from_value(json!({ "id": id })).expect("minimal contact");
    c.name = new.name.clone();
    c.email = new.email.clone();
    c.phone_number = new.phone_number.clone();
    c.identifier = new.identifier.clone();
    c.blocked = new.blocked.unwrap_or(false);
    c.custom_attributes = new.custom_attributes.clone();
    c.additional_attributes = new.additional_attributes.clone();
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

    const UPSERT: Policy = Policy {
        existing: ExistingPolicy::Update,
        missing: MissingPolicy::Create,
        mode: Mode::Upsert,
    };

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
