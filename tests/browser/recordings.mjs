// The supervisors' recordings pages in headless Chromium, on the message a sipp caller left
// (tests/console_pages.rs `a_recorded_message`: CALL_REFERENCE, CALL_ID, RECORDING_ID).
//
// 1. The supervisor signs in, opens /recordings and finds the message by its reference (the
//    row's data-reference / data-recording-id); the filters (Quechua, message) keep it, a
//    "closed" filter does not.
// 2. The recording page: the call's reference and metadata, the player. Played muted, the
//    <audio> element reaches "playing" and its duration is the stored one within 0.3 s.
// 3. The review form: tags and status "reviewed", post/redirect/get, the page shows them and
//    the API agrees.
// 4. The case export: a download named after the reference, unzipped, `sha256sum -c SHA256SUMS`
//    passes in its directory, and the WAV's SHA-256 is the one stored.
// 5. The audit log shows the view, the audio requests and the export of this recording.
// 6. The pages on a phone-sized screen and in English.
// 7. The operator opening /recordings, the recording and its export gets the 403 page.
//
// Env: HOTLINE_URL, SUP_USER, SUP_PASSWORD, SUP_TOKEN, OP_USER, OP_PASSWORD, CALL_REFERENCE,
// CALL_ID, RECORDING_ID.

import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';

import {
  download, env, expect, log, mainText, navigation, newSession, open, pathOf, sh, shot, signIn,
  spec,
} from './lib.mjs';

/// The recording as the JSON API lists it (duration_ms, sha256, status, tags).
async function apiRecording(context, base, callId, recordingId) {
  const r = await context.request.get(`${base}/api/recordings?call_id=${callId}`, {
    headers: { Authorization: `Bearer ${env('SUP_TOKEN')}` },
  });
  expect(r.status() === 200, `GET /api/recordings?call_id=${callId}: HTTP ${r.status()}`);
  const found = ((await r.json()).recordings || []).find((x) => x.id === recordingId);
  expect(found, `the API does not list recording ${recordingId} of call ${callId}`);
  return found;
}

/// Unzips `zip` into a new directory beside it (unzip, else Python's zipfile); returns it.
function unzip(zip) {
  const dir = join(dirname(zip), 'unzipped');
  if (existsSync('/usr/bin/unzip')) {
    sh('unzip', ['-q', zip, '-d', dir]);
  } else {
    sh('python3', ['-m', 'zipfile', '-e', zip, dir]);
  }
  return dir;
}

await spec('recordings', async ({ browser, context, page, base, step }) => {
  const reference = env('CALL_REFERENCE');
  const callId = env('CALL_ID');
  const recordingId = env('RECORDING_ID');
  const stored = await apiRecording(context, base, callId, recordingId);
  log(`recording ${recordingId}: ${stored.duration_ms} ms, sha256 ${stored.sha256}`);

  step('the supervisor opens the inbox and finds the message by its reference');
  await signIn(page, base, env('SUP_USER'), env('SUP_PASSWORD'));
  let res = await open(page, `${base}/recordings`);
  expect(res.status() === 200, `/recordings answered ${res.status()}`);
  const row = page.locator(`#recordings tr[data-reference="${reference}"]`);
  expect((await row.count()) === 1, `no single row with reference ${reference} in the inbox: ${await mainText(page)}`);
  expect(
    (await row.getAttribute('data-recording-id')) === recordingId,
    `the row of ${reference} is recording ${await row.getAttribute('data-recording-id')}, not ${recordingId}`,
  );
  const rowText = await row.innerText();
  expect(/Quechua/.test(rowText) && /Mensaje/.test(rowText) && /Nueva/.test(rowText), `the row says: ${JSON.stringify(rowText)}`);
  await shot(page, 'recordings-inbox');

  step('the filters: Quechua messages keep it, closed ones do not');
  await page.locator('#f-language').selectOption('qu');
  await page.locator('#f-kind').selectOption('message');
  res = await navigation(page, () => page.locator('#filters [type="submit"]').click());
  expect(res.status() === 200, `the filtered inbox answered ${res.status()}`);
  const query = new URL(page.url()).searchParams;
  expect(query.get('language') === 'qu' && query.get('kind') === 'message', `the filter went to ${page.url()}`);
  expect((await page.locator(`tr[data-recording-id="${recordingId}"]`).count()) === 1, 'the filtered inbox lost the message');
  await shot(page, 'recordings-inbox-filtered');
  await page.locator('#f-status').selectOption('closed');
  await navigation(page, () => page.locator('#filters [type="submit"]').click());
  expect((await page.locator(`tr[data-recording-id="${recordingId}"]`).count()) === 0, 'a closed-only inbox shows the new message');
  expect(await page.locator('#empty').isVisible(), 'an empty inbox says so');
  await open(page, `${base}/recordings`);

  step('the recording page');
  res = await navigation(page, () => page.locator(`tr[data-recording-id="${recordingId}"] a.open`).click());
  expect(res.status() === 200 && pathOf(page) === `/recordings/${recordingId}`, `the row's link led to ${page.url()} (HTTP ${res.status()})`);
  expect((await page.locator('#call-reference').innerText()).trim() === reference, 'the page does not show the reference');
  expect((await page.locator('#call-language').innerText()).trim() === 'Quechua', 'the call is not shown as Quechua');
  const previous = await page.locator('#previous-calls').innerText();
  log(`earlier calls from this caller: ${previous.trim()}`);
  const src = await page.locator('#player').getAttribute('src');
  expect(src === `/api/recordings/${recordingId}/audio`, `the player plays ${src}`);

  step('times are the hotline\'s (Lima), also in a browser set to another time zone');
  {
    const tokyo = await browser.newContext({
      viewport: { width: 1280, height: 800 }, locale: 'es-PE', timezoneId: 'Asia/Tokyo',
    });
    const tpage = await tokyo.newPage();
    await signIn(tpage, base, env('SUP_USER'), env('SUP_PASSWORD'));
    await open(tpage, `${base}/recordings/${recordingId}`);
    const zone = await tpage.locator('html').getAttribute('data-zone');
    expect(zone === 'America/Lima', `the page names the zone ${zone}`);
    const times = await tpage.locator('time[data-local]').evaluateAll((ts) =>
      ts.map((t) => [t.getAttribute('datetime'), t.textContent]));
    expect(times.length >= 3, `only ${times.length} times on the recording page`);
    const hm = (iso, timeZone) => new Intl.DateTimeFormat('en-GB', {
      timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
    }).format(new Date(iso));
    for (const [iso, text] of times) {
      expect(text.includes(hm(iso, 'America/Lima')), `${iso} shown as ${text}, not in Lima time (${hm(iso, 'America/Lima')})`);
      expect(!text.includes(hm(iso, 'Asia/Tokyo')), `${iso} shown as ${text}: the browser's zone`);
    }
    log(`${times.length} times in Lima time in a Tokyo browser, e.g. ${times[0][0]} → ${times[0][1]}`);
    await tokyo.close();
  }

  step('the player plays it (muted); its duration is the stored one');
  await page.evaluate(() => {
    const a = document.getElementById('player');
    window.hotlinePlaying = false;
    a.addEventListener('playing', () => { window.hotlinePlaying = true; });
    a.muted = true;
  });
  await page.evaluate(() => document.getElementById('player').play());
  await page.waitForFunction(() => {
    const a = document.getElementById('player');
    return window.hotlinePlaying && !a.paused && a.currentTime > 0.2;
  });
  const duration = await page.evaluate(() => document.getElementById('player').duration);
  log(`the <audio> element is playing; its duration ${duration} s, stored ${stored.duration_ms / 1000} s`);
  expect(Number.isFinite(duration), `the player's duration is ${duration}`);
  expect(Math.abs(duration - stored.duration_ms / 1000) <= 0.3, `the player's duration ${duration} s is not the stored ${stored.duration_ms} ms`);
  await shot(page, 'recordings-playing');
  await page.evaluate(() => document.getElementById('player').pause());

  step('tags and status "reviewed"');
  await page.locator('#r-tags').fill('trata laboral, Cusco');
  await page.locator('#r-status').selectOption('reviewed');
  await page.locator('#r-notes').fill('Escuchada en la prueba del navegador.');
  res = await navigation(page, () => page.locator('#save').click());
  expect(res.status() === 200 && new URL(page.url()).searchParams.get('saved') === '1', `saving led to ${page.url()} (HTTP ${res.status()})`);
  expect(await page.locator('#saved').isVisible(), 'no "saved" message');
  expect((await page.locator('#status').getAttribute('data-status')) === 'reviewed', 'the page does not show the status reviewed');
  const tags = await page.locator('#tags .tag').allInnerTexts();
  expect(tags.join('|') === 'trata laboral|Cusco', `the page shows the tags ${JSON.stringify(tags)}`);
  const after = await apiRecording(context, base, callId, recordingId);
  expect(after.status === 'reviewed' && after.tags.join('|') === 'trata laboral|Cusco', `the API has ${JSON.stringify(after)}`);
  await shot(page, 'recordings-reviewed');

  step('the case export: download, unzip, sha256sum -c SHA256SUMS');
  const zip = await download(page, () => page.locator('#export').click());
  const name = zip.split('/').pop();
  expect(name === `caso-${reference}-${recordingId}.zip`, `the export is named ${name}`);
  const dir = unzip(zip);
  const files = readdirSync(dir).sort();
  const wav = `recording-${recordingId}.wav`;
  expect(
    JSON.stringify(files) === JSON.stringify(['SHA256SUMS', 'call.json', 'events.json', 'notes.json', wav].sort()),
    `the export holds ${files.join(', ')}`,
  );
  const checked = sh('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir });
  log(`sha256sum -c SHA256SUMS:\n${checked.trim()}`);
  expect((checked.match(/: OK$/gm) || []).length === 4, `sha256sum -c checked: ${checked}`);
  const wavSha = createHash('sha256').update(readFileSync(join(dir, wav))).digest('hex');
  expect(wavSha === stored.sha256, `the exported WAV's SHA-256 ${wavSha} is not the stored ${stored.sha256}`);
  const call = JSON.parse(readFileSync(join(dir, 'call.json'), 'utf8'));
  expect(call.reference === reference && call.id === callId, `call.json: ${JSON.stringify(call)}`);
  const notes = JSON.parse(readFileSync(join(dir, 'notes.json'), 'utf8'));
  expect(notes.recording.status === 'reviewed' && notes.recording.tags.includes('Cusco'), `notes.json: ${JSON.stringify(notes)}`);
  await shot(page, 'recordings-exported');

  step('the audit log shows the view, the audio and the export');
  res = await open(page, `${base}/audit?action=recording.export`);
  expect(res.status() === 200, `/audit answered ${res.status()}`);
  const exportLine = page.locator('#audit tr[data-action="recording.export"]', { hasText: recordingId });
  expect((await exportLine.count()) >= 1, `the audit log has no export of ${recordingId}: ${await mainText(page)}`);
  await shot(page, 'recordings-audit-export');
  for (const action of ['recording.view', 'recording.audio', 'recording.update']) {
    await open(page, `${base}/audit?action=${action}&q=${recordingId}`);
    const n = await page.locator(`#audit tr[data-action="${action}"]`).count();
    expect(n >= 1, `the audit log has no ${action} of ${recordingId}`);
    log(`audit: ${n} × ${action}`);
  }
  await open(page, `${base}/audit`);
  await shot(page, 'recordings-audit');

  step('a phone-sized screen, and English');
  await page.setViewportSize({ width: 390, height: 844 });
  await open(page, `${base}/recordings`);
  const phoneRow = page.locator(`tr[data-recording-id="${recordingId}"]`);
  expect(await phoneRow.isVisible(), 'the inbox row is not visible on a phone-sized screen');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 1, `the inbox is ${overflow} px wider than a phone's screen`);
  await shot(page, 'recordings-inbox-phone');
  await open(page, `${base}/audit`);
  const auditOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(auditOverflow <= 1, `the audit log is ${auditOverflow} px wider than a phone's screen`);
  await shot(page, 'recordings-audit-phone');
  await open(page, `${base}/recordings/${recordingId}`);
  const pageOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(pageOverflow <= 1, `the recording page is ${pageOverflow} px wider than a phone's screen`);
  await shot(page, 'recordings-recording-phone');
  await page.setViewportSize({ width: 1280, height: 800 });
  res = await navigation(page, () => page.locator('header a[lang="en"]').click());
  expect(res.status() === 200 && pathOf(page) === `/recordings/${recordingId}`, `the language switch led to ${page.url()}`);
  const english = await mainText(page);
  expect(english.includes('Export the case (ZIP)') && english.includes('Reviewed'), `the page in English: ${english.slice(0, 400)}`);
  await shot(page, 'recordings-recording-en');
  await navigation(page, () => page.locator('header a[lang="es"]').click());

  step('the operator is refused every one of these pages');
  const op = await newSession(browser);
  await signIn(op.page, base, env('OP_USER'), env('OP_PASSWORD'));
  for (const path of ['/recordings', `/recordings/${recordingId}`, `/recordings/${recordingId}/export.zip`, '/audit']) {
    // The export is a download for a supervisor; for her it is the refusal page.
    res = await open(op.page, `${base}${path}`);
    expect(res.status() === 403, `the operator opening ${path} got HTTP ${res.status()}, not 403`);
    const text = await mainText(op.page);
    expect(text.includes('403'), `the operator's refusal page for ${path} says: ${JSON.stringify(text)}`);
    if (path === '/recordings') await shot(op.page, 'recordings-operator-refused');
  }
  await op.context.close();
});
