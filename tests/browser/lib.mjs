// The runner library of the console's browser tests: headless Debian Chromium driven by
// playwright-core, a few helpers, and `spec(name, fn)`, which runs one spec file to its end and
// exits non-zero with a clear message (and a screenshot of where it stood) on failure.
//
// A spec is a file `tests/browser/<name>.mjs`, run as `node tests/browser/<name>.mjs` by
// tests/console_pages.rs with the server's URL and the users in the environment (see
// README.md). The smallest one:
//
//   import { spec, env, signIn, shot, expect } from './lib.mjs';
//   await spec('example', async ({ page, base }) => {
//     await signIn(page, base, env('SUP_USER'), env('SUP_PASSWORD'));
//     await shot(page, 'example-home');
//   });

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

/// The browser: Debian's chromium (never a browser playwright would download).
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/// Chromium's flags. The background-networking ones keep it from calling Google's hosts, which
/// this machine's closed network refuses (many at a time, slowly).
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/// Every wait (a selector, a navigation, an expectation) gives up after this long.
export const TIMEOUT_MS = 15_000;

const here = dirname(fileURLToPath(import.meta.url));

/// The workspace root (tests/browser/../..).
export const ROOT = resolve(here, '..', '..');

/// Where screenshots go: $HOTLINE_SCREENSHOTS, else target/screenshots of the workspace.
export const SCREENSHOTS = process.env.HOTLINE_SCREENSHOTS || join(ROOT, 'target', 'screenshots');

/// The session cookie the console sets at sign-in.
export const SESSION_COOKIE = 'hotline_session';

/// A failed expectation: its message is what the run prints.
export class SpecFailure extends Error {}

/// Fails the spec with `message` unless `cond`.
export function expect(cond, message) {
  if (!cond) throw new SpecFailure(message);
}

/// Fails the spec with `message`.
export function fail(message) {
  throw new SpecFailure(message);
}

/// The environment variable `name`; fails the spec if it is not set (or empty).
export function env(name) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    fail(`environment variable ${name} is not set (tests/console_pages.rs sets it; see tests/browser/README.md)`);
  }
  return v;
}

/// The environment variable `name`, or `fallback` when it is not set.
export function envOr(name, fallback) {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : v;
}

/// Whether the server serves `METHOD path` as a page route, per $HOTLINE_PAGE_ROUTES (one
/// `METHOD /path` per line, axum's `{param}` syntax, from hotline_console::page_routes()).
/// Lets a spec tighten itself when a page lands (e.g. a role's home page).
export function hasRoute(method, path) {
  const routes = envOr('HOTLINE_PAGE_ROUTES', '').split('\n').map((l) => l.trim());
  return routes.includes(`${method} ${path}`);
}

/// Launches Chromium headless; a fresh context (no cookies) and a page with 15 s timeouts.
export async function launch() {
  if (!existsSync(CHROMIUM)) {
    fail(`${CHROMIUM} is missing: run 'bash .ci/run' as root (it installs Debian's chromium) or 'apt-get install chromium'`);
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
  const { context, page } = await newSession(browser);
  return { browser, context, page };
}

/// A second browser session beside the first (its own cookies: another user signed in at the
/// same time, e.g. a supervisor watching while an operator works) and its page.
export async function newSession(browser) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    locale: 'es-PE',
    timezoneId: 'America/Lima',
  });
  const page = await newPage(context);
  return { context, page };
}

/// What a page's browser said that a test should see: uncaught script errors, Content Security
/// Policy refusals, other console errors.
const diagnostics = new WeakMap();

/// A new page of `context` with the 15 s default timeouts, its errors recorded.
export async function newPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.setDefaultNavigationTimeout(TIMEOUT_MS);
  const d = { pageErrors: [], csp: [], consoleErrors: [] };
  diagnostics.set(page, d);
  page.on('pageerror', (e) => d.pageErrors.push(`${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = `${page.url()}: ${m.text()}`;
    if (/Content Security Policy/i.test(m.text())) d.csp.push(text);
    else d.consoleErrors.push(text);
  });
  return page;
}

/// Saves a full-page screenshot as SCREENSHOTS/NAME.png (the directory made if missing);
/// returns its path.
export async function shot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  log(`screenshot ${path}`);
  return path;
}

/// Runs `action` (a click that submits a form, a link followed) and waits for the page it
/// leads to; returns that page's response (the last one after redirects).
export async function navigation(page, action) {
  const navigated = page.waitForNavigation({ waitUntil: 'load' });
  await action();
  const res = await navigated;
  expect(res, `no response for the navigation to ${page.url()}`);
  return res;
}

/// Opens `url` and returns its response (after redirects).
export async function open(page, url) {
  const res = await page.goto(url, { waitUntil: 'load' });
  expect(res, `no response for ${url}`);
  return res;
}

/// The path of the page's URL (`/recordings`), without query.
export function pathOf(page) {
  return new URL(page.url()).pathname;
}

/// Fills in the sign-in form at BASE/signin and submits it; returns the response of the page
/// it leads to (whatever it is: the form again after a wrong password).
export async function submitSignIn(page, base, user, password) {
  await open(page, `${base}/signin`);
  await page.locator('input[name="user"]').fill(user);
  await page.locator('input[name="password"]').fill(password);
  return navigation(page, () => page.locator('form[action="/signin"] [type="submit"]').click());
}

/// The session cookie of the page's context, if any.
export async function sessionCookie(page) {
  const cookies = await page.context().cookies();
  return cookies.find((c) => c.name === SESSION_COOKIE);
}

/// Signs `user` in and checks that it worked: away from /signin, with a session cookie and the
/// user's name in the page's header. Returns the response of the page it lands on.
export async function signIn(page, base, user, password) {
  const res = await submitSignIn(page, base, user, password);
  const alert = await page.locator('[role="alert"]').allInnerTexts();
  expect(
    pathOf(page) !== '/signin',
    `${user} did not get past the sign-in page (HTTP ${res.status()}, ${page.url()}): ${alert.join(' ') || 'no message'}`,
  );
  expect(await sessionCookie(page), `${user} signed in but the browser holds no ${SESSION_COOKIE} cookie`);
  const header = await page.locator('header').innerText();
  expect(header.includes(user), `the header after ${user}'s sign-in does not show the name: ${JSON.stringify(header)}`);
  log(`signed in as ${user}: ${page.url()} (HTTP ${res.status()})`);
  return res;
}

/// Signs out with the header's button; checks it lands on /signin without a session.
export async function signOut(page) {
  const res = await navigation(page, () => page.locator('header form[action="/signout"] [type="submit"]').click());
  expect(pathOf(page) === '/signin', `sign-out led to ${page.url()} (HTTP ${res.status()}), not /signin`);
  expect(!(await sessionCookie(page)), `the ${SESSION_COOKIE} cookie is still there after sign-out`);
  log(`signed out: ${page.url()}`);
  return res;
}

/// The visible text of the page's <main> (error pages, messages), trimmed.
export async function mainText(page) {
  return (await page.locator('main').innerText()).trim();
}

/// Waits (15 s at most) until an element matching `selector` shows `text`: for pages that
/// change by themselves (server-sent events). Returns its locator.
export async function waitForText(page, selector, text, timeout = TIMEOUT_MS) {
  const loc = page.locator(selector, { hasText: text }).first();
  try {
    await loc.waitFor({ state: 'visible', timeout });
  } catch (_) {
    const now = await page.locator(selector).allInnerTexts().catch(() => []);
    fail(`no ${selector} showing ${JSON.stringify(text)} within ${timeout} ms; it shows: ${JSON.stringify(now)}`);
  }
  return loc;
}

/// Runs `action` (a click on a download link or button) and saves the file it downloads in a
/// new temp dir, under the name the server gave; returns its path.
export async function download(page, action) {
  const pending = page.waitForEvent('download');
  await action();
  const d = await pending;
  const failure = await d.failure();
  expect(!failure, `the download of ${d.url()} failed: ${failure}`);
  const path = join(mkdtempSync(join(tmpdir(), 'hotline-download-')), d.suggestedFilename());
  await d.saveAs(path);
  log(`downloaded ${d.url()} to ${path}`);
  return path;
}

/// Runs a program (no shell) to its end (60 s at most) and returns its stdout; fails the spec
/// with its exit status and output otherwise. E.g. `sh('sha256sum', ['-c', 'SHA256SUMS'], { cwd })`.
export function sh(program, args, { cwd } = {}) {
  try {
    return execFileSync(program, args, { cwd, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    fail(`${program} ${args.join(' ')} failed (${e.status ?? e.signal ?? e.code}):\n${e.stdout || ''}${e.stderr || ''}`);
  }
  return '';
}

const started = Date.now();

/// A line of the spec's story on stdout, with the seconds since the spec started.
export function log(line) {
  const t = ((Date.now() - started) / 1000).toFixed(2).padStart(6);
  console.log(`[${t}s] ${line}`);
}

/// Tells the Rust side that the spec reached `tag` (a line `HOTLINE-SIGNAL tag` on stdout):
/// `RunningSpec::wait_signal(tag, ..)` in tests/console_pages.rs waits for it, e.g. to start a
/// caller once the operator's page is open and available.
export function signal(tag) {
  console.log(`HOTLINE-SIGNAL ${tag}`);
}

/// Runs one spec: launches Chromium, calls `fn({ browser, context, page, base, step })`, closes
/// the browser. `step(title)` names what comes next (it is printed, and said on failure).
/// On failure: a screenshot NAME-FAILED.png of every open page, the page's URL and text, what
/// the browser logged, and exit code 1. Also a failure: an uncaught script error or a Content
/// Security Policy refusal on any page.
export async function spec(name, fn) {
  let current = 'launching Chromium';
  const step = (title) => {
    current = title;
    log(`-- ${title}`);
  };
  let browser;
  let code = 0;
  try {
    const base = env('HOTLINE_URL').replace(/\/+$/, '');
    log(`spec ${name} against ${base}`);
    const launched = await launch();
    browser = launched.browser;
    await fn({ browser, context: launched.context, page: launched.page, base, step });
    const problems = [];
    for (const p of browser.contexts().flatMap((c) => c.pages())) {
      const d = diagnostics.get(p);
      if (!d) continue;
      problems.push(...d.pageErrors.map((e) => `script error: ${e}`));
      problems.push(...d.csp.map((e) => `CSP refusal: ${e}`));
    }
    current = 'the browser\'s own errors';
    expect(problems.length === 0, `the pages had errors:\n  ${problems.join('\n  ')}`);
    log(`spec ${name}: passed`);
  } catch (e) {
    code = 1;
    const what = e instanceof SpecFailure ? e.message : (e && e.stack) || String(e);
    console.error(`\nFAILED: spec ${name}, at step "${current}":\n${what}\n`);
    if (browser) {
      let i = 0;
      for (const p of browser.contexts().flatMap((c) => c.pages())) {
        const suffix = i === 0 ? '' : `-${i}`;
        i += 1;
        try {
          console.error(`page${suffix} at ${p.url()}`);
          const text = await p.locator('body').innerText({ timeout: 2000 });
          console.error(`--- its text:\n${text.slice(0, 3000)}\n---`);
        } catch (_) {
          // a page that cannot answer: its URL is enough
        }
        try {
          await shot(p, `${name}-FAILED${suffix}`);
        } catch (_) {
          // no screenshot of a crashed page
        }
        const d = diagnostics.get(p);
        if (d) {
          for (const line of [...d.pageErrors, ...d.csp, ...d.consoleErrors]) console.error(`browser: ${line}`);
        }
      }
    }
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  process.exit(code);
}
