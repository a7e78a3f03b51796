//! The HTTP request on a new connection (after a trusted proxy's PROXY header and once its
//! client is known: [`super::proxied`]): a WebSocket upgrade the handler accepts or refuses,
//! a malformed request answered with its status, or a plain request answered by the handler's
//! HTTP hook (on the admin listener, by [`super::admin`]). Every answer but an upgrade closes
//! the connection once written.

use super::driver::Phase;
use super::proxied::AfterHeader;
use super::{Key, Listener, Worker};
use crate::handler::{Handler, HttpResponse, OpenDecision, OpenRequest};
use crate::metrics::add;
use crate::users::user_room;
use ws_proto::deflate::PerMessageDeflate;
use ws_proto::handshake::server::{Accept, Request};
use ws_proto::{Connection, Role, StatusCode};

impl<H: Handler> Worker<H> {
    /// Bytes of a connection still reading its request head.
    pub(super) fn receive_request(&mut self, key: Key, data: &mut [u8]) {
        let data = match self.receive_proxy_header(key, data) {
            AfterHeader::Request(at) => &mut data[at..],
            AfterHeader::Stop => return,
        };
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Phase::Handshake(handshake) = &mut conn.phase else {
            return; // an answer is being written: what the client sends now is dropped
        };
        match handshake.receive(data) {
            Ok(None) => {}
            Ok(Some((request, used))) => self.request(key, request, &mut data[used..]),
            Err(e) => {
                add(&self.metrics.handshakes_rejected_total, 1);
                self.answer(key, e.response());
            }
        }
    }

    fn request(&mut self, key: Key, request: Request, rest: &mut [u8]) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        if conn.origin == Listener::Admin {
            if request.path().starts_with("/api/") {
                // An answer from the broker comes later, to this connection.
                if let Some(response) = self.serve_api(key, &request) {
                    self.answer(key, response.encode());
                }
                return;
            }
            let response = self.serve_admin(&request);
            return self.answer(key, response.encode());
        }
        if !self.resolve_forwarded(key, &request) {
            return;
        }
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let (peer, client) = (conn.peer, conn.client);
        if !request.is_websocket_upgrade() {
            add(&self.metrics.http_requests_total, 1);
            let response = self.handler.on_http(&request);
            return self.answer(key, response.encode());
        }
        let upgrade = match request.upgrade() {
            Ok(upgrade) => upgrade,
            Err(e) => {
                add(&self.metrics.handshakes_rejected_total, 1);
                return self.answer(key, e.response());
            }
        };
        let open = OpenRequest {
            request: &request,
            upgrade: &upgrade,
            peer,
            client,
        };
        let accepted = match self.handler.on_open(&open) {
            OpenDecision::Accept(accepted) => accepted,
            OpenDecision::Reject(response) => {
                add(&self.metrics.handshakes_rejected_total, 1);
                return self.answer(key, response.encode());
            }
        };
        let mut accept = Accept::new();
        let mut negotiated = None;
        if let Some(deflate) = &self.deflate {
            if let Some((params, value)) = deflate.negotiate(upgrade.extensions()) {
                accept = accept.extensions(&value);
                negotiated = Some(PerMessageDeflate::new(Role::Server, params, deflate));
            }
        }
        if let Some(p) = &accepted.protocol {
            accept = accept.protocol(p);
        }
        for (name, value) in &accepted.headers {
            accept = accept.header(name, value);
        }
        let response = match upgrade.accept(&accept) {
            Ok(response) => response,
            Err(e) => {
                // The handler's mistake, not the client's; nothing was reserved yet.
                tracing::error!(error = %e, "handler chose a subprotocol the client did not offer");
                add(&self.metrics.handshakes_rejected_total, 1);
                return self.answer(
                    key,
                    HttpResponse::text(StatusCode::INTERNAL_SERVER_ERROR, "server error\n")
                        .encode(),
                );
            }
        };
        add(&self.metrics.handshakes_ok_total, 1);
        let mut ws = Connection::server(self.ws_config.clone());
        if let Some(deflate) = negotiated {
            add(&self.metrics.deflate_handshakes_total, 1);
            ws = ws.with_extension(Box::new(deflate));
        }
        let now = self.now;
        let conn = self.conns.get_mut(key).expect("looked up above");
        conn.open(
            response,
            ws,
            accepted.conn,
            accepted.user,
            now,
            &self.config,
        );
        if let Some(user) = &conn.user {
            // Addressable as its user from now on (Context::send_to_user).
            let room = user_room(user);
            self.services.users.connected(&room);
            self.fanout.join(room, key);
        }
        self.mark_dirty(key);
        self.call_handler(key, |handler, ctx, app| handler.on_connect(ctx, app));
        // Frames the client sent right behind its request.
        if !rest.is_empty() {
            self.receive_frames(key, rest);
        } else {
            self.arm_timer(key);
        }
    }

    /// Writes an HTTP answer, then closes the connection.
    pub(super) fn answer(&mut self, key: Key, bytes: Vec<u8>) {
        let now = self.now;
        if let Some(conn) = self.conns.get_mut(key) {
            conn.answer(bytes, now, &self.config);
            self.mark_dirty(key);
            self.arm_timer(key);
        }
    }
}
