// Two people chat in Converse.js at the server's /chat/, in Debian's chromium driven by
// playwright-core, for tests/browser/test_converse.py: each logs in through Converse's login form
// in a browser context of its own, the first over WebSocket and the second over BOSH
// (/chat/?transport=...); each waits until the other shows online in its roster; then a message
// goes each way and must appear in the other's chat. Every wait has a deadline.
//
// Records what the test asserts on: console errors and uncaught page errors, requests that left
// the server's origin (blocked and listed), failed requests, the WebSocket and BOSH traffic of
// each page. Screenshots and console.json (all that the pages logged) go to the artefacts
// directory. Progress goes to stderr; the result is
// one JSON object on stdout, and the exit code is 0 only when every step passed.
//
// Configuration: a JSON object in the environment variable HEARTH_WEB_CONFIG:
//   base        the server's origin, "http://127.0.0.1:PORT"
//   path        the chat page's path, "/chat/"
//   chromium    the browser to run, "/usr/bin/chromium"
//   artefacts   directory for screenshots
//   users       [{label, jid, password, transport: "websocket" | "bosh"}, {...}] (two)
//   messages    [first to second, second to first]
//   step_ms     deadline of each step (default 20000)
//   total_ms    deadline of the whole run (default 150000)

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const config = JSON.parse(process.env.HEARTH_WEB_CONFIG || '{}');
const stepMs = config.step_ms || 20000;
const totalMs = config.total_ms || 150000;
const origin = new URL(config.base).origin;
const LIST_MAX = 200; // entries kept in each list of the result

// The flags every browser run here needs: no GPU, and no connection of Chromium's own to the
// internet (this machine has none: background networking would try and log failures).
const CHROMIUM_ARGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
];

const result = {
    ok: false,
    error: null,
    steps: [],
    console_errors: [],
    page_errors: [],
    external_requests: [],
    failed_requests: [],
    websockets: {},
    bosh_requests: {},
    screenshots: [],
    chat_texts: {},
    console: [],
};

function log(text) {
    process.stderr.write(`converse: ${text}\n`);
}

function step(name) {
    result.steps.push(name);
    log(`step ${name}`);
}

// Once the run is over, what closing the browser does (aborting BOSH's pending request, say)
// is not recorded.
let recording = true;
function push(list, item) {
    if (recording && list.length < LIST_MAX) list.push(item);
}

let browser = null;
const people = [];
let finished = false;

async function finish(ok, error) {
    if (finished) return;
    finished = true;
    result.ok = ok;
    result.error = error ? String(error.stack || error) : null;
    if (!ok) {
        for (const p of people) await screenshot(p, 'failure').catch(() => {});
    }
    recording = false;
    // Everything the pages logged, for whoever reads the artefacts after a failure.
    try {
        fs.writeFileSync(path.join(config.artefacts, 'console.json'), JSON.stringify(result.console, null, 1));
    } catch (err) {
        log(`console.json not written: ${err}`);
    }
    if (browser) await browser.close().catch(() => {});
    process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(ok ? 0 : 1));
}

const hardStop = setTimeout(() => {
    finish(false, new Error(`whole run exceeded ${totalMs} ms after steps ${result.steps.join(', ')}`));
}, totalMs);
hardStop.unref();

async function screenshot(person, name) {
    const file = path.join(config.artefacts, `${String(result.screenshots.length + 1).padStart(2, '0')}-${person.label}-${name}.png`);
    await person.page.screenshot({ path: file, fullPage: false, timeout: stepMs });
    result.screenshots.push(file);
}

async function open(user) {
    const label = user.label;
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US' });
    // Nothing may leave the server's origin: such a request is listed and refused.
    await context.route('**/*', (route) => {
        const url = route.request().url();
        if (new URL(url).origin === origin || url.startsWith('data:') || url.startsWith('blob:')) {
            return route.continue();
        }
        push(result.external_requests, { page: label, url });
        return route.abort('blockedbyclient');
    });
    const page = await context.newPage();
    result.websockets[label] = [];
    result.bosh_requests[label] = 0;
    page.on('console', (msg) => {
        const loc = msg.location();
        const entry = { page: label, type: msg.type(), text: msg.text(), url: loc && loc.url ? `${loc.url}:${loc.lineNumber}` : null };
        push(result.console, entry);
        if (msg.type() === 'error') push(result.console_errors, entry);
    });
    page.on('pageerror', (err) => push(result.page_errors, { page: label, text: String(err.stack || err) }));
    page.on('requestfailed', (req) => {
        const failure = req.failure();
        push(result.failed_requests, { page: label, url: req.url(), method: req.method(), error: failure ? failure.errorText : null });
    });
    page.on('request', (req) => {
        if (recording && new URL(req.url()).pathname.endsWith('/http-bind')) result.bosh_requests[label] += 1;
    });
    page.on('websocket', (ws) => push(result.websockets[label], ws.url()));
    const person = { ...user, context, page };
    people.push(person);
    return person;
}

async function login(p) {
    step(`${p.label}: open ${config.path}?transport=${p.transport}`);
    await p.page.goto(`${origin}${config.path}?transport=${p.transport}`, { waitUntil: 'load', timeout: stepMs });
    const jidInput = p.page.locator('#converse-login-jid');
    await jidInput.waitFor({ state: 'visible', timeout: stepMs });
    await screenshot(p, 'login-form');
    step(`${p.label}: log in as ${p.jid}`);
    await jidInput.fill(p.jid);
    await p.page.locator('#converse-login-password').fill(p.password);
    await p.page.locator('#converse-login button[type=submit]').click({ timeout: stepMs });
    // Logged in: the roster is there (the form stays, with an error, when the login fails).
    await p.page.locator('#converse-roster').waitFor({ state: 'visible', timeout: stepMs }).catch(async (err) => {
        const feedback = await p.page.locator('.conn-feedback').innerText({ timeout: 1000 }).catch(() => '');
        throw new Error(`${p.label} (${p.jid}) not logged in over ${p.transport}: ${feedback || err.message}`);
    });
}

// The contact's roster entry (with its presence) in p's roster. A contact with unread messages
// is listed twice, under "New messages" and in its group: either entry opens the same chat.
function contact(p, jid) {
    return p.page.locator(`#converse-roster a.open-chat[data-jid="${jid}"]`).first();
}

async function seesOnline(p, jid) {
    step(`${p.label}: sees ${jid} online`);
    await contact(p, jid).locator('.contact-name--online').waitFor({ state: 'visible', timeout: stepMs }).catch(async (err) => {
        const roster = await p.page.locator('#converse-roster').innerText({ timeout: 1000 }).catch(() => '?');
        throw new Error(`${p.label}: ${jid} not shown online: ${err.message}; roster reads: ${JSON.stringify(roster)}`);
    });
}

function chat(p, jid) {
    return p.page.locator(`converse-chat[jid="${jid}"]`);
}

async function openChat(p, jid) {
    step(`${p.label}: open the chat with ${jid}`);
    await contact(p, jid).click({ timeout: stepMs });
    await chat(p, jid).locator('textarea.chat-textarea').waitFor({ state: 'visible', timeout: stepMs });
}

async function send(p, jid, text) {
    step(`${p.label}: send to ${jid}`);
    const box = chat(p, jid).locator('textarea.chat-textarea');
    await box.fill(text, { timeout: stepMs });
    await box.press('Enter', { timeout: stepMs });
    await waitText(p, jid, text, 'its own message');
}

async function waitText(p, jid, text, what) {
    const messages = chat(p, jid).locator('.chat-msg__text');
    await messages.filter({ hasText: text }).first().waitFor({ state: 'visible', timeout: stepMs }).catch(async (err) => {
        const seen = await messages.allInnerTexts().catch(() => []);
        throw new Error(`${p.label}: ${what} not shown in the chat with ${jid}: ${err.message}; messages: ${JSON.stringify(seen)}`);
    });
    result.chat_texts[p.label] = await messages.allInnerTexts();
}

async function run() {
    fs.mkdirSync(config.artefacts, { recursive: true });
    step('launch chromium');
    browser = await chromium.launch({ executablePath: config.chromium, headless: true, args: CHROMIUM_ARGS, timeout: stepMs });
    const [a, b] = [await open(config.users[0]), await open(config.users[1])];

    await login(a);
    await screenshot(a, 'logged-in');
    await login(b);
    await screenshot(b, 'logged-in');

    await seesOnline(a, b.jid);
    await seesOnline(b, a.jid);

    await openChat(a, b.jid);
    await send(a, b.jid, config.messages[0]);
    await screenshot(a, 'sent');

    await openChat(b, a.jid);
    step(`${b.label}: sees the message from ${a.jid}`);
    await waitText(b, a.jid, config.messages[0], `the message from ${a.jid}`);
    await send(b, a.jid, config.messages[1]);
    await screenshot(b, 'replied');

    step(`${a.label}: sees the reply from ${b.jid}`);
    await waitText(a, b.jid, config.messages[1], `the reply from ${b.jid}`);
    await screenshot(a, 'reply-received');
    step('done');
}

run().then(
    () => finish(true, null),
    (err) => finish(false, err),
);
