//! The last differences from the real server (issue 17): each test asserts what the real server
//! does where the sandbox used to differ. The points that changed existing behaviour are asserted
//! next to the behaviour they refine in `contract.rs` (inbox 404, page below 1, `NULLS LAST`,
//! blank search `has_more`, note ids, DELETE's content type).
use axum::http::{Method, StatusCode};
use doto_bulk::sandbox::{Flavour, SandboxConfig};
use serde_json::{Value, json};

use super::{Api, names_of};

fn flavoured(flavour: Flavour) -> Api {
    Api::new(SandboxConfig {
        flavour,
        ..Default::default()
    })
}

/// The contact in a show/update/create body of either flavour.
fn contact_of(flavour: Flavour, v: &Value) -> Value {
    match flavour {
        Flavour::Chatwoot if v["payload"]["contact"].is_object() => v["payload"]["contact"].clone(),
        Flavour::Chatwoot => v["payload"].clone(),
        Flavour::Doto => v.clone(),
    }
}

#[tokio::test]
async fn no_contact_view_renders_updated_at() {
    for flavour in [Flavour::Chatwoot, Flavour::Doto] {
        let api = flavoured(flavour);
        let created = api.post("/contacts", json!({"email": "a@x.com"})).await;
        let contact = contact_of(flavour, &created.json);
        let id = contact["id"].as_u64().unwrap();
        api.state
            .insert_contact(
                1,
                &json!({"email": "b@x.com", "conversations": [{"last_activity_at": 5}]}),
            )
            .unwrap();
        let updated = api
            .patch(&format!("/contacts/{id}"), json!({"name": "A"}))
            .await;
        let shown = api.get(&format!("/contacts/{id}")).await;
        let listed = api.get("/contacts").await.json;
        let found = api.get("/contacts/search?q=x.com").await.json;
        let mut views = vec![
            contact,
            contact_of(flavour, &updated.json),
            contact_of(flavour, &shown.json),
        ];
        views.extend(listed["payload"].as_array().unwrap().iter().cloned());
        views.extend(found["payload"].as_array().unwrap().iter().cloned());
        let conv = api.get("/contacts/2/conversations").await.json;
        views.push(conv["payload"][0]["meta"]["sender"].clone());
        assert_eq!(views.len(), 8, "{flavour:?}");
        for v in views {
            assert!(v["id"].is_u64() && v["created_at"].is_i64(), "{v}");
            assert!(v.get("updated_at").is_none(), "{flavour:?}: {v}");
        }
    }
}

#[tokio::test]
async fn a_nested_note_body_is_accepted_and_wins_over_top_level_content() {
    let api = Api::default();
    let id = api.create(json!({"email": "a@x.com"})).await;
    let url = format!("/contacts/{id}/notes");
    let r = api.post(&url, json!({"note": {"content": "nested"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["content"], "nested");
    let r = api
        .post(
            &url,
            json!({"note": {"content": "inner"}, "content": "outer"}),
        )
        .await;
    assert_eq!(r.json["content"], "inner");
    // A `note` key, even an empty one, stops the wrapping of the top-level `content`.
    for empty in [json!({}), json!(null), json!(""), json!([])] {
        let r = api
            .post(&url, json!({"note": empty, "content": "outer"}))
            .await;
        assert_eq!(
            r.json,
            json!({"error": "param is missing or the value is empty: note"}),
            "note: {empty}"
        );
    }
    // Present but not an object: `permit` raises.
    let r = api.post(&url, json!({"note": "text"})).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    // A non-scalar content is not permitted: blank.
    let r = api.post(&url, json!({"note": {"content": {"a": 1}}})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json["message"], "Content can't be blank");
    let contents: Vec<Value> = api
        .state
        .notes()
        .iter()
        .map(|n| n["content"].clone())
        .collect();
    assert_eq!(contents, [json!("nested"), json!("inner")]);
}

#[tokio::test]
async fn paths_route_as_in_rails_trailing_slash_json_suffix_and_ids_read_with_to_i() {
    for flavour in [Flavour::Chatwoot, Flavour::Doto] {
        let api = flavoured(flavour);
        let created = api.post("/contacts/", json!({"email": "a@x.com"})).await;
        assert!(created.status.is_success(), "{flavour:?}: {}", created.text);
        let id = contact_of(flavour, &created.json)["id"].as_u64().unwrap();
        assert_eq!(id, 1);
        for path in [
            "/contacts/1/",
            "/contacts/1.json",
            "/contacts/1abc",
            "/contacts/1abc.json",
            "/contacts/01",
            "/contacts//1",
            "/api/v1/accounts/1abc/contacts/1",
            "/api/v1/accounts/1/contacts.json/1",
        ] {
            let r = api.get(path).await;
            if path.ends_with("contacts.json/1") {
                // `.json` only ends a path; inside it is part of a segment: no such route.
                assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
                continue;
            }
            assert_eq!(r.status, StatusCode::OK, "{flavour:?} {path}: {}", r.text);
            assert_eq!(contact_of(flavour, &r.json)["id"], 1, "{path}");
        }
        for path in ["/contacts/", "/contacts.json", "/contacts.json?sort=email"] {
            let r = api.get(path).await;
            assert_eq!(r.json["meta"]["count"], 1, "{flavour:?} {path}: {}", r.text);
        }
        let r = api.get("/contacts/search.json?q=a%40x").await;
        assert_eq!(r.json["payload"][0]["id"], 1, "{}", r.text);
        let r = api.get("/contacts/search/?q=a%40x").await;
        assert_eq!(r.json["payload"][0]["id"], 1);
        let r = api
            .post("/contacts/1abc/notes.json", json!({"content": "hi"}))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            api.get("/contacts/1/conversations/").await.status,
            StatusCode::OK
        );
        let r = api
            .patch("/contacts/1.json", json!({"name": "Renamed"}))
            .await;
        assert_eq!(contact_of(flavour, &r.json)["name"], "Renamed");
        // Ids that read as 0 or as another number are not this contact.
        for path in [
            "/contacts/abc",
            "/contacts/0",
            "/contacts/-1",
            "/contacts/2abc",
        ] {
            assert_eq!(api.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        let r = api.delete("/contacts/1abc/").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(api.state.contacts().is_empty());
        // The per-account search limit and the counters see the same route.
        let searches = api
            .state
            .stats()
            .count("GET", doto_bulk::sandbox::route::SEARCH);
        assert_eq!(searches, 2);
    }
}

#[tokio::test]
async fn sort_by_company_name_city_and_country_with_missing_values_last_both_ways() {
    let api = Api::default();
    for (n, attrs) in [
        (
            "b",
            json!({"company_name": "Beta", "city": "Lyon", "country": "France"}),
        ),
        (
            "a",
            json!({"company_name": "Acme", "city": "Paris", "country": "Spain"}),
        ),
        ("none", json!({})),
        (
            "null",
            json!({"company_name": null, "city": null, "country": null}),
        ),
        (
            "c",
            json!({"company_name": "Corp", "city": "Berlin", "country": "Germany"}),
        ),
    ] {
        api.create(
            json!({"name": n, "email": format!("{n}@x.com"), "additional_attributes": attrs}),
        )
        .await;
    }
    for (key, asc) in [
        ("company_name", ["a", "b", "c"]),
        ("city", ["c", "b", "a"]),
        ("country", ["b", "c", "a"]),
    ] {
        let up = names_of(&api.get(&format!("/contacts?sort={key}")).await.json);
        assert_eq!(up[..3], asc, "sort={key}");
        let down = names_of(&api.get(&format!("/contacts?sort=-{key}")).await.json);
        let mut desc = asc;
        desc.reverse();
        assert_eq!(down[..3], desc, "sort=-{key}");
        for order in [&up, &down] {
            let mut tail = order[3..].to_vec();
            tail.sort();
            assert_eq!(tail, ["none", "null"], "sort={key}: {order:?}");
        }
    }
    // The same keys order a search.
    let found = names_of(&api.get("/contacts/search?q=x.com&sort=-city").await.json);
    assert_eq!(found[..3], ["a", "b", "c"]);
}

#[tokio::test]
async fn conversations_render_as_the_real_conversation_partial() {
    for flavour in [Flavour::Chatwoot, Flavour::Doto] {
        let api = flavoured(flavour);
        let id = api
            .state
            .insert_contact(
                1,
                &json!({"name": "Jane", "email": "jane@x.com", "identifier": "u-1",
                        "custom_attributes": {"plan": "pro"},
                        "additional_attributes": {"city": "Lyon"},
                        "conversations": [
                            {"inbox_id": 3, "status": "open", "created_at": 100, "last_activity_at": 200,
                             "assignee_id": 2},
                            {"created_at": 50, "last_activity_at": 60}]}),
            )
            .unwrap();
        let r = api.get(&format!("/contacts/{id}/conversations")).await;
        assert_eq!(r.status, StatusCode::OK);
        let list = r.json["payload"].as_array().unwrap();
        let (assigned, unassigned) = (&list[0], &list[1]);
        let uuid = assigned["uuid"].as_str().unwrap();
        assert_eq!(uuid.len(), 36, "{uuid}");
        assert_eq!(uuid.matches('-').count(), 4, "{uuid}");
        assert_ne!(assigned["uuid"], unassigned["uuid"]);
        assert_eq!(assigned["labels"], json!([]));
        assert_eq!(assigned["muted"], false);
        assert_eq!(assigned["can_reply"], true);
        assert_eq!(assigned["inbox_id"], 3);
        assert_eq!(assigned["status"], "open");
        assert_eq!(assigned["timestamp"], 200);
        let meta = &assigned["meta"];
        assert_eq!(meta["channel"], "Channel::Api");
        assert_eq!(meta["assignee"]["id"], 2);
        assert_eq!(meta["assignee"]["role"], "agent");
        assert!(unassigned["meta"].get("assignee").is_none(), "{unassigned}");
        // The sender is the whole contact partial.
        let sender = &meta["sender"];
        assert_eq!(sender["id"], id);
        assert_eq!(sender["identifier"], "u-1");
        assert_eq!(sender["thumbnail"], "");
        assert_eq!(sender["custom_attributes"], json!({"plan": "pro"}));
        assert_eq!(sender["additional_attributes"], json!({"city": "Lyon"}));
        // Stable between requests.
        let again = api.get(&format!("/contacts/{id}/conversations")).await.json;
        assert_eq!(again["payload"], r.json["payload"]);
    }
}

#[tokio::test]
async fn a_create_that_reaches_the_insert_uses_an_id_even_when_it_fails() {
    let api = Api::default();
    assert_eq!(api.create(json!({"identifier": ""})).await, 1);
    // Validation refuses before the insert: no id used.
    assert_eq!(
        api.post("/contacts", json!({"email": "bad"})).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(api.create(json!({"email": "b@x.com"})).await, 2);
    // The unique index refuses the insert (a second empty identifier): id 3 is gone.
    assert_eq!(
        api.post("/contacts", json!({"identifier": ""}))
            .await
            .status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    // The inbox lookup after the insert rolls it back: id 4 is gone.
    assert_eq!(
        api.post("/contacts", json!({"email": "c@x.com", "inbox_id": 7}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(api.create(json!({"email": "d@x.com"})).await, 5);
    let ids: Vec<u64> = api
        .state
        .contacts()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 5]);
}

#[tokio::test]
async fn booleans_sent_for_string_fields_are_stored_as_t_and_f() {
    for flavour in [Flavour::Chatwoot, Flavour::Doto] {
        let api = flavoured(flavour);
        let r = api
            .post("/contacts", json!({"name": false, "identifier": true}))
            .await;
        let c = contact_of(flavour, &r.json);
        assert_eq!((&c["name"], &c["identifier"]), (&json!("f"), &json!("t")));
        let id = c["id"].as_u64().unwrap();
        let r = api
            .patch(&format!("/contacts/{id}"), json!({"identifier": false}))
            .await;
        assert_eq!(contact_of(flavour, &r.json)["identifier"], "f");
        // Stored as a string like any other: another `false` is a taken identifier.
        let r = api.post("/contacts", json!({"identifier": false})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json["attributes"], json!(["identifier"]));
    }
}

#[tokio::test]
async fn json_bodies_say_charset_utf8_and_delete_says_json_without_one() {
    for flavour in [Flavour::Chatwoot, Flavour::Doto] {
        let api = flavoured(flavour);
        let created = api.post("/contacts", json!({"email": "a@x.com"})).await;
        let id = contact_of(flavour, &created.json)["id"].as_u64().unwrap();
        let note = api
            .post(&format!("/contacts/{id}/notes"), json!({"content": "x"}))
            .await;
        let replies = [
            created,
            note,
            api.get("/contacts").await,
            api.get("/contacts/search?q=a").await,
            api.get(&format!("/contacts/{id}")).await,
            api.patch(&format!("/contacts/{id}"), json!({"name": "n"}))
                .await,
            api.get(&format!("/contacts/{id}/conversations")).await,
            api.get("/contacts/999").await,
            api.post("/contacts", json!({"email": "bad"})).await,
            api.send(Method::GET, "/contacts", None, None).await,
        ];
        for r in replies {
            assert_eq!(
                r.headers["content-type"], "application/json; charset=utf-8",
                "{flavour:?} {} {}",
                r.status, r.text
            );
        }
        let gone = api.delete(&format!("/contacts/{id}")).await;
        assert_eq!(gone.status, StatusCode::OK);
        assert_eq!(gone.headers["content-type"], "application/json");
        assert!(gone.text.is_empty());
    }
}
