//! Starting with data: generated contacts, a JSONL seed file, the state saved on shutdown, and the
//! `doto-bulk sandbox` command itself.
use axum::http::StatusCode;
use doto_bulk::sandbox::{SandboxConfig, SandboxState, spawn};
use serde_json::{Value, json};

use super::Api;

#[tokio::test]
async fn seed_contacts_generates_realistic_contacts_some_with_conversations() {
    let api = Api::new(SandboxConfig {
        seed_contacts: 300,
        seed: 5,
        ..Default::default()
    });
    let all = api.state.contacts();
    assert_eq!(all.len(), 300);
    let listed = api.get("/contacts").await.json["meta"]["count"]
        .as_u64()
        .unwrap();
    assert!(
        (250..300).contains(&listed),
        "{listed} listed: a few name-only contacts are expected"
    );
    let countries: std::collections::BTreeSet<&str> = all
        .iter()
        .filter_map(|c| c["additional_attributes"]["country_code"].as_str())
        .collect();
    assert!(countries.len() >= 5, "{countries:?}");
    // Every generated phone passes the server's own validation: re-creating it elsewhere works.
    let fresh = Api::default();
    for c in all
        .iter()
        .filter(|c| c["phone_number"].is_string())
        .take(50)
    {
        let r = fresh
            .post(
                "/contacts",
                json!({"phone_number": c["phone_number"], "email": c["email"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{c}: {}", r.text);
    }
    let mut with_conversations = 0;
    for c in &all {
        let r = api
            .get(&format!("/contacts/{}/conversations", c["id"]))
            .await;
        if !r.json["payload"].as_array().unwrap().is_empty() {
            with_conversations += 1;
        }
    }
    assert!(
        with_conversations > 20,
        "{with_conversations} contacts with conversations"
    );
    // The same seed gives the same contacts.
    let again = SandboxState::new(SandboxConfig {
        seed_contacts: 300,
        seed: 5,
        ..Default::default()
    })
    .unwrap();
    let emails = |v: &[Value]| v.iter().map(|c| c["email"].clone()).collect::<Vec<_>>();
    assert_eq!(emails(&all), emails(&again.contacts()));
}

#[tokio::test]
async fn a_jsonl_seed_file_is_loaded_with_ids_notes_conversations_and_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.jsonl");
    std::fs::write(
        &path,
        concat!(
            "# a comment\n",
            r#"{"id": 40, "name": "Jane", "email": "Jane@X.com", "phone_number": "+14155552671", "custom_attributes": {"plan": "pro"}, "notes": [{"content": "vip"}]}"#,
            "\n\n",
            r#"{"name": "Bob", "identifier": "u-2", "conversations": [{"status": "open", "last_activity_at": 1712001000}]}"#,
            "\n",
            r#"{"account_id": 2, "email": "theirs@x.com"}"#,
            "\n"
        ),
    )
    .unwrap();
    let api = Api::new(SandboxConfig {
        seed_file: Some(path),
        ..Default::default()
    });
    let jane = api.get("/contacts/40").await.json["payload"].clone();
    assert_eq!(jane["email"], "jane@x.com");
    assert_eq!(jane["custom_attributes"], json!({"plan": "pro"}));
    assert_eq!(api.state.notes()[0]["content"], "vip");
    let bob = api.get("/contacts/search?q=bob").await.json["payload"][0].clone();
    assert_eq!(bob["id"], 41);
    assert_eq!(bob["last_activity_at"], 1712001000);
    assert_eq!(
        api.get("/contacts/41/conversations").await.json["payload"][0]["status"],
        "open"
    );
    assert_eq!(api.get("/contacts").await.json["meta"]["count"], 2);
    assert_eq!(api.state.contacts().len(), 3);
}

#[tokio::test]
async fn a_bad_seed_line_names_the_file_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(
        &path,
        "{\"email\": \"a@x.com\"}\n{\"email\": \"a@x.com\"}\nnot json\n",
    )
    .unwrap();
    let err = SandboxState::new(SandboxConfig {
        seed_file: Some(path.clone()),
        ..Default::default()
    })
    .err()
    .expect("a duplicate email must be refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("bad.jsonl") && msg.contains("line 2") && msg.contains("unique"),
        "{msg}"
    );
}

#[tokio::test]
async fn the_state_is_saved_on_shutdown_and_loads_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.jsonl");
    let sb = spawn(SandboxConfig {
        seed_contacts: 40,
        save_file: Some(path.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let url = format!("{}/api/v1/accounts/1/contacts", sb.base_url);
    let r: Value = reqwest::Client::new()
        .post(&url)
        .header("api_access_token", &sb.admin_token)
        .json(&json!({"name": "Saved", "email": "saved@x.com", "additional_attributes": {"city": "Lyon"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["payload"]["contact"]["id"].as_u64().unwrap();
    let note = reqwest::Client::new()
        .post(format!("{url}/{id}/notes"))
        .header("api_access_token", &sb.admin_token)
        .json(&json!({"content": "remember me"}))
        .send()
        .await
        .unwrap();
    assert_eq!(note.status(), 200);
    let (contacts, notes) = (sb.contacts(), sb.notes().len());
    sb.shutdown().await.unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 41);
    let reloaded = SandboxState::new(SandboxConfig {
        seed_file: Some(path),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(reloaded.contacts(), contacts);
    assert_eq!(reloaded.notes().len(), notes);
    assert!(
        reloaded
            .notes()
            .iter()
            .any(|n| n["content"] == "remember me" && n["contact_id"] == id)
    );
}

#[tokio::test]
async fn the_sandbox_command_prints_its_url_tokens_and_account_and_serves_until_stopped() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_doto-bulk"))
        .args([
            "sandbox",
            "--port",
            "0",
            "--seed-contacts",
            "20",
            "--flavour",
            "doto",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    let url = printed
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap()
        .to_string();
    assert!(
        printed.contains("sandbox-admin-token") && printed.contains("sandbox-agent-token"),
        "{printed}"
    );
    assert!(printed.contains("account id:   1"), "{printed}");
    let r = reqwest::Client::new()
        .get(format!("{url}/api/v1/accounts/1/contacts?sort=name"))
        .header("api_access_token", "sandbox-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["meta"]["total_pages"].as_u64().unwrap() >= 1,
        "doto flavour: {body}"
    );
    child.kill().await.unwrap();
}
