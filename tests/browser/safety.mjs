// Caller safety in the console, on a real call (tests/console_pages.rs
// `keypad_answers_and_quick_exit`: a sipp caller who cannot talk answered the four keypad
// questions, left a message and pressed the quick-exit key while recording; CALL_ID,
// CALL_REFERENCE, RECORDING_ID).
//
// 1. The API, as the supervisor (bearer token) and as the operator (her session cookie): the
//    call's `marks` hold `quick-exit`, its `answers` are the four keys' answers in order, its
//    events hold the `answer`s and the `quick-exit`.
// 2. The recording page: the quick-exit warning above the player, the mark in words (not its
//    id), the keypad answers under their heading, in order; never the caller.
// 3. The same page on a phone-sized screen, and in English.
// 4. The board counts today's quick exit (and no silent call) and shows the mark in words in
//    the latest calls.
//
// Env: HOTLINE_URL, SUP_USER, SUP_PASSWORD, SUP_TOKEN, OP_USER, OP_PASSWORD, CALL_ID,
// CALL_REFERENCE, RECORDING_ID.

import {
  env, expect, log, mainText, navigation, newSession, open, pathOf, shot, signIn, spec,
} from './lib.mjs';

/// What the caller pressed, as config/flow.toml's question nodes name it: 1, 2, 1, 5.
const ANSWERS = [
  ['En peligro ahora', 'sí'],
  ['Sobre quién', 'otra persona'],
  ['Menor de edad', 'sí'],
  ['Región', 'Madre de Dios'],
];

/// Checks a call as `GET /api/calls/{id}` answers it.
function checkApiCall(who, call) {
  expect(Array.isArray(call.marks) && call.marks.includes('quick-exit'), `${who}: the call's marks are ${JSON.stringify(call.marks)}`);
  expect(!call.marks.includes('silent'), `${who}: a caller who pressed keys and spoke is marked silent: ${JSON.stringify(call.marks)}`);
  const got = (call.answers || []).map((a) => [a.question, a.answer]);
  expect(JSON.stringify(got) === JSON.stringify(ANSWERS), `${who}: the call's answers are ${JSON.stringify(call.answers)}`);
  const kinds = (call.events || []).map((e) => e.kind);
  expect(kinds.filter((k) => k === 'answer').length === ANSWERS.length, `${who}: the events are ${kinds.join(', ')}`);
  expect(kinds.includes('quick-exit'), `${who}: no quick-exit event among ${kinds.join(', ')}`);
}

/// The (question, answer) pairs of a `<dl>` of answers, in order.
async function answerPairs(page, selector) {
  return page.locator(`${selector} dt`).evaluateAll((dts) => dts.map((dt) => [
    dt.textContent.trim(),
    dt.nextElementSibling ? dt.nextElementSibling.textContent.trim() : '',
  ]));
}

await spec('safety', async ({ browser, context, page, base, step }) => {
  const callId = env('CALL_ID');
  const reference = env('CALL_REFERENCE');
  const recordingId = env('RECORDING_ID');

  step('the API gives the marks and the keypad answers to the supervisor');
  let r = await context.request.get(`${base}/api/calls/${callId}`, {
    headers: { Authorization: `Bearer ${env('SUP_TOKEN')}` },
  });
  expect(r.status() === 200, `GET /api/calls/${callId}: HTTP ${r.status()}`);
  const call = await r.json();
  checkApiCall('supervisor', call);
  expect(call.reference === reference && (call.recordings || []).includes(recordingId), `the call: ${JSON.stringify(call)}`);
  log(`marks ${JSON.stringify(call.marks)}, answers ${JSON.stringify(call.answers)}`);

  step('and to the operator (her session), without recording ids');
  const op = await newSession(browser);
  await signIn(op.page, base, env('OP_USER'), env('OP_PASSWORD'));
  r = await op.context.request.get(`${base}/api/calls/${callId}`);
  expect(r.status() === 200, `the operator's GET /api/calls/${callId}: HTTP ${r.status()}`);
  const seen = await r.json();
  checkApiCall('operator', seen);
  expect(seen.recordings === undefined, `the operator sees recordings: ${JSON.stringify(seen.recordings)}`);
  await op.context.close();

  step('the recording page: the quick-exit warning, the mark in words, the answers');
  await signIn(page, base, env('SUP_USER'), env('SUP_PASSWORD'));
  let res = await open(page, `${base}/recordings/${recordingId}`);
  expect(res.status() === 200, `/recordings/${recordingId} answered ${res.status()}`);
  const warning = page.locator('#quick-exit');
  expect(await warning.isVisible(), `no visible quick-exit warning: ${(await mainText(page)).slice(0, 600)}`);
  const warningText = (await warning.innerText()).trim();
  expect(warningText.startsWith('Salida rápida:'), `the warning says ${JSON.stringify(warningText)}`);
  expect((await warning.getAttribute('role')) === 'alert', 'the warning is not role="alert"');
  // Above the player: the first thing a supervisor reads.
  const above = await page.evaluate(() => {
    const w = document.getElementById('quick-exit').getBoundingClientRect();
    const p = document.getElementById('player').getBoundingClientRect();
    return w.bottom <= p.top;
  });
  expect(above, 'the quick-exit warning is not above the player');
  const marks = (await page.locator('#call-marks').innerText()).trim();
  expect(marks === 'salida rápida', `the marks read ${JSON.stringify(marks)}`);
  expect((await page.locator('#h-answers').innerText()).trim() === 'Respuestas con el teclado', 'no "Respuestas con el teclado" heading');
  const pairs = await answerPairs(page, '#answers');
  expect(JSON.stringify(pairs) === JSON.stringify(ANSWERS), `the page lists the answers ${JSON.stringify(pairs)}`);
  const text = await mainText(page);
  expect(!/quick-exit/.test(text), 'the page shows the mark\'s id "quick-exit" instead of words');
  expect(!/sipp/i.test(text), 'the page shows the caller (sipp\'s From user)');
  await shot(page, 'safety-recording');

  step('on a phone-sized screen the warning and the answers fit');
  await page.setViewportSize({ width: 390, height: 844 });
  await open(page, `${base}/recordings/${recordingId}`);
  expect(await page.locator('#quick-exit').isVisible(), 'the quick-exit warning is not visible on a phone');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 1, `the recording page is ${overflow} px wider than a phone's screen`);
  await shot(page, 'safety-recording-phone');
  await page.setViewportSize({ width: 1280, height: 800 });

  step('the same page in English');
  res = await navigation(page, () => page.locator('header a[lang="en"]').click());
  expect(res.status() === 200 && pathOf(page) === `/recordings/${recordingId}`, `the language switch led to ${page.url()}`);
  expect((await page.locator('#h-answers').innerText()).trim() === 'Keypad answers', 'no "Keypad answers" heading in English');
  expect((await page.locator('#quick-exit').innerText()).trim().startsWith('Quick exit:'), 'no English quick-exit warning');
  expect((await page.locator('#call-marks').innerText()).trim() === 'quick exit', 'the mark is not "quick exit" in English');
  await shot(page, 'safety-recording-en');
  await navigation(page, () => page.locator('header a[lang="es"]').click());

  step('the board counts the quick exit, and no silent call');
  res = await open(page, `${base}/board`);
  expect(res.status() === 200, `/board answered ${res.status()}`);
  const count = async (mark) => (await page.locator(`#today-marks [data-mark="${mark}"] strong`).innerText()).trim();
  expect((await count('quick-exit')) === '1', `the board counts ${await count('quick-exit')} quick exits today, not 1`);
  expect((await count('silent')) === '0', `the board counts ${await count('silent')} silent calls today, not 0`);
  const row = page.locator('#today-calls tbody tr', { hasText: reference });
  expect((await row.count()) === 1, `the board's latest calls do not list ${reference}`);
  const rowText = await row.innerText();
  expect(rowText.includes('salida rápida') && !rowText.includes('quick-exit'), `the board's row says ${JSON.stringify(rowText)}`);
  await shot(page, 'safety-board');
});
