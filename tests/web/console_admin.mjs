// The admin console in Debian's chromium driven by playwright-core, for
// tests/browser/test_console.py, in phases run one after another (the test does the XMPP side
// between them); the browser's cookies go from one phase to the next in a state file.
//
//   setup     /  ->  /setup: the setup token, the first administrator; the login page; the
//             dashboard; a user created on the users page; every other page visited once
//   kick      the sessions page lists the user's session (config.jid): kicked from there
//   manage    a room created on the rooms page (when config.room is given); a setting changed
//             on the settings page (config.setting: {key, value})
//
// On every page: a phone's viewport (390x844) that must not scroll sideways
// (document.documentElement.scrollWidth <= clientWidth), a full-page screenshot in the
// artefacts directory, and console errors and uncaught page errors recorded (the test fails on
// any: a Content-Security-Policy violation is one). Nothing may leave the server's origin.
// Progress goes to stderr; the result is one JSON object on stdout, the exit code 0 only when
// every step passed.
//
// Configuration (JSON in HEARTH_WEB_CONFIG): base, chromium, artefacts, state (file), phase,
// token, admin {user, password}, user {name, password}, jid, room {name}, setting {key, value},
// step_ms, total_ms.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const config = JSON.parse(process.env.HEARTH_WEB_CONFIG || '{}');
const stepMs = config.step_ms || 20000;
const totalMs = config.total_ms || 120000;
const origin = new URL(config.base).origin;
const phase = config.phase;
const LIST_MAX = 200;

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
    phase,
    error: null,
    steps: [],
    console_errors: [],
    page_errors: [],
    external_requests: [],
    failed_requests: [],
    wide_pages: [],
    pages: [],
    screenshots: [],
    console: [],
};

function log(text) {
    process.stderr.write(`console(${phase}): ${text}\n`);
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
let context = null;
let finished = false;

async function finish(ok, error) {
    if (finished) return;
    finished = true;
    result.ok = ok;
    result.error = error ? String(error.stack || error) : null;
    if (!ok && page) await shot('failure').catch(() => {});
    recording = false;
    try {
        fs.writeFileSync(path.join(config.artefacts, `console-${phase}.json`), JSON.stringify(result.console, null, 1));
    } catch (err) {
        log(`console log not written: ${err}`);
    }
    if (browser) await browser.close().catch(() => {});
    process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(ok ? 0 : 1));
}

const hardStop = setTimeout(() => {
    finish(false, new Error(`whole run exceeded ${totalMs} ms after steps ${result.steps.join(', ')}`));
}, totalMs);
hardStop.unref();

async function shot(name) {
    const file = path.join(config.artefacts, `${phase}-${String(result.screenshots.length + 1).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true, timeout: stepMs });
    result.screenshots.push(file);
}

// What every page must be: loaded from our origin, no sideways scrolling on a phone.
async function checkPage(name) {
    await page.waitForLoadState('load', { timeout: stepMs });
    const widths = await page.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        client: document.documentElement.clientWidth,
    }));
    const url = new URL(page.url());
    result.pages.push({ name, path: url.pathname + url.search, ...widths });
    if (widths.scroll > widths.client) push(result.wide_pages, { name, ...widths });
    await shot(name);
}

async function visit(pathname, name) {
    step(`open ${pathname}`);
    const res = await page.goto(`${origin}${pathname}`, { waitUntil: 'load', timeout: stepMs });
    if (!res || res.status() !== 200) throw new Error(`${pathname} answered ${res ? res.status() : 'nothing'}`);
    await checkPage(name);
}

// Submits a form by its button and waits for the page that follows (post/redirect/get).
async function submit(button, what) {
    step(what);
    await Promise.all([
        page.waitForNavigation({ waitUntil: 'load', timeout: stepMs }),
        button.click({ timeout: stepMs }),
    ]);
}

async function flash(expect, what) {
    const text = await page.locator('.flash').first().innerText({ timeout: stepMs }).catch(() => '(no message)');
    if (!text.includes(expect)) throw new Error(`${what}: the page says ${JSON.stringify(text)}, expected ${JSON.stringify(expect)}`);
}

async function phaseSetup() {
    step('open / on a fresh server');
    await page.goto(`${origin}/`, { waitUntil: 'load', timeout: stepMs });
    if (new URL(page.url()).pathname !== '/setup') throw new Error(`/ led to ${page.url()}, not /setup`);
    await checkPage('setup');
    await page.fill('input[name=token]', config.token);
    await page.fill('input[name=username]', config.admin.user);
    await page.fill('input[name=password]', config.admin.password);
    step('create the first administrator');
    await Promise.all([
        page.waitForURL(/\/login\?setup=done$/, { timeout: stepMs }),
        page.click('#setup button', { timeout: stepMs }),
    ]);
    await checkPage('login');
    await page.fill('input[name=username]', config.admin.user);
    await page.fill('input[name=password]', config.admin.password);
    await submit(page.locator('form[action="/login"] button'), 'log in');
    if (new URL(page.url()).pathname !== '/dashboard') {
        throw new Error(`the login led to ${page.url()}: ${await page.locator('main').innerText().catch(() => '')}`);
    }
    await checkPage('dashboard');
    await visit('/users', 'users');
    await page.fill('form[method=post][action="/users"] input[name=username]', config.user.name);
    await page.fill('form[method=post][action="/users"] input[name=password]', config.user.password);
    await submit(page.locator('form[method=post][action="/users"] button'), `create ${config.user.name}`);
    await flash(`Created ${config.user.name}.`, 'the user page');
    await checkPage('user');
    await visit('/users?q=' + encodeURIComponent(config.user.name), 'users-search');
    await visit('/sessions', 'sessions-empty');
    await visit('/log?level=debug', 'log');
    await context.storageState({ path: config.state });
}

async function phaseKick() {
    await visit('/sessions', 'sessions');
    const row = page.locator('tr', { hasText: config.jid });
    await row.first().waitFor({ state: 'visible', timeout: stepMs });
    const cells = await row.first().locator('td').allInnerTexts();
    result.session_row = cells;
    await visit(`/users/${encodeURIComponent(config.user.name)}`, 'user-online');
    await visit('/sessions', 'sessions-before-kick');
    page.once('dialog', (d) => d.accept());
    await submit(page.locator('tr', { hasText: config.jid }).first().locator('button'), `kick ${config.jid}`);
    await flash(`Ended ${config.jid}.`, 'the sessions page');
    await checkPage('sessions-after-kick');
    await visit('/dashboard', 'dashboard-later');
    // The graphs redraw themselves from /dashboard/history (every 10 s).
    step('the dashboard refreshes its graphs');
    const res = await page.waitForResponse((r) => new URL(r.url()).pathname === '/dashboard/history', { timeout: stepMs });
    if (res.status() !== 200) throw new Error(`/dashboard/history answered ${res.status()}`);
    const samples = (await res.json()).samples;
    await page.waitForFunction(
        (n) => document.querySelector('#g-sessions polyline').getAttribute('points').split(' ').filter(Boolean).length === n,
        samples.length, { timeout: stepMs });
    result.history_samples = samples.length;
    await context.storageState({ path: config.state });
}

async function phaseManage() {
    if (config.room) {
        await visit('/rooms', 'rooms');
        await page.fill('form[method=post][action="/rooms"] input[name=name]', config.room.name);
        await submit(page.locator('form[method=post][action="/rooms"] button'), `create the room ${config.room.name}`);
        await flash('Created', 'the room page');
        await checkPage('room');
    }
    await visit('/settings', 'settings');
    const box = page.locator(`[id="k-${config.setting.key}"]`);
    await box.locator('[name=value]').selectOption(config.setting.value, { timeout: stepMs });
    await submit(box.locator('form[action="/settings"] button'), `set ${config.setting.key}`);
    await flash(`${config.setting.key} is now ${config.setting.value}.`, 'the settings page');
    await checkPage('settings-changed');
    await visit('/certificate', 'certificate');
    await visit('/log', 'log-info');
}

async function main() {
    fs.mkdirSync(config.artefacts, { recursive: true });
    browser = await chromium.launch({ executablePath: config.chromium, args: CHROMIUM_ARGS, headless: true });
    const opts = { viewport: { width: 390, height: 844 }, locale: 'en-US', isMobile: false };
    if (phase !== 'setup') opts.storageState = config.state;
    context = await browser.newContext(opts);
    await context.route('**/*', (route) => {
        const url = route.request().url();
        if (new URL(url).origin === origin || url.startsWith('data:')) return route.continue();
        push(result.external_requests, { url });
        return route.abort('blockedbyclient');
    });
    page = await context.newPage();
    page.on('console', (msg) => {
        const loc = msg.location();
        const entry = { type: msg.type(), text: msg.text(), url: loc && loc.url ? `${loc.url}:${loc.lineNumber}` : null };
        push(result.console, entry);
        if (msg.type() === 'error') push(result.console_errors, entry);
    });
    page.on('pageerror', (err) => push(result.page_errors, { text: String(err.stack || err) }));
    page.on('requestfailed', (req) => {
        const failure = req.failure();
        push(result.failed_requests, { url: req.url(), method: req.method(), error: failure ? failure.errorText : null });
    });
    if (phase === 'setup') await phaseSetup();
    else if (phase === 'kick') await phaseKick();
    else if (phase === 'manage') await phaseManage();
    else throw new Error(`unknown phase ${phase}`);
    await finish(true, null);
}

main().catch((err) => finish(false, err));
