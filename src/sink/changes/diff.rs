//! The comparison of two snapshots: a merge-join of two sidecars sorted by id, streaming (one
//! line of each in memory). Equal hashes mean an unchanged contact and nothing is parsed; only
//! the contacts in the change set are.
use std::cmp::Ordering;
use std::io::Read;

use serde::{Deserialize, Serialize};

use super::snapshot::{SnapshotReader, changed_fields, fields};
use crate::api::Contact;

/// What happened to a contact between two exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Added,
    Changed,
    Removed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Added => "added",
            Kind::Changed => "changed",
            Kind::Removed => "removed",
        }
    }
}

/// One row of the change set: the contact's current values (its last known ones when removed).
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: Kind,
    /// The compared fields that differ, sorted (empty when added or removed).
    pub fields: Vec<String>,
    pub contact: Contact,
}

/// How many contacts of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
}

/// The changes from the sidecar `old` to the sidecar `new`, in id order.
pub struct Diff<A: Read, B: Read> {
    old: SnapshotReader<A>,
    new: SnapshotReader<B>,
    /// Whether each reader is on a line (None before the first read).
    at: Option<(bool, bool)>,
    counts: Counts,
}

impl<A: Read, B: Read> Diff<A, B> {
    pub fn new(old: SnapshotReader<A>, new: SnapshotReader<B>) -> Diff<A, B> {
        Diff {
            old,
            new,
            at: None,
            counts: Counts::default(),
        }
    }

    /// The changes so far (all of them once the iterator is done).
    pub fn counts(&self) -> Counts {
        self.counts
    }

    fn step(&mut self) -> anyhow::Result<Option<Change>> {
        let (mut a, mut b) = match self.at {
            Some(at) => at,
            None => (self.old.advance()?, self.new.advance()?),
        };
        let out = loop {
            let ord = match (a, b) {
                (false, false) => break None,
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                (true, true) => self.old.id().cmp(&self.new.id()),
            };
            match ord {
                Ordering::Less => {
                    let contact = self.old.contact()?;
                    a = self.old.advance()?;
                    self.counts.removed += 1;
                    break Some(change(Kind::Removed, vec![], contact));
                }
                Ordering::Greater => {
                    let contact = self.new.contact()?;
                    b = self.new.advance()?;
                    self.counts.added += 1;
                    break Some(change(Kind::Added, vec![], contact));
                }
                Ordering::Equal if self.old.hash() == self.new.hash() => {
                    (a, b) = (self.old.advance()?, self.new.advance()?);
                }
                Ordering::Equal => {
                    let (before, now) = (self.old.contact()?, self.new.contact()?);
                    (a, b) = (self.old.advance()?, self.new.advance()?);
                    self.counts.changed += 1;
                    let f = changed_fields(&fields(&before), &fields(&now));
                    break Some(change(Kind::Changed, f, now));
                }
            }
        };
        self.at = Some((a, b));
        Ok(out)
    }
}

fn change(kind: Kind, fields: Vec<String>, contact: Contact) -> Change {
    Change {
        kind,
        fields,
        contact,
    }
}

impl<A: Read, B: Read> Iterator for Diff<A, B> {
    type Item = anyhow::Result<Change>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step().transpose()
    }
}

/// Read a whole sidecar (decompress, split every line, check the order) without comparing: the
/// floor the comparison is measured against. The number of contacts.
pub fn read_all(r: impl Read, what: &str) -> anyhow::Result<u64> {
    let mut s = SnapshotReader::new(r, what);
    let mut n = 0;
    while s.advance()? {
        n += u64::from(!s.hash().is_empty());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::changes::snapshot::SnapshotWriter;
    use serde_json::json;

    fn sidecar(contacts: &[serde_json::Value]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SnapshotWriter::new(dir.path()).with_run_size(2);
        for c in contacts {
            w.add(&serde_json::from_value(c.clone()).unwrap()).unwrap();
        }
        let mut out = vec![];
        w.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn the_join_finds_added_changed_and_removed_in_id_order() {
        let old = sidecar(&[
            json!({"id": 1, "email": "a@x"}),
            json!({"id": 2, "email": "b@x", "custom_attributes": {"plan": "gold"}}),
            json!({"id": 3, "email": "c@x"}),
        ]);
        let new = sidecar(&[
            json!({"id": 4, "email": "d@x"}),
            json!({"id": 2, "email": "b@x", "custom_attributes": {"plan": "free"}}),
            json!({"id": 1, "email": "a@x"}),
        ]);
        let mut d = Diff::new(
            SnapshotReader::new(&old[..], "old"),
            SnapshotReader::new(&new[..], "new"),
        );
        let rows: Vec<Change> = d.by_ref().map(Result::unwrap).collect();
        let got: Vec<(u64, Kind, Vec<String>)> = rows
            .iter()
            .map(|c| (c.contact.id, c.kind, c.fields.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (2, Kind::Changed, vec!["custom_attributes.plan".to_string()]),
                (3, Kind::Removed, vec![]),
                (4, Kind::Added, vec![]),
            ]
        );
        assert_eq!(
            rows[1].contact.email.as_deref(),
            Some("c@x"),
            "last known values"
        );
        let c = d.counts();
        assert_eq!((c.added, c.changed, c.removed), (1, 1, 1));
        assert_eq!(read_all(&new[..], "new").unwrap(), 3);
    }
}
