//! JSONL export: one contact a line, as the API gave it (its keys and epoch timestamps; a null
//! `last_activity_at` omitted, as the server omits it). `contact_inboxes` is kept only with
//! `--include-contact-inboxes`; `--timestamps iso` rewrites the two timestamps as RFC 3339.
use serde_json::Value;

use super::columns::{Cell, Column, Timestamps, cell};
use crate::api::Contact;

/// The JSON object written for `c`.
fn contact_json(c: &Contact, include_inboxes: bool, ts: Timestamps) -> Value {
    let mut v = serde_json::to_value(c).expect("a contact serializes");
    let obj = v.as_object_mut().expect("an object");
    if !include_inboxes {
        obj.remove("contact_inboxes");
    }
    if obj.get("last_activity_at").is_some_and(Value::is_null) {
        obj.remove("last_activity_at");
    }
    if ts == Timestamps::Iso {
        for key in ["created_at", "last_activity_at"] {
            if let Cell::Text(s) = cell(c, &Column::Core(key), ts) {
                obj.insert(key.to_owned(), Value::String(s));
            }
        }
    }
    v
}

/// `c` as one line (newline included) appended to `buf`.
pub fn write_line(buf: &mut Vec<u8>, c: &Contact, include_inboxes: bool, ts: Timestamps) {
    serde_json::to_writer(&mut *buf, &contact_json(c, include_inboxes, ts)).expect("to a Vec");
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_the_api_shape_and_drops_inboxes_unless_asked() {
        let raw = json!({"id": 3, "name": "Ann", "email": "ann@x.com", "phone_number": "+14155552671",
            "identifier": null, "blocked": false, "thumbnail": "", "availability_status": "offline",
            "additional_attributes": {"city": "Lyon"}, "custom_attributes": {"plan": "gold"},
            "created_at": 1711000000, "contact_inboxes": []});
        let c: Contact = serde_json::from_value(raw.clone()).unwrap();
        let mut without = raw.clone();
        without.as_object_mut().unwrap().remove("contact_inboxes");
        assert_eq!(contact_json(&c, false, Timestamps::Epoch), without);
        assert_eq!(contact_json(&c, true, Timestamps::Epoch), raw);
        assert_eq!(
            contact_json(&c, false, Timestamps::Iso)["created_at"],
            "2024-03-21T05:46:40Z"
        );
    }
}
