//! The sandbox's contract: one test per behaviour of `API.md`, mostly through `oneshot` on
//! `router()` (no socket), a few over a real socket (dropped connections, rate-limit windows, races).
mod contract;
mod limits;
mod parity;
mod seeding;
mod socket;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use doto_bulk::sandbox::{SandboxConfig, SandboxState, router};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// A sandbox without a socket: requests go through `oneshot` on its router.
pub struct Api {
    pub state: SandboxState,
    app: Router,
    pub token: String,
    pub account: u64,
}

/// A response: status, headers, the body as text and (when it parses) as JSON.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Api {
    pub fn new(config: SandboxConfig) -> Api {
        let token = config.admin_token.clone();
        let account = config.account_id;
        let state = SandboxState::new(config).expect("sandbox state");
        Api {
            app: router(state.clone()),
            state,
            token,
            account,
        }
    }

    pub fn default() -> Api {
        Api::new(SandboxConfig::default())
    }

    /// `path` starting with `/contacts` is under the account; anything else is used as is.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("/contacts") {
            format!("/api/v1/accounts/{}{}", self.account, path)
        } else {
            path.to_string()
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(self.url(path));
        if let Some(t) = token {
            req = req.header("api_access_token", t);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, Some(&self.token.clone()), None)
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(&self.token.clone()), Some(&body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(&self.token.clone()), Some(&body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, Some(&self.token.clone()), None)
            .await
    }

    /// Create a contact and return its id (Chatwoot flavour), failing the test on anything but 200.
    pub async fn create(&self, body: Value) -> u64 {
        let r = self.post("/contacts", body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json["payload"]["contact"]["id"].as_u64().unwrap()
    }
}

/// The ids of a page's `payload`, in order.
pub fn ids_of(v: &Value) -> Vec<u64> {
    v["payload"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect()
}

/// The names of a page's `payload`, in order (`""` for none).
pub fn names_of(v: &Value) -> Vec<String> {
    v["payload"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap_or("").to_string())
        .collect()
}
