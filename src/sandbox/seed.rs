//! Filling the store before it serves: generated contacts that look real (names, emails, valid E.164
//! phones from several countries, attributes, some with conversations and notes), and JSONL files
//! (one contact a line, in the API's shape plus optional `account_id`, `notes`, `conversations`
//! with an optional `assignee_id`),
//! which is also the format the state is saved in on shutdown.
use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use super::store::{ContactParams, NewConversation, Store, WriteError, mix, now};

/// A country: calling code, a function that makes a national significant number, and names.
struct Country {
    code: &'static str,
    iso: &'static str,
    cities: &'static [&'static str],
    first: &'static [&'static str],
    last: &'static [&'static str],
    domains: &'static [&'static str],
}

const COUNTRIES: &[Country] = &[
    Country {
        code: "1",
        iso: "US",
        cities: &["New York", "San Francisco", "Chicago", "Boston", "Seattle"],
        first: &[
            "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
        ],
        last: &[
            "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
        ],
        domains: &["gmail.com", "yahoo.com", "outlook.com", "acme.com"],
    },
    Country {
        code: "44",
        iso: "GB",
        cities: &["London", "Manchester", "Leeds", "Bristol"],
        first: &["Oliver", "Amelia", "George", "Isla", "Harry", "Ava"],
        last: &["Taylor", "Davies", "Evans", "Wilson", "Thomas", "Roberts"],
        domains: &["btinternet.com", "gmail.com", "example.co.uk"],
    },
    Country {
        code: "33",
        iso: "FR",
        cities: &["Paris", "Lyon", "Marseille", "Toulouse"],
        first: &["Léa", "Hugo", "Chloé", "Louis", "Manon", "Gabriel"],
        last: &["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard"],
        domains: &["orange.fr", "free.fr", "gmail.com"],
    },
    Country {
        code: "49",
        iso: "DE",
        cities: &["Berlin", "Hamburg", "München", "Köln"],
        first: &["Lukas", "Anna", "Jonas", "Lena", "Felix", "Marie"],
        last: &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
        ],
        domains: &["web.de", "gmx.de", "gmail.com"],
    },
    Country {
        code: "55",
        iso: "BR",
        cities: &["São Paulo", "Rio de Janeiro", "Belo Horizonte"],
        first: &["João", "Maria", "Pedro", "Ana", "Lucas", "Juliana"],
        last: &["Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa"],
        domains: &["uol.com.br", "gmail.com", "hotmail.com"],
    },
    Country {
        code: "91",
        iso: "IN",
        cities: &["Mumbai", "Delhi", "Bengaluru", "Chennai"],
        first: &["Aarav", "Priya", "Vivaan", "Ananya", "Arjun", "Diya"],
        last: &["Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy"],
        domains: &["gmail.com", "rediffmail.com", "yahoo.in"],
    },
    Country {
        code: "34",
        iso: "ES",
        cities: &["Madrid", "Barcelona", "Valencia", "Sevilla"],
        first: &["Lucía", "Hugo", "Sofía", "Martín", "Paula", "Daniel"],
        last: &[
            "García",
            "Fernández",
            "González",
            "Rodríguez",
            "López",
            "Martínez",
        ],
        domains: &["telefonica.net", "gmail.com", "hotmail.es"],
    },
    Country {
        code: "81",
        iso: "JP",
        cities: &["Tokyo", "Osaka", "Kyoto", "Yokohama"],
        first: &["Haruto", "Yui", "Sota", "Hina", "Yuto", "Sakura"],
        last: &["Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito"],
        domains: &["docomo.ne.jp", "gmail.com", "yahoo.co.jp"],
    },
];

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// A national number in a range libphonenumber accepts as valid for the country.
fn national(rng: &mut StdRng, iso: &str) -> String {
    match iso {
        "US" => {
            let area = ["212", "415", "312", "617", "206", "303", "512"][rng.random_range(0..7)];
            format!("{area}{}{}", rng.random_range(2..10u8), digits(rng, 6))
        }
        "GB" => format!("7{}{}", [4u8, 5][rng.random_range(0..2)], digits(rng, 8)),
        "FR" => format!(
            "6{}{}",
            [0u8, 1, 2, 4, 5][rng.random_range(0..5)],
            digits(rng, 7)
        ),
        "DE" => format!(
            "15{}{}",
            [1u8, 2, 5, 7][rng.random_range(0..4)],
            digits(rng, 8)
        ),
        "BR" => format!(
            "{}9{}{}",
            ["11", "21", "31"][rng.random_range(0..3)],
            rng.random_range(6..10u8),
            digits(rng, 7)
        ),
        "IN" => format!("9{}", digits(rng, 9)),
        "ES" => format!("6{}", digits(rng, 8)),
        _ => format!("90{}{}", rng.random_range(1..10u8), digits(rng, 7)),
    }
}

fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'é' | 'è' => 'e',
            'ü' => 'u',
            'ö' => 'o',
            'ã' | 'á' => 'a',
            'í' => 'i',
            'ó' => 'o',
            c => c,
        })
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase()
}

/// Generate `n` contacts into `account`, deterministically for a `seed`. About 1 in 10 has no
/// email, 1 in 20 no phone, 1 in 3 an identifier, 1 in 50 only a name (never listed); 1 in 5 has
/// conversations (up to 25, so some exceed the 20 the endpoint returns) and a note.
pub fn generate(store: &mut Store, account: u64, n: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut phones = std::collections::HashSet::new();
    let t_now = now();
    for i in 0..n {
        let c = &COUNTRIES[rng.random_range(0..COUNTRIES.len())];
        let first = c.first[rng.random_range(0..c.first.len())];
        let last = c.last[rng.random_range(0..c.last.len())];
        let name_only = rng.random_range(0..50) == 0;
        let email = (!name_only && rng.random_range(0..10) != 0).then(|| {
            let domain = c.domains[rng.random_range(0..c.domains.len())];
            format!("{}.{}{}@{}", ascii(first), ascii(last), i + 1, domain)
        });
        let phone = (!name_only && (email.is_none() || rng.random_range(0..20) != 0)).then(|| {
            loop {
                let p = format!("+{}{}", c.code, national(&mut rng, c.iso));
                if phones.insert(p.clone()) {
                    break p;
                }
            }
        });
        let identifier =
            (!name_only && rng.random_range(0..3) == 0).then(|| format!("user_{}", 100_000 + i));
        let plan = ["free", "starter", "premium", "enterprise"][rng.random_range(0..4)];
        let params = ContactParams {
            name: Some(Some(format!("{first} {last}"))),
            email: Some(email),
            phone_number: Some(phone),
            identifier: Some(identifier),
            blocked: Some(Some(rng.random_range(0..100) == 0)),
            additional_attributes: json!({"city": c.cities[rng.random_range(0..c.cities.len())],
                                           "country_code": c.iso, "company_name": format!("{last} & Co")})
            .as_object()
            .cloned(),
            custom_attributes: json!({"plan": plan}).as_object().cloned(),
            inbox_id: None,
        };
        let mut contact = store.build(account, &params);
        contact.created_at = t_now - rng.random_range(0..365 * 86_400);
        let Ok(id) = store.insert_seed(contact) else {
            continue;
        };
        if rng.random_range(0..5) == 0 {
            let convs = rng.random_range(1..=25);
            for _ in 0..convs {
                let conversation = generated_conversation(&mut rng, id, t_now);
                store.add_conversation(account, id, conversation);
            }
            store.add_note(
                account,
                id,
                1,
                format!("Imported from the {} CRM", c.iso),
                None,
            );
        }
    }
}

/// A conversation of the last 180 days in inbox 1, for contact `id`.
fn generated_conversation(rng: &mut StdRng, id: u64, t_now: i64) -> NewConversation {
    let created = t_now - rng.random_range(0..180 * 86_400);
    let activity = created + rng.random_range(0..86_400);
    let status = ["open", "resolved", "pending"][rng.random_range(0..3)];
    // Derived, not drawn, so the generated contacts stay what they were for a seed.
    let assignee_id = [None, Some(1), Some(2)][(mix(id ^ created as u64) % 3) as usize];
    NewConversation {
        inbox_id: 1,
        status: status.into(),
        created_at: created,
        last_activity_at: activity,
        assignee_id,
    }
}

/// Insert one contact given in the seed shape; returns its id.
pub fn insert_value(store: &mut Store, v: &Value, default_account: u64) -> anyhow::Result<u64> {
    let Some(obj) = v.as_object() else {
        bail!("a contact must be a JSON object, found {v}")
    };
    let account = obj
        .get("account_id")
        .and_then(Value::as_u64)
        .unwrap_or(default_account);
    let params = ContactParams::from_json(v);
    let mut contact = store.build(account, &params);
    if let Some(id) = obj.get("id").and_then(Value::as_u64) {
        contact.id = id;
    }
    if let Some(t) = obj.get("created_at").and_then(Value::as_i64) {
        contact.created_at = t;
    }
    contact.last_activity_at = obj.get("last_activity_at").and_then(Value::as_i64);
    if let Some(Value::Array(ci)) = obj.get("contact_inboxes") {
        contact.contact_inboxes = ci.clone();
    }
    let id = store.insert_seed(contact).map_err(|e| match e {
        WriteError::UniqueViolation(index) => {
            anyhow::anyhow!("duplicate key value violates unique index {index}")
        }
        other => anyhow::anyhow!("{other:?}"),
    })?;
    for n in obj
        .get("notes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let content = n
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let user = n.get("user_id").and_then(Value::as_u64).unwrap_or(1);
        store.add_note(
            account,
            id,
            user,
            content,
            n.get("created_at").and_then(Value::as_i64),
        );
    }
    for c in obj
        .get("conversations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        store.add_conversation(account, id, seeded_conversation(c));
    }
    // A seeded `last_activity_at` wins over the one derived from the conversations.
    if let Some(t) = obj.get("last_activity_at").and_then(Value::as_i64) {
        store.set_last_activity(id, Some(t));
    }
    Ok(id)
}

/// A conversation of a seed line: every key optional (an open conversation in inbox 1, created
/// now, last active when created, unassigned).
fn seeded_conversation(c: &Value) -> NewConversation {
    let created = c
        .get("created_at")
        .and_then(Value::as_i64)
        .unwrap_or_else(now);
    NewConversation {
        inbox_id: c.get("inbox_id").and_then(Value::as_u64).unwrap_or(1),
        status: c
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("open")
            .into(),
        created_at: created,
        last_activity_at: c
            .get("last_activity_at")
            .and_then(Value::as_i64)
            .unwrap_or(created),
        assignee_id: c.get("assignee_id").and_then(Value::as_u64),
    }
}

/// Load a JSONL seed: blank lines and lines starting with `#` are skipped.
pub fn load_jsonl(store: &mut Store, text: &str, default_account: u64) -> anyhow::Result<usize> {
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .with_context(|| format!("line {}: not valid JSON", i + 1))?;
        insert_value(store, &v, default_account).with_context(|| format!("line {}", i + 1))?;
        n += 1;
    }
    Ok(n)
}

/// The state as JSONL, loadable by [`load_jsonl`].
pub fn dump_jsonl(store: &Store) -> String {
    let mut out = String::new();
    for c in store.contacts.values() {
        let mut v = c.render(true);
        v["account_id"] = json!(c.account_id);
        let notes: Vec<Value> = store
            .notes
            .values()
            .filter(|n| n.contact_id == c.id)
            .map(
                |n| json!({"content": n.content, "user_id": n.user_id, "created_at": n.created_at}),
            )
            .collect();
        if !notes.is_empty() {
            v["notes"] = Value::Array(notes);
        }
        if let Some(convs) = store.conversations.get(&c.id) {
            v["conversations"] = convs
                .iter()
                .map(|x| {
                    json!({"inbox_id": x.inbox_id, "status": x.status, "created_at": x.created_at,
                           "last_activity_at": x.last_activity_at, "assignee_id": x.assignee_id})
                })
                .collect();
        }
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_phones_are_valid_e164_for_their_country() {
        let mut store = Store::new();
        generate(&mut store, 1, 600, 7);
        let mut checked = 0;
        let mut invalid = vec![];
        for c in store.contacts.values() {
            if let Some(p) = &c.phone_number {
                let parsed = phonenumber::parse(None, p).unwrap_or_else(|e| panic!("{p}: {e}"));
                if !phonenumber::is_valid(&parsed) {
                    invalid.push(p.clone());
                }
                checked += 1;
            }
        }
        assert!(invalid.is_empty(), "not valid numbers: {invalid:?}");
        assert!(checked > 400, "only {checked} phones");
        let with_conv = store.conversations.len();
        assert!(
            with_conv > 20,
            "only {with_conv} contacts with conversations"
        );
    }

    #[test]
    fn generation_is_deterministic_for_a_seed() {
        let (mut a, mut b) = (Store::new(), Store::new());
        generate(&mut a, 1, 50, 3);
        generate(&mut b, 1, 50, 3);
        let emails = |s: &Store| {
            s.contacts
                .values()
                .map(|c| c.email.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(emails(&a), emails(&b));
    }
}
