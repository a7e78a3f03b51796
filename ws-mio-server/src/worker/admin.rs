//! What the admin listener answers: `/metrics` (Prometheus text: the server's, then the
//! broker's), `/healthz` (the process is
//! alive and serving) and `/readyz` (it takes new connections: 503 once draining, so a load
//! balancer stops sending before the listener closes). `GET` only; nothing else is served
//! there, and none of these on the public listener.
//!
//! A degraded broker (its store out of reach: this instance serves its own clients, but
//! nothing crosses to other instances) is reported by `/readyz` with 200 and the reason, and by
//! `ws_broker_degraded` in `/metrics`: not 503, since every instance loses the store at once,
//! and a balancer that took them all out would turn a degraded service into none.

use super::Worker;
use crate::broker::Health;
use crate::handler::{Handler, HttpResponse};
use ws_proto::handshake::server::Request;
use ws_proto::StatusCode;

impl<H: Handler> Worker<H> {
    pub(super) fn serve_admin(&self, request: &Request) -> HttpResponse {
        // The API has its own methods (admin_api); these are all GET.
        if request.method() != "GET" {
            return HttpResponse::text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n")
                .header("Allow", "GET");
        }
        match request.path() {
            "/metrics" => {
                let mut text = self.services.metrics.snapshot().to_prometheus();
                let degraded = u8::from(self.services.broker.health() != Health::Healthy);
                text.push_str(
                    "# HELP ws_broker_degraded 1 while the broker's store is out of reach.\n",
                );
                text.push_str("# TYPE ws_broker_degraded gauge\n");
                text.push_str(&format!("ws_broker_degraded {degraded}\n"));
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
            "/readyz" => {
                let body = match self.services.broker.health() {
                    Health::Healthy => "{\"ready\":true}".to_string(),
                    Health::Degraded(reason) => {
                        format!("{{\"ready\":true,\"degraded\":\"{reason}\"}}")
                    }
                };
                HttpResponse::with_type(StatusCode::OK, "application/json", body.into_bytes())
            }
            _ => HttpResponse::text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}
