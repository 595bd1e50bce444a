//! Over a real socket: `spawn()`, the dropped-connection fault, concurrent races, shutdown and save.
use doto_bulk::sandbox::{SandboxConfig, spawn};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

#[tokio::test]
async fn spawn_serves_create_get_update_search_list_delete_on_a_free_port() {
    let sb = spawn(SandboxConfig::default()).await.unwrap();
    assert!(sb.base_url.starts_with("http://127.0.0.1:") && !sb.base_url.ends_with('/'));
    let c = client();
    let base = format!("{}/api/v1/accounts/{}/contacts", sb.base_url, sb.account_id);
    let tok = sb.admin_token.clone();
    let r: Value = c
        .post(&base)
        .header("api_access_token", &tok)
        .json(&json!({"name": "Jane Doe", "email": "jane@example.com"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["payload"]["contact"]["id"].as_u64().unwrap();
    let got: Value = c
        .get(format!("{base}/{id}"))
        .header("api_access_token", &tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["payload"]["email"], "jane@example.com");
    let upd = c
        .patch(format!("{base}/{id}"))
        .header("api_access_token", &tok)
        .json(&json!({"name": "Jane Smith"}))
        .send()
        .await
        .unwrap();
    assert_eq!(upd.status(), 200);
    let found: Value = c
        .get(format!("{base}/search?q=smith"))
        .header("api_access_token", &tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["payload"][0]["id"], id);
    let list: Value = c
        .get(&base)
        .header("api_access_token", &tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["meta"]["count"], 1);
    let del = c
        .delete(format!("{base}/{id}"))
        .header("api_access_token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    assert!(sb.contacts().is_empty());
    assert_eq!(
        sb.stats()
            .count("DELETE", doto_bulk::sandbox::route::CONTACT),
        1
    );
    sb.shutdown().await.unwrap();
}
