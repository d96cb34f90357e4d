// A file shared in Converse.js through HTTP File Upload (XEP-0363), in Debian's chromium driven
// by playwright-core, for tests/browser/test_converse_upload.py: one person logs in through
// Converse's login form at the server's /chat/, opens the chat with a contact, waits for the
// toolbar's file button (Converse shows it only once disco found an upload service), picks a
// file with it (the hidden file input Converse's paperclip opens); Converse asks for a slot, PUTs
// the file (the slot's URL names another origin than the page's, so the browser runs a CORS
// preflight first) and sends the link, which must appear in the chat. Every wait has a deadline.
//
// Records what the test asserts on: console errors and uncaught page errors, requests to any
// origin but the page's and the upload URLs' (blocked and listed), failed requests, and every
// request under /upload/ with the status it got. Screenshots go to the artefacts directory. The
// result is one JSON object on stdout; the exit code is 0 only when every step passed.
//
// Configuration: a JSON object in the environment variable HEARTH_WEB_CONFIG:
//   base           the page's origin, "http://127.0.0.1:PORT"
//   upload_origin  the origin the slots' URLs name, "http://localhost:PORT"
//   path           the chat page's path, "/chat/"
//   chromium       the browser to run
//   artefacts      directory for screenshots
//   user           {label, jid, password, transport}
//   contact        the JID to send the file to (a contact in the user's roster)
//   file           {name, type, base64}
//   step_ms        deadline of each step (default 20000)
//   total_ms       deadline of the whole run (default 150000)

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const config = JSON.parse(process.env.HEARTH_WEB_CONFIG || '{}');
const stepMs = config.step_ms || 20000;
const totalMs = config.total_ms || 150000;
const origin = new URL(config.base).origin;
const uploadOrigin = new URL(config.upload_origin).origin;
const LIST_MAX = 200;

// As converse_chat.mjs: no GPU, no connection of Chromium's own to the internet.
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
    uploads: [], // {method, url, status} of every request under /upload/
    link: null, // the href of the link the chat shows
    screenshots: [],
};

function log(text) {
    process.stderr.write(`converse-upload: ${text}\n`);
}

function step(name) {
    result.steps.push(name);
    log(`step ${name}`);
}

let recording = true;
function push(list, item) {
    if (recording && list.length < LIST_MAX) list.push(item);
}

let browser = null;
let page = null;
let finished = false;

async function screenshot(name) {
    const file = path.join(config.artefacts, `${String(result.screenshots.length + 1).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: false, timeout: stepMs });
    result.screenshots.push(file);
}

async function finish(ok, error) {
    if (finished) return;
    finished = true;
    result.ok = ok;
    result.error = error ? String(error.stack || error) : null;
    if (!ok && page) await screenshot('failure').catch(() => {});
    recording = false;
    if (browser) await browser.close().catch(() => {});
    process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(ok ? 0 : 1));
}

const hardStop = setTimeout(() => {
    finish(false, new Error(`whole run exceeded ${totalMs} ms after steps ${result.steps.join(', ')}`));
}, totalMs);
hardStop.unref();

async function open() {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US' });
    await context.route('**/*', (route) => {
        const url = route.request().url();
        const o = url.startsWith('data:') || url.startsWith('blob:') ? origin : new URL(url).origin;
        if (o === origin || (o === uploadOrigin && new URL(url).pathname.startsWith('/upload/'))) {
            return route.continue();
        }
        push(result.external_requests, url);
        return route.abort('blockedbyclient');
    });
    page = await context.newPage();
    page.on('console', (msg) => {
        if (msg.type() === 'error') push(result.console_errors, { text: msg.text(), url: msg.location()?.url || null });
    });
    page.on('pageerror', (err) => push(result.page_errors, String(err.stack || err)));
    page.on('requestfailed', (req) => {
        const failure = req.failure();
        push(result.failed_requests, { url: req.url(), method: req.method(), error: failure ? failure.errorText : null });
    });
    page.on('response', (res) => {
        const req = res.request();
        if (new URL(req.url()).pathname.startsWith('/upload/')) {
            push(result.uploads, { method: req.method(), url: req.url(), status: res.status() });
        }
    });
}

async function run() {
    fs.mkdirSync(config.artefacts, { recursive: true });
    step('launch chromium');
    browser = await chromium.launch({ executablePath: config.chromium, headless: true, args: CHROMIUM_ARGS, timeout: stepMs });
    await open();
    const u = config.user;

    step(`open ${config.path}?transport=${u.transport}`);
    await page.goto(`${origin}${config.path}?transport=${u.transport}`, { waitUntil: 'load', timeout: stepMs });
    const jidInput = page.locator('#converse-login-jid');
    await jidInput.waitFor({ state: 'visible', timeout: stepMs });
    step(`log in as ${u.jid}`);
    await jidInput.fill(u.jid);
    await page.locator('#converse-login-password').fill(u.password);
    await page.locator('#converse-login button[type=submit]').click({ timeout: stepMs });
    await page.locator('#converse-roster').waitFor({ state: 'visible', timeout: stepMs });

    step(`open the chat with ${config.contact}`);
    await page.locator(`#converse-roster a.open-chat[data-jid="${config.contact}"]`).first().click({ timeout: stepMs });
    const chat = page.locator(`converse-chat[jid="${config.contact}"]`);
    await chat.locator('textarea.chat-textarea').waitFor({ state: 'visible', timeout: stepMs });

    // Converse draws the file button only when disco says the server has an upload service.
    step('the toolbar offers to send a file');
    const input = chat.locator('input.fileupload');
    await input.waitFor({ state: 'attached', timeout: stepMs }).catch((err) => {
        throw new Error(`no file button in the chat toolbar (no upload service found?): ${err.message}`);
    });
    await screenshot('chat-open');

    step(`send ${config.file.name}`);
    await input.setInputFiles({
        name: config.file.name,
        mimeType: config.file.type,
        buffer: Buffer.from(config.file.base64, 'base64'),
    });

    step('the link to the uploaded file appears in the chat');
    const link = chat.locator(`.chat-msg__text a[href^="${uploadOrigin}/upload/"]`).first();
    await link.waitFor({ state: 'visible', timeout: stepMs }).catch(async (err) => {
        const texts = await chat.locator('.chat-msg__text, .chat-msg__error, .chat-info').allInnerTexts().catch(() => []);
        throw new Error(`no link to the file in the chat: ${err.message}; the chat shows ${JSON.stringify(texts)}`);
    });
    result.link = await link.getAttribute('href');
    await screenshot('file-sent');
    step('done');
}

run().then(
    () => finish(true, null),
    (err) => finish(false, err),
);
