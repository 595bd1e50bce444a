//! In-file duplicates: a row whose normalised email (already lower-cased by [`Email`]) or
//! identifier (case-sensitive) was seen on an earlier row of the same file.
//!
//! The tracker must hold one entry per distinct key of a million-row file, so it keeps a
//! fingerprint of the key, not the key: a 64-bit hash is the table key and a second, independent
//! 32-bit hash is stored beside the line number. Two different keys are taken for the same only if
//! both hashes agree (96 bits: for two million keys the odds of one false match are about 10⁻¹⁷),
//! and an entry costs 16 bytes instead of a `String` and its heap block.
//!
//! [`Email`]: crate::normalise::Email
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::mapping::{ContactDraft, MatchKey};

/// A key of this row that an earlier row already had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate {
    pub key: MatchKey,
    /// Line of the first row with this key.
    pub first_line: u64,
}

/// The fingerprints of a row's keys (email, identifier), computed wherever is convenient (the
/// mapping threads) and looked up in file order with [`DupeTracker::check_prints`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyPrints {
    email: Option<(u64, u32)>,
    identifier: Option<(u64, u32)>,
}

impl KeyPrints {
    pub fn of(draft: &ContactDraft) -> KeyPrints {
        KeyPrints {
            email: draft
                .email
                .as_ref()
                .map(|e| fingerprint(MatchKey::Email, e.as_str())),
            identifier: draft
                .identifier
                .as_ref()
                .map(|i| fingerprint(MatchKey::Identifier, i.as_str())),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    line: u32,
    check: u32,
}

/// The table key is already a hash: pass it through instead of hashing it again.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in so the hasher stays correct.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard = HashMap<u64, Seen, BuildHasherDefault<PassThrough>>;

/// Shards of the table, chosen by the top bits of the hash. A hash table grows by doubling, and
/// while it moves its entries the old and the new table are both alive: with one table that
/// transient is half the whole table again at the worst moment; with 256 shards only one small
/// shard grows at a time, so the peak stays close to the steady size.
const SHARDS: usize = 256;

/// Remembers the first line of every email and identifier seen; feed it the rows in file order.
pub struct DupeTracker {
    shards: Vec<Shard>,
    len: usize,
}

impl Default for DupeTracker {
    fn default() -> Self {
        DupeTracker {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            len: 0,
        }
    }
}

impl DupeTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Distinct keys remembered.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Record this row's keys; returns those an earlier row already had (email first, then
    /// identifier). Keys seen for the first time are remembered with this row's line.
    pub fn check(&mut self, line: u64, draft: &ContactDraft) -> Vec<Duplicate> {
        self.check_prints(line, &KeyPrints::of(draft))
    }

    /// [`check`](Self::check) with the fingerprints already computed.
    pub fn check_prints(&mut self, line: u64, prints: &KeyPrints) -> Vec<Duplicate> {
        let mut dupes = Vec::new();
        if let Some(p) = prints.email {
            self.one(MatchKey::Email, p, line, &mut dupes);
        }
        if let Some(p) = prints.identifier {
            self.one(MatchKey::Identifier, p, line, &mut dupes);
        }
        dupes
    }

    fn one(&mut self, key: MatchKey, (h, check): (u64, u32), line: u64, out: &mut Vec<Duplicate>) {
        // Lines beyond 4 billion (a file of >100 GB) are remembered as u32::MAX.
        let line32 = u32::try_from(line).unwrap_or(u32::MAX);
        let shard = &mut self.shards[(h >> 56) as usize % SHARDS];
        match shard.get(&h) {
            Some(s) if s.check == check => out.push(Duplicate {
                key,
                first_line: u64::from(s.line),
            }),
            // Same 64-bit hash, different key: vanishingly rare; the later key is not tracked
            // rather than reported falsely.
            Some(_) => {}
            None => {
                shard.insert(
                    h,
                    Seen {
                        line: line32,
                        check,
                    },
                );
                self.len += 1;
            }
        }
    }
}

/// Two independent hashes of (key kind, value): SipHash with different leading tags.
fn fingerprint(key: MatchKey, value: &str) -> (u64, u32) {
    let tag = match key {
        MatchKey::Email => b'e',
        MatchKey::Identifier => b'i',
        MatchKey::Phone => b'p',
    };
    tagged(tag, value)
}

fn tagged(tag: u8, value: &str) -> (u64, u32) {
    let mut a = std::hash::DefaultHasher::new();
    (tag, 0u8).hash(&mut a);
    value.hash(&mut a);
    let mut b = std::hash::DefaultHasher::new();
    (tag, 1u8).hash(&mut b);
    value.hash(&mut b);
    (a.finish(), b.finish() as u32)
}

/// The fingerprints of every unique value of a row: its email and identifier (as
/// [`KeyPrints`]) and its phone (unique on the server, so an ordering key too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowPrints {
    pub keys: KeyPrints,
    phone: Option<(u64, u32)>,
}

impl RowPrints {
    pub fn of(draft: &ContactDraft) -> RowPrints {
        RowPrints {
            keys: KeyPrints::of(draft),
            phone: draft
                .phone_number
                .as_ref()
                .map(|p| tagged(b'p', p.as_str().trim())),
        }
    }
}

/// What [`KeyIndex::hold`] says of a row's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// The first line of the file with one of the row's email or identifier (email first), as
    /// [`DupeTracker`] says it.
    pub duplicate_of: Option<u64>,
    /// The first line of the file with the row's phone, when an earlier row has it (phones are
    /// unique on the server: the later row is written without it).
    pub phone_of: Option<u64>,
    /// The latest earlier rows holding one of the row's keys (email, identifier or phone).
    pub earlier: Vec<u32>,
    /// Match keys (among `wanted`) seen for the first time.
    pub new_match_keys: u32,
}

#[derive(Debug, Clone, Copy)]
struct Holder {
    check: u32,
    first_line: u32,
    last_row: u32,
}

type HolderShard = HashMap<u64, Holder, BuildHasherDefault<PassThrough>>;

/// The first pass's memory of every distinct key of the file (16 bytes of table per key, in
/// shards like [`DupeTracker`]'s): the first line holding it (in-file duplicates) and the latest
/// row (so that a row knows whether a later one shares a key). Feed it the valid rows in file
/// order.
pub struct KeyIndex {
    shards: Vec<HolderShard>,
}

impl Default for KeyIndex {
    fn default() -> Self {
        KeyIndex {
            shards: (0..SHARDS).map(|_| HolderShard::default()).collect(),
        }
    }
}

impl KeyIndex {
    /// Row number `row` (at `line`) holds the keys `p`; `wanted`: the match keys counted as
    /// [`Held::new_match_keys`].
    pub fn hold(&mut self, row: u32, line: u64, p: &RowPrints, wanted: &[MatchKey]) -> Held {
        let mut held = Held::default();
        let keys = [
            (p.keys.email, Some(MatchKey::Email)),
            (p.keys.identifier, Some(MatchKey::Identifier)),
            (p.phone, None),
        ];
        for (print, kind) in keys {
            let Some((h, check)) = print else { continue };
            let shard = &mut self.shards[(h >> 56) as usize % SHARDS];
            match shard.get_mut(&h) {
                Some(s) if s.check == check => {
                    match kind {
                        Some(_) => held.duplicate_of.get_or_insert(u64::from(s.first_line)),
                        None => held.phone_of.insert(u64::from(s.first_line)),
                    };
                    held.earlier.push(s.last_row);
                    s.last_row = row;
                }
                // Same 64-bit hash, another key: not tracked (see DupeTracker).
                Some(_) => {}
                None => {
                    let first_line = u32::try_from(line).unwrap_or(u32::MAX);
                    let holder = Holder {
                        check,
                        first_line,
                        last_row: row,
                    };
                    shard.insert(h, holder);
                    if kind.is_some_and(|k| wanted.contains(&k)) {
                        held.new_match_keys += 1;
                    }
                }
            }
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalise::{Email, Identifier};

    fn draft(email: Option<&str>, id: Option<&str>) -> ContactDraft {
        ContactDraft {
            email: email.map(|e| Email::parse(e).unwrap()),
            identifier: id.and_then(|i| Identifier::parse(i).unwrap()),
            ..ContactDraft::default()
        }
    }

    #[test]
    fn email_repeats_are_case_insensitive_and_name_the_first_line() {
        let mut t = DupeTracker::new();
        assert!(t.check(2, &draft(Some("Ann@X.com"), None)).is_empty());
        assert!(t.check(3, &draft(Some("bob@x.com"), None)).is_empty());
        let d = t.check(7, &draft(Some("ann@x.COM"), None));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].key, MatchKey::Email);
        assert_eq!(d[0].first_line, 2);
        // A third copy still names the first row, not the second.
        assert_eq!(t.check(9, &draft(Some("ann@x.com"), None))[0].first_line, 2);
    }

    #[test]
    fn identifiers_are_case_sensitive_and_separate_from_emails() {
        let mut t = DupeTracker::new();
        assert!(t.check(2, &draft(None, Some("AB-1"))).is_empty());
        assert!(t.check(3, &draft(None, Some("ab-1"))).is_empty());
        // An email equal to an identifier text is a different key.
        assert!(t.check(4, &draft(Some("ab-1@x.io"), Some("x"))).is_empty());
        assert!(
            t.check(5, &draft(Some("y@x.io"), Some("ab-1@x.io")))
                .is_empty()
        );
        let d = t.check(6, &draft(Some("new@x.io"), Some("AB-1")));
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].key, d[0].first_line), (MatchKey::Identifier, 2));
        // The new email of that row was remembered all the same.
        assert_eq!(t.check(8, &draft(Some("new@x.io"), None))[0].first_line, 6);
    }

    #[test]
    fn the_key_index_names_the_first_line_and_the_latest_row_of_each_key() {
        let mut t = KeyIndex::default();
        let wanted = [MatchKey::Email];
        let mut phone = draft(Some("a@x.io"), Some("A"));
        phone.phone_number =
            Some(crate::normalise::PhoneE164::parse("+442079460000", None, false).unwrap());
        let first = t.hold(0, 2, &RowPrints::of(&phone), &wanted);
        assert_eq!((first.duplicate_of, first.new_match_keys), (None, 1));
        let other = t.hold(1, 3, &RowPrints::of(&draft(Some("b@x.io"), None)), &wanted);
        assert!(other.earlier.is_empty());
        // Shares only the identifier with row 0: a duplicate of line 2.
        let second = t.hold(
            2,
            4,
            &RowPrints::of(&draft(Some("c@x.io"), Some("A"))),
            &wanted,
        );
        assert_eq!(
            (second.duplicate_of, second.earlier.clone()),
            (Some(2), vec![0])
        );
        // Shares the phone with row 0 and the identifier with row 2 (the latest holder).
        let mut third = draft(None, Some("A"));
        third.phone_number = phone.phone_number.clone();
        let third = t.hold(3, 5, &RowPrints::of(&third), &wanted);
        assert_eq!(third.earlier, vec![2, 0]);
        assert_eq!(third.new_match_keys, 0);
        assert_eq!((third.duplicate_of, third.phone_of), (Some(2), Some(2)));
        assert_eq!(second.phone_of, None);
    }

    #[test]
    fn rows_without_keys_are_never_duplicates() {
        let mut t = DupeTracker::new();
        for line in 2..10 {
            assert!(t.check(line, &draft(None, None)).is_empty());
        }
        assert!(t.is_empty());
    }

    #[test]
    fn many_distinct_keys_give_no_false_duplicates() {
        let mut t = DupeTracker::new();
        for i in 0..50_000u64 {
            let e = format!("user{i}@example.com");
            assert!(
                t.check(i + 2, &draft(Some(&e), Some(&i.to_string())))
                    .is_empty()
            );
        }
        assert_eq!(t.len(), 100_000);
    }
}
