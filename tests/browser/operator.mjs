// The operator's desk and the supervisors' board, live (server-sent events).
//
// Run by tests/console_pages.rs (`operator_desk_and_board_live`): ana's softphone is registered
// first (OP_SOFTPHONE=1), and a caller who asks for an operator is started on the Rust side when
// this spec signals `paused`; the caller hangs up about 30 s later.
//
// ana signs in and lands on /operator (the live badge turns "En vivo"), clicks "Disponible" and
// sees it, then "En pausa" (so that the caller waits instead of ringing her), signals; the
// waiting caller appears on her page without a reload; the supervisor, in a second session, sees
// the caller and ana paused on /board, with its three charts; when the caller hangs up both
// pages show nobody waiting, and the board counts the abandoned call; ana goes offline; /board is
// refused to her.

import {
  spec, env, envOr, signIn, shot, open, navigation, expect, waitForText, newSession, signal, log,
  pathOf,
} from './lib.mjs';

/// How long the caller may take to reach the queue (welcome, keys, notice) once signalled.
const CALLER_WAITS_MS = 45_000;
/// How long until the caller has hung up (about 30 s after the ACK) and the pages show it.
const CALLER_GONE_MS = 60_000;

await spec('operator', async ({ browser, page, base, step }) => {
  step('the operator signs in and lands on her desk, live');
  await signIn(page, base, env('OP_USER'), env('OP_PASSWORD'));
  expect(pathOf(page) === '/operator', `ana landed on ${page.url()}, not /operator`);
  await waitForText(page, '#live-state', 'En vivo');
  await waitForText(page, '#part-queue', 'Nadie espera');
  if (envOr('OP_SOFTPHONE', '') === '1') {
    await waitForText(page, '#my-softphone', 'conectado');
  }
  await shot(page, 'operator-desk');

  step('she clicks "Disponible" and sees her status change');
  let res = await navigation(page, () => page.locator('#set-available').click());
  expect(res.status() === 200 && pathOf(page) === '/operator', `the status form led to ${page.url()} (HTTP ${res.status()})`);
  await waitForText(page, '#my-status', 'Disponible');
  await waitForText(page, '#my-state', 'Disponible');
  expect(
    (await page.locator('#set-available').getAttribute('aria-pressed')) === 'true',
    'the "Disponible" button is not shown pressed',
  );
  await waitForText(page, '#live-state', 'En vivo');
  await shot(page, 'operator-available');

  step('she pauses, so that a caller waits in the queue');
  res = await navigation(page, () => page.locator('#set-paused').click());
  expect(res.status() === 200, `the pause answered HTTP ${res.status()}`);
  await waitForText(page, '#my-status', 'En pausa');
  await waitForText(page, '#live-state', 'En vivo');
  await page.evaluate(() => { window.hotlineNoReload = true; });
  signal('paused');

  step('a caller starts waiting: the desk shows it without a reload');
  await waitForText(page, '#waiting-count', '1 persona espera', CALLER_WAITS_MS);
  const rows = page.locator('#waiting tbody tr');
  expect((await rows.count()) === 1, `the queue lists ${await rows.count()} callers, not 1`);
  const row = await rows.first().innerText();
  log(`waiting caller: ${JSON.stringify(row)}`);
  expect(!/\d{6,}/.test(row), `the waiting row shows a long number: ${row}`);
  expect(
    await page.evaluate(() => window.hotlineNoReload === true),
    'the page was reloaded: the waiting caller should arrive by the event stream',
  );
  await shot(page, 'operator-waiting');
  // On a phone: one column, the buttons within reach.
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, 'operator-waiting-phone');
  await page.setViewportSize({ width: 1280, height: 800 });

  step('the supervisor sees the caller and ana paused on the board');
  const { page: sup } = await newSession(browser);
  await signIn(sup, base, env('SUP_USER'), env('SUP_PASSWORD'));
  res = await open(sup, `${base}/board`);
  expect(res.status() === 200, `/board answered ${res.status()}`);
  await waitForText(sup, '#live-state', 'En vivo');
  await waitForText(sup, '#waiting-count', '1 persona espera');
  const ana = sup.locator(`#operators tr[data-operator="${env('OP_USER')}"]`);
  expect((await ana.count()) === 1, 'the board does not list ana');
  expect((await ana.getAttribute('data-state')) === 'paused', `ana shows as ${await ana.getAttribute('data-state')}, not paused`);
  const charts = sup.locator('svg.chart');
  expect((await charts.count()) === 3, `the board has ${await charts.count()} charts, not 3`);
  for (const id of ['languages', 'outcomes', 'waits']) {
    const title = await sup.locator(`#chart-${id}-title`).textContent();
    expect(title && title.length > 5, `chart ${id} has no title`);
  }
  await shot(sup, 'board-waiting');
  await sup.setViewportSize({ width: 390, height: 844 });
  await shot(sup, 'board-waiting-phone');
  await sup.setViewportSize({ width: 1280, height: 800 });

  step('the caller hangs up: both pages show nobody waiting, and the board counts the call');
  await waitForText(page, '#waiting-count', 'Nadie espera', CALLER_GONE_MS);
  await waitForText(sup, '#waiting-count', 'Nadie espera');
  // Today's counts are read again every 10 s.
  await waitForText(sup, '[data-outcome="total"]', '1', 30_000);
  await shot(sup, 'board-after');
  await shot(page, 'operator-after');

  step('she goes offline');
  res = await navigation(page, () => page.locator('#set-offline').click());
  expect(res.status() === 200, `going offline answered HTTP ${res.status()}`);
  await waitForText(page, '#my-status', 'Desconectado');

  step('the board is not hers');
  res = await open(page, `${base}/board`);
  expect(res.status() === 403, `/board answered ${res.status()} to an operator, not 403`);

  step('in English');
  await open(page, `${base}/lang/en?back=%2Foperator`);
  await waitForText(page, 'h1', 'My desk');
  await waitForText(page, '#live-state', 'Live');
  await shot(page, 'operator-en');
});
