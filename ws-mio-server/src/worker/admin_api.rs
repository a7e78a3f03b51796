//! The admin API on the admin listener, behind `--admin-token` (`Authorization: Bearer`):
//! JSON answers to an operator's calls.
//!
//! | call | does |
//! | --- | --- |
//! | `POST /api/rooms/ROOM/publish?text=TEXT` | records the handler's [`Handler::admin_message`] in the room |
//! | `POST /api/users/USER/disconnect` | closes every connection of the user, on every instance, with 1008 |
//! | `GET /api/rooms/ROOM/presence` | the users in the room, on every instance |
//! | `GET /api/rooms/ROOM/history?limit=N` | the room's last N recorded messages (default 100) |
//! | `GET /api/cluster` | live instances, their connections and rooms |
//!
//! Path segments and query values are percent-decoded. A single instance answers from its
//! own state at once; across instances the broker answers ([`Broker::cluster_query`]), later,
//! and the admin connection waits for it (within the handshake timeout).

use super::{Key, Worker};
use crate::api::{history_json, presence_json, quote};
use crate::broker::{Ask, ClusterQuery};
use crate::handler::{Handler, HttpResponse};
use crate::history::Want;
use crate::users::user_room;
use std::sync::Arc;
use ws_proto::handshake::server::Request;
use ws_proto::{CloseCode, StatusCode};

use crate::api::DISCONNECTED;

/// The most messages a history call returns.
const MAX_HISTORY: usize = 1000;

impl<H: Handler> Worker<H> {
    /// Answers an API call now, or `None` when the broker will ([`Self::reply`]).
    pub(super) fn serve_api(&mut self, key: Key, request: &Request) -> Option<HttpResponse> {
        let Some(token) = self.config.admin_token.as_deref() else {
            let text = "the admin API is off: start with --admin-token\n";
            return Some(HttpResponse::text(StatusCode::NOT_FOUND, text));
        };
        if !authorized(request, token) {
            let refusal =
                HttpResponse::text(StatusCode::UNAUTHORIZED, "a valid token is required\n");
            return Some(refusal.header("WWW-Authenticate", "Bearer"));
        }
        let segments: Option<Vec<String>> = request
            .path()
            .trim_start_matches("/api/")
            .split('/')
            .map(percent_decode)
            .collect();
        let Some(segments) = segments else {
            return Some(bad_request("a path segment is not percent-encoded UTF-8"));
        };
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let spans = self.services.broker.spans_instances();
        match (request.method(), segments.as_slice()) {
            ("POST", ["rooms", room, "publish"]) => {
                let Some(text) = request.query_param("text") else {
                    return Some(bad_request("text=... is required"));
                };
                let Some(message) = self.handler.admin_message(room, &text) else {
                    return Some(json(StatusCode::FORBIDDEN, r#"{"error":"refused"}"#.into()));
                };
                self.record(Arc::from(*room), message, None);
                Some(json(
                    StatusCode::OK,
                    format!(r#"{{"room":{},"published":true}}"#, quote(room)),
                ))
            }
            ("POST", ["users", user, "disconnect"]) => {
                let here = self.services.users.connections(user);
                let room = user_room(user);
                let command = crate::handler::Command::CloseRoom(
                    room,
                    CloseCode::POLICY_VIOLATION,
                    DISCONNECTED.to_string(),
                );
                self.apply_local(command);
                let body = format!(r#"{{"user":{},"connections_here":{here}}}"#, quote(user));
                Some(json(StatusCode::OK, body))
            }
            ("GET", ["rooms", room, "presence"]) if spans => {
                self.ask(key, Ask::Presence(Arc::from(*room)))
            }
            ("GET", ["rooms", room, "presence"]) => Some(match self.services.rooms.users(room) {
                Some(users) => json(StatusCode::OK, presence_json(room, &users)),
                None => json(StatusCode::NOT_FOUND, r#"{"error":"no such room"}"#.into()),
            }),
            ("GET", ["rooms", room, "history"]) => {
                let limit = match request.query_param("limit").map(|l| l.parse::<usize>()) {
                    None => 100,
                    Some(Ok(n)) => n.min(MAX_HISTORY),
                    Some(Err(_)) => return Some(bad_request("limit is a number")),
                };
                if spans {
                    return self.ask(key, Ask::History(Arc::from(*room), limit));
                }
                let rooms = &self.services.rooms;
                let is_empty = |r: &str| rooms.member_count(r) == 0;
                let page = self
                    .services
                    .history
                    .read(room, Want::Last(limit), self.now, is_empty);
                let position = page.position.map(|p| (p.epoch.to_string(), p.offset));
                Some(json(
                    StatusCode::OK,
                    history_json(room, position, &page.messages),
                ))
            }
            ("GET", ["cluster"]) if spans => self.ask(key, Ask::Stats),
            ("GET", ["cluster"]) => {
                let connections = self.services.metrics.snapshot().connections_open;
                let rooms = self.services.rooms.len();
                let body =
                    format!(r#"{{"instances":1,"connections":{connections},"rooms":{rooms}}}"#);
                Some(json(StatusCode::OK, body))
            }
            (_, ["rooms", _, "publish"] | ["users", _, "disconnect"]) => Some(
                HttpResponse::text(StatusCode::METHOD_NOT_ALLOWED, "POST only\n")
                    .header("Allow", "POST"),
            ),
            _ => Some(json(
                StatusCode::NOT_FOUND,
                r#"{"error":"no such call"}"#.into(),
            )),
        }
    }

    /// Asks the broker; its answer comes to this admin connection later.
    fn ask(&mut self, key: Key, ask: Ask) -> Option<HttpResponse> {
        let to = self.id(key)?;
        self.services
            .broker
            .cluster_query(ClusterQuery { ask, to })
            .map(|(status, body)| json(status, body))
    }
}

/// Whether the request carries `Authorization: Bearer <token>`, compared in constant time.
fn authorized(request: &Request, token: &str) -> bool {
    let Some(value) = request
        .header("authorization")
        .and_then(|v| std::str::from_utf8(v).ok())
    else {
        return false;
    };
    let Some((scheme, given)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    let (given, token) = (given.trim().as_bytes(), token.as_bytes());
    let differ = given
        .iter()
        .zip(token)
        .fold(given.len() ^ token.len(), |d, (a, b)| {
            d | usize::from(a ^ b)
        });
    differ == 0
}

fn json(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::with_type(status, "application/json", body.into_bytes())
}

fn bad_request(why: &str) -> HttpResponse {
    json(
        StatusCode::BAD_REQUEST,
        format!(r#"{{"error":{}}}"#, quote(why)),
    )
}

/// `%XX` sequences decoded; `None` for a malformed one or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%7B").as_deref(), Some("a b{"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%e9"), None, "not UTF-8");
    }
}
