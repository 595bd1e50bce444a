//! The sandbox against Chatwoot's own source: each test pins, through HTTP, a behaviour read in
//! the real server's code (the controller, the model, the Sift gem, the pg driver) where the
//! sandbox used to differ. `docs/sandbox.md` lists what is reproduced and what is not.
use axum::http::{Method, StatusCode};
use doto_bulk::sandbox::SandboxConfig;
use serde_json::{Value, json};

use crate::sandbox::{Api, ids_of, names_of};

/// Three contacts with an email and two phone-only ones (no email: NULL sorts last ascending).
async fn five_contacts(api: &Api) -> Vec<u64> {
    let mut ids = vec![];
    for (name, email, phone) in [
        ("bea", Some("c@x.com"), None),
        ("ann", Some("a@x.com"), None),
        ("cid", Some("b@x.com"), None),
        ("dan", None, Some("+15550000001")),
        ("abe", None, Some("+15550000002")),
    ] {
        ids.push(
            api.create(json!({"name": name, "email": email, "phone_number": phone}))
                .await,
        );
    }
    ids
}

#[tokio::test]
async fn sort_takes_a_comma_list_applied_in_the_controllers_declaration_order() {
    let api = Api::default();
    five_contacts(&api).await;
    // `sort_on :email` is declared before `sort_on :name`: whatever order the parameter names
    // them in, email decides first and name only breaks email's ties (the two NULL emails).
    for sort in ["-name,email", "email,-name"] {
        let r = api.get(&format!("/contacts?sort={sort}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            names_of(&r.json),
            ["ann", "cid", "bea", "dan", "abe"],
            "sort={sort}"
        );
    }
    // The search pages through the same `filtrate` (`%` matches every contact).
    let r = api.get("/contacts/search?q=%25&sort=-name,email").await;
    assert_eq!(names_of(&r.json), ["ann", "cid", "bea", "dan", "abe"]);
}

#[tokio::test]
async fn a_key_named_twice_keeps_its_last_direction_and_unknown_keys_in_a_list_are_skipped() {
    let api = Api::default();
    five_contacts(&api).await;
    let r = api.get("/contacts?sort=name,-name").await;
    assert_eq!(names_of(&r.json), ["dan", "cid", "bea", "ann", "abe"]);
    let r = api.get("/contacts?sort=bogus,-name,").await;
    assert_eq!(names_of(&r.json), ["dan", "cid", "bea", "ann", "abe"]);
    // Descending on a plain column puts NULL first (Postgres' default); the scopes that say
    // NULLS LAST keep it last in both directions.
    let r = api.get("/contacts?sort=-email,name").await;
    assert_eq!(names_of(&r.json), ["abe", "dan", "bea", "cid", "ann"]);
}

#[tokio::test]
async fn an_email_of_only_whitespace_is_blank_and_stored_as_null() {
    let api = Api::default();
    let r = api
        .post(
            "/contacts",
            json!({"name": "Ws", "email": " \t ", "phone_number": "+15550001000"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["payload"]["contact"]["email"], Value::Null);
    // A second one is no uniqueness clash: both are NULL.
    let r = api
        .post(
            "/contacts",
            json!({"name": "Ws2", "email": "\u{a0}", "phone_number": "+15550001001"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["payload"]["contact"]["email"], Value::Null);
    // Surrounding whitespace is still not trimmed: that email is invalid.
    let r = api
        .post("/contacts", json!({"name": "Ws3", "email": " a@x.com"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json["message"], "Email Invalid email");
}

#[tokio::test]
async fn search_strips_ascii_whitespace_only_and_blank_knows_unicode_spaces() {
    let api = Api::default();
    let jane = api
        .create(json!({"name": "jane doe", "email": "jane@x.com"}))
        .await;
    let nbsp = api
        .create(json!({"name": "mary\u{a0}doe", "email": "mary@x.com"}))
        .await;
    // `strip` removes ASCII whitespace: ` doe\t` finds both.
    let r = api.get("/contacts/search?q=%20doe%09").await;
    let mut ids = ids_of(&r.json);
    ids.sort_unstable();
    assert_eq!(ids, [jane, nbsp]);
    // A non-breaking space is not stripped: it is part of the pattern.
    let r = api.get("/contacts/search?q=%C2%A0doe").await;
    assert_eq!(ids_of(&r.json), [nbsp]);
    // ... but `blank?` counts it as whitespace: a q of only that returns before searching.
    let r = api.get("/contacts/search?q=%C2%A0").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["meta"]["count"], Value::Null);
    assert_eq!(r.json["payload"], json!([]));
}

#[tokio::test]
async fn a_nul_in_a_unique_field_is_a_500_even_before_a_422() {
    let api = Api::default();
    // The uniqueness SELECT on email runs before the phone's format check would give a 422.
    let r = api
        .post(
            "/contacts",
            json!({"name": "N", "email": "a\u{0}b@x.com", "phone_number": "123"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    let r = api
        .post("/contacts", json!({"name": "N", "identifier": "id\u{0}1"}))
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(api.state.contacts().is_empty());
    // No id was taken from the sequence: the next contact is 1.
    let id = api.create(json!({"email": "ok@x.com"})).await;
    assert_eq!(id, 1);
}

#[tokio::test]
async fn a_nul_in_the_name_or_the_attributes_is_a_500_after_validation() {
    let api = Api::default();
    // Validation comes first: an invalid phone is still the 422.
    let r = api
        .post(
            "/contacts",
            json!({"name": "a\u{0}b", "phone_number": "123"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    for body in [
        json!({"name": "a\u{0}b", "phone_number": "+15550002000"}),
        json!({"phone_number": "+15550002000", "custom_attributes": {"k": ["x\u{0}"]}}),
        json!({"phone_number": "+15550002000", "additional_attributes": {"k\u{0}": 1}}),
    ] {
        let r = api.post("/contacts", body.clone()).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    }
    assert!(api.state.contacts().is_empty());
    // An update refused the same way leaves the stored contact as it was.
    let id = api
        .create(json!({"email": "u@x.com", "custom_attributes": {"plan": "a"}}))
        .await;
    let r = api
        .patch(
            &format!("/contacts/{id}"),
            json!({"custom_attributes": {"plan": "b\u{0}"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    let shown = api.get(&format!("/contacts/{id}")).await;
    assert_eq!(
        shown.json["payload"]["custom_attributes"],
        json!({"plan": "a"})
    );
}

#[tokio::test]
async fn a_nul_in_a_note_or_in_the_search_text_is_a_500() {
    let api = Api::default();
    let id = api.create(json!({"email": "n@x.com"})).await;
    let r = api
        .post(
            &format!("/contacts/{id}/notes"),
            json!({"content": "a\u{0}b"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(api.state.notes().is_empty());
    let r = api.get("/contacts/search?q=n%00x").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn an_agent_sees_only_the_conversations_of_its_inboxes_and_the_limit_comes_after() {
    let api = Api::new(SandboxConfig {
        agent_inbox_ids: Some(vec![1]),
        ..Default::default()
    });
    // 25 recent conversations in inbox 2, one old one in inbox 1.
    let mut convs: Vec<Value> = (0..25)
        .map(|i| json!({"inbox_id": 2, "last_activity_at": 5000 + i}))
        .collect();
    convs.push(json!({"inbox_id": 1, "last_activity_at": 10}));
    let id = api
        .state
        .insert_contact(1, &json!({"email": "a@x.com", "conversations": convs}))
        .unwrap();
    let path = format!("/contacts/{id}/conversations");
    let admin = api.get(&path).await;
    assert_eq!(admin.json["payload"].as_array().unwrap().len(), 20);
    let agent_token = api.state.config().agent_token.clone();
    let agent = api.send(Method::GET, &path, Some(&agent_token), None).await;
    assert_eq!(agent.status, StatusCode::OK);
    let seen: Vec<(u64, i64)> = agent.json["payload"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["inbox_id"].as_u64().unwrap(),
                c["last_activity_at"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [(1, 10)]);
}

#[tokio::test]
async fn the_profile_tells_the_tokens_role_in_each_account() {
    let api = Api::default();
    let admin = api.get("/api/v1/profile").await;
    assert_eq!(admin.status, StatusCode::OK);
    assert_eq!(admin.json["role"], "administrator");
    assert_eq!(admin.json["accounts"][0]["id"].as_u64(), Some(api.account));
    assert_eq!(admin.json["accounts"][0]["role"], "administrator");
    // The real body carries the token: a client must never log it.
    assert_eq!(admin.json["access_token"], api.token.as_str());
    let agent_token = api.state.config().agent_token.clone();
    let agent = api
        .send(Method::GET, "/api/v1/profile", Some(&agent_token), None)
        .await;
    assert_eq!(agent.json["accounts"][0]["role"], "agent");
    let none = api
        .send(Method::GET, "/api/v1/profile", Some("nope"), None)
        .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.json, json!({"error": "Invalid Access Token"}));
}

/// With an agent's token the real server lists only the conversations of the agent's inboxes,
/// and nothing in the answer says so: a `--conversations` export would write the subset and
/// succeed. The export asks `GET /api/v1/profile` for the token's role first and refuses an
/// agent's before any request of its own.
#[tokio::test]
async fn an_export_of_conversations_with_an_agent_token_does_not_succeed_silently() {
    use doto_bulk::api::{ApiToken, Client};
    use doto_bulk::cmd::export::{ExportOptions, export};

    let sb = doto_bulk::sandbox::spawn(SandboxConfig {
        agent_inbox_ids: Some(vec![1]),
        ..Default::default()
    })
    .await
    .unwrap();
    let convs = json!([{"inbox_id": 1}, {"inbox_id": 2}, {"inbox_id": 3}]);
    sb.state()
        .insert_contact(1, &json!({"email": "a@x.com", "conversations": convs}))
        .unwrap();
    let mut cfg = crate::export::fast_config(&sb);
    cfg.token = ApiToken::new(sb.agent_token.clone()).unwrap();
    let c = Client::new(cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut o = ExportOptions::new(dir.path().join("x.jsonl")).unwrap();
    o.conversations = Some(dir.path().join("conv.jsonl"));
    let result = export(&c, &o).await;
    let written = std::fs::read_to_string(dir.path().join("conv.jsonl")).unwrap_or_default();
    let err = match result {
        Ok(_) => panic!(
            "the export succeeded with {} of 3 conversations",
            written.lines().count()
        ),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("agent") && err.contains("administrator"),
        "{err}"
    );
    // Refused before any request of the export: nothing listed, nothing written.
    assert_eq!(
        sb.stats().count("GET", doto_bulk::sandbox::route::CONTACTS),
        0
    );
    assert!(!dir.path().join("x.jsonl").exists());
    // The administrator's token exports all three.
    let c = Client::new(crate::export::fast_config(&sb)).unwrap();
    export(&c, &o).await.unwrap();
    let written = std::fs::read_to_string(dir.path().join("conv.jsonl")).unwrap();
    assert_eq!(written.lines().count(), 3);
}

#[tokio::test]
async fn the_length_check_of_every_string_column_reports_before_the_models_own_validations() {
    let api = Api::default();
    api.create(json!({"email": "taken@x.com"})).await;
    // `ApplicationRecord`'s before_validation adds "too long" first (columns in table order:
    // name, email, phone_number, identifier); then come Contact's validations.
    let r = api
        .post(
            "/contacts",
            json!({"identifier": "i".repeat(256), "email": "TAKEN@x.com",
                   "phone_number": "12", "name": "n".repeat(300)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json,
        json!({
            "message": "Name is too long (maximum is 255 characters), \
                        Identifier is too long (maximum is 255 characters), \
                        Email has already been taken, \
                        Phone number should be in e164 format",
            "attributes": ["name", "identifier", "email", "phone_number"]
        })
    );
}

#[tokio::test]
async fn blocked_is_cast_as_rails_casts_a_boolean_and_null_breaks_the_not_null_column() {
    let api = Api::default();
    // Only 0 and `0 f F false FALSE off OFF` are false: "no" and "False" block the contact.
    for (i, (sent, stored)) in [
        (json!("no"), true),
        (json!("False"), true),
        (json!("n"), true),
        (json!("off"), false),
        (json!("F"), false),
        (json!(0), false),
        (json!(2), true),
        (json!(0.0), true),
    ]
    .into_iter()
    .enumerate()
    {
        let r = api
            .post(
                "/contacts",
                json!({"email": format!("b{i}@x.com"), "blocked": sent}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{sent}: {}", r.text);
        assert_eq!(r.json["payload"]["contact"]["blocked"], stored, "{sent}");
    }
    // `null` and `""` are nil: the NOT NULL column refuses the INSERT (its id is used up) ...
    let before = api.state.contacts().len();
    for sent in [json!(null), json!("")] {
        let r = api
            .post("/contacts", json!({"email": "nil@x.com", "blocked": sent}))
            .await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{sent}");
    }
    assert_eq!(api.state.contacts().len(), before);
    let next = api.create(json!({"email": "after@x.com"})).await;
    assert_eq!(next, before as u64 + 3);
    // ... and the UPDATE; a validation error still comes first.
    let r = api
        .patch(&format!("/contacts/{next}"), json!({"blocked": null}))
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    let r = api
        .patch(
            &format!("/contacts/{next}"),
            json!({"blocked": "", "phone_number": "1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let shown = api.get(&format!("/contacts/{next}")).await;
    assert_eq!(shown.json["payload"]["blocked"], false);
}

#[tokio::test]
async fn emails_are_lower_cased_character_by_character_as_ruby_and_postgres_do() {
    let api = Api::default();
    // Ruby's `downcase` has no final-sigma rule: the last Σ becomes σ, not ς.
    let r = api
        .post("/contacts", json!({"email": "ΟΔΥΣΣΕΑΣ@x.gr"}))
        .await;
    assert_eq!(r.json["payload"]["contact"]["email"], "οδυσσεασ@x.gr");
    // `LOWER()` in the uniqueness check and ILIKE in search compare the same way: the ς
    // spelling is another address, found by neither.
    let r = api
        .post("/contacts", json!({"email": "οδυσσεας@x.gr"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = api
        .get("/contacts/search?q=%CE%9F%CE%94%CE%A5%CE%A3%CE%A3%CE%95%CE%91%CE%A3")
        .await;
    assert_eq!(r.json["payload"].as_array().unwrap().len(), 1);
    assert_eq!(r.json["payload"][0]["email"], "οδυσσεασ@x.gr");
}

/// The client survives the server's lower-casing: its email rule refuses non-ASCII local parts,
/// and a domain goes through IDNA's mapping, which (like Ruby) turns a final `Σ` into `σ`, so
/// the address typed in capitals finds the contact the server stored.
#[tokio::test]
async fn a_final_capital_sigma_in_the_domain_finds_the_contact_the_server_holds() {
    use crate::import::{HEADER, MAPPING, World, outcome};
    let w = World::plain().await;
    w.seed(json!({"name": "Odysseas", "email": "odysseas@ΟΔΥΣΣΕΑΣ.gr", "custom_attributes": {"plan": "free"}}));
    let csv = format!("{HEADER}Odysseas K,odysseas@ΟΔΥΣΣΕΑΣ.gr,,free,Athens\n");
    let run = w.import(&csv, MAPPING, "run", |_| {}).await;
    assert_eq!(
        outcome(&run, "created"),
        0,
        "a duplicate was created: {:?}",
        run.summary.outcomes
    );
    assert_eq!(outcome(&run, "updated"), 1, "{:?}", run.summary.outcomes);
    assert_eq!(w.sb.contacts().len(), 1);
}
