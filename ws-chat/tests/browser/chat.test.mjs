// Real-browser test of the chat page: two users in Chromium talk through a running `ws-chat`.
// Run with `CHAT_URL=http://127.0.0.1:PORT ADMIN_URL=http://127.0.0.1:ADMIN_PORT node --test
// chat.test.mjs` (run.sh builds and starts the server, then does this).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

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

const KNOWN = new Set(['welcome', 'message', 'direct', 'ack', 'presence', 'typing', 'history', 'members', 'refreshed', 'error']);
const ERROR_CODES = new Set(['invalid_message', 'not_found', 'forbidden', 'rate_limited', 'too_large', 'unauthorized']);

// The fields the page relies on, per the protocol; extra fields are fine.
function checkServerMessage(who, raw) {
  let m;
  try { m = JSON.parse(raw); } catch { return `${who}: not JSON: ${raw}`; }
  const str = (v) => typeof v === 'string';
  const num = (v) => typeof v === 'number' && Number.isFinite(v);
  const chatMessage = (x) => num(x.id) && str(x.from) && str(x.text) && num(x.ts);
  let ok;
  switch (m && m.type) {
    case 'welcome': ok = str(m.user) && typeof m.guest === 'boolean'; break;
    case 'message': ok = chatMessage(m) && str(m.room); break;
    case 'direct': ok = chatMessage(m) && str(m.to); break;
    case 'ack': ok = str(m.id) && num(m.msg_id) && num(m.ts); break;
    case 'presence': ok = str(m.room) && str(m.user) && (m.event === 'joined' || m.event === 'left'); break;
    case 'typing': ok = str(m.room) && str(m.user); break;
    case 'history':
      ok = str(m.room) && Array.isArray(m.messages) && m.messages.every((x) => x && chatMessage(x));
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
