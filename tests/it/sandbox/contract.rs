//! One test per behaviour of `API.md`, through `oneshot` on `router()`.
use axum::http::{Method, StatusCode};
use doto_bulk::sandbox::{Flavour, SandboxConfig};
use serde_json::{Value, json};

use super::Api;

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
    assert!(r.headers.get("content-type").is_none());
    assert_eq!(
        api.get(&format!("/contacts/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}
