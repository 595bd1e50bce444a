//! What `revert` undoes, read from an import's journal, and what one contact's revert should do:
//! [`targets`] folds the journal into one [`Target`] per contact (created → delete; updated →
//! the earliest `before` and the latest `after` of each field, and the notes the import added),
//! [`plan_restore`] compares the contact as it is now with them and builds the one PATCH that
//! restores it and the custom attribute keys to remove.
//!
//! Decisions (documented in the command's help): a created contact is always deleted (it did not
//! exist before the import, whatever happened to it since); an updated contact whose current
//! value of a field the import wrote is neither the `after` nor the `before` value was changed by
//! someone else, and is skipped unless `--force`. Attribute keys whose `before` is null did not
//! exist before the import: custom attribute keys are removed (`destroy_custom_attributes`);
//! additional attribute keys cannot be removed by the API (updates merge), so they are set to
//! `null` and listed.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use crate::api::{Contact, ContactPatch};
use crate::model::{Field, FieldKind, Scalar};
use crate::pipeline::journal::{Entry, Op};

/// What the import did to one contact.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Created {
        id: u64,
    },
    Updated {
        id: u64,
        /// Field → value before the import's first update of it.
        before: Map<String, Value>,
        /// Field → value the import's last update of it wrote.
        after: Map<String, Value>,
        /// The notes the import added to it (filled by [`attach_notes`]).
        notes: Vec<AddedNote>,
    },
}

impl Target {
    pub fn id(&self) -> u64 {
        match self {
            Target::Created { id } | Target::Updated { id, .. } => *id,
        }
    }
}

/// The import journal's entries (a line cut short by a kill is ignored).
pub fn read_entries(path: &Path) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the import journal", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(line) {
            Ok(e) => out.push(e),
            Err(err) if err.is_eof() => {}
            Err(err) => anyhow::bail!(
                "{}: line {}: not a journal entry: {err}",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(out)
}

/// One target per contact, in journal order. A contact the import created and then updated
/// (a later row of the same file) is only deleted.
pub fn targets(entries: &[Entry]) -> Vec<Target> {
    let mut order: Vec<u64> = Vec::new();
    let mut by_id: BTreeMap<u64, Target> = BTreeMap::new();
    for e in entries {
        let Some(id) = e.contact_id else { continue };
        match e.op {
            Op::Create => {
                if !by_id.contains_key(&id) {
                    order.push(id);
                }
                by_id.insert(id, Target::Created { id });
            }
            // A row that changed no field may still have added a note to a contact.
            Op::Update | Op::Note => {
                let t = by_id.entry(id).or_insert_with(|| {
                    order.push(id);
                    Target::Updated {
                        id,
                        before: Map::new(),
                        after: Map::new(),
                        notes: Vec::new(),
                    }
                });
                if let Target::Updated { before, after, .. } = t {
                    for (k, v) in e.before.iter().flatten() {
                        before.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    for (k, v) in e.after.iter().flatten() {
                        after.insert(k.clone(), v.clone());
                    }
                }
            }
            _ => {}
        }
    }
    order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .collect()
}

/// A note the import added (a `note` line of its journal), as `notes.csv` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AddedNote {
    pub contact_id: u64,
    /// The note's id on the server (absent for a note whose outcome was unknown and that was
    /// found on the contact afterwards).
    pub note_id: Option<u64>,
    /// The source line of the row that added it, and the note's number in the mapping (1-based).
    pub row: u64,
    pub note: usize,
    /// `deleted_with_contact` (the import created the contact: revert deletes it), `to_delete`
    /// (revert deletes it by its id) or `left` (its id is unknown: a journal of an older version).
    pub fate: &'static str,
}

impl AddedNote {
    /// How `results.csv` names the note when it is left.
    pub fn label(&self) -> String {
        match self.note_id {
            Some(id) => format!("note {id}"),
            None => format!("note {} of line {} (id unknown)", self.note, self.row),
        }
    }
}

/// The notes the import added, in journal order, each once.
pub fn added_notes(entries: &[Entry], targets: &[Target]) -> Vec<AddedNote> {
    let created: std::collections::HashSet<u64> = targets
        .iter()
        .filter(|t| matches!(t, Target::Created { .. }))
        .map(Target::id)
        .collect();
    let mut seen = std::collections::HashSet::new();
    entries
        .iter()
        .filter(|e| e.op == Op::Note)
        .filter_map(|e| Some((e.contact_id?, e)))
        .filter(|(id, e)| seen.insert((*id, e.row, e.hash.as_str(), e.note)))
        .map(|(contact_id, e)| AddedNote {
            contact_id,
            note_id: e.note_id,
            row: e.row,
            note: e.note.map_or(0, |n| n + 1),
            fate: match (created.contains(&contact_id), e.note_id) {
                (true, _) => "deleted_with_contact",
                (false, Some(_)) => "to_delete",
                (false, None) => "left",
            },
        })
        .collect()
}

/// Give each updated target the notes the import added to it.
pub fn attach_notes(targets: &mut [Target], notes: &[AddedNote]) {
    for t in targets {
        if let Target::Updated {
            id, notes: mine, ..
        } = t
        {
            mine.extend(notes.iter().filter(|n| n.contact_id == *id).cloned());
        }
    }
}

/// Source lines whose create began but has no journaled outcome (the import was killed during
/// it): the contact may exist with an id revert cannot know. `import --resume` settles them.
pub fn unsettled_creates(entries: &[Entry]) -> Vec<u64> {
    let mut begun: BTreeMap<(u64, &str), bool> = BTreeMap::new();
    for e in entries {
        let k = (e.row, e.hash.as_str());
        match e.op {
            Op::Begin if e.intent == Some(Op::Create) => {
                begun.entry(k).or_insert(false);
            }
            Op::Create | Op::Update => {
                begun.insert(k, true);
            }
            _ => {}
        }
    }
    begun
        .into_iter()
        .filter(|(_, settled)| !settled)
        .map(|((row, _), _)| row)
        .collect()
}

/// A field name as the journal writes it: a scalar field (`name`) or one key of an attribute
/// object (`custom_attributes.plan`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum JournalField<'a> {
    Scalar(Field),
    Attribute(Field, &'a str),
}

impl<'a> JournalField<'a> {
    /// `None` for a name that is no field of the table.
    fn parse(name: &'a str) -> Option<JournalField<'a>> {
        match name.split_once('.') {
            Some((object, key)) => Field::from_name(object)
                .filter(|f| !f.kind().is_scalar())
                .map(|f| JournalField::Attribute(f, key)),
            None => Field::from_name(name)
                .filter(|f| f.kind().is_scalar())
                .map(JournalField::Scalar),
        }
    }

    /// The value the field has in `c`, as the journal writes it (null for an unknown name).
    fn current(field: Option<Self>, c: &Contact) -> Value {
        match field {
            Some(JournalField::Scalar(f)) => c.scalar(f).compared(f),
            Some(JournalField::Attribute(f, key)) => c
                .attributes(f)
                .and_then(|m| m.get(key))
                .cloned()
                .unwrap_or(Value::Null),
            None => Value::Null,
        }
    }

    /// Whether `a` and `b` are the same value of the field (emails ignore ASCII case).
    fn same(field: Option<Self>, a: &Value, b: &Value) -> bool {
        match (field, a, b) {
            (Some(JournalField::Scalar(f)), Value::String(x), Value::String(y))
                if f.kind() == FieldKind::Email =>
            {
                x.eq_ignore_ascii_case(y)
            }
            _ => a == b,
        }
    }

    /// Make `patch` write `was` back to the field.
    fn restore(field: Option<Self>, patch: &mut ContactPatch, was: &Value) {
        match field {
            Some(JournalField::Scalar(f)) => patch.set_scalar(f, Scalar::from_json(was)),
            Some(JournalField::Attribute(f, key)) => {
                if let Some(slot) = patch.attributes_mut(f) {
                    slot.get_or_insert_with(Map::new)
                        .insert(key.to_owned(), was.clone());
                }
            }
            None => {}
        }
    }
}

/// What to do with an updated contact.
#[derive(Debug, Clone, PartialEq)]
pub struct Restore {
    /// The PATCH that restores it (empty: nothing to patch).
    pub patch: ContactPatch,
    /// Fields changed by someone else after the import (now neither `after` nor `before`).
    pub changed_since: Vec<String>,
    /// Custom attribute keys the import added that the contact still has (bare keys), for
    /// `destroy_custom_attributes`.
    pub remove_custom: Vec<String>,
    /// Additional attribute keys the import added (`additional_attributes.k`): the API cannot
    /// remove them, so they are `null` once restored (the PATCH nulls those still set).
    pub nulled: Vec<String>,
}

/// Compare `now` with the journal's values and build the restoring PATCH.
pub fn plan_restore(
    now: &Contact,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Restore {
    let mut r = Restore {
        patch: ContactPatch::default(),
        changed_since: Vec::new(),
        remove_custom: Vec::new(),
        nulled: Vec::new(),
    };
    for (field, was) in before {
        let f = JournalField::parse(field);
        let is = JournalField::current(f, now);
        let wrote = after.get(field).unwrap_or(&Value::Null);
        let same = |a: &Value, b: &Value| JournalField::same(f, a, b);
        if let Some(JournalField::Attribute(object, key)) = f
            && was.is_null()
        {
            if !is.is_null() && !same(&is, wrote) {
                r.changed_since.push(field.clone());
            }
            r.added_key(now, object, key, field);
            continue;
        }
        if same(&is, was) {
            continue;
        }
        if !same(&is, wrote) {
            r.changed_since.push(field.clone());
        }
        JournalField::restore(f, &mut r.patch, was);
    }
    r
}

impl Restore {
    /// An attribute key the import added to `now` (named `field` in the journal): a custom one
    /// still there is to be removed; an additional one is set to `null` if it has a value.
    fn added_key(&mut self, now: &Contact, object: Field, key: &str, field: &str) {
        let present = now.attributes(object).and_then(|m| m.get(key));
        match object {
            Field::CustomAttributes if present.is_some() => self.remove_custom.push(key.to_owned()),
            Field::CustomAttributes => {}
            _ => {
                if present.is_some_and(|v| !v.is_null()) {
                    let f = Some(JournalField::Attribute(object, key));
                    JournalField::restore(f, &mut self.patch, &Value::Null);
                }
                if present.is_some() {
                    self.nulled.push(field.to_owned());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contact(v: Value) -> Contact {
        serde_json::from_value(v).unwrap()
    }

    fn entry(op: Op, id: u64, before: Value, after: Value) -> Entry {
        let mut e = Entry::new(1, "h", op);
        e.contact_id = Some(id);
        e.before = before.as_object().cloned();
        e.after = after.as_object().cloned();
        e
    }

    #[test]
    fn targets_keep_the_earliest_before_and_a_create_wins() {
        let es = vec![
            entry(Op::Update, 4, json!({"name": "A"}), json!({"name": "B"})),
            entry(Op::Create, 9, json!(null), json!(null)),
            entry(Op::Update, 4, json!({"name": "B"}), json!({"name": "C"})),
            entry(Op::Update, 9, json!({"name": "X"}), json!({"name": "Y"})),
        ];
        let t = targets(&es);
        assert_eq!(t.len(), 2);
        assert_eq!(t[1], Target::Created { id: 9 });
        match &t[0] {
            Target::Updated { before, after, .. } => {
                assert_eq!(before["name"], "A");
                assert_eq!(after["name"], "C");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn added_notes_are_listed_once_with_their_fate() {
        let mut n1 = entry(Op::Note, 9, json!(null), json!(null));
        (n1.note, n1.note_id) = (Some(0), Some(71));
        let mut n2 = entry(Op::Note, 4, json!(null), json!(null));
        (n2.note, n2.note_id, n2.row) = (Some(1), Some(72), 3);
        let es = vec![
            entry(Op::Create, 9, json!(null), json!(null)),
            n1.clone(),
            n1, // a resumed run journaling the same note again
            entry(Op::Update, 4, json!({"name": "A"}), json!({"name": "B"})),
            n2,
        ];
        let notes = added_notes(&es, &targets(&es));
        assert_eq!(notes.len(), 2);
        assert_eq!((notes[0].contact_id, notes[0].note_id), (9, Some(71)));
        assert_eq!(notes[0].fate, "deleted_with_contact");
        assert_eq!(
            (notes[1].note, notes[1].fate, notes[1].row),
            (2, "to_delete", 3)
        );
        let mut ts = targets(&es);
        attach_notes(&mut ts, &notes);
        match &ts[1] {
            Target::Updated { id: 4, notes, .. } => assert_eq!(notes[0].note_id, Some(72)),
            other => panic!("{other:?}"),
        }
        // A note whose id the journal does not know is left, and named so.
        let mut n3 = entry(Op::Note, 5, json!(null), json!(null));
        (n3.note, n3.row) = (Some(0), 8);
        let notes = added_notes(&[n3.clone()], &targets(&[n3.clone()]));
        assert_eq!(notes[0].fate, "left");
        assert_eq!(notes[0].label(), "note 1 of line 8 (id unknown)");
        // A note on a contact the row did not update makes it a target.
        assert!(matches!(targets(&[n3])[0], Target::Updated { id: 5, .. }));
    }

    #[test]
    fn a_create_begun_without_an_outcome_is_unsettled() {
        let mut b = Entry::new(5, "h", Op::Begin);
        b.intent = Some(Op::Create);
        let mut b2 = Entry::new(6, "h", Op::Begin);
        b2.intent = Some(Op::Create);
        let c = entry(Op::Create, 3, json!(null), json!(null));
        let mut c6 = c.clone();
        c6.row = 6;
        assert_eq!(unsettled_creates(&[b, b2, c6]), vec![5]);
    }

    #[test]
    fn restore_patches_changed_fields_and_reports_added_keys() {
        let now = contact(json!({"id": 1, "name": "New", "email": "A@x.com",
            "custom_attributes": {"plan": "gold", "tier": "2"},
            "additional_attributes": {"city": "Oslo", "zip": null}}));
        let before = json!({"name": "Old", "email": "a@x.com", "custom_attributes.plan": "free",
            "custom_attributes.tier": null, "additional_attributes.city": null,
            "additional_attributes.zip": null, "additional_attributes.gone": null})
        .as_object()
        .cloned()
        .unwrap();
        let after = json!({"name": "New", "email": "a@x.com", "custom_attributes.plan": "gold",
            "custom_attributes.tier": "2", "additional_attributes.city": "Oslo",
            "additional_attributes.zip": "1", "additional_attributes.gone": "x"})
        .as_object()
        .cloned()
        .unwrap();
        let r = plan_restore(&now, &before, &after);
        assert!(r.changed_since.is_empty());
        assert_eq!(r.remove_custom, vec!["tier".to_owned()]);
        // City is nulled by the PATCH, zip is null already, gone is not on the contact at all.
        assert_eq!(
            r.nulled,
            ["additional_attributes.city", "additional_attributes.zip"]
        );
        assert_eq!(r.patch.name, Some(Some("Old".into())));
        assert_eq!(r.patch.email, None);
        assert_eq!(r.patch.custom_attributes.unwrap()["plan"], "free");
        let additional = r.patch.additional_attributes.unwrap();
        assert_eq!(
            additional,
            json!({"city": null}).as_object().cloned().unwrap()
        );
        // Someone else renamed it since.
        let later =
            contact(json!({"id": 1, "name": "Other", "custom_attributes": {"plan": "gold"}}));
        let r = plan_restore(&later, &before, &after);
        assert_eq!(r.changed_since, vec!["email".to_owned(), "name".to_owned()]);
    }
}
