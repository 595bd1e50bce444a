//! One test per behaviour of `API.md`, through `oneshot` on `router()`.
use axum::http::{Method, StatusCode};
use doto_bulk::sandbox::{Flavour, SandboxConfig};
use serde_json::{Value, json};

use super::{Api, ids_of, names_of};

#[tokio::test]
async fn create_returns_200_with_contact_and_contact_inbox_in_payload() {
    let api = Api::default();
    let r = api
        .post(
            "/contacts",
            json!({"name": "Jane", "email": "jane@example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["payload"]["contact"]["email"], "jane@example.com");
    assert_eq!(
        r.json["payload"]["contact_inbox"],
        json!({"inbox": null, "source_id": null})
    );
    let id = r.json["payload"]["contact"]["id"].as_u64().unwrap();
    let shown = api.get(&format!("/contacts/{id}")).await;
    assert_eq!(shown.json["payload"]["id"], id);
    assert_eq!(api.state.contacts().len(), 1);
}

#[tokio::test]
async fn no_token_is_401_with_the_devise_errors_array() {
    let api = Api::default();
    let r = api
        .send(Method::GET, "/contacts", None, None::<&Value>)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json,
        json!({"errors": ["You need to sign in or sign up before continuing."]})
    );
}

#[tokio::test]
async fn doto_flavour_creates_with_201_and_a_bare_contact() {
    let api = Api::new(SandboxConfig {
        flavour: Flavour::Doto,
        ..Default::default()
    });
    let r = api
        .post(
            "/contacts",
            json!({"name": "Jane", "phone_number": "+14155552671"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json["phone_number"], "+14155552671");
    assert!(r.json.get("payload").is_none());
}

#[tokio::test]
async fn patch_shallow_merges_attribute_objects_and_keeps_other_fields() {
    let api = Api::default();
    let id = api
        .create(json!({"name": "Jane", "email": "jane@x.com",
                       "custom_attributes": {"plan": "free", "seats": 3, "nested": {"a": 1, "b": 2}}}))
        .await;
    let r = api
        .patch(
            &format!("/contacts/{id}"),
            json!({"custom_attributes": {"plan": "premium", "nested": {"a": 9}, "seats": null}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let c = &r.json["payload"];
    assert_eq!(
        c["custom_attributes"],
        json!({"plan": "premium", "seats": null, "nested": {"a": 9}})
    );
    assert_eq!(c["email"], "jane@x.com");
    assert_eq!(c["name"], "Jane");
}

#[tokio::test]
async fn delete_answers_200_with_an_empty_body_and_removes_the_contact() {
    let api = Api::default();
    let id = api.create(json!({"email": "gone@x.com"})).await;
    let r = api.delete(&format!("/contacts/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.is_empty(), "body: {:?}", r.text);
    // `head :ok` under the API's default JSON format: the type, without a charset.
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        api.get(&format!("/contacts/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

// ---- the contact object ---------------------------------------------------------------------

#[tokio::test]
async fn contact_has_epoch_timestamps_and_omits_a_null_last_activity_at() {
    let api = Api::default();
    let fresh = api.create(json!({"email": "a@x.com"})).await;
    let seeded = api
        .state
        .insert_contact(
            1,
            &json!({"email": "b@x.com", "created_at": 1711000000, "last_activity_at": 1712001000}),
        )
        .unwrap();
    let a = api.get(&format!("/contacts/{fresh}")).await.json["payload"].clone();
    assert!(a["created_at"].as_i64().unwrap() > 1_700_000_000, "{a}");
    assert!(
        a.get("last_activity_at").is_none(),
        "null last_activity_at must be omitted: {a}"
    );
    let b = api.get(&format!("/contacts/{seeded}")).await.json["payload"].clone();
    assert_eq!(b["last_activity_at"], 1712001000);
    assert_eq!(b["created_at"], 1711000000);
}

#[tokio::test]
async fn email_is_stored_lower_cased_and_an_empty_email_becomes_null() {
    let api = Api::default();
    let id = api
        .create(json!({"name": "Jane", "email": "Jane.DOE@Example.COM"}))
        .await;
    assert_eq!(
        api.get(&format!("/contacts/{id}")).await.json["payload"]["email"],
        "jane.doe@example.com"
    );
    let id2 = api.create(json!({"name": "No mail", "email": ""})).await;
    assert_eq!(
        api.get(&format!("/contacts/{id2}")).await.json["payload"]["email"],
        Value::Null
    );
}

#[tokio::test]
async fn attribute_objects_are_never_null() {
    let api = Api::default();
    let id = api
        .create(json!({"email": "a@x.com", "custom_attributes": null}))
        .await;
    let c = api.get(&format!("/contacts/{id}")).await.json["payload"].clone();
    assert_eq!(c["custom_attributes"], json!({}));
    assert_eq!(c["additional_attributes"], json!({}));
}

#[tokio::test]
async fn contact_inboxes_are_absent_unless_include_contact_inboxes_is_exactly_true() {
    let api = Api::default();
    let id = api.create(json!({"email": "a@x.com"})).await;
    let has = |v: &Value| v.get("contact_inboxes").is_some();
    assert!(has(
        &api.get(&format!("/contacts/{id}")).await.json["payload"]
    ));
    assert!(has(&api
        .get(&format!("/contacts/{id}?include_contact_inboxes=true"))
        .await
        .json["payload"]));
    for v in ["false", "TRUE", "1", "yes"] {
        let c = api
            .get(&format!("/contacts/{id}?include_contact_inboxes={v}"))
            .await
            .json["payload"]
            .clone();
        assert!(
            !has(&c),
            "include_contact_inboxes={v} must drop the key: {c}"
        );
    }
    let list = api
        .get("/contacts?include_contact_inboxes=false")
        .await
        .json;
    assert!(!has(&list["payload"][0]));
}

#[tokio::test]
async fn create_with_an_inbox_id_is_404_because_the_account_has_no_such_inbox() {
    for flavour in [Flavour::Chatwoot, Flavour::Doto] {
        let api = Api::new(SandboxConfig {
            flavour,
            ..Default::default()
        });
        // No inbox is invented: not 1, not any other.
        for inbox in [json!(1), json!("1"), json!(99), json!(0), json!("abc")] {
            let r = api
                .post("/contacts", json!({"email": "a@x.com", "inbox_id": inbox}))
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{flavour:?} {inbox}");
            assert_eq!(r.json, json!({"error": "Resource could not be found"}));
        }
        assert!(api.state.contacts().is_empty(), "the insert is rolled back");
        // The contact is validated (and saved) before the inbox is looked up: a 422 comes first.
        let r = api
            .post("/contacts", json!({"email": "bad", "inbox_id": 1}))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        // A blank inbox_id is no inbox at all.
        for blank in [json!(null), json!(""), json!("  "), json!(false)] {
            let r = api
                .post("/contacts", json!({"name": "n", "inbox_id": blank}))
                .await;
            assert!(r.status.is_success(), "{flavour:?} {blank}: {}", r.text);
        }
    }
}

// ---- endpoints and flavours -----------------------------------------------------------------

#[tokio::test]
async fn show_is_wrapped_in_payload_for_chatwoot_and_bare_for_doto() {
    let cw = Api::default();
    let id = cw.create(json!({"email": "a@x.com"})).await;
    assert_eq!(
        cw.get(&format!("/contacts/{id}")).await.json["payload"]["id"],
        id
    );
    let doto = Api::new(SandboxConfig {
        flavour: Flavour::Doto,
        ..Default::default()
    });
    let r = doto.post("/contacts", json!({"email": "a@x.com"})).await;
    let id = r.json["id"].as_u64().unwrap();
    let shown = doto.get(&format!("/contacts/{id}")).await;
    assert_eq!(shown.json["id"], id);
    assert!(shown.json.get("payload").is_none());
    let upd = doto
        .patch(&format!("/contacts/{id}"), json!({"name": "X"}))
        .await;
    assert_eq!(upd.status, StatusCode::OK);
    assert_eq!(upd.json["name"], "X");
}

#[tokio::test]
async fn put_updates_like_patch() {
    let api = Api::default();
    let id = api.create(json!({"email": "a@x.com", "name": "A"})).await;
    let tok = api.token.clone();
    let r = api
        .send(
            Method::PUT,
            &format!("/contacts/{id}"),
            Some(&tok),
            Some(&json!({"name": "B"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["payload"]["name"], "B");
    assert_eq!(r.json["payload"]["email"], "a@x.com");
}

#[tokio::test]
async fn list_meta_has_total_count_and_current_page_and_doto_adds_total_pages() {
    let api = Api::default();
    for i in 0..20 {
        api.create(json!({"email": format!("c{i}@x.com")})).await;
    }
    let r = api.get("/contacts").await;
    assert_eq!(r.json["meta"], json!({"count": 20, "current_page": 1}));
    let doto = Api::new(SandboxConfig {
        flavour: Flavour::Doto,
        ..Default::default()
    });
    for i in 0..16 {
        doto.post("/contacts", json!({"email": format!("c{i}@x.com")}))
            .await;
    }
    let r = doto.get("/contacts?page=2").await;
    assert_eq!(
        r.json["meta"],
        json!({"count": 16, "current_page": "2", "total_pages": 2})
    );
}

// ---- listing ----------------------------------------------------------------------------------

#[tokio::test]
async fn list_pages_hold_exactly_15_and_a_page_past_the_end_is_empty_with_the_same_count() {
    let api = Api::default();
    for i in 0..32 {
        api.create(json!({"email": format!("c{i}@x.com")})).await;
    }
    let mut sizes = vec![];
    for p in 1..=4 {
        let r = api.get(&format!("/contacts?sort=email&page={p}")).await;
        assert_eq!(r.json["meta"]["count"], 32);
        sizes.push(r.json["payload"].as_array().unwrap().len());
    }
    assert_eq!(sizes, vec![15, 15, 2, 0]);
}

#[tokio::test]
async fn current_page_is_the_string_sent_or_the_integer_1_when_not_sent() {
    let api = Api::default();
    api.create(json!({"email": "a@x.com"})).await;
    assert_eq!(
        api.get("/contacts").await.json["meta"]["current_page"],
        json!(1)
    );
    assert_eq!(
        api.get("/contacts?page=1").await.json["meta"]["current_page"],
        json!("1")
    );
    assert_eq!(
        api.get("/contacts?page=3").await.json["meta"]["current_page"],
        json!("3")
    );
}

#[tokio::test]
async fn list_serves_page_1_below_1_or_for_text_while_search_answers_500() {
    let api = Api::default();
    for i in 0..20 {
        api.create(json!({"email": format!("a{i:02}@x.com")})).await;
    }
    let huge = api.get("/contacts?page=18446744073709551615").await;
    assert_eq!(huge.status, StatusCode::OK);
    assert_eq!(huge.json["payload"], json!([]));
    let first = ids_of(&api.get("/contacts?sort=email").await.json);
    for p in ["0", "abc", "-1"] {
        // Kaminari serves page 1; the meta echoes what was sent.
        let r = api.get(&format!("/contacts?sort=email&page={p}")).await;
        assert_eq!(r.status, StatusCode::OK, "page={p}");
        assert_eq!(r.json["meta"], json!({"count": 20, "current_page": p}));
        assert_eq!(ids_of(&r.json), first, "page={p}");
        // The search's own offset arithmetic goes negative: Postgres refuses it.
        let r = api.get(&format!("/contacts/search?q=a&page={p}")).await;
        assert_eq!(
            r.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "search page={p}"
        );
    }
    // Both read the page with `to_i`: `2abc` is page 2.
    let r = api.get("/contacts?sort=email&page=2abc").await;
    assert_eq!(r.json["meta"]["current_page"], "2abc");
    assert_eq!(r.json["payload"].as_array().unwrap().len(), 5);
    let r = api.get("/contacts/search?q=a&sort=email&page=2abc").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["meta"]["count"], 5);
}

#[tokio::test]
async fn only_contacts_with_email_phone_or_identifier_are_listed_but_name_only_ones_exist() {
    let api = Api::default();
    api.create(json!({"name": "Mail", "email": "m@x.com"}))
        .await;
    api.create(json!({"name": "Phone", "phone_number": "+14155552671"}))
        .await;
    api.create(json!({"name": "Ident", "identifier": "u1"}))
        .await;
    let ghost = api.create(json!({"name": "Ghost Only"})).await;
    let blank = api
        .create(json!({"name": "Blank Phone", "phone_number": ""}))
        .await;
    let r = api.get("/contacts?sort=name").await;
    assert_eq!(r.json["meta"]["count"], 3);
    let names: Vec<&str> = r.json["payload"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Ident", "Mail", "Phone"]);
    assert_eq!(
        api.get(&format!("/contacts/{ghost}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.get(&format!("/contacts/{blank}")).await.status,
        StatusCode::OK
    );
    let found = api.get("/contacts/search?q=ghost").await;
    assert_eq!(found.json["payload"][0]["id"], ghost);
}

#[tokio::test]
async fn sort_keys_ascending_and_descending_compare_case_insensitively() {
    let api = Api::default();
    for (n, e, p) in [
        ("bob", "B@x.com", "+14155550002"),
        ("Alice", "c@x.com", "+14155550003"),
        ("Carol", "a@x.com", "+14155550001"),
    ] {
        api.create(json!({"name": n, "email": e, "phone_number": p}))
            .await;
    }
    assert_eq!(
        names_of(&api.get("/contacts?sort=name").await.json),
        ["Alice", "bob", "Carol"]
    );
    assert_eq!(
        names_of(&api.get("/contacts?sort=-name").await.json),
        ["Carol", "bob", "Alice"]
    );
    assert_eq!(
        names_of(&api.get("/contacts?sort=email").await.json),
        ["Carol", "bob", "Alice"]
    );
    assert_eq!(
        names_of(&api.get("/contacts?sort=-phone_number").await.json),
        ["Alice", "bob", "Carol"]
    );
}

#[tokio::test]
async fn sort_by_created_at_and_last_activity_at() {
    let api = Api::default();
    for (n, c, l) in [
        ("mid", 200, Some(5)),
        ("old", 100, Some(9)),
        ("new", 300, None),
    ] {
        let mut v = json!({"name": n, "email": format!("{n}@x.com"), "created_at": c});
        if let Some(l) = l {
            v["last_activity_at"] = json!(l);
        }
        api.state.insert_contact(1, &v).unwrap();
    }
    assert_eq!(
        names_of(&api.get("/contacts?sort=created_at").await.json),
        ["old", "mid", "new"]
    );
    assert_eq!(
        names_of(&api.get("/contacts?sort=-created_at").await.json),
        ["new", "mid", "old"]
    );
    // The controller's scope says NULLS LAST in both directions: never-active contacts last.
    assert_eq!(
        names_of(&api.get("/contacts?sort=last_activity_at").await.json),
        ["mid", "old", "new"]
    );
    assert_eq!(
        names_of(&api.get("/contacts?sort=-last_activity_at").await.json),
        ["old", "mid", "new"]
    );
}

#[tokio::test]
async fn an_unknown_sort_key_is_ignored_silently() {
    let api = Api::default();
    for i in 0..5 {
        api.create(json!({"email": format!("c{i}@x.com")})).await;
    }
    let r = api.get("/contacts?sort=favourite_colour").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["meta"]["count"], 5);
}

#[tokio::test]
async fn without_sort_the_order_changes_between_requests_so_unsorted_paging_misses_rows() {
    let api = Api::default();
    for i in 0..60 {
        api.create(json!({"email": format!("c{i:02}@x.com")})).await;
    }
    let first = ids_of(&api.get("/contacts").await.json);
    let again = ids_of(&api.get("/contacts").await.json);
    assert_ne!(
        first, again,
        "two unsorted requests returned the same page in the same order"
    );
    let mut seen = std::collections::HashSet::new();
    let mut rows = 0;
    for p in 1..=4 {
        for id in ids_of(&api.get(&format!("/contacts?page={p}")).await.json) {
            seen.insert(id);
            rows += 1;
        }
    }
    assert_eq!(rows, 60);
    assert!(
        seen.len() < 60,
        "unsorted paging happened to see every contact exactly once"
    );
    // Sorted paging is complete.
    let mut sorted = std::collections::HashSet::new();
    for p in 1..=4 {
        sorted.extend(ids_of(
            &api.get(&format!("/contacts?sort=email&page={p}"))
                .await
                .json,
        ));
    }
    assert_eq!(sorted.len(), 60);
}

#[tokio::test]
async fn rows_sharing_a_sort_value_have_no_id_tie_breaker_and_reorder_after_writes() {
    let api = Api::default();
    for i in 0..40 {
        api.create(json!({"name": "Same", "email": format!("s{i}@x.com")}))
            .await;
    }
    let before = ids_of(&api.get("/contacts?sort=name").await.json);
    let mut by_id = before.clone();
    by_id.sort();
    assert_ne!(before, by_id, "ties came back in id order");
    api.create(json!({"name": "Zed", "email": "z@x.com"})).await;
    let after = ids_of(&api.get("/contacts?sort=name").await.json);
    assert_ne!(before, after, "a write did not reshuffle the ties");
}

// ---- search -----------------------------------------------------------------------------------

async fn search_ids(api: &Api, q: &str) -> Vec<u64> {
    let r = api.get(&format!("/contacts/search?q={q}&sort=email")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["payload"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn search_is_a_trimmed_case_insensitive_substring_on_name_email_and_phone() {
    let api = Api::default();
    let jane = api
        .create(json!({"name": "Jane Doe", "email": "jane@x.com", "phone_number": "+14155552671"}))
        .await;
    let mary = api
        .create(json!({"name": "Mary", "email": "mary.jane@x.com"}))
        .await;
    let other = api
        .create(json!({"name": "Bob", "email": "bob@y.com", "phone_number": "+447400123456"}))
        .await;
    assert_eq!(
        search_ids(&api, "%20%20JANE%40X.COM%20").await,
        vec![jane, mary]
    );
    assert_eq!(search_ids(&api, "doe").await, vec![jane]);
    assert_eq!(search_ids(&api, "5552671").await, vec![jane]);
    assert_eq!(search_ids(&api, "%2B44").await, vec![other]);
}

#[tokio::test]
async fn search_on_identifier_is_case_sensitive() {
    let api = Api::default();
    let id = api
        .create(json!({"name": "X", "identifier": "CRM-User-77"}))
        .await;
    assert_eq!(search_ids(&api, "User-77").await, vec![id]);
    assert!(search_ids(&api, "user-77").await.is_empty());
}

#[tokio::test]
async fn percent_and_underscore_in_q_act_as_wildcards() {
    let api = Api::default();
    let a = api.create(json!({"email": "jane@x.com"})).await;
    let b = api.create(json!({"email": "june@x.com"})).await;
    api.create(json!({"email": "jn@x.com"})).await;
    assert_eq!(search_ids(&api, "j_ne").await, vec![a, b]);
    assert_eq!(search_ids(&api, "j%25e%40").await, vec![a, b]);
}

#[tokio::test]
async fn a_plus_must_be_percent_encoded_or_it_is_a_space() {
    let api = Api::default();
    let id = api.create(json!({"email": "a+b@x.com"})).await;
    assert!(search_ids(&api, "a+b@x.com").await.is_empty());
    assert_eq!(search_ids(&api, "a%2Bb%40x.com").await, vec![id]);
}

#[tokio::test]
async fn search_pages_by_15_with_per_page_count_and_has_more() {
    let api = Api::default();
    for i in 0..20 {
        api.create(json!({"email": format!("match{i:02}@x.com")}))
            .await;
    }
    let p1 = api.get("/contacts/search?q=match&sort=email").await.json;
    assert_eq!(
        p1["meta"],
        json!({"count": 15, "current_page": 1, "has_more": true})
    );
    let p2 = api
        .get("/contacts/search?q=match&sort=email&page=2")
        .await
        .json;
    assert_eq!(
        p2["meta"],
        json!({"count": 5, "current_page": "2", "has_more": false})
    );
    assert_eq!(p2["payload"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn old_search_shape_has_the_total_as_count_and_no_has_more() {
    let api = Api::new(SandboxConfig {
        search_total_count: true,
        ..Default::default()
    });
    for i in 0..20 {
        api.create(json!({"email": format!("match{i:02}@x.com")}))
            .await;
    }
    let p1 = api.get("/contacts/search?q=match").await.json;
    assert_eq!(p1["meta"], json!({"count": 20, "current_page": 1}));
    assert_eq!(p1["payload"].as_array().unwrap().len(), 15);
    let blank = api.get("/contacts/search?q=").await.json;
    assert_eq!(blank["meta"], json!({"count": null, "current_page": 1}));
}

#[tokio::test]
async fn a_blank_q_is_200_with_a_null_count_or_422_on_some_versions() {
    let api = Api::default();
    api.create(json!({"email": "a@x.com"})).await;
    for q in ["", "%20%20"] {
        let r = api.get(&format!("/contacts/search?q={q}")).await;
        assert_eq!(r.status, StatusCode::OK);
        // The controller returns before it counts or pages: both stay nil.
        assert_eq!(
            r.json,
            json!({"meta": {"count": null, "current_page": 1, "has_more": null}, "payload": []})
        );
    }
    let old = Api::new(SandboxConfig {
        blank_search_422: true,
        ..Default::default()
    });
    let r = old.get("/contacts/search?q=").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json,
        json!({"error": "Specify search string with parameter q"})
    );
}

// ---- create and update ------------------------------------------------------------------------

#[tokio::test]
async fn unknown_keys_are_dropped_and_fields_are_top_level() {
    let api = Api::default();
    let r = api
        .post("/contacts", json!({"name": "A", "email": "a@x.com", "favourite": "blue", "contact": {"email": "nested@x.com"}}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let c = &r.json["payload"]["contact"];
    assert_eq!(c["email"], "a@x.com");
    assert!(c.get("favourite").is_none());
    assert!(!r.text.contains("nested@x.com"));
}

#[tokio::test]
async fn create_never_merges_a_taken_email_phone_or_identifier_is_a_422() {
    let api = Api::default();
    api.create(json!({"email": "jane@x.com", "phone_number": "+14155552671", "identifier": "u1"}))
        .await;
    let r = api
        .post(
            "/contacts",
            json!({"email": "JANE@x.com", "phone_number": "+14155552671"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json,
        json!({"message": "Email has already been taken, Phone number has already been taken",
               "attributes": ["email", "phone_number"]})
    );
    let r = api.post("/contacts", json!({"identifier": "u1"})).await;
    assert_eq!(
        r.json,
        json!({"message": "Identifier has already been taken", "attributes": ["identifier"]})
    );
    assert_eq!(api.state.contacts().len(), 1);
}

#[tokio::test]
async fn patch_changes_only_the_fields_sent_and_validates_uniqueness_against_others() {
    let api = Api::default();
    let a = api.create(json!({"name": "A", "email": "a@x.com", "phone_number": "+14155550001", "blocked": true})).await;
    api.create(json!({"email": "b@x.com"})).await;
    let r = api
        .patch(
            &format!("/contacts/{a}"),
            json!({"phone_number": "+14155550009"}),
        )
        .await;
    let c = &r.json["payload"];
    assert_eq!(
        (
            c["name"].as_str(),
            c["email"].as_str(),
            c["blocked"].as_bool()
        ),
        (Some("A"), Some("a@x.com"), Some(true))
    );
    assert_eq!(c["phone_number"], "+14155550009");
    // Sending its own values again is not a clash; taking another contact's email is.
    assert_eq!(
        api.patch(&format!("/contacts/{a}"), json!({"email": "a@x.com"}))
            .await
            .status,
        StatusCode::OK
    );
    let r = api
        .patch(&format!("/contacts/{a}"), json!({"email": "B@X.com"}))
        .await;
    assert_eq!(
        r.json,
        json!({"message": "Email has already been taken", "attributes": ["email"]})
    );
}

#[tokio::test]
async fn patch_can_set_a_field_to_null() {
    let api = Api::default();
    let a = api
        .create(json!({"name": "A", "email": "a@x.com", "phone_number": "+14155550001"}))
        .await;
    let r = api
        .patch(
            &format!("/contacts/{a}"),
            json!({"phone_number": null, "additional_attributes": {"city": null}}),
        )
        .await;
    assert_eq!(r.json["payload"]["phone_number"], Value::Null);
    assert_eq!(
        r.json["payload"]["additional_attributes"],
        json!({"city": null})
    );
}

#[tokio::test]
async fn very_old_servers_replace_additional_attributes_on_update() {
    let api = Api::new(SandboxConfig {
        replace_additional_attributes: true,
        ..Default::default()
    });
    let a = api.create(json!({"email": "a@x.com", "additional_attributes": {"city": "Lyon", "company_name": "Acme"}})).await;
    let r = api
        .patch(
            &format!("/contacts/{a}"),
            json!({"additional_attributes": {"city": "Paris"}}),
        )
        .await;
    assert_eq!(
        r.json["payload"]["additional_attributes"],
        json!({"city": "Paris"})
    );
    let merged = Api::default();
    let a = merged.create(json!({"email": "a@x.com", "additional_attributes": {"city": "Lyon", "company_name": "Acme"}})).await;
    let r = merged
        .patch(
            &format!("/contacts/{a}"),
            json!({"additional_attributes": {"city": "Paris"}}),
        )
        .await;
    assert_eq!(
        r.json["payload"]["additional_attributes"],
        json!({"city": "Paris", "company_name": "Acme"})
    );
}

#[tokio::test]
async fn name_phone_and_identifier_are_stored_as_sent() {
    let api = Api::default();
    let r = api
        .post(
            "/contacts",
            json!({"name": "  jane DOE ", "phone_number": "+14155552671", "identifier": " ID-1 "}),
        )
        .await;
    let c = &r.json["payload"]["contact"];
    assert_eq!(c["name"], "  jane DOE ");
    assert_eq!(c["identifier"], " ID-1 ");
    let r = api
        .post("/contacts", json!({"phone_number": "14155552672"}))
        .await;
    assert_eq!(
        r.json,
        json!({"message": "Phone number should be in e164 format", "attributes": ["phone_number"]})
    );
}

// ---- validation rules -------------------------------------------------------------------------

#[tokio::test]
async fn email_format_is_one_at_and_no_whitespace_and_is_not_trimmed() {
    let api = Api::default();
    for bad in [
        " jane@x.com",
        "jane@x.com ",
        "jane",
        "a@b@c.com",
        "ja ne@x.com",
    ] {
        let r = api.post("/contacts", json!({"email": bad})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        assert_eq!(
            r.json,
            json!({"message": "Email Invalid email", "attributes": ["email"]}),
            "{bad:?}"
        );
    }
    assert_eq!(
        api.post("/contacts", json!({"email": "odd!#$@host"}))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn phone_must_end_in_plus_and_2_to_15_digits_first_not_zero() {
    let api = Api::default();
    for bad in [
        "+1 555 123 4567",
        "+1",
        "+0123456",
        "+1234567890123456",
        "4155552671",
        "+1-415-555-2671",
    ] {
        let r = api.post("/contacts", json!({"phone_number": bad})).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:?} should be refused"
        );
    }
    // The regex is anchored at the end only.
    for good in ["+12", "+123456789012345", "tel:+14155552671"] {
        assert_eq!(
            api.post("/contacts", json!({"phone_number": good}))
                .await
                .status,
            StatusCode::OK,
            "{good:?}"
        );
    }
}

#[tokio::test]
async fn identifier_uniqueness_is_case_sensitive() {
    let api = Api::default();
    api.create(json!({"identifier": "abc"})).await;
    assert_eq!(
        api.post("/contacts", json!({"identifier": "ABC"}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.post("/contacts", json!({"identifier": "abc"}))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn an_empty_identifier_twice_is_a_500() {
    let api = Api::default();
    assert_eq!(
        api.post("/contacts", json!({"name": "A", "identifier": ""}))
            .await
            .status,
        StatusCode::OK
    );
    let r = api
        .post("/contacts", json!({"name": "B", "identifier": ""}))
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(api.state.contacts().len(), 1);
}

#[tokio::test]
async fn string_fields_are_limited_to_255_characters() {
    let api = Api::default();
    let long = "x".repeat(256);
    let r = api.post("/contacts", json!({"name": long})).await;
    assert_eq!(
        r.json,
        json!({"message": "Name is too long (maximum is 255 characters)", "attributes": ["name"]})
    );
    let r = api.post("/contacts", json!({"identifier": long})).await;
    assert_eq!(r.json["attributes"], json!(["identifier"]));
    let r = api
        .post(
            "/contacts",
            json!({"email": format!("{}@x.com", "a".repeat(250))}),
        )
        .await;
    assert_eq!(
        r.json,
        json!({"message": "Email is too long (maximum is 255 characters)", "attributes": ["email"]})
    );
    assert_eq!(
        api.post("/contacts", json!({"name": "é".repeat(255)}))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn concurrent_creates_with_the_same_phone_can_both_succeed() {
    let api = Api::default();
    let body = json!({"name": "Twin", "phone_number": "+14155552671"});
    let (a, b) = tokio::join!(
        api.post("/contacts", body.clone()),
        api.post("/contacts", body.clone())
    );
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(api.state.contacts().len(), 2);
    // Once stored, the validation sees it.
    assert_eq!(
        api.post("/contacts", body).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn concurrent_creates_racing_on_an_email_or_identifier_are_a_500() {
    let api = Api::default();
    for body in [
        json!({"email": "race@x.com"}),
        json!({"identifier": "race-1"}),
    ] {
        let (a, b) = tokio::join!(
            api.post("/contacts", body.clone()),
            api.post("/contacts", body.clone())
        );
        let mut s = [a.status.as_u16(), b.status.as_u16()];
        s.sort();
        assert_eq!(s, [200, 500], "{body}");
    }
    assert_eq!(api.state.contacts().len(), 2);
}

// ---- errors -----------------------------------------------------------------------------------

#[tokio::test]
async fn a_bad_token_is_401_invalid_access_token() {
    let api = Api::default();
    let r = api.send(Method::GET, "/contacts", Some("nope"), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json, json!({"error": "Invalid Access Token"}));
}

#[tokio::test]
async fn the_dash_spelling_of_the_token_header_is_accepted() {
    let api = Api::default();
    let req = axum::http::Request::builder()
        .uri("/api/v1/accounts/1/contacts")
        .header("api-access-token", api.token.clone())
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(doto_bulk::sandbox::router(api.state.clone()), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn another_account_is_401_not_authorized_or_403_for_doto() {
    for (flavour, status) in [
        (Flavour::Chatwoot, StatusCode::UNAUTHORIZED),
        (Flavour::Doto, StatusCode::FORBIDDEN),
    ] {
        let api = Api::new(SandboxConfig {
            flavour,
            ..Default::default()
        });
        let r = api.get("/api/v1/accounts/2/contacts").await;
        assert_eq!(r.status, status);
        assert_eq!(
            r.json,
            json!({"error": "You are not authorized to access this account"})
        );
    }
}

#[tokio::test]
async fn an_agent_may_not_delete_401_or_403_for_doto() {
    for (flavour, status) in [
        (Flavour::Chatwoot, StatusCode::UNAUTHORIZED),
        (Flavour::Doto, StatusCode::FORBIDDEN),
    ] {
        let cfg = SandboxConfig {
            flavour,
            ..Default::default()
        };
        let agent = cfg.agent_token.clone();
        let api = Api::new(cfg);
        let id = api
            .state
            .insert_contact(1, &json!({"email": "a@x.com"}))
            .unwrap();
        // The agent can read and write...
        let r = api
            .send(
                Method::PATCH,
                &format!("/contacts/{id}"),
                Some(&agent),
                Some(&json!({"name": "A"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        // ...but not delete, even a contact that does not exist.
        for target in [id, 999] {
            let r = api
                .send(
                    Method::DELETE,
                    &format!("/contacts/{target}"),
                    Some(&agent),
                    None,
                )
                .await;
            assert_eq!(r.status, status);
            assert_eq!(
                r.json,
                json!({"error": "You are not authorized to do this action"})
            );
        }
        assert_eq!(api.state.contacts().len(), 1);
    }
}

#[tokio::test]
async fn unknown_contact_contact_of_another_account_and_unknown_account_are_404() {
    let api = Api::default();
    let foreign = api
        .state
        .insert_contact(2, &json!({"email": "theirs@x.com"}))
        .unwrap();
    let not_found = json!({"error": "Resource could not be found"});
    for path in [
        "/contacts/424242".to_string(),
        "/contacts/abc".to_string(),
        format!("/contacts/{foreign}"),
        "/api/v1/accounts/77/contacts".to_string(),
    ] {
        let r = api.get(&path).await;
        assert_eq!(
            (r.status, &r.json),
            (StatusCode::NOT_FOUND, &not_found),
            "{path}"
        );
    }
    assert_eq!(
        api.patch(&format!("/contacts/{foreign}"), json!({"name": "x"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.delete(&format!("/contacts/{foreign}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&format!("/contacts/{foreign}/conversations"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

// ---- notes and conversations ------------------------------------------------------------------

#[tokio::test]
async fn a_note_is_created_from_json_content_and_returned_bare() {
    let api = Api::default();
    let id = api.create(json!({"email": "a@x.com"})).await;
    let r = api
        .post(
            &format!("/contacts/{id}/notes"),
            json!({"content": "Called, wants a demo"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["content"], "Called, wants a demo");
    // The real note template renders both ids as null; the note is still stored on the contact.
    assert_eq!(r.json["account_id"], Value::Null);
    assert_eq!(r.json["contact_id"], Value::Null);
    let listed = api.get(&format!("/contacts/{id}/notes")).await.json;
    assert_eq!(listed[0]["id"], r.json["id"]);
    assert_eq!(listed[0]["contact_id"], Value::Null);
    assert_eq!(api.state.notes()[0]["contact_id"], id);
    assert!(
        r.json["id"].is_u64() && r.json["created_at"].is_i64() && r.json["user"]["id"].is_u64()
    );
    assert!(r.json.get("payload").is_none());
    assert_eq!(api.state.notes().len(), 1);
}

#[tokio::test]
async fn a_blank_note_is_422_and_a_missing_content_is_a_missing_param() {
    let api = Api::default();
    let id = api.create(json!({"email": "a@x.com"})).await;
    for blank in [
        json!({"content": ""}),
        json!({"content": "   "}),
        json!({"content": null}),
    ] {
        let r = api.post(&format!("/contacts/{id}/notes"), blank).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            r.json,
            json!({"message": "Content can't be blank", "attributes": ["content"]})
        );
    }
    let r = api.post(&format!("/contacts/{id}/notes"), json!({})).await;
    assert_eq!(
        r.json,
        json!({"error": "param is missing or the value is empty: note"})
    );
    // A form-encoded body is not wrapped into `note` either.
    let tok = api.token.clone();
    let req = axum::http::Request::builder()
        .method("POST")
        .uri(format!("/api/v1/accounts/1/contacts/{id}/notes"))
        .header("api_access_token", tok)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from("content=hello"))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(doto_bulk::sandbox::router(api.state.clone()), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(api.state.notes().is_empty());
}

#[tokio::test]
async fn a_note_holds_at_most_20000_characters() {
    let api = Api::default();
    let id = api.create(json!({"email": "a@x.com"})).await;
    let ok = api
        .post(
            &format!("/contacts/{id}/notes"),
            json!({"content": "n".repeat(20_000)}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let r = api
        .post(
            &format!("/contacts/{id}/notes"),
            json!({"content": "n".repeat(20_001)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json["attributes"], json!(["content"]));
    assert_eq!(
        api.post("/contacts/999/notes", json!({"content": "x"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn conversations_are_the_20_most_recent_newest_first_with_display_ids() {
    let api = Api::default();
    let convs: Vec<Value> = (0..25)
        .map(|i| json!({"created_at": 1000 + i, "last_activity_at": 5000 + (i * 7919) % 25}))
        .collect();
    let id = api
        .state
        .insert_contact(1, &json!({"email": "a@x.com", "conversations": convs}))
        .unwrap();
    let other = api
        .state
        .insert_contact(
            1,
            &json!({"email": "b@x.com", "conversations": [{"last_activity_at": 1}]}),
        )
        .unwrap();
    let r = api.get(&format!("/contacts/{id}/conversations")).await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json["payload"].as_array().unwrap();
    assert_eq!(list.len(), 20);
    let activity: Vec<i64> = list
        .iter()
        .map(|c| c["last_activity_at"].as_i64().unwrap())
        .collect();
    let mut expected: Vec<i64> = (0..25).map(|i| 5000 + (i * 7919) % 25).collect();
    expected.sort_by(|a, b| b.cmp(a));
    expected.truncate(20);
    assert_eq!(activity, expected);
    // Display ids are per account and count from 1.
    let ids: std::collections::BTreeSet<u64> =
        list.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    assert!(ids.iter().all(|&i| (1..=25).contains(&i)));
    let theirs = api
        .get(&format!("/contacts/{other}/conversations"))
        .await
        .json;
    assert_eq!(theirs["payload"][0]["id"], 26);
    assert_eq!(
        api.get("/contacts/999/conversations").await.status,
        StatusCode::NOT_FOUND
    );
}

// ---- side endpoints ---------------------------------------------------------------------------

#[tokio::test]
async fn side_endpoints_serve_stats_state_and_reset() {
    let api = Api::default();
    let id = api.create(json!({"email": "a@x.com"})).await;
    api.post(&format!("/contacts/{id}/notes"), json!({"content": "hi"}))
        .await;
    api.post("/contacts", json!({"email": "bad"})).await;
    let stats = api.get("/_sandbox/stats").await.json;
    let typed: doto_bulk::sandbox::Stats = serde_json::from_value(stats).unwrap();
    assert_eq!(typed, api.state.stats());
    assert_eq!(typed.total, 3);
    assert_eq!(
        typed.count_status("POST", doto_bulk::sandbox::route::CONTACTS, 200),
        1
    );
    assert_eq!(
        typed.count_status("POST", doto_bulk::sandbox::route::CONTACTS, 422),
        1
    );
    assert_eq!(typed.count("POST", doto_bulk::sandbox::route::NOTES), 1);
    assert!(typed.log.iter().all(|e| e.admitted));
    assert!(typed.max_in_flight >= 1);
    let state = api.get("/_sandbox/state").await.json;
    assert_eq!(state["contacts"][0]["email"], "a@x.com");
    assert_eq!(state["notes"][0]["content"], "hi");
    let r = api.post("/_sandbox/reset?what=stats", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(api.state.stats().total, 0);
    assert_eq!(api.state.contacts().len(), 1);
    api.get("/contacts").await;
    let r = api.post("/_sandbox/reset", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(api.state.contacts().is_empty() && api.state.notes().is_empty());
    assert_eq!(api.state.stats().total, 0);
}

#[tokio::test]
async fn the_server_may_add_keys_of_its_own_to_additional_attributes_after_a_write() {
    let api = Api::new(SandboxConfig {
        server_attributes: true,
        ..Default::default()
    });
    let r = api
        .post(
            "/contacts",
            json!({"email": "a@x.com", "additional_attributes": {"city": "Lyon"}}),
        )
        .await;
    assert_eq!(
        r.json["payload"]["contact"]["additional_attributes"],
        json!({"city": "Lyon"})
    );
    let id = r.json["payload"]["contact"]["id"].as_u64().unwrap();
    let later =
        api.get(&format!("/contacts/{id}")).await.json["payload"]["additional_attributes"].clone();
    assert_eq!(later["city"], "Lyon");
    assert!(
        later["avatar_url_hash"].is_string() && later["last_avatar_sync_at"].is_string(),
        "{later}"
    );
    // An update that does not touch the email leaves them; the import's own keys still merge.
    let r = api
        .patch(
            &format!("/contacts/{id}"),
            json!({"additional_attributes": {"city": "Paris"}}),
        )
        .await;
    let attrs = &r.json["payload"]["additional_attributes"];
    assert_eq!(attrs["city"], "Paris");
    assert_eq!(attrs["avatar_url_hash"], later["avatar_url_hash"]);
}
