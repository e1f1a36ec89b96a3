// The harness itself, for tests/console_pages.rs: the environment reaches a spec, a screenshot
// is written, `signal()` reaches the Rust side, and a failing expectation makes the run fail
// with its message and a NAME-FAILED.png screenshot (HARNESS_FAIL=1).
//
// With CALL_REFERENCE (and SUP_TOKEN), it also finds that call through the JSON API from the
// browser's context: the variables of Console::message_call reach the specs.

import { env, envOr, expect, log, open, pathOf, shot, signal, spec } from './lib.mjs';

await spec('harness', async ({ page, context, base, step }) => {
  step('the environment');
  for (const name of ['SUP_USER', 'SUP_PASSWORD', 'OP_USER', 'OP_PASSWORD', 'ADMIN_USER', 'ADMIN_PASSWORD', 'SUP_TOKEN']) env(name);

  step('a page and its screenshot');
  const res = await open(page, `${base}/me`);
  expect(res.status() === 200 && pathOf(page) === '/signin', `/me, signed out: HTTP ${res.status()} at ${page.url()}`);
  await shot(page, 'harness-signin');
  signal('ready');

  const reference = envOr('CALL_REFERENCE', '');
  if (reference) {
    step(`the call ${reference} through the API`);
    const r = await context.request.get(`${base}/api/calls?reference=${reference}`, {
      headers: { Authorization: `Bearer ${env('SUP_TOKEN')}` },
    });
    expect(r.status() === 200, `GET /api/calls?reference=${reference}: HTTP ${r.status()}`);
    const calls = (await r.json()).calls || [];
    expect(
      calls.length === 1 && calls[0].id === env('CALL_ID') && (calls[0].recordings || []).includes(env('RECORDING_ID')),
      `the API does not list call ${env('CALL_ID')} with recording ${env('RECORDING_ID')}: ${JSON.stringify(calls)}`,
    );
    log(`call ${reference} found, recording ${env('RECORDING_ID')}`);
  }

  if (envOr('HARNESS_FAIL', '') === '1') {
    step('a deliberate failure');
    expect(false, 'deliberate failure (HARNESS_FAIL=1)');
  }
});
