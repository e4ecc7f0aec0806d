// Shared by the browser scenarios: Debian's Chromium driven by playwright-core, the
// service under test at BASE_URL (started by main.rs), its API for setting up state.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export { assert };

export const BASE = required('BASE_URL');
export const ADMIN_TOKEN = required('ADMIN_TOKEN');
const CHROMIUM = required('CHROMIUM');
const SHOTS = process.env.SCREENSHOT_DIRS ? process.env.SCREENSHOT_DIRS.split(':').filter(Boolean) : [];

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run through cargo test --features browser-tests)`);
  return v;
}

/** Headless Chromium with a fresh profile, no background traffic. */
export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-default-apps',
      '--disable-extensions',
    ],
  });
}

/** A page in a fresh context; every console error and failed page request fails the run. */
export async function page(browser, options = {}) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    locale: 'zh-CN',
    ...options,
  });
  const p = await context.newPage();
  p.on('pageerror', (e) => {
    throw new Error(`page error: ${e.message}`);
  });
  p.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) {
      console.error(`[page console] ${m.text()}`);
    }
  });
  p.setDefaultTimeout(20_000);
  return p;
}

/** An API call as a script (no browser headers); `admin` sends the admin token. */
export async function api(path, { method = 'POST', body, query, admin = false } = {}) {
  const url = new URL(`/api/v1/raffle/${path}`, BASE);
  for (const [k, v] of Object.entries(query || {})) url.searchParams.set(k, String(v));
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (admin) headers.authorization = `Bearer ${ADMIN_TOKEN}`;
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return res.json();
}

/** Like `api`, asserting code 0000 and returning `data`. */
export async function ok(path, options) {
  const v = await api(path, options);
  assert.equal(v.code, '0000', `${path}: ${JSON.stringify(v)}`);
  return v.data;
}

export async function recharge(userId, sku, key) {
  return ok('activity/sku_recharge', { body: { userId, sku, outBusinessNo: key }, admin: true });
}

export async function eventually(what, check, ms = 15_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Saves a screenshot under every directory of SCREENSHOT_DIRS. */
export async function shot(p, name, options = {}) {
  for (const dir of SHOTS) {
    mkdirSync(dir, { recursive: true });
    await p.screenshot({ path: join(dir, name), ...options });
  }
}

/** Runs the named steps in order, printing each; the first failure ends the run. */
export async function steps(list) {
  for (const [name, f] of list) {
    const start = Date.now();
    await f();
    console.log(`ok - ${name} (${Date.now() - start} ms)`);
  }
}
