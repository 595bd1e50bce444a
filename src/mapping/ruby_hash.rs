//! `type: ruby_hash`: the text Ruby's `Hash#inspect` writes, as Chatwoot's contacts export does for
//! its attribute columns (`{"plan"=>"pro", "seats"=>5}`, Ruby 3.4's `{"plan" => "pro"}` and
//! `{plan: "pro"}`), parsed into a JSON object whose keys the mapping spreads into the attributes.
use serde_json::{Map, Number, Value};

/// Parse a whole Ruby hash literal; the error is the tail of a message (`is not a Ruby hash …`).
pub fn parse(s: &str) -> Result<Value, String> {
    let mut p = P {
        s: s.trim().as_bytes(),
        i: 0,
    };
    let v = p.hash().ok_or_else(|| p.err())?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err());
    }
    Ok(v)
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn err(&self) -> String {
        format!(
            "is not a Ruby hash such as {{\"plan\"=>\"pro\"}} (stopped at character {})",
            self.i + 1
        )
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, t: &[u8]) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(t) {
            self.i += t.len();
            true
        } else {
            false
        }
    }
    fn hash(&mut self) -> Option<Value> {
        if !self.eat(b"{") {
            return None;
        }
        let mut m = Map::new();
        if self.eat(b"}") {
            return Some(Value::Object(m));
        }
        loop {
            self.ws();
            let key = match self.s.get(self.i)? {
                b'"' => {
                    let k = self.string()?;
                    if !self.eat(b"=>") && !self.eat(b":") {
                        return None;
                    }
                    k
                }
                b':' => {
                    self.i += 1;
                    let k = self.word()?;
                    if !self.eat(b"=>") {
                        return None;
                    }
                    k
                }
                _ => {
                    // Ruby 3.4's `{plan: "pro"}`.
                    let k = self.word()?;
                    if !self.eat(b":") {
                        return None;
                    }
                    k
                }
            };
            let v = self.value()?;
            m.insert(key, v);
            if self.eat(b"}") {
                return Some(Value::Object(m));
            }
            if !self.eat(b",") {
                return None;
            }
        }
    }
    fn word(&mut self) -> Option<String> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric()
                || matches!(self.s[self.i], b'_' | b'?' | b'!'))
        {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn string(&mut self) -> Option<String> {
        self.i += 1; // the opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = *self.s.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'e' => out.push(0x1b),
                        b'u' => {
                            // \uXXXX or \u{X…}
                            let (hex, len) = if self.s.get(self.i) == Some(&b'{') {
                                let end = self.s[self.i..].iter().position(|&b| b == b'}')?;
                                (&self.s[self.i + 1..self.i + end], end + 1)
                            } else {
                                (self.s.get(self.i..self.i + 4)?, 4)
                            };
                            let code =
                                u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                            let ch = char::from_u32(code)?;
                            out.extend_from_slice(ch.to_string().as_bytes());
                            self.i += len;
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }
    fn value(&mut self) -> Option<Value> {
        self.ws();
        match *self.s.get(self.i)? {
            b'"' => self.string().map(Value::String),
            b'{' => self.hash(),
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                if self.eat(b"]") {
                    return Some(Value::Array(a));
                }
                loop {
                    a.push(self.value()?);
                    if self.eat(b"]") {
                        return Some(Value::Array(a));
                    }
                    if !self.eat(b",") {
                        return None;
                    }
                }
            }
            b':' => {
                self.i += 1;
                self.word().map(Value::String)
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_alphanumeric()
                        || matches!(self.s[self.i], b'.' | b'-' | b'+' | b'_'))
                {
                    self.i += 1;
                }
                let w = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                match w {
                    "nil" => Some(Value::Null),
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    _ => {
                        let w = w.replace('_', "");
                        if let Ok(i) = w.parse::<i64>() {
                            Some(Value::Number(i.into()))
                        } else {
                            w.parse::<f64>()
                                .ok()
                                .filter(|f| f.is_finite())
                                .and_then(Number::from_f64)
                                .map(Value::Number)
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_chatwoot_export_cells() {
        assert_eq!(
            parse(r#"{"plan"=>"pro", "seats"=>5, "vip"=>true, "gone"=>nil, "score"=>4.5}"#),
            Ok(json!({"plan": "pro", "seats": 5, "vip": true, "gone": null, "score": 4.5}))
        );
        assert_eq!(parse("{}"), Ok(json!({})));
        assert_eq!(
            parse(r#"{"note"=>"a, b => \"c\"", "tags"=>["x", 2], "social"=>{"x"=>""}}"#),
            Ok(json!({"note": "a, b => \"c\"", "tags": ["x", 2], "social": {"x": ""}}))
        );
        assert_eq!(
            parse(r#"{"city" => "Zo\u00EB", plan: :pro, :lvl=>-3}"#),
            Ok(json!({"city": "Zoë", "plan": "pro", "lvl": -3}))
        );
        assert_eq!(parse(r#"{"city"=>"Lyon"}"#), Ok(json!({"city": "Lyon"})));
    }

    #[test]
    fn refuses_what_is_not_a_hash() {
        for bad in [
            "pro",
            r#"{"a"=>}"#,
            r#"{"a"=>"b""#,
            r#"{"a"=>"b"} x"#,
            "[1]",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("is not a Ruby hash"), "{bad}: {e}");
        }
    }
}
