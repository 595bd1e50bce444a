//! The client against the sandbox emulator (in-process, port 0), in both flavours: every endpoint,
//! paging 2,000 contacts, rate limits and 429 storms, and faults on writes. Assertions are on what
//! the sandbox received (its request log) and now stores, not only on what the client returned.
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use doto_bulk::api::{
    ApiError, ApiToken, Client, ClientConfig, ContactPatch, NewContact, RateLimit,
};
use doto_bulk::sandbox::{
    FaultKind, Faults, Flavour, RateLimits, SandboxConfig, SandboxHandle, route, spawn,
};
use futures::StreamExt;
use serde_json::{Value, json};

fn config(flavour: Flavour) -> SandboxConfig {
    SandboxConfig {
        flavour,
        ..SandboxConfig::default()
    }
}

fn client_with(sb: &SandboxHandle, token: &str, tweak: impl FnOnce(&mut ClientConfig)) -> Client {
    let mut cfg = ClientConfig::new(&sb.base_url, sb.account_id, ApiToken::new(token).unwrap());
    cfg.rate = RateLimit::per_second(1000);
    cfg.search_rate = RateLimit::per_second(500);
    cfg.backoff_base = Duration::from_millis(2);
    cfg.backoff_max = Duration::from_millis(20);
    // The sandboxes of these tests use 1 s windows.
    cfg.window = Duration::from_secs(1);
    tweak(&mut cfg);
    Client::new(cfg).unwrap()
}

fn client(sb: &SandboxHandle) -> Client {
    client_with(sb, &sb.admin_token, |_| {})
}

fn new_contact(name: &str, email: &str) -> NewContact {
    NewContact {
        name: Some(name.into()),
        email: Some(email.into()),
        ..Default::default()
    }
}

/// Stored contacts of the sandbox's account that the listing shows (those with a key).
fn listed_ids(sb: &SandboxHandle) -> BTreeSet<u64> {
    sb.contacts()
        .iter()
        .filter(|c| c["account_id"] == json!(sb.account_id))
        .filter(|c| {
            ["email", "phone_number", "identifier"]
                .iter()
                .any(|k| c[k].as_str().is_some_and(|s| !s.is_empty()))
        })
        .map(|c| c["id"].as_u64().unwrap())
        .collect()
}

fn stored(sb: &SandboxHandle, id: u64) -> Value {
    sb.contacts()
        .into_iter()
        .find(|c| c["id"] == json!(id))
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn every_endpoint_works_in_both_flavours() {
    for flavour in [Flavour::Chatwoot, Flavour::Doto] {
        let sb = spawn(SandboxConfig {
            seed_contacts: 30,
            ..config(flavour)
        })
        .await
        .unwrap();
        let api = client(&sb);
        let contacts = api.contacts();

        // create: 200 wrapped (Chatwoot) or 201 bare (Doto)
        let mut new = new_contact("Jane Doe", "Jane.Doe@Example.com");
        new.identifier = Some("crm-1".into());
        new.phone_number = Some("+14155552671".into());
        new.custom_attributes
            .insert("plan".into(), json!("premium"));
        new.additional_attributes
            .insert("city".into(), json!("Lyon"));
        let created = contacts.create(&new).await.unwrap();
        assert_eq!(
            created.email.as_deref(),
            Some("jane.doe@example.com"),
            "{flavour:?}"
        );
        let s = stored(&sb, created.id);
        assert_eq!(s["identifier"], "crm-1");
        assert_eq!(s["custom_attributes"]["plan"], "premium");

        // get: wrapped or bare
        let got = contacts.get(created.id).await.unwrap();
        assert_eq!(got.id, created.id);
        assert_eq!(got.additional_attributes["city"], "Lyon");
        assert_eq!(got.last_activity_at, None);

        // update: only the fields sent, attributes shallow-merged
        let mut patch = ContactPatch {
            name: Some(Some("Jane D.".into())),
            ..Default::default()
        };
        patch.custom_attributes = Some([("tier".to_owned(), json!(2))].into_iter().collect());
        let updated = contacts.update(created.id, &patch).await.unwrap();
        assert_eq!(updated.name.as_deref(), Some("Jane D."));
        let s = stored(&sb, created.id);
        assert_eq!(
            (s["name"].clone(), s["custom_attributes"].clone()),
            (json!("Jane D."), json!({"plan": "premium", "tier": 2}))
        );
        assert_eq!(s["email"], "jane.doe@example.com");

        // search and the exact-match helpers
        let hit = contacts
            .find_by_email("JANE.DOE@example.com")
            .await
            .unwrap();
        assert_eq!(hit.map(|c| c.id), Some(created.id));
        assert_eq!(
            contacts
                .find_by_identifier("crm-1")
                .await
                .unwrap()
                .map(|c| c.id),
            Some(created.id)
        );
        assert_eq!(
            contacts.find_by_identifier("CRM-1").await.unwrap(),
            None,
            "identifiers are case-sensitive"
        );
        assert!(
            contacts
                .search("jane.doe")
                .all()
                .await
                .unwrap()
                .iter()
                .any(|c| c.id == created.id)
        );

        // list: a page, and the page the server says it served
        let page = contacts.list().page(2).await.unwrap();
        assert_eq!(page.current_page, 2);
        assert_eq!(page.count, Some(listed_ids(&sb).len() as u64));
        assert_eq!(page.items.len(), 15);
        assert_eq!(page.total_pages.is_some(), flavour == Flavour::Doto);

        // notes: the bare note object
        let note = contacts
            .add_note(created.id, "Imported from HubSpot")
            .await
            .unwrap();
        assert_eq!(note.content.as_deref(), Some("Imported from HubSpot"));
        let notes: Vec<Value> = sb
            .notes()
            .into_iter()
            .filter(|n| n["contact_id"] == json!(created.id))
            .collect();
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0]["content"], "Imported from HubSpot");
        // and the contact's notes read back through the client
        let listed = contacts.notes(created.id).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, note.id);
        assert_eq!(listed[0].content.as_deref(), Some("Imported from HubSpot"));

        // conversations: compare with what the sandbox holds for a seeded contact
        let state = sb.state().state_json();
        let with_convs: BTreeMap<u64, BTreeSet<u64>> = state["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["account_id"] == json!(sb.account_id))
            .fold(BTreeMap::new(), |mut m, c| {
                m.entry(c["contact_id"].as_u64().unwrap())
                    .or_default()
                    .insert(c["id"].as_u64().unwrap());
                m
            });
        if let Some((cid, ids)) = with_convs.iter().find(|(_, v)| v.len() <= 20) {
            let got: BTreeSet<u64> = contacts
                .conversations(*cid)
                .await
                .unwrap()
                .iter()
                .map(|c| c.id)
                .collect();
            assert_eq!(&got, ids, "{flavour:?}");
        }
        assert!(contacts.conversations(created.id).await.unwrap().is_empty());

        // delete, then it is gone
        contacts.delete(created.id).await.unwrap();
        assert_eq!(stored(&sb, created.id), Value::Null);
        assert!(matches!(
            contacts.get(created.id).await,
            Err(ApiError::NotFound { .. })
        ));
        assert!(matches!(
            contacts.conversations(created.id).await,
            Err(ApiError::NotFound { .. })
        ));

        let m = api.metrics();
        assert_eq!(m.requests["create"], 1);
        assert_eq!(m.requests["delete"], 1);
        assert_eq!(
            m.attempts,
            sb.stats().total,
            "every attempt reached the sandbox once"
        );
        sb.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn refusals_come_back_as_their_error_class_in_both_flavours() {
    for flavour in [Flavour::Chatwoot, Flavour::Doto] {
        let sb = spawn(config(flavour)).await.unwrap();
        let api = client(&sb);
        let jane = api
            .contacts()
            .create(&new_contact("Jane", "jane@x.com"))
            .await
            .unwrap();

        let err = api
            .contacts()
            .create(&new_contact("Other", "JANE@x.com"))
            .await
            .unwrap_err();
        match &err {
            ApiError::Rejected {
                status: 422,
                attributes,
                message,
                ..
            } => {
                assert_eq!(attributes, &vec!["email".to_owned()]);
                assert!(
                    message.contains("Email has already been taken"),
                    "{message}"
                );
            }
            other => panic!("{flavour:?}: {other:?}"),
        }
        assert!(!err.is_retryable() && !err.is_outcome_unknown());

        let bad = client_with(&sb, "not-a-token", |_| {});
        assert!(matches!(
            bad.contacts().get(jane.id).await,
            Err(ApiError::Unauthorized { status: 401, .. })
        ));

        let agent = client_with(&sb, &sb.agent_token, |_| {});
        let err = agent.contacts().delete(jane.id).await.unwrap_err();
        let want = if flavour == Flavour::Chatwoot {
            401
        } else {
            403
        };
        assert!(
            matches!(err, ApiError::Forbidden { status, .. } if status == want),
            "{flavour:?}: {err:?}"
        );
        assert!(
            stored(&sb, jane.id).is_object(),
            "the agent's delete did nothing"
        );

        let other = sb
            .state()
            .insert_contact(
                sb.config_other_account(),
                &json!({"name": "Theirs", "email": "t@x.com"}),
            )
            .unwrap();
        assert!(matches!(
            api.contacts().get(other).await,
            Err(ApiError::NotFound { .. })
        ));
        assert!(matches!(
            api.contacts().get(999_999).await,
            Err(ApiError::NotFound { .. })
        ));
        assert!(matches!(
            api.contacts().add_note(999_999, "x").await,
            Err(ApiError::NotFound { .. })
        ));
        sb.shutdown().await.unwrap();
    }
}

trait OtherAccount {
    fn config_other_account(&self) -> u64;
}
impl OtherAccount for SandboxHandle {
    fn config_other_account(&self) -> u64 {
        self.state().config().other_account_id
    }
}

#[tokio::test]
async fn exact_match_is_found_on_a_later_search_page_with_either_search_shape() {
    for old_shape in [false, true] {
        let sb = spawn(SandboxConfig {
            search_total_count: old_shape,
            ..SandboxConfig::default()
        })
        .await
        .unwrap();
        let api = client(&sb);
        // 20 contacts whose emails contain "jane@x.com", and wildcard look-alikes, created first
        // and sorting before it, so the exact one lands on page 2 of the substring search.
        for i in 0..20 {
            api.contacts()
                .create(&new_contact("Mary", &format!("a{i}.jane@x.com")))
                .await
                .unwrap();
        }
        let mut look = new_contact("Look-alike", "jxne@x.com");
        look.identifier = Some("user_1".into());
        api.contacts().create(&look).await.unwrap();
        let mut exact = new_contact("Jane", "jane@x.com");
        exact.identifier = Some("user-1".into());
        let jane = api.contacts().create(&exact).await.unwrap();
        let plus = api
            .contacts()
            .create(&new_contact("Plus", "a+b@x.com"))
            .await
            .unwrap();

        let before = sb.stats().count("GET", route::SEARCH);
        assert_eq!(
            api.contacts()
                .find_by_email("Jane@X.com")
                .await
                .unwrap()
                .map(|c| c.id),
            Some(jane.id)
        );
        assert!(
            sb.stats().count("GET", route::SEARCH) - before >= 2,
            "the match was on page 2"
        );
        let hits = api.contacts().search("jane@x.com").all().await.unwrap();
        assert_eq!(hits.len(), 21, "old shape {old_shape}: every page was read");
        // `_` is a wildcard on the server ("user_1" matches "user-1"); the exact filter is not fooled.
        assert_eq!(
            api.contacts()
                .find_by_identifier("user-1")
                .await
                .unwrap()
                .map(|c| c.id),
            Some(jane.id)
        );
        assert_eq!(
            api.contacts()
                .find_by_identifier("user_1")
                .await
                .unwrap()
                .map(|c| c.name),
            Some(Some("Look-alike".into()))
        );
        // `+` survives the query string.
        assert_eq!(
            api.contacts()
                .find_by_email("a+b@x.com")
                .await
                .unwrap()
                .map(|c| c.id),
            Some(plus.id)
        );
        assert_eq!(
            api.contacts().find_by_email("nobody@x.com").await.unwrap(),
            None
        );
        sb.shutdown().await.unwrap();
    }
}

async fn big_sandbox() -> SandboxHandle {
    spawn(SandboxConfig {
        seed_contacts: 2000,
        seed: 11,
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn streaming_2000_sorted_contacts_yields_each_exactly_once() {
    let sb = big_sandbox().await;
    let expected = listed_ids(&sb);
    assert!(expected.len() > 1900, "seeding produced {}", expected.len());
    let api = client(&sb);
    for sort in [None, Some("-created_at"), Some("email")] {
        let req = match sort {
            None => api.contacts().list(),
            Some(s) => api.contacts().list().sort(s),
        };
        let mut stream = req.stream();
        let mut ids = vec![];
        while let Some(c) = stream.next().await {
            ids.push(c.unwrap().id);
        }
        let unique: BTreeSet<u64> = ids.iter().copied().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "{sort:?}: a contact was yielded twice"
        );
        assert_eq!(unique, expected, "{sort:?}");
        let summary = stream.summary();
        assert_eq!(summary.total, Some(expected.len() as u64));
        assert_eq!(summary.seen, expected.len() as u64);
    }
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn streaming_2000_contacts_in_the_unstable_default_order_yields_each_exactly_once() {
    let sb = big_sandbox().await;
    let expected = listed_ids(&sb);
    let api = client_with(&sb, &sb.admin_token.clone(), |c| {
        c.max_list_passes = 40;
        c.concurrency = doto_bulk::api::Concurrency::Fixed(8);
    });
    let mut stream = api.contacts().list().unsorted().stream();
    let mut ids = vec![];
    while let Some(c) = stream.next().await {
        ids.push(c.unwrap().id);
    }
    let unique: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a contact was yielded twice");
    assert_eq!(unique.into_iter().collect::<BTreeSet<_>>(), expected);
    let summary = stream.summary();
    assert!(
        summary.passes > 1,
        "one pass of a shuffled order cannot see everything: {summary:?}"
    );
    assert!(summary.duplicates > 0, "{summary:?}");

    // With a single pass allowed, the shortfall is reported, not hidden.
    let one_pass = client_with(&sb, &sb.admin_token.clone(), |c| c.max_list_passes = 1);
    let err = one_pass
        .contacts()
        .list()
        .unsorted()
        .all()
        .await
        .unwrap_err();
    match err {
        ApiError::Incomplete { seen, total, .. } => {
            assert_eq!(total, expected.len() as u64);
            assert!(seen < total);
        }
        other => panic!("{other:?}"),
    }
    sb.shutdown().await.unwrap();
}

/// Requests the sandbox received per rate-limit window (admitted or not).
fn arrivals_per_window(sb: &SandboxHandle) -> BTreeMap<u64, u64> {
    let stats = sb.stats();
    let mut m = BTreeMap::new();
    for e in &stats.log {
        *m.entry(e.epoch_ms / stats.window_ms).or_insert(0) += 1;
    }
    m
}

async fn hammer(api: &Client, ids: &[u64], workers: usize) -> Vec<Result<u64, ApiError>> {
    futures::stream::iter(ids.to_vec())
        .map(|id| {
            let api = api.clone();
            async move { api.contacts().get(id).await.map(|c| c.id) }
        })
        .buffer_unordered(workers)
        .collect()
        .await
}

#[tokio::test]
async fn the_client_never_exceeds_its_configured_rate_in_any_window() {
    let sb = spawn(SandboxConfig {
        seed_contacts: 20,
        limits: RateLimits {
            window: Duration::from_secs(1),
            ..RateLimits::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let ids: Vec<u64> = listed_ids(&sb).into_iter().collect();
    // A little more headroom than the default: the sandbox stamps arrivals, and a scheduler stall on
    // this shared machine can carry a request sent before a boundary into the next window.
    let api = client_with(&sb, &sb.admin_token.clone(), |c| {
        c.rate = RateLimit::per_second(25);
        c.headroom = 0.92;
    });
    let work: Vec<u64> = ids.iter().cycle().take(70).copied().collect();
    let results = hammer(&api, &work, 12).await;
    assert!(results.iter().all(|r| r.is_ok()));
    let per_window = arrivals_per_window(&sb);
    assert_eq!(per_window.values().sum::<u64>(), 70);
    assert!(per_window.len() >= 3, "{per_window:?}");
    for (w, n) in &per_window {
        assert!(
            *n <= 25,
            "window {w} received {n} requests (limit 25): {per_window:?}"
        );
    }
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_storm_of_429s_without_retry_after_is_ridden_out_and_the_rate_adapts() {
    let sb = spawn(SandboxConfig {
        seed_contacts: 20,
        limits: RateLimits {
            global: Some(12),
            window: Duration::from_secs(1),
            retry_after: false,
            ..RateLimits::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let ids: Vec<u64> = listed_ids(&sb).into_iter().collect();
    // The client believes it may send 100 a second: the server allows 12.
    let api = client_with(&sb, &sb.admin_token.clone(), |c| {
        c.rate = RateLimit::per_second(100)
    });
    let work: Vec<u64> = ids.iter().cycle().take(48).copied().collect();
    let results = hammer(&api, &work, 8).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let stats = sb.stats();
    let m = api.metrics();
    assert!(stats.rate_limited > 0);
    assert_eq!(
        m.rate_limited, stats.rate_limited,
        "every 429 was seen and counted"
    );
    assert!(
        m.rate.rate_per_sec < m.rate.max_rate_per_sec,
        "{:?}",
        m.rate
    );
    // The client counts by send time, the server by arrival: allow a request or two across a boundary.
    assert!(
        m.rate.learned_budget.is_some_and(|b| b <= 14),
        "{:?}",
        m.rate
    );
    // After the first 429 the gate holds everyone until the boundary: far fewer 429s than
    // requests beyond the budget would have produced without it.
    assert!(stats.rate_limited < 48, "{} 429s", stats.rate_limited);
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn bursts_of_429_on_writes_are_ridden_out_and_nothing_is_created_twice() {
    let sb = spawn(SandboxConfig {
        faults: Faults {
            rate: 0.3,
            kinds: vec![FaultKind::Burst429],
            seed: 7,
            burst_len: 6,
        },
        limits: RateLimits {
            window: Duration::from_secs(1),
            ..RateLimits::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let api = client_with(&sb, &sb.admin_token.clone(), |c| {
        c.rate = RateLimit::per_second(200)
    });
    let results: Vec<_> = futures::stream::iter(0..20)
        .map(|i| {
            let api = api.clone();
            async move {
                api.contacts()
                    .create(&new_contact("N", &format!("n{i}@x.com")))
                    .await
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert_eq!(listed_ids(&sb).len(), 20);
    let stats = sb.stats();
    assert!(
        stats.faults.get("burst429").copied().unwrap_or(0) > 0,
        "{:?}",
        stats.faults
    );
    assert_eq!(api.metrics().rate_limited, stats.rate_limited);
    sb.shutdown().await.unwrap();
}

fn with_faults(kinds: Vec<FaultKind>, rate: f64, seed_contacts: usize) -> SandboxConfig {
    SandboxConfig {
        seed_contacts,
        faults: Faults {
            rate,
            kinds,
            seed: 3,
            burst_len: 3,
        },
        ..SandboxConfig::default()
    }
}

#[tokio::test]
async fn faults_on_creates_and_notes_are_outcome_unknown_and_never_resent() {
    // before: 500, nothing written; after: written, then 500; drop: written, connection closed.
    for (kind, written) in [
        (FaultKind::Before, 0),
        (FaultKind::After, 1),
        (FaultKind::Drop, 1),
    ] {
        let sb = spawn(with_faults(vec![kind], 1.0, 5)).await.unwrap();
        let api = client(&sb);
        let existing = *listed_ids(&sb).iter().next().unwrap();
        let before = listed_ids(&sb).len();

        let err = api
            .contacts()
            .create(&new_contact("New", "new@x.com"))
            .await
            .unwrap_err();
        assert!(err.is_outcome_unknown(), "{kind:?}: {err:?}");
        let err = api
            .contacts()
            .add_note(existing, "hello")
            .await
            .unwrap_err();
        assert!(err.is_outcome_unknown(), "{kind:?}: {err:?}");

        let stats = sb.stats();
        assert_eq!(
            stats.count("POST", route::CONTACTS),
            1,
            "{kind:?}: the create was re-sent"
        );
        assert_eq!(
            stats.count("POST", route::NOTES),
            1,
            "{kind:?}: the note was re-sent"
        );
        assert_eq!(listed_ids(&sb).len(), before + written, "{kind:?}");
        assert_eq!(sb.notes().len(), written, "{kind:?}");
        assert_eq!(api.metrics().outcome_unknown, 2);
        sb.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn updates_and_deletes_are_retried_through_faults_until_they_land() {
    let sb = spawn(with_faults(
        vec![FaultKind::Before, FaultKind::After, FaultKind::Drop],
        0.5,
        12,
    ))
    .await
    .unwrap();
    let api = client_with(&sb, &sb.admin_token.clone(), |c| c.max_retries = 12);
    let ids: Vec<u64> = listed_ids(&sb).into_iter().collect();
    for (i, id) in ids.iter().enumerate() {
        let patch = ContactPatch {
            name: Some(Some(format!("Renamed {i}"))),
            ..Default::default()
        };
        let c = api.contacts().update(*id, &patch).await.unwrap();
        assert_eq!(c.name, Some(format!("Renamed {i}")));
        assert_eq!(stored(&sb, *id)["name"], json!(format!("Renamed {i}")));
    }
    let stats = sb.stats();
    let patches = stats.count("PATCH", route::CONTACT);
    assert!(
        patches > ids.len() as u64,
        "no PATCH was retried ({patches})"
    );
    for kind in ["before", "after", "drop"] {
        assert!(
            stats.faults.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} fault: {:?}",
            stats.faults
        );
    }
    for id in &ids {
        api.contacts().delete(*id).await.unwrap();
    }
    assert!(listed_ids(&sb).is_empty());
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn searches_keep_to_their_own_lower_limit_and_only_searches_wait_for_it() {
    let sb = spawn(SandboxConfig {
        seed_contacts: 20,
        limits: RateLimits {
            search: Some(4),
            window: Duration::from_secs(1),
            ..RateLimits::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let ids: Vec<u64> = listed_ids(&sb).into_iter().collect();
    // The client thinks search allows 50 a second; the server allows 4.
    let api = client_with(&sb, &sb.admin_token.clone(), |c| {
        c.search_rate = RateLimit::per_second(50)
    });
    let searches = futures::stream::iter(0..12)
        .map(|i| {
            let api = api.clone();
            async move { api.contacts().search(format!("x{i}")).all().await }
        })
        .buffer_unordered(6)
        .collect::<Vec<_>>();
    let (found, gets) = tokio::join!(searches, hammer(&api, &ids, 2));
    assert!(found.iter().all(|r| r.is_ok()), "{found:?}");
    assert!(gets.iter().all(|r| r.is_ok()));
    let stats = sb.stats();
    let m = api.metrics();
    assert!(stats.rate_limited > 0);
    assert_eq!(stats.count_status("GET", route::CONTACT, 429), 0);
    assert_eq!(m.rate_limited, stats.rate_limited);
    assert!(
        m.search_rate.learned_budget.is_some_and(|b| b <= 6),
        "{:?}",
        m.search_rate
    );
    assert_eq!(
        m.rate.learned_budget, None,
        "a search 429 is not blamed on the general limit"
    );
    assert_eq!(m.rate.rate_per_sec, m.rate.max_rate_per_sec);
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn contacts_deleted_while_streaming_do_not_hide_live_ones() {
    let sb = spawn(SandboxConfig {
        seed_contacts: 120,
        seed: 5,
        latency: Duration::from_millis(15),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let api = client_with(&sb, &sb.admin_token.clone(), |c| {
        c.concurrency = doto_bulk::api::Concurrency::Fixed(1)
    });
    let other = client(&sb);
    // The oldest contacts: on page 1 of the created_at order, so deleting them after page 1 was
    // read shifts every later row back into pages already read.
    let oldest: Vec<u64> = api
        .contacts()
        .list()
        .page(1)
        .await
        .unwrap()
        .items
        .iter()
        .take(12)
        .map(|c| c.id)
        .collect();
    let mut stream = api.contacts().list().stream();
    let mut yielded = vec![stream.next().await.unwrap().unwrap().id];
    for id in &oldest {
        other.contacts().delete(*id).await.unwrap();
    }
    while let Some(c) = stream.next().await {
        yielded.push(c.unwrap().id);
    }
    let unique: BTreeSet<u64> = yielded.iter().copied().collect();
    assert_eq!(unique.len(), yielded.len(), "a contact was yielded twice");
    let live = listed_ids(&sb);
    let missed: Vec<&u64> = live.difference(&unique).collect();
    assert!(missed.is_empty(), "live contacts never yielded: {missed:?}");
    let summary = stream.summary();
    assert!(
        summary.passes >= 2,
        "the moving count should force a second pass: {summary:?}"
    );
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_pager_hands_on_pages_in_order_with_their_totals_and_never_refetches_a_given_page_one()
{
    let sb = spawn(SandboxConfig {
        seed_contacts: 100,
        seed: 3,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let expected = listed_ids(&sb);
    let total = expected.len() as u64;
    let api = client(&sb);
    let list = api.contacts().list().sort("email");
    let first = list.page(1).await.unwrap();
    let before = sb.stats().count("GET", route::CONTACTS);
    let mut pages = list.concurrency(3).starting_from(first.clone()).pages();
    let (mut numbers, mut ids) = (vec![], vec![]);
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        assert_eq!(page.total, total, "page {}", page.number);
        numbers.push(page.number);
        ids.extend(page.contacts.iter().map(|c| c.id));
        assert_eq!(page.seen, ids.len() as u64);
    }
    let want_pages = total.div_ceil(15) as u32;
    assert_eq!(numbers, (1..=want_pages).collect::<Vec<_>>());
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a contact was handed on twice");
    assert_eq!(unique, expected);
    let first_ids: Vec<u64> = first.items.iter().map(|c| c.id).collect();
    assert_eq!(ids[..first_ids.len()], first_ids[..]);
    // Page 1 was given: only the other pages were asked for.
    assert_eq!(
        sb.stats().count("GET", route::CONTACTS) - before,
        u64::from(want_pages) - 1
    );
    let s = pages.summary();
    assert_eq!((s.total_start, s.total), (Some(total), Some(total)));
    assert_eq!(
        (s.passes, s.pages, s.seen),
        (1, u64::from(want_pages), total)
    );
    assert!(!s.drift.detected, "{s:?}");
    sb.shutdown().await.unwrap();
}
