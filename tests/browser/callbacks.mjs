// Callbacks on the operator's desk, on a callback booked by a real call
// (tests/console_pages.rs `a_booked_callback_on_the_desk`: a pjsua2 caller from
// CALLER_NUMBER waited for ana, pressed 3, 1, 1, 1 and heard "booked"; the callback is
// `asap`, so it may already be "calling now": waiting in the queue for ana, who is paused).
//
// 1. The operator (ana): her desk lists the callback (the original call's reference, the
//    window, Spanish) and has no Cancel button; the number is nowhere in the page (text,
//    HTML, attributes); a cancel she posts anyway (with her CSRF token) is refused (403) and
//    the callback stays.
// 2. The supervisor, in another session: the same row, no number, a Cancel button; cancelling
//    lands back on the desk without the row ("None pending."); the original call's history
//    (`GET /api/calls/{id}`) says `callback-cancelled`; `GET /api/callbacks` no longer lists
//    it.
// 3. Ana's desk, left open, drops the row by itself (the live part).
//
// Env: HOTLINE_URL, SUP_USER, SUP_PASSWORD, SUP_TOKEN, OP_USER, OP_PASSWORD, CALLBACK_ID,
// CALL_ID, CALL_REFERENCE, CALLBACK_WINDOW, CALLER_NUMBER.

import {
  env, expect, log, newSession, open, shot, signIn, spec, TIMEOUT_MS,
} from './lib.mjs';

/// The number in the forms a page could show it: as dialled, without the country code, the
/// last 7 digits, and grouped in threes.
function numberForms(number) {
  const digits = number.replace(/\D/g, '');
  const national = digits.startsWith('51') ? digits.slice(2) : digits;
  return [digits, national, national.slice(-7), national.replace(/(\d{3})(?=\d)/g, '$1 ')];
}

/// Fails if any form of the number is in the page's HTML or visible text.
async function noNumber(page, number, who) {
  const html = await page.content();
  const text = await page.locator('body').innerText();
  for (const form of numberForms(number)) {
    expect(!html.includes(form), `${who}: the page's HTML holds the caller's number (${form})`);
    expect(!text.includes(form), `${who}: the page shows the caller's number (${form})`);
  }
}

/// The desk's row of the callback, checked: reference, window, language; returns the row.
async function checkRow(page, id, reference, window, who) {
  const row = page.locator(`#part-callbacks tr[data-callback="${id}"]`);
  await row.waitFor({ timeout: TIMEOUT_MS });
  const cells = (await row.locator('td').allInnerTexts()).map((t) => t.trim());
  expect(cells[0] === reference, `${who}: the row's reference is ${JSON.stringify(cells[0])}, not ${reference}`);
  expect(cells[1] === 'Español', `${who}: the row's language is ${JSON.stringify(cells[1])}`);
  expect(cells[2] === window, `${who}: the row's window is ${JSON.stringify(cells[2])}, not ${window}`);
  // Pending (a time in Lima) or being placed now.
  expect(cells[4] === 'llamando ahora' || /^\d{4}-\d\d-\d\d \d\d:\d\d$/.test(cells[4]), `${who}: the row's next attempt reads ${JSON.stringify(cells[4])}`);
  log(`${who}: ${cells.join(' | ')}`);
  return row;
}

await spec('callbacks', async ({ browser, page, base, step }) => {
  const id = env('CALLBACK_ID');
  const callId = env('CALL_ID');
  const reference = env('CALL_REFERENCE');
  const window = env('CALLBACK_WINDOW');
  const number = env('CALLER_NUMBER');
  const bearer = { Authorization: `Bearer ${env('SUP_TOKEN')}` };

  step('the operator\'s desk lists the callback, without the number and without Cancel');
  await signIn(page, base, env('OP_USER'), env('OP_PASSWORD'));
  let res = await open(page, `${base}/operator`);
  expect(res.status() === 200, `/operator answered ${res.status()} to the operator`);
  const heading = (await page.locator('#part-callbacks h2').innerText()).trim();
  expect(heading === 'Llamadas de vuelta pendientes', `the callbacks part's heading is ${JSON.stringify(heading)}`);
  let row = await checkRow(page, id, reference, window, 'operator');
  expect((await page.locator('#part-callbacks .cancel-callback').count()) === 0, 'the operator has a Cancel button');
  expect((await page.locator(`form[action="/operator/callbacks/${id}/cancel"]`).count()) === 0, 'the operator\'s desk has the cancel form');
  await noNumber(page, number, 'operator');
  await shot(page, 'callbacks-operator');

  step('a cancel the operator posts anyway is refused, and the callback stays');
  const csrf = await page.locator('input[name="csrf"]').first().getAttribute('value');
  expect(csrf, 'no CSRF token on the operator\'s desk');
  const refused = await page.request.post(`${base}/operator/callbacks/${id}/cancel`, {
    headers: { 'X-CSRF-Token': csrf },
    maxRedirects: 0,
  });
  expect(refused.status() === 403, `the operator's cancel answered ${refused.status()}, not 403`);
  expect(!(await refused.text()).includes(number.slice(-7)), 'the 403 page holds the number');
  let r = await page.request.get(`${base}/api/callbacks`, { headers: bearer });
  let listed = (await r.json()).callbacks || [];
  expect(listed.some((c) => c.id === id), `after the operator's try GET /api/callbacks lists ${JSON.stringify(listed)}`);
  res = await open(page, `${base}/operator`);
  row = await checkRow(page, id, reference, window, 'operator, after her try');

  step('the supervisor sees the same row, without the number, with Cancel');
  const sup = await newSession(browser);
  await signIn(sup.page, base, env('SUP_USER'), env('SUP_PASSWORD'));
  res = await open(sup.page, `${base}/operator`);
  expect(res.status() === 200, `/operator answered ${res.status()} to the supervisor`);
  const supRow = await checkRow(sup.page, id, reference, window, 'supervisor');
  const cancel = supRow.locator('button.cancel-callback');
  expect((await cancel.count()) === 1, 'the supervisor has no Cancel button on the row');
  expect((await cancel.innerText()).trim() === 'Cancelar', `the button reads ${JSON.stringify(await cancel.innerText())}`);
  await noNumber(sup.page, number, 'supervisor');
  await shot(sup.page, 'callbacks-supervisor');

  step('the supervisor cancels it: back on the desk, the row is gone');
  const [done] = await Promise.all([
    sup.page.waitForResponse((resp) => resp.url().endsWith(`/operator/callbacks/${id}/cancel`) && resp.request().method() === 'POST'),
    cancel.click(),
  ]);
  await sup.page.waitForURL(`${base}/operator`);
  expect(done.status() === 303, `the cancel answered ${done.status()}, not 303`);
  await sup.page.locator(`#part-callbacks tr[data-callback="${id}"]`).waitFor({ state: 'detached', timeout: TIMEOUT_MS });
  const none = (await sup.page.locator('#callbacks-none').innerText()).trim();
  expect(none === 'Ninguna pendiente.', `after the cancel the part reads ${JSON.stringify(none)}`);
  await noNumber(sup.page, number, 'supervisor, after the cancel');
  await shot(sup.page, 'callbacks-cancelled');

  step('the API: no longer listed, and the call\'s history says cancelled');
  r = await page.request.get(`${base}/api/callbacks`, { headers: bearer });
  listed = (await r.json()).callbacks || [];
  expect(!listed.some((c) => c.id === id), `GET /api/callbacks still lists it: ${JSON.stringify(listed)}`);
  r = await page.request.get(`${base}/api/calls/${callId}`, { headers: bearer });
  expect(r.status() === 200, `GET /api/calls/${callId}: HTTP ${r.status()}`);
  const call = await r.json();
  const kinds = (call.events || []).map((e) => e.kind);
  expect(kinds.includes('callback-cancelled'), `no callback-cancelled among ${kinds.join(', ')}`);
  expect(kinds.includes('callback-booked'), `no callback-booked among ${kinds.join(', ')}`);
  expect((call.marks || []).includes('callback'), `the call's marks are ${JSON.stringify(call.marks)}`);
  expect(!JSON.stringify(call).includes(number.slice(-7)), 'the call as the API gives it holds the number');
  await sup.context.close();

  step('the operator\'s open desk drops the row by itself');
  await page.locator(`#part-callbacks tr[data-callback="${id}"]`).waitFor({ state: 'detached', timeout: 20_000 });
  await page.locator('#callbacks-none').waitFor({ timeout: TIMEOUT_MS });
  await noNumber(page, number, 'operator, after the cancel');
  await shot(page, 'callbacks-operator-after');
});
