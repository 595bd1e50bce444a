//! The question before the first write to a real account: the target and the plan's counts,
//! then `Proceed? [y/N]` on a terminal. `--yes` skips the question; with no terminal (cron, a
//! pipe) the run proceeds and the same lines go to stderr, so the log says what was done where.
//!
//! The terminal check is `stdin` and `stderr` both being terminals. Test hook:
//! `DOTO_BULK_ASSUME_TTY=1` makes the check pass, and the answer is then read from stdin.
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

use crate::api::Client;
use crate::mapping::ContactDraft;
use crate::pipeline::lookup::{Key, Known, first_page, total_of};
use crate::pipeline::plan::{Action, Policy, apply_patch, created, decide, phone_in_use};
use crate::pipeline::revert;

/// Where the writes go and what they would be.
#[derive(Debug, Clone)]
pub struct Target {
    pub base_url: String,
    pub account_id: u64,
    /// The account's contact count, when known.
    pub contacts: Option<u64>,
}

/// What the user said (or did not have to say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Proceed,
    Declined,
}

/// Whether to ask: on a terminal unless `--yes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ask {
    /// The sandbox, a dry run, or a caller that is not the command line: no lines, no question.
    #[default]
    Never,
    /// Show the lines; ask when on a terminal and `yes` is false.
    Real { yes: bool },
}

/// The environment variable that makes tests' pipes count as a terminal.
pub const ASSUME_TTY: &str = "DOTO_BULK_ASSUME_TTY";

fn on_terminal() -> bool {
    if std::env::var_os(ASSUME_TTY).is_some_and(|v| v == "1") {
        return true;
    }
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// The lines shown before the question: `doing` (e.g. `import into`), the target, then `plan`
/// (one `would …` line).
pub fn lines(doing: &str, t: &Target, plan: &str) -> String {
    let contacts = match t.contacts {
        Some(n) => format!("{n} contacts"),
        None => "contact count unknown".to_owned(),
    };
    format!(
        "{doing} {} (account {}, {contacts})\n  {plan}\n",
        t.base_url, t.account_id
    )
}

/// Show `text` on stderr and, per `ask`, ask `Proceed? [y/N]` (only `y` or `yes` proceed).
pub fn confirm(ask: Ask, text: &str) -> Answer {
    let Ask::Real { yes } = ask else {
        return Answer::Proceed;
    };
    eprint!("{text}");
    if yes || !on_terminal() {
        return Answer::Proceed;
    }
    eprint!("Proceed? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return Answer::Declined;
    }
    parse_answer(&answer)
}

/// The answer was no: the command ends with [`crate::exit::DECLINED`], nothing written.
#[derive(Debug, thiserror::Error)]
#[error("not confirmed: nothing was written")]
pub struct Declined;

/// The account's contact count: `listed` when the run has listed them all already, else one
/// list request (its `count`); unknown when that request fails.
pub async fn account_total(client: &Client, listed: Option<usize>) -> Option<u64> {
    match listed {
        Some(n) => Some(n as u64),
        None => first_page(client).await.ok().map(|p| total_of(&p)),
    }
}

/// `Target` for `client`'s account with `contacts`.
pub fn target_of(client: &Client, contacts: Option<u64>) -> Target {
    let c = client.config();
    Target {
        base_url: c.base_url.clone(),
        account_id: c.account_id,
        contacts,
    }
}

/// An import's plan from the lookup alone: the valid rows decided in file order against (a copy
/// of) what the lookup found, each create and update applied to it as a dry run does, so that a
/// later row with an earlier row's key counts as the update it will be; and the rows already
/// invalid.
pub fn import_plan(
    rows: impl IntoIterator<Item = (ContactDraft, Vec<Key>)>,
    invalid: u64,
    known: &Known,
    policy: Policy,
) -> String {
    let mut known = known.clone();
    let mut n: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, (draft, keys)) in rows.into_iter().enumerate() {
        let action = decide(&draft, &keys, &known, policy);
        // A phone another contact holds is left out, as the write will (an update may then be
        // left with nothing to write).
        let no_row = |_| None;
        let (action, _) = phone_in_use(action, &draft, &known, policy, (false, &no_row));
        *n.entry(action.name()).or_default() += 1;
        match action {
            // An id no server hands out, for as long as the count lasts.
            Action::Create(new) => known.insert(created(u64::MAX - i as u64, &new)),
            Action::Update { id, patch, .. } => {
                if let Some(c) = known.get(id).cloned() {
                    known.insert(apply_patch(&c, &patch));
                }
            }
            _ => {}
        }
    }
    let get = |k: &str| n.get(k).copied().unwrap_or(0);
    format!(
        "would create {}, update {}, leave {} unchanged, skip {}, fail {}; {invalid} rows invalid",
        get("create"),
        get("update"),
        get("unchanged"),
        get("skip"),
        get("fail")
    )
}

/// A revert's plan from the import's journal.
pub fn revert_plan(targets: &[revert::Target]) -> String {
    let created = targets
        .iter()
        .filter(|t| matches!(t, revert::Target::Created { .. }))
        .count();
    format!(
        "would delete {created} contacts the import created and restore {} it updated \
         (contacts changed since are skipped unless --force)",
        targets.len() - created
    )
}

fn parse_answer(s: &str) -> Answer {
    match s.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Answer::Proceed,
        _ => Answer::Declined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_proceeds() {
        for yes in ["y\n", "Y", " yes \n"] {
            assert_eq!(parse_answer(yes), Answer::Proceed, "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yep", "sure"] {
            assert_eq!(parse_answer(no), Answer::Declined, "{no:?}");
        }
    }

    #[test]
    fn the_plan_leaves_out_a_phone_another_contact_holds_as_the_write_will() {
        use crate::mapping::ContactDraft;
        use crate::normalise::{Email, PhoneE164};
        let contact = |v: serde_json::Value| serde_json::from_value(v).unwrap();
        let mut known = Known::new();
        known.insert(contact(serde_json::json!(
            {"id": 5, "email": "h@x.com", "phone_number": "+33612345678"}
        )));
        known.insert(contact(
            serde_json::json!({"id": 6, "email": "u@x.com", "name": "U"}),
        ));
        // Contact 6's row wants only contact 5's phone: the write leaves it out, nothing is left.
        let draft = ContactDraft {
            name: Some("U".into()),
            email: Some(Email::parse("u@x.com").unwrap()),
            phone_number: PhoneE164::parse("+33612345678", None, false).ok(),
            ..ContactDraft::default()
        };
        let keys = vec![Key::email("u@x.com")];
        let plan = import_plan([(draft, keys)], 0, &known, crate::pipeline::plan::UPSERT);
        assert!(
            plan.starts_with("would create 0, update 0, leave 1 unchanged"),
            "{plan}"
        );
    }

    #[test]
    fn the_lines_name_the_target_and_the_plan() {
        let t = Target {
            base_url: "https://x.test".into(),
            account_id: 4,
            contacts: Some(12),
        };
        let s = lines("import into", &t, "would create 3, update 1");
        assert_eq!(
            s,
            "import into https://x.test (account 4, 12 contacts)\n  would create 3, update 1\n"
        );
        assert_eq!(confirm(Ask::Never, &s), Answer::Proceed);
    }
}
