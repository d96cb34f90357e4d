// One xmpp.js (@xmpp/client) session over WebSocket for the interop tests (tests/interop/
// test_xmppjs.py): log in, get the roster, send presence and one message, wait for the replies.
// Every wait has a deadline. Progress goes to stderr; the result is one JSON object on stdout,
// and the exit code is 0 only when every step passed.
//
// Configuration: a JSON object in the environment variable HEARTH_WEB_CONFIG:
//   service     "ws://127.0.0.1:PORT/xmpp-websocket" (or wss://)
//   domain      the server's domain
//   username, password, resource
//   mode        "chat" (default): the whole exchange; "auth-fail": the login must fail
//   peer        the full JID to send the message to (mode chat)
//   body        the message body sent to peer
//   reply       the body expected back from peer's bare JID
//   step_ms     deadline of each step (default 10000)
//   total_ms    deadline of the whole run (default 60000)
//
// Run with node --experimental-websocket: Node 20 has a global WebSocket only behind that flag,
// and @xmpp/websocket uses the global one.

import { client, xml, jid as parseJid } from '@xmpp/client';

const NS_ROSTER = 'jabber:iq:roster';
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const TRANSCRIPT_MAX = 200; // elements kept for the failure report

const config = JSON.parse(process.env.HEARTH_WEB_CONFIG || '{}');
const stepMs = config.step_ms || 10000;
const totalMs = config.total_ms || 60000;
const mode = config.mode || 'chat';

const result = {
    ok: false,
    mode,
    error: null,
    steps: [],
    jid: null,
    mechanism: null,
    sasl_failure: null,
    roster: null,
    self_presence: null,
    peer_presence: null,
    sent_id: null,
    received: null,
    transcript: [],
};

function log(text) {
    process.stderr.write(`xmppjs: ${text}\n`);
}

function step(name) {
    result.steps.push(name);
    log(`step ${name}`);
}

let finished = false;
function finish(ok, error) {
    if (finished) return;
    finished = true;
    result.ok = ok;
    result.error = error ? String(error.stack || error) : null;
    process.stdout.write(JSON.stringify(result) + '\n');
    // Exit once stdout is flushed; the WebSocket may still be closing.
    process.stdout.write('', () => process.exit(ok ? 0 : 1));
}

const hardStop = setTimeout(() => {
    finish(false, new Error(`whole run exceeded ${totalMs} ms after steps ${result.steps.join(', ')}`));
}, totalMs);
hardStop.unref();

// Resolves with the first incoming stanza for which pred() is true, or rejects at the deadline.
const waiters = [];
const backlog = [];
function waitFor(what, pred, ms = stepMs) {
    const found = backlog.findIndex(pred);
    if (found >= 0) return Promise.resolve(backlog.splice(found, 1)[0]);
    return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        w.timer = setTimeout(() => {
            waiters.splice(waiters.indexOf(w), 1);
            reject(new Error(`no ${what} within ${ms} ms`));
        }, ms);
        waiters.push(w);
    });
}

function withDeadline(what, promise, ms = stepMs) {
    let timer;
    const deadline = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not complete within ${ms} ms`)), ms);
    });
    return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function keep(direction, el) {
    if (result.transcript.length < TRANSCRIPT_MAX) result.transcript.push(`${direction} ${el.toString()}`);
}

const xmpp = client({
    service: config.service,
    domain: config.domain,
    resource: config.resource,
    username: config.username,
    password: config.password,
});
// A failed connection must fail the run, not be retried behind its back.
xmpp.reconnect.stop();

xmpp.on('error', (err) => log(`error event: ${err}`));
xmpp.on('status', (status) => log(`status ${status}`));
xmpp.on('send', (el) => {
    keep('>>', el);
    if (el.name === 'auth' && el.attrs.xmlns === NS_SASL) result.mechanism = el.attrs.mechanism;
});
xmpp.on('element', (el) => {
    keep('<<', el);
    if (el.name === 'failure' && el.attrs.xmlns === NS_SASL) {
        const cond = el.children.find((c) => typeof c === 'object' && c.name !== 'text');
        result.sasl_failure = cond ? cond.name : 'unknown';
    }
});
xmpp.on('stanza', (stanza) => {
    const i = waiters.findIndex((w) => w.pred(stanza));
    if (i >= 0) {
        const [w] = waiters.splice(i, 1);
        clearTimeout(w.timer);
        w.resolve(stanza);
    } else if (backlog.length < TRANSCRIPT_MAX) {
        backlog.push(stanza);
    }
});

function bare(j) {
    return j ? parseJid(j).bare().toString() : j;
}

async function chat() {
    step('connect');
    const address = await withDeadline('login', xmpp.start());
    result.jid = address.toString();

    step('roster');
    const reply = await xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })), stepMs);
    const query = reply.getChild('query', NS_ROSTER);
    result.roster = (query ? query.getChildren('item') : []).map((item) => ({
        jid: item.attrs.jid,
        subscription: item.attrs.subscription || 'none',
        name: item.attrs.name || null,
    }));

    step('presence');
    const own = waitFor('own presence', (s) => s.is('presence') && s.attrs.from === result.jid && !s.attrs.type);
    const peerBare = bare(config.peer);
    const peer = waitFor(`presence of ${peerBare}`, (s) => s.is('presence') && bare(s.attrs.from) === peerBare && !s.attrs.type);
    await xmpp.send(xml('presence', {}, xml('status', {}, 'xmpp.js over WebSocket')));
    const ownPresence = await own;
    result.self_presence = { from: ownPresence.attrs.from, status: ownPresence.getChildText('status') };
    const peerPresence = await peer;
    result.peer_presence = { from: peerPresence.attrs.from };

    step('message');
    result.sent_id = 'xmppjs-msg-1';
    const incoming = waitFor(`message from ${peerBare}`, (s) => s.is('message') && bare(s.attrs.from) === peerBare && s.getChild('body'));
    await xmpp.send(xml('message', { to: config.peer, type: 'chat', id: result.sent_id }, xml('body', {}, config.body)));
    const msg = await incoming;
    result.received = { from: msg.attrs.from, to: msg.attrs.to, type: msg.attrs.type || 'normal', body: msg.getChildText('body') };
    if (config.reply !== undefined && result.received.body !== config.reply) {
        throw new Error(`reply body ${JSON.stringify(result.received.body)}, expected ${JSON.stringify(config.reply)}`);
    }

    step('logout');
    await withDeadline('logout', xmpp.stop());
    step('done');
}

async function authFail() {
    step('connect');
    try {
        await withDeadline('login', xmpp.start());
    } catch (err) {
        if (result.sasl_failure) {
            step('refused');
            await withDeadline('close', xmpp.stop()).catch(() => {});
            return;
        }
        throw err;
    }
    throw new Error(`login with a wrong password succeeded as ${xmpp.jid}`);
}

(mode === 'auth-fail' ? authFail() : chat()).then(
    () => finish(true, null),
    (err) => finish(false, err),
);
