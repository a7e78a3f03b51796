//! The in-memory event loop of a [`TestServer`]: how bytes move between the clients' pipes and
//! the workers, a round at a time, the way [`crate::worker::event_loop`] moves them between
//! sockets and workers.

use super::{Peer, TestServer, READ_CHUNK};
use crate::handler::Handler;
use crate::worker::{Io, Key, TURN_BUDGET};
use std::io::IoSlice;
use ws_proto::deflate::PerMessageDeflate;
use ws_proto::{Connection, Role};

impl<H: Handler> TestServer<H> {
    /// Moves bytes and carries out the workers' orders until nothing moves.
    pub fn drive(&mut self) {
        for _ in 0..1_000_000 {
            if !self.round() {
                return;
            }
        }
        panic!("the server and its clients did not settle");
    }

    /// One round, as an event loop's turn over every ready socket: each worker's inbox is read
    /// (what a broker delivered), each client's pipe is written from its engine, each
    /// connection gets one turn of input (its budget's worth), the workers carry out their
    /// orders, the clients read. Returns whether anything moved.
    pub fn round(&mut self) -> bool {
        let mut progress = false;
        for (worker, inbox) in self.workers.iter_mut().zip(&self.inboxes) {
            while let Ok(remote) = inbox.try_recv() {
                worker.handle_remote(remote, self.now);
                progress = true;
            }
        }
        for c in 0..self.clients.len() {
            progress |= self.client_sends(c);
            progress |= self.server_reads(c);
        }
        for w in 0..self.workers.len() {
            progress |= self.settle(w);
        }
        for c in 0..self.clients.len() {
            if self.client_reads(c) {
                progress = true;
                // The pipe has room again: the socket is writable.
                if let Some(key) = self.clients[c].key {
                    self.write(self.clients[c].worker, key);
                }
            }
        }
        progress
    }

    /// The client's engine output goes into its pipe, as far as the pipe takes it.
    fn client_sends(&mut self, c: usize) -> bool {
        let capacity = self.pipe_capacity;
        let client = &mut self.clients[c];
        let Peer::Open(conn) = &mut client.role else {
            return false;
        };
        if client.server_closed {
            return false;
        }
        let mut progress = false;
        while client.to_server.len() < capacity {
            let mut slices = [&[][..]; 16];
            let n = conn.transmit_slices(&mut slices);
            if n == 0 {
                break;
            }
            let room = capacity - client.to_server.len();
            let mut taken = 0;
            for slice in &slices[..n] {
                let take = slice.len().min(room - taken);
                client.to_server.extend(&slice[..take]);
                taken += take;
                if taken == room {
                    break;
                }
            }
            conn.advance_transmit(taken);
            progress = true;
        }
        progress
    }

    /// The worker reads what waits in the client's pipe, while it wants input.
    fn server_reads(&mut self, c: usize) -> bool {
        let client = &mut self.clients[c];
        let Some(key) = client.key else { return false };
        let worker = &mut self.workers[client.worker];
        // One turn of the connection's, as the event loop gives it.
        let mut budget = TURN_BUDGET;
        let mut progress = worker.input_waits(key);
        worker.resume_input(key, self.now, &mut budget);
        while budget > 0 && worker.wants_read(key) && !client.to_server.is_empty() {
            let n = client.to_server.len().min(READ_CHUNK);
            for (dst, src) in self.read_buf.iter_mut().zip(client.to_server.drain(..n)) {
                *dst = src;
            }
            worker.receive(key, &mut self.read_buf[..n], self.now, &mut budget);
            progress = true;
        }
        if client.write_closed
            && !client.eof_delivered
            && client.to_server.is_empty()
            && worker.wants_read(key)
        {
            client.eof_delivered = true;
            worker.receive_eof(key, self.now);
            progress = true;
        }
        progress
    }

    /// Carries out worker `w`'s orders, as the event loop does.
    fn settle(&mut self, w: usize) -> bool {
        let mut progress = false;
        loop {
            if let Some(io) = self.workers[w].poll_io() {
                progress = true;
                match io {
                    // The next round of reads takes it: it reads whatever waits.
                    Io::Read(_) => {}
                    Io::Close(key) => {
                        if let Some(c) = self.keys[w].remove(&key) {
                            self.clients[c].server_closed = true;
                            self.clients[c].key = None;
                        }
                    }
                }
            } else if let Some(key) = self.workers[w].poll_dirty() {
                progress = true;
                self.write(w, key);
            } else {
                break;
            }
        }
        while let Some((to, remote)) = self.workers[w].poll_outbound() {
            progress = true;
            let now = self.now;
            self.workers[to].handle_remote(remote, now);
        }
        progress
    }

    /// Writes what worker `w` queued for `key` into the client's pipe, as far as it takes it.
    fn write(&mut self, w: usize, key: Key) {
        let Some(&c) = self.keys[w].get(&key) else {
            return;
        };
        let capacity = self.pipe_capacity;
        let worker = &mut self.workers[w];
        let pipe = &mut self.clients[c].to_client;
        loop {
            let mut slices = [IoSlice::new(&[]); 64];
            let n = worker.transmit_io_slices(key, &mut slices);
            let room = capacity.saturating_sub(pipe.len());
            if n == 0 || room == 0 {
                break;
            }
            let mut taken = 0;
            for slice in &slices[..n] {
                let take = slice.len().min(room - taken);
                pipe.extend(&slice[..take]);
                taken += take;
                if taken == room {
                    break;
                }
            }
            worker.advance_transmit(key, taken);
        }
        worker.written(key);
    }

    /// The client takes what waits in its pipe, if it reads.
    fn client_reads(&mut self, c: usize) -> bool {
        let client = &mut self.clients[c];
        if !client.reading || client.to_client.is_empty() {
            return false;
        }
        let bytes: Vec<u8> = client.to_client.drain(..).collect();
        let mut rest: &[u8] = &bytes;
        if let Peer::Handshaking(handshake, deflate) = &mut client.role {
            match handshake.receive(rest) {
                Ok(None) => rest = &[],
                Ok(Some((response, used))) => {
                    rest = &rest[used..];
                    let mut conn = Connection::client(ws_proto::Config::default());
                    if let (Some(d), Some(offer)) =
                        (deflate.as_ref(), response.extensions().first())
                    {
                        if let Some(params) = d.accept_response(offer) {
                            conn = conn.with_extension(Box::new(PerMessageDeflate::new(
                                Role::Client,
                                params,
                                d,
                            )));
                        }
                    }
                    client.response = Some(response);
                    client.role = Peer::Open(Box::new(conn));
                }
                Err(_) => {
                    client.raw.extend_from_slice(rest);
                    client.role = Peer::Refused;
                    return true;
                }
            }
        }
        match &mut client.role {
            Peer::Open(conn) => {
                let _ = conn.receive(rest);
                if client.server_closed {
                    conn.receive_eof();
                }
                while let Some(event) = conn.poll_event() {
                    client.events.push_back(event);
                }
            }
            Peer::Raw | Peer::Refused => client.raw.extend_from_slice(rest),
            Peer::Handshaking(..) => {}
        }
        true
    }
}
