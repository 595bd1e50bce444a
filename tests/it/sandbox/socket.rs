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

/// A raw HTTP/1.1 request on a fresh TCP connection; returns every byte the server sent before it
/// closed the connection (or reset it).
async fn raw_exchange(addr: std::net::SocketAddr, request: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![];
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    match read.expect("the server neither answered nor closed the connection") {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    buf
}

#[tokio::test]
async fn a_drop_fault_commits_the_write_and_closes_the_connection_without_any_response() {
    use doto_bulk::sandbox::{FaultKind, Faults};
    let sb = spawn(SandboxConfig {
        faults: Faults {
            rate: 1.0,
            kinds: vec![FaultKind::Drop],
            seed: 3,
            burst_len: 1,
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let body = r#"{"email":"dropped@x.com"}"#;
    let req = format!(
        "POST /api/v1/accounts/1/contacts HTTP/1.1\r\nhost: sandbox\r\napi_access_token: {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        sb.admin_token,
        body.len()
    );
    let got = raw_exchange(sb.addr, &req).await;
    assert!(
        got.is_empty(),
        "the client received bytes: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(
        sb.contacts().len(),
        1,
        "the write must be committed before the drop"
    );

    // An HTTP client sees a connection error, never a status.
    let err = client()
        .post(format!("{}/api/v1/accounts/1/contacts", sb.base_url))
        .header("api_access_token", &sb.admin_token)
        .json(&json!({"email": "second@x.com"}))
        .send()
        .await
        .expect_err("a dropped connection must not produce a response");
    assert!(err.status().is_none() && err.is_request(), "{err:?}");
    assert_eq!(sb.contacts().len(), 2);

    // Reads on the same server are answered normally.
    let list = client()
        .get(format!("{}/api/v1/accounts/1/contacts", sb.base_url))
        .header("api_access_token", &sb.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let stats = sb.stats();
    assert_eq!(stats.faults.get("drop"), Some(&2));
    assert_eq!(
        stats.count_status("POST", doto_bulk::sandbox::route::CONTACTS, 0),
        2
    );
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_normal_response_over_a_raw_connection_is_complete() {
    let sb = spawn(SandboxConfig::default()).await.unwrap();
    let req = format!(
        "GET /api/v1/accounts/1/contacts HTTP/1.1\r\nhost: sandbox\r\napi_access_token: {}\r\nconnection: close\r\n\r\n",
        sb.admin_token
    );
    let got = String::from_utf8(raw_exchange(sb.addr, &req).await).unwrap();
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(
        got.ends_with(r#"{"meta":{"count":0,"current_page":1},"payload":[]}"#),
        "{got}"
    );
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn concurrent_creates_with_the_same_phone_over_http_can_leave_duplicates() {
    // A wide race window so that both requests surely arrive while the first one is in it.
    let sb = spawn(SandboxConfig {
        race_window: std::time::Duration::from_millis(300),
        ..Default::default()
    })
    .await
    .unwrap();
    let url = format!("{}/api/v1/accounts/1/contacts", sb.base_url);
    let c = client();
    let send = || {
        c.post(&url)
            .header("api_access_token", &sb.admin_token)
            .json(&json!({"phone_number": "+14155552671"}))
            .send()
    };
    let (a, b) = tokio::join!(send(), send());
    assert_eq!(
        (a.unwrap().status().as_u16(), b.unwrap().status().as_u16()),
        (200, 200)
    );
    let phones: Vec<Value> = sb
        .contacts()
        .iter()
        .map(|c| c["phone_number"].clone())
        .collect();
    assert_eq!(phones, vec![json!("+14155552671"), json!("+14155552671")]);
    sb.shutdown().await.unwrap();
}
