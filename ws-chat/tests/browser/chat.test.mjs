// Real-browser test of the chat page: two users in Chromium talk through a running `ws-chat`,
// and the page comes back to a restarted instance of a chat shared through Redis.
// Run with `CHAT_URL=http://127.0.0.1:PORT ADMIN_URL=http://127.0.0.1:ADMIN_PORT node --test
// chat.test.mjs` (run.sh builds and starts the servers, then does this). The restart test also
// needs CHAT_A_URL and CHAT_B_URL (two instances with `--redis`), REDIS_PORT, and
// INSTANCE_A_CTL: the directory where run.sh's supervisor of instance A keeps its pid (`a.pid`)
// and looks for `start-a`, the word to start it again after it stopped.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';

const WAIT_MS = 15_000;
const CHAT_URL = (process.env.CHAT_URL || '').replace(/\/+$/, '');
// The server's admin listener, where /metrics is.
const ADMIN_URL = (process.env.ADMIN_URL || '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SHOTS = fileURLToPath(new URL('./screenshots/', import.meta.url));

const LAUNCH_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

let browser;
const problems = [];   // page errors, console errors, protocol deviations
const frames = [];     // every frame the server sent, for the report on failure

before(async () => {
  assert.ok(CHAT_URL, 'set CHAT_URL to the server address, e.g. http://127.0.0.1:9001');
  assert.ok(ADMIN_URL, 'set ADMIN_URL to the admin listener, e.g. http://127.0.0.1:9002');
  assert.match(CHAT_URL, /^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/, 'CHAT_URL must be a loopback http address');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS, timeout: 30_000 });
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
});

const KNOWN = new Set(['welcome', 'joined', 'message', 'direct', 'ack', 'presence', 'typing', 'history', 'members', 'refreshed', 'error']);
const ERROR_CODES = new Set(['invalid_message', 'not_found', 'forbidden', 'rate_limited', 'too_large', 'unauthorized']);

// The fields the page relies on, per the protocol; extra fields are fine.
function checkServerMessage(who, raw) {
  let m;
  try { m = JSON.parse(raw); } catch { return `${who}: not JSON: ${raw}`; }
  const str = (v) => typeof v === 'string';
  const num = (v) => typeof v === 'number' && Number.isFinite(v);
  const chatMessage = (x) => num(x.id) && str(x.from) && str(x.text) && num(x.ts);
  // A room's position: an epoch and an offset together, or neither (no history in reach).
  const position = (x) => (str(x.epoch) && num(x.offset)) || (x.epoch === undefined && x.offset === undefined);
  const roomMessage = (x) => chatMessage(x) && str(x.room) && position(x);
  let ok;
  switch (m && m.type) {
    case 'welcome': ok = str(m.user) && typeof m.guest === 'boolean'; break;
    case 'joined':
      ok = str(m.room) && position(m) && num(m.missed) && (m.recovered === undefined || typeof m.recovered === 'boolean');
      break;
    case 'message': ok = roomMessage(m); break;
    case 'direct': ok = chatMessage(m) && str(m.to); break;
    case 'ack': ok = str(m.id) && num(m.msg_id) && num(m.ts); break;
    case 'presence': ok = str(m.room) && str(m.user) && (m.event === 'joined' || m.event === 'left'); break;
    case 'typing': ok = str(m.room) && str(m.user); break;
    case 'history':
      ok = str(m.room) && Array.isArray(m.messages) && m.messages.every((x) => x && roomMessage(x));
      break;
    case 'members': ok = str(m.room) && Array.isArray(m.users) && m.users.every(str); break;
    case 'refreshed': ok = num(m.exp); break;
    case 'error': ok = ERROR_CODES.has(m.code) && str(m.message); break;
    default: ok = false;
  }
  return ok ? null : `${who}: unexpected ${KNOWN.has(m && m.type) ? 'shape' : 'type'}: ${raw}`;
}

async function openUser(name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.setDefaultNavigationTimeout(WAIT_MS);
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`${name}: console error: ${msg.text()}`);
  });
  page.on('websocket', (ws) => {
    ws.on('framereceived', ({ payload }) => {
      const text = typeof payload === 'string' ? payload : payload.toString('utf8');
      frames.push(`${name} <- ${text}`);
      const bad = checkServerMessage(name, text);
      if (bad) problems.push(bad);
    });
    ws.on('framesent', ({ payload }) => {
      frames.push(`${name} -> ${typeof payload === 'string' ? payload : payload.toString('utf8')}`);
    });
  });
  const response = await page.goto(CHAT_URL + '/');
  assert.equal(response.status(), 200, `GET / for ${name}`);
  await page.fill('#name', name);
  await page.fill('#room', 'lobby');
  await page.click('#join');
  await page.waitForFunction(() => {
    const s = document.querySelector('#status');
    return s.dataset.state === 'connected' && s.textContent.includes('connected');
  }, null, { timeout: WAIT_MS });
  return { context, page };
}

const member = (page, user) => page.locator(`#members li[data-user="${user}"]`);
const messageFrom = (page, user, text) =>
  page.locator(`#messages .msg[data-from="${user}"][data-room="lobby"]`, { hasText: text });

test('two users chat in the lobby through a real browser', { timeout: 120_000 }, async (t) => {
  let alice, bob, carol;
  try {
    alice = await openUser('alice');
    bob = await openUser('bob');

    // Each sees the other in the member list (from `members` and `presence`).
    await member(alice.page, 'bob').waitFor();
    await member(bob.page, 'alice').waitFor();
    await member(alice.page, 'alice').waitFor();

    // Alice types: Bob sees the indicator before the message arrives.
    const run = Date.now().toString(36);
    const hello = `hello from alice <b>not bold</b> (${run})`;
    await alice.page.locator('#input').pressSequentially(hello.slice(0, 12), { delay: 40 });
    await bob.page.waitForFunction(() => /alice is typing/.test(document.querySelector('#typing').textContent),
      null, { timeout: WAIT_MS });
    await alice.page.locator('#input').pressSequentially(hello.slice(12), { delay: 10 });
    await alice.page.press('#input', 'Enter');

    // Bob gets it, from alice, in the lobby, as text (no markup injected).
    await messageFrom(bob.page, 'alice', hello).waitFor();
    assert.equal(await bob.page.locator('#messages .msg b').count(), 0, 'user text must not become markup');
    // Alice's own copy is styled as hers and marked delivered once the ack arrives.
    await alice.page.locator('#messages .msg.own.delivered[data-from="alice"]', { hasText: hello }).waitFor();
    assert.equal(await messageFrom(alice.page, 'alice', hello).count(), 1, 'alice sees her message once');
    // The indicator goes away (on the message, or ~3 s after the last typing event).
    await bob.page.waitForFunction(() => document.querySelector('#typing').textContent === '',
      null, { timeout: WAIT_MS });

    // Bob answers with the send button.
    const reply = `hi alice, bob here (${run})`;
    await bob.page.fill('#input', reply);
    await bob.page.click('#send');
    await messageFrom(alice.page, 'bob', reply).waitFor();
    await bob.page.locator('#messages .msg.own.delivered[data-from="bob"]', { hasText: reply }).waitFor();
    assert.equal(await messageFrom(bob.page, 'bob', reply).count(), 1, 'bob sees his message once');

    // A late joiner gets both messages from history, in order.
    carol = await openUser('carol');
    await messageFrom(carol.page, 'alice', hello).waitFor();
    await messageFrom(carol.page, 'bob', reply).waitFor();
    const order = await carol.page.$$eval('#messages .msg', (els) => els.map((e) => e.dataset.from));
    assert.deepEqual(order.slice(-2), ['alice', 'bob'], 'history is in order');
    await member(alice.page, 'carol').waitFor();
    await carol.context.close();
    carol = null;
    await member(alice.page, 'carol').waitFor({ state: 'detached' });

    mkdirSync(SHOTS, { recursive: true });
    await alice.page.screenshot({ path: SHOTS + 'chat.png' });
    await bob.page.screenshot({ path: SHOTS + 'chat-bob.png' });

    // Bob leaves: alice sees him go from the member list.
    await bob.context.close();
    bob = null;
    await member(alice.page, 'bob').waitFor({ state: 'detached' });
    await member(alice.page, 'alice').waitFor();
    const statusText = await alice.page.textContent('#status');
    assert.match(statusText, /connected/);
    assert.equal(await alice.page.locator('#errors li').count(), 0,
      'no errors shown: ' + (await alice.page.textContent('#errors')));

    assert.deepEqual(problems, [], 'page errors or protocol deviations');
  } catch (e) {
    t.diagnostic('frames seen:');
    for (const f of frames) t.diagnostic('  ' + f);
    for (const p of problems) t.diagnostic('problem: ' + p);
    for (const u of [alice, bob, carol]) {
      if (!u) continue;
      mkdirSync(SHOTS, { recursive: true });
      const n = u === alice ? 'alice' : u === bob ? 'bob' : 'carol';
      await u.page.screenshot({ path: SHOTS + `failure-${n}.png` }).catch(() => {});
    }
    throw e;
  } finally {
    for (const u of [alice, bob, carol]) if (u) await u.context.close().catch(() => {});
  }
});

// The server's counters from /metrics, by name (series without labels only), and the body's
// length: the response that carries it is counted in the next reading's bytes out.
async function metrics() {
  const response = await fetch(ADMIN_URL + '/metrics');
  assert.equal(response.status, 200, 'GET /metrics');
  const body = await response.text();
  const values = {};
  for (const line of body.split('\n')) {
    const m = /^(ws_[a-z_]+) (\d+)$/.exec(line);
    if (m) values[m[1]] = Number(m[2]);
  }
  return { values, length: body.length };
}

test('Chromium negotiates permessage-deflate and exchanges compressed messages', { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    const response = await page.goto(CHAT_URL + '/');
    assert.equal(response.status(), 200);
    // 6,000 characters that compress well: uncompressed, sending it and getting it back would
    // move over 12 KB; compressed, a few hundred bytes.
    const text = 'a compressible chat message, '.repeat(207).slice(0, 6000);
    const before = await metrics();
    const result = await page.evaluate(async ({ text, waitMs }) => {
      const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws?name=zip');
      const seen = [];
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('timed out; seen: ' + seen.join(' '))), waitMs);
        ws.onerror = () => reject(new Error('websocket error'));
        ws.onclose = (e) => reject(new Error('closed with ' + e.code));
        ws.onmessage = (e) => {
          const m = JSON.parse(e.data);
          seen.push(m.type);
          if (m.type === 'welcome') ws.send(JSON.stringify({ type: 'join', room: 'zip' }));
          if (m.type === 'presence' && m.user === 'zip' && m.event === 'joined') {
            ws.send(JSON.stringify({ type: 'send', room: 'zip', text, id: 'z1' }));
          }
          if (m.type === 'message' && m.text === text) { clearTimeout(timer); resolve(); }
        };
      });
      const extensions = ws.extensions;
      await new Promise((resolve) => { ws.onclose = resolve; ws.close(1000); });
      return { extensions, seen };
    }, { text, waitMs: WAIT_MS });
    const after = await metrics();
    // The browser reports the extension only when the server's 101 accepted its offer.
    assert.match(result.extensions, /^permessage-deflate/, 'negotiated: ' + result.extensions);
    const delta = (name) => after.values[name] - before.values[name];
    assert.equal(delta('ws_deflate_handshakes_total'), 1);
    // Wire bytes both ways (handshake and the first /metrics response included) stay far below
    // the text's length: Chromium compressed what it sent and the server what it echoed.
    const bytesIn = delta('ws_bytes_in_total');
    const bytesOut = delta('ws_bytes_out_total') - before.length;
    assert.ok(bytesIn < text.length / 2, `bytes in ${bytesIn} for a ${text.length}-byte message`);
    assert.ok(bytesOut < text.length / 2, `bytes out ${bytesOut} for a ${text.length}-byte message`);
  } finally {
    await context.close().catch(() => {});
  }
});

test('on a restart close (1012) with a hint the page waits the hinted delay, not its backoff', { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    // The page's WebSockets go through the test on to the server, so the test can close the
    // page's side as a restarting server would.
    const opens = [];
    let route = null;
    await page.routeWebSocket(/\/ws\?/, (ws) => {
      opens.push(Date.now());
      route = ws;
      ws.connectToServer();
    });
    const response = await page.goto(CHAT_URL + '/');
    assert.equal(response.status(), 200);
    await page.fill('#name', 'restarter');
    await page.fill('#room', 'lobby');
    await page.click('#join');
    const connected = () => page.waitForFunction(
      () => document.querySelector('#status').dataset.state === 'connected', null, { timeout: WAIT_MS });
    await connected();
    assert.equal(opens.length, 1);
    // Three seconds, where the page's first backoff is under half a second.
    const HINT_MS = 3000;
    const closedAt = Date.now();
    await route.close({ code: 1012, reason: `restart; reconnect-after=${HINT_MS}ms` });
    await page.waitForFunction(() => /reconnecting in 3 s/.test(document.querySelector('#status').textContent),
      null, { timeout: WAIT_MS });
    await connected();
    assert.equal(opens.length, 2, 'one reconnect');
    const waited = opens[1] - closedAt;
    assert.ok(waited >= HINT_MS - 200, `reconnected after ${waited} ms, before the hinted ${HINT_MS} ms`);
    assert.ok(waited < HINT_MS + 3000, `reconnected after ${waited} ms, long after the hint`);
    assert.equal(await page.locator('#errors li').count(), 0, 'a restart is not shown as an error');
  } finally {
    await context.close().catch(() => {});
  }
});

// ---- an instance restart, with the chat shared through Redis ------------------------------

const CHAT_A_URL = (process.env.CHAT_A_URL || '').replace(/\/+$/, '');
const CHAT_B_URL = (process.env.CHAT_B_URL || '').replace(/\/+$/, '');
const REDIS_PORT = Number(process.env.REDIS_PORT || 0);
const A_CTL = process.env.INSTANCE_A_CTL || '';
const NO_INSTANCES = !(CHAT_A_URL && CHAT_B_URL && REDIS_PORT && A_CTL) && 'no instances through Redis';

// Waits, polling, until `check` holds; fails after WAIT_MS.
async function until(what, check) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

// One command to the test's redis-server over a plain socket: the reply's first line.
function redis(...args) {
  const request = `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(REDIS_PORT, '127.0.0.1');
    let reply = '';
    socket.setTimeout(WAIT_MS, () => socket.destroy(new Error('redis did not answer')));
    socket.on('error', reject);
    socket.on('connect', () => socket.write(request));
    socket.on('data', (d) => {
      reply += d.toString('utf8');
      // A simple reply ends with its first line; PUBSUB NUMSUB's (*2 $n channel :count) with
      // the count.
      const done = args[0] === 'PUBSUB' ? /:(\d+)\r\n$/.exec(reply) : /\r\n$/.test(reply) && [reply, reply];
      if (done) { socket.end(); resolve(done[1].trim()); }
    });
  });
}

// How many instances subscribe to a room's channel: one does once a member joined there.
const subscribers = async (room) => Number(await redis('PUBSUB', 'NUMSUB', `ws:{${room}}:msg`));

// A chat client in node (the `ws` package), collecting what the server sends.
class NodeClient {
  static async open(url, name) {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + '/ws?name=' + encodeURIComponent(name), ['chat.v1']);
    const client = new NodeClient(ws);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return client;
  }

  constructor(ws) {
    this.ws = ws;
    this.received = [];
    ws.on('message', (data) => this.received.push(JSON.parse(data.toString('utf8'))));
  }

  send(obj) { this.ws.send(JSON.stringify(obj)); }

  // The first message received, from index `from` on, that `match` takes.
  async next(what, match, from = 0) {
    let found = -1;
    await until(what, () => (found = this.received.findIndex((m, i) => i >= from && match(m))) >= 0);
    return this.received[found];
  }

  // Says `text` in `room`: waits for the ack, then for the message back through the room
  // (numbered, so recorded in Redis), which it returns.
  async post(room, text) {
    const id = 'n-' + text;
    const from = this.received.length;
    this.send({ type: 'send', room, text, id });
    await this.next(`the ack of ${text}`, (m) => m.type === 'ack' && m.id === id, from);
    return this.next(`${text} back`, (m) => m.type === 'message' && m.room === room && m.text === text, from);
  }

  close() { this.ws.close(1000); }
}

// Instance A, kept by run.sh's supervisor: its pid while it runs, else null.
const instanceA = () => {
  try { return Number(readFileSync(A_CTL + '/a.pid', 'utf8')) || null; } catch { return null; }
};

// Stops instance A as a restart does (SIGTERM: its clients are closed with 1012 and a hint
// under a second) and waits until it has exited; the page notices.
async function stopA(page) {
  const pid = instanceA();
  assert.ok(pid, 'instance A runs');
  process.kill(pid, 'SIGTERM');
  await page.waitForFunction(() => document.querySelector('#status').dataset.state !== 'connected',
    null, { timeout: WAIT_MS });
  await until('instance A to exit', () => instanceA() === null);
  return pid;
}

// Has the supervisor start A again, on the same port.
async function startA(old) {
  writeFileSync(A_CTL + '/start-a', '');
  await until('instance A to start again', () => instanceA() !== null && instanceA() !== old);
}

// A test of the page on instance A and a node client, bob, on B, in a room of its own: `body`
// gets them once both instances subscribe to the room. What the page sent and received is
// recorded per connection (`seen`), and Chromium's view of its handshakes (`handshakes`).
function restartTest(title, body) {
  test(title, { timeout: 90_000, skip: NO_INSTANCES }, async (t) => {
    const run = Date.now().toString(36);
    const room = 'back-' + run;
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const seen = [];
    const handshakes = [];
    let bob;
    let page;
    try {
      page = await context.newPage();
      page.setDefaultTimeout(WAIT_MS);
      page.on('pageerror', (e) => problems.push(`paula: page error: ${e.message}`));
      let connections = 0;
      page.on('websocket', (ws) => {
        const n = ++connections;
        ws.on('framereceived', ({ payload }) => {
          const text = String(payload);
          seen.push({ n, dir: 'in', m: JSON.parse(text) });
          const bad = checkServerMessage('paula', text);
          if (bad) problems.push(bad);
        });
        ws.on('framesent', ({ payload }) => seen.push({ n, dir: 'out', m: JSON.parse(String(payload)) }));
      });
      const cdp = await context.newCDPSession(page);
      const header = (headers, name) => headers[name] ?? headers[name.toLowerCase()];
      cdp.on('Network.webSocketWillSendHandshakeRequest',
        (e) => handshakes.push({ offered: header(e.request.headers, 'Sec-WebSocket-Protocol') }));
      cdp.on('Network.webSocketHandshakeResponseReceived',
        (e) => handshakes.push({ status: e.response.status, answered: header(e.response.headers, 'Sec-WebSocket-Protocol') }));
      await cdp.send('Network.enable');

      assert.equal((await page.goto(CHAT_A_URL + '/')).status(), 200);
      await page.fill('#name', 'paula');
      await page.fill('#room', room);
      await page.click('#join');
      const connected = () => page.waitForFunction(
        () => document.querySelector('#status').dataset.state === 'connected', null, { timeout: WAIT_MS });
      await connected();
      bob = await NodeClient.open(CHAT_B_URL, 'bob');
      assert.equal(bob.ws.protocol, 'chat.v1', 'the node client offered the chat version: answered with it');
      await bob.next('bob welcomed', (m) => m.type === 'welcome');
      bob.send({ type: 'join', room });
      await bob.next('bob joined', (m) => m.type === 'joined' && m.room === room);
      await until('both instances to subscribe to the room', async () => (await subscribers(room)) === 2);

      // The room's messages on the page, each with its position; the frames of the
      // connections that opened (attempts while A was down never did), in order.
      const shown = () => page.$$eval(`#messages .msg[data-room="${room}"]`,
        (els) => els.map((e) => ({ text: e.dataset.text, epoch: e.dataset.epoch, offset: Number(e.dataset.offset) })));
      const opened = () => [...new Set(seen.map((f) => f.n))].map((n) => seen.filter((f) => f.n === n));
      await body({ page, room, bob, connected, shown, opened, handshakes });

      assert.equal(await page.locator('#errors li').count(), 0,
        'no errors shown once back: ' + (await page.textContent('#errors')));
      assert.deepEqual(problems, [], 'page errors or protocol deviations');
    } catch (e) {
      for (const f of seen) t.diagnostic(`paula#${f.n} ${f.dir === 'in' ? '<-' : '->'} ${JSON.stringify(f.m)}`);
      if (bob) for (const m of bob.received) t.diagnostic('bob <- ' + JSON.stringify(m));
      for (const p of problems) t.diagnostic('problem: ' + p);
      if (page) {
        mkdirSync(SHOTS, { recursive: true });
        await page.screenshot({ path: SHOTS + `failure-${room}.png` }).catch(() => {});
      }
      throw e;
    } finally {
      if (bob) bob.close();
      await context.close().catch(() => {});
      // Leave A running for what comes next, if the test stopped it.
      if (A_CTL && instanceA() === null && !existsSync(A_CTL + '/start-a')) writeFileSync(A_CTL + '/start-a', '');
    }
  });
}

const framesOf = (conn, dir, type) => conn.filter((f) => f.dir === dir && f.m.type === type).map((f) => f.m);

restartTest('the page comes back to a restarted instance and shows what it missed, once, in order',
  async ({ page, room, bob, connected, shown, opened, handshakes }) => {
    const run = room.slice(5);
    const first = await bob.post(room, `before ${run}`);
    assert.ok(typeof first.epoch === 'string' && first.offset === 1, JSON.stringify(first));
    await page.locator(`#messages .msg[data-room="${room}"][data-offset="1"]`).waitFor();

    // A stops, and stays down while bob, on B, says three things.
    const pid = await stopA(page);
    const missed = [];
    for (let i = 1; i <= 3; i++) missed.push((await bob.post(room, `missed ${i} ${run}`)).text);

    // A starts again; the page reconnects and re-joins from the last message it showed.
    await startA(pid);
    await connected();
    await until('the missed messages on the page', async () => (await shown()).length === 4);
    await until('instance A to subscribe again', async () => (await subscribers(room)) === 2);
    const live = [];
    for (let i = 1; i <= 2; i++) live.push((await bob.post(room, `live ${i} ${run}`)).text);
    await until('the live messages on the page', async () => (await shown()).length >= 6);

    const texts = [first.text, ...missed, ...live];
    assert.deepEqual(await shown(), texts.map((text, i) => ({ text, epoch: first.epoch, offset: i + 1 })),
      'each message once, in order');
    assert.equal(await page.locator('#messages .notice[data-kind="gap"]').count(), 0, 'nothing reported missing');

    // It was recovery: the second connection joined from offset 1 of the same epoch, was
    // answered `recovered` with three missed, and asked for no history.
    const connections = opened();
    assert.equal(connections.length, 2, 'one reconnect that opened');
    const [, second] = connections;
    assert.deepEqual(framesOf(second, 'out', 'join'), [{ type: 'join', room, epoch: first.epoch, offset: 1 }]);
    assert.deepEqual(framesOf(second, 'in', 'joined'),
      [{ type: 'joined', room, epoch: first.epoch, offset: 4, recovered: true, missed: 3 }]);
    assert.deepEqual(framesOf(second, 'out', 'history'), [], 'no history asked for');

    // The page offered the chat's version and was answered with it, both times.
    const offers = handshakes.filter((h) => 'offered' in h).map((h) => h.offered);
    const answers = handshakes.filter((h) => h.status === 101).map((h) => h.answered);
    assert.ok(offers.length >= 2 && offers.every((o) => o === 'chat.v1'), JSON.stringify(offers));
    assert.deepEqual(answers, ['chat.v1', 'chat.v1']);
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: SHOTS + 'recovered.png' });
  });

restartTest('a page whose room history was lost meanwhile says so and refills from history',
  async ({ page, room, bob, connected, shown, opened }) => {
    const run = room.slice(5);
    const old = await bob.post(room, `old ${run}`);
    await page.locator(`#messages .msg[data-room="${room}"][data-offset="1"]`).waitFor();

    // While A is down, Redis loses every history: the room's next message starts a new epoch.
    const pid = await stopA(page);
    assert.equal(await redis('FLUSHALL'), '+OK');
    const fresh = [];
    for (let i = 1; i <= 2; i++) fresh.push(await bob.post(room, `new ${i} ${run}`));
    assert.notEqual(fresh[0].epoch, old.epoch, 'a new epoch');
    assert.deepEqual(fresh.map((m) => m.offset), [1, 2]);

    await startA(pid);
    await connected();
    await page.locator('#messages .notice[data-kind="gap"]').waitFor();
    await until('the new epoch on the page', async () => (await shown()).length === 3);
    await until('instance A to subscribe again', async () => (await subscribers(room)) === 2);
    const live = await bob.post(room, `live ${run}`);
    await until('the live message on the page', async () => (await shown()).length >= 4);

    const at = (m) => ({ text: m.text, epoch: m.epoch, offset: m.offset });
    assert.deepEqual(await shown(), [old, ...fresh, live].map(at), 'each message once, in order');
    // The notice stands between the old epoch and the new.
    const order = await page.$$eval('#messages > *', (els) => els.map((e) => e.dataset.kind || e.dataset.text));
    assert.deepEqual(order.filter((x) => x !== undefined), [old.text, 'gap', ...fresh.map((m) => m.text), live.text]);
    assert.equal(await page.textContent('#messages .notice[data-kind="gap"]'), 'some messages may be missing');

    // The second connection asked to recover from the old epoch, was told it could not, with
    // the room's new position, and asked for the history.
    const [, second] = opened();
    assert.deepEqual(framesOf(second, 'out', 'join'), [{ type: 'join', room, epoch: old.epoch, offset: 1 }]);
    assert.deepEqual(framesOf(second, 'in', 'joined'),
      [{ type: 'joined', room, epoch: fresh[0].epoch, offset: 2, recovered: false, missed: 0 }]);
    assert.equal(framesOf(second, 'out', 'history').length, 1);
  });

// wss: the same chat served over TLS (run.sh starts a server with --tls-cert/--tls-key from a
// CA made for the run). The page is loaded over https, so it opens wss://. This browser trusts
// the run's certificate by its public key (CHAT_TLS_SPKI), and nothing else: a certificate
// error would fail the navigation.
const CHAT_TLS_URL = (process.env.CHAT_TLS_URL || '').replace(/\/+$/, '');
const CHAT_TLS_SPKI = process.env.CHAT_TLS_SPKI || '';

test('two users chat over wss, the page served over https', { timeout: 60_000, skip: !CHAT_TLS_URL && 'CHAT_TLS_URL not set' }, async () => {
  assert.match(CHAT_TLS_URL, /^https:\/\/(127\.\d+\.\d+\.\d+|localhost)(:\d+)?$/, 'CHAT_TLS_URL must be a loopback https address');
  assert.ok(CHAT_TLS_SPKI, 'CHAT_TLS_SPKI: the certificate\'s SPKI hash');
  const tlsBrowser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [...LAUNCH_ARGS, `--ignore-certificate-errors-spki-list=${CHAT_TLS_SPKI}`],
    timeout: 30_000,
  });
  const seen = [];
  try {
    const open = async (name) => {
      const context = await tlsBrowser.newContext();
      const page = await context.newPage();
      page.setDefaultTimeout(WAIT_MS);
      page.on('pageerror', (e) => seen.push(`${name}: page error: ${e.message}`));
      page.on('websocket', (ws) => seen.push(`${name}: socket ${ws.url()}`));
      const response = await page.goto(CHAT_TLS_URL + '/');
      assert.equal(response.status(), 200);
      const security = await response.securityDetails();
      assert.ok(security && /^TLS 1\.[23]$/.test(security.protocol), `TLS in use: ${JSON.stringify(security)}`);
      await page.fill('#name', name);
      await page.fill('#room', 'lobby');
      await page.click('#join');
      await page.waitForFunction(() => document.querySelector('#status').dataset.state === 'connected',
        null, { timeout: WAIT_MS });
      return page;
    };
    const alice = await open('alice');
    const bob = await open('bob');
    await member(alice, 'bob').waitFor();
    const text = `over wss ${Date.now().toString(36)}`;
    await alice.fill('#input', text);
    await alice.press('#input', 'Enter');
    await messageFrom(bob, 'alice', text).waitFor();
    await alice.locator('#messages .msg.own.delivered[data-from="alice"]', { hasText: text }).waitFor();
    const sockets = seen.filter((s) => s.includes('socket '));
    assert.equal(sockets.length, 2, seen.join('\n'));
    for (const s of sockets) assert.match(s, /socket wss:\/\//);
    assert.deepEqual(seen.filter((s) => s.includes('page error')), []);
  } finally {
    await tlsBrowser.close().catch(() => {});
  }
});
