//! The one place that knows the response shapes of both flavours (Chatwoot's wrapped bodies and
//! the bare objects Doto's docs show). Every 2xx body goes through here; a body that fits no known
//! shape becomes [`ApiError::Decode`] naming the JSON path of the value that did not fit.
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ApiError, excerpt};
use super::types::{Contact, Page, value_to_i64};

fn parse(endpoint: &str, body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Decode {
        endpoint: endpoint.to_owned(),
        path: "$".into(),
        message: format!(
            "not JSON ({e}): {}",
            excerpt(&String::from_utf8_lossy(body))
        ),
    })
}

fn shape_error(endpoint: &str, path: &str, message: impl Into<String>) -> ApiError {
    ApiError::Decode {
        endpoint: endpoint.to_owned(),
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Deserialize `v` (found at `path`) into `T`, reporting the full path of a bad value.
fn typed<T: DeserializeOwned>(endpoint: &str, path: &str, v: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize::<_, T>(v).map_err(|e| {
        let inner = e.path().to_string();
        let full = match (path, inner.as_str()) {
            (p, ".") => p.to_owned(),
            ("$", i) => format!("$.{i}"),
            (p, i) if i.starts_with('[') => format!("{p}{i}"),
            (p, i) => format!("{p}.{i}"),
        };
        shape_error(endpoint, &full, e.into_inner().to_string())
    })
}

/// A single contact: `{"payload": {"contact": {...}}}` (create, Chatwoot), `{"payload": {...}}`
/// (show/update, Chatwoot) or the bare contact (Doto docs).
pub(crate) fn contact(endpoint: &str, body: &[u8]) -> Result<Contact, ApiError> {
    let v = parse(endpoint, body)?;
    let Value::Object(mut obj) = v else {
        return Err(shape_error(endpoint, "$", "expected a JSON object"));
    };
    if obj.contains_key("id") {
        return typed(endpoint, "$", Value::Object(obj));
    }
    match obj.remove("payload") {
        Some(Value::Object(mut payload)) => {
            if !payload.contains_key("id") {
                if let Some(c) = payload.remove("contact") {
                    return typed(endpoint, "$.payload.contact", c);
                }
                return Err(shape_error(
                    endpoint,
                    "$.payload",
                    "expected a contact (with `id`) or `contact`",
                ));
            }
            typed(endpoint, "$.payload", Value::Object(payload))
        }
        Some(_) => Err(shape_error(endpoint, "$.payload", "expected an object")),
        None => Err(shape_error(
            endpoint,
            "$",
            "expected `payload`, `payload.contact` or a bare contact with `id`",
        )),
    }
}

/// A page of `GET /contacts` or of search: `{"meta": {...}, "payload": [...]}`. `meta` fields are
/// all optional; `count` may be null (blank search), `current_page` a string or an integer.
pub(crate) fn page(
    endpoint: &str,
    body: &[u8],
    asked_page: u32,
) -> Result<Page<Contact>, ApiError> {
    let v = parse(endpoint, body)?;
    let Value::Object(mut obj) = v else {
        return Err(shape_error(endpoint, "$", "expected a JSON object"));
    };
    let items: Vec<Contact> = match obj.remove("payload") {
        Some(p @ Value::Array(_)) => typed(endpoint, "$.payload", p)?,
        Some(_) => return Err(shape_error(endpoint, "$.payload", "expected an array")),
        None => return Err(shape_error(endpoint, "$", "expected `payload` (an array)")),
    };
    let meta = match obj.remove("meta") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(shape_error(endpoint, "$.meta", "expected an object")),
    };
    let int_at = |key: &str| -> Result<Option<i64>, ApiError> {
        match meta.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => value_to_i64(v).map(Some).ok_or_else(|| {
                shape_error(
                    endpoint,
                    &format!("$.meta.{key}"),
                    format!("expected an integer or a numeric string, got {v}"),
                )
            }),
        }
    };
    let count = int_at("count")?.map(|c| c.max(0) as u64);
    let current_page = int_at("current_page")?
        .map(|p| p.clamp(0, u32::MAX as i64) as u32)
        .unwrap_or(asked_page);
    let total_pages = int_at("total_pages")?.map(|p| p.clamp(0, u32::MAX as i64) as u32);
    let has_more = match meta.get("has_more") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(v) => {
            return Err(shape_error(
                endpoint,
                "$.meta.has_more",
                format!("expected a boolean, got {v}"),
            ));
        }
    };
    Ok(Page {
        items,
        current_page,
        count,
        has_more,
        total_pages,
    })
}

/// A list under `payload` (conversations) or a bare array.
pub(crate) fn list<T: DeserializeOwned>(endpoint: &str, body: &[u8]) -> Result<Vec<T>, ApiError> {
    match parse(endpoint, body)? {
        a @ Value::Array(_) => typed(endpoint, "$", a),
        Value::Object(mut obj) => match obj.remove("payload") {
            Some(a @ Value::Array(_)) => typed(endpoint, "$.payload", a),
            Some(_) => Err(shape_error(endpoint, "$.payload", "expected an array")),
            None => Err(shape_error(endpoint, "$", "expected `payload` (an array)")),
        },
        _ => Err(shape_error(endpoint, "$", "expected an array or an object")),
    }
}

/// A bare object (note), or one wrapped in `payload`.
pub(crate) fn object<T: DeserializeOwned>(endpoint: &str, body: &[u8]) -> Result<T, ApiError> {
    match parse(endpoint, body)? {
        Value::Object(mut obj) => {
            if !obj.contains_key("id")
                && let Some(p @ Value::Object(_)) = obj.remove("payload")
            {
                return typed(endpoint, "$.payload", p);
            }
            typed(endpoint, "$", Value::Object(obj))
        }
        _ => Err(shape_error(endpoint, "$", "expected a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::{Conversation, Note};

    const CONTACT: &str = r#"{"id": 10, "name": "Jane Doe", "email": "jane@example.com",
        "phone_number": "+14155552671", "identifier": "user_123", "blocked": false, "thumbnail": "",
        "availability_status": "offline",
        "additional_attributes": {"company_name": "Acme", "city": "Lyon", "avatar_url_hash": "x"},
        "custom_attributes": {"plan": "premium"}, "last_activity_at": 1712001000,
        "created_at": 1711000000, "contact_inboxes": [], "some_new_key": {"a": 1}}"#;

    fn check(c: &Contact) {
        assert_eq!(c.id, 10);
        assert_eq!(c.email.as_deref(), Some("jane@example.com"));
        assert_eq!(c.identifier.as_deref(), Some("user_123"));
        assert_eq!(c.custom_attributes["plan"], "premium");
        assert_eq!(c.additional_attributes["city"], "Lyon");
        assert_eq!(c.last_activity_at, Some(1712001000));
        assert_eq!(c.created_at, Some(1711000000));
    }

    #[test]
    fn contact_decodes_wrapped_create_wrapped_show_and_bare() {
        let create = format!(
            r#"{{"payload": {{"contact": {CONTACT}, "contact_inbox": {{"source_id": "x"}}}}}}"#
        );
        let show = format!(r#"{{"payload": {CONTACT}}}"#);
        for body in [create.as_str(), show.as_str(), CONTACT] {
            check(&contact("POST /x", body.as_bytes()).unwrap());
        }
    }

    #[test]
    fn missing_and_null_optional_fields_are_tolerated() {
        let c = contact(
            "GET /x",
            br#"{"id": 3, "name": "Only Name", "email": null, "additional_attributes": null, "created_at": "1711000000"}"#,
        )
        .unwrap();
        assert_eq!(c.last_activity_at, None);
        assert_eq!(c.email, None);
        assert!(c.additional_attributes.is_empty() && c.custom_attributes.is_empty());
        assert_eq!(c.created_at, Some(1711000000));
        assert_eq!(c.contact_inboxes, None);
    }

    #[test]
    fn a_body_of_no_known_shape_names_the_json_path() {
        let e = contact("GET /c/1", br#"{"payload": {"contact": {"id": "ten"}}}"#).unwrap_err();
        match &e {
            ApiError::Decode { path, .. } => assert_eq!(path, "$.payload.contact.id"),
            other => panic!("{other:?}"),
        }
        let e = page(
            "GET /c",
            br#"{"meta": {"count": 2}, "payload": [{"id": 1}, {"id": 2, "blocked": "no"}]}"#,
            1,
        )
        .unwrap_err();
        match &e {
            ApiError::Decode { path, .. } => assert_eq!(path, "$.payload[1].blocked"),
            other => panic!("{other:?}"),
        }
        let e = page(
            "GET /c",
            br#"{"meta": {"count": 2, "current_page": "two"}, "payload": []}"#,
            1,
        )
        .unwrap_err();
        assert!(
            matches!(&e, ApiError::Decode { path, .. } if path == "$.meta.current_page"),
            "{e}"
        );
        let e = contact("GET /c/1", br#"{"data": {}}"#).unwrap_err();
        assert!(
            matches!(&e, ApiError::Decode { path, .. } if path == "$"),
            "{e}"
        );
        let e = contact("GET /c/1", b"<html>oops</html>").unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
    }

    #[test]
    fn page_meta_in_every_documented_form() {
        let p = page(
            "GET /c",
            br#"{"meta": {"count": 31, "current_page": "2"}, "payload": []}"#,
            2,
        )
        .unwrap();
        assert_eq!(
            (p.count, p.current_page, p.has_more, p.total_pages),
            (Some(31), 2, None, None)
        );
        let p = page(
            "GET /c",
            br#"{"meta": {"count": 31, "current_page": 1, "total_pages": 3}, "payload": []}"#,
            1,
        )
        .unwrap();
        assert_eq!(
            (p.count, p.current_page, p.total_pages),
            (Some(31), 1, Some(3))
        );
        let p = page("GET /s", br#"{"meta": {"count": 1, "current_page": "1", "has_more": false}, "payload": [{"id": 4}]}"#, 1).unwrap();
        assert_eq!(
            (p.count, p.has_more, p.items.len()),
            (Some(1), Some(false), 1)
        );
        assert!(!p.may_have_more());
        let p = page(
            "GET /s",
            br#"{"meta": {"count": null, "current_page": 1}, "payload": []}"#,
            1,
        )
        .unwrap();
        assert_eq!(p.count, None);
        assert!(!p.may_have_more());
    }

    #[test]
    fn notes_and_conversations_decode_bare_or_wrapped() {
        let n: Note = object(
            "POST /n",
            br#"{"id": 5, "content": "hi", "user": {"id": 1}, "created_at": 1700000000}"#,
        )
        .unwrap();
        assert_eq!((n.id, n.content.as_deref()), (5, Some("hi")));
        assert!(n.extra.contains_key("user"));
        let cs: Vec<Conversation> = list(
            "GET /cv",
            br#"{"payload": [{"id": 7, "status": "open"}, {"id": 6}]}"#,
        )
        .unwrap();
        assert_eq!(cs.iter().map(|c| c.id).collect::<Vec<_>>(), vec![7, 6]);
        let cs: Vec<Conversation> = list("GET /cv", br#"[{"id": 7}]"#).unwrap();
        assert_eq!(cs.len(), 1);
    }
}
