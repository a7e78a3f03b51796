//! The admin API's answers, as JSON ([`crate::broker::Ask`] says which shape answers what):
//! written here so a broker that answers for every instance writes the same.

use std::sync::Arc;
use ws_proto::Message;

/// The close reason of a connection an administrator disconnected (with 1008).
pub const DISCONNECTED: &str = "disconnected by an administrator";

/// `{"room":R,"users":[...]}`.
pub fn presence_json(room: &str, users: &[Arc<str>]) -> String {
    let users: Vec<String> = users.iter().map(|u| quote(u)).collect();
    format!(
        r#"{{"room":{},"users":[{}]}}"#,
        quote(room),
        users.join(",")
    )
}

/// `{"room":R,"epoch":E,"offset":N,"messages":[...]}` (`epoch` and `offset` null without a
/// history), each message as a JSON string.
pub fn history_json(room: &str, position: Option<(String, u64)>, messages: &[Message]) -> String {
    let (epoch, offset) = match position {
        Some((epoch, offset)) => (quote(&epoch), offset.to_string()),
        None => ("null".to_string(), "null".to_string()),
    };
    let messages: Vec<String> = messages
        .iter()
        .map(|m| quote(&String::from_utf8_lossy(m.as_bytes())))
        .collect();
    format!(
        r#"{{"room":{},"epoch":{epoch},"offset":{offset},"messages":[{}]}}"#,
        quote(room),
        messages.join(",")
    )
}

/// `text` as a JSON string.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(quote("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u0001""#);
        let users = [Arc::from("ann"), Arc::from("b\"b")];
        assert_eq!(
            presence_json("r", &users),
            r#"{"room":"r","users":["ann","b\"b"]}"#
        );
        let history = history_json("r", None, &[Message::Text("{}".into())]);
        assert_eq!(
            history,
            r#"{"room":"r","epoch":null,"offset":null,"messages":["{}"]}"#
        );
    }
}
