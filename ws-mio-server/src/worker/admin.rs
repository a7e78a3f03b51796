//! What the admin listener answers: `/metrics` (Prometheus text: the server's, then the
//! broker's), `/healthz` (the process is
//! alive and serving) and `/readyz` (it takes new connections: 503 once draining, so a load
//! balancer stops sending before the listener closes). `GET` only; nothing else is served
//! there, and none of these on the public listener.

use super::Worker;
use crate::handler::{Handler, HttpResponse};
use ws_proto::handshake::server::Request;
use ws_proto::StatusCode;

impl<H: Handler> Worker<H> {
    pub(super) fn serve_admin(&self, request: &Request) -> HttpResponse {
        if request.method() != "GET" {
            return HttpResponse::text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n")
                .header("Allow", "GET");
        }
        match request.path() {
            "/metrics" => {
                let mut text = self.services.metrics.snapshot().to_prometheus();
                self.services.broker.write_metrics(&mut text);
                HttpResponse::with_type(
                    StatusCode::OK,
                    "text/plain; version=0.0.4",
                    text.into_bytes(),
                )
            }
            "/healthz" => {
                let body = format!(
                    "{{\"status\":\"ok\",\"connections\":{},\"rooms\":{}}}",
                    self.services.metrics.snapshot().connections_open,
                    self.services.rooms.len()
                );
                HttpResponse::with_type(StatusCode::OK, "application/json", body.into_bytes())
            }
            "/readyz" if self.is_draining() => HttpResponse::with_type(
                StatusCode::SERVICE_UNAVAILABLE,
                "application/json",
                b"{\"ready\":false,\"reason\":\"draining\"}".to_vec(),
            ),
            "/readyz" => HttpResponse::with_type(
                StatusCode::OK,
                "application/json",
                b"{\"ready\":true}".to_vec(),
            ),
            _ => HttpResponse::text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}
