// Sign-in, sign-out, the home page of each role and the refusal page, in headless Chromium.
//
// 1. The sign-in page; a wrong password: the form again (401) with its message, no session,
//    and a page behind sign-in still sends the browser back to /signin.
// 2. The supervisor signs in and lands on its home (/recordings); `/` goes there too; /me
//    shows who they are; sign-out ends the session.
// 3. An anonymous visit to /me goes to sign-in and, once signed in, back to /me (`next`).
// 4. The operator signs in (home /operator) and opening /recordings gets the 403 page, still
//    signed in, with no link to the recordings in the navigation.
// 5. The admin signs in (home /admin/users); /operator is open to every role (their own desk)
//    but an admin has no status in the queue there.
//
// A role's home page that is not built yet answers the console's 404 page: accepted (and said)
// while $HOTLINE_PAGE_ROUTES does not list `GET <home>`, required to be 200 once it does.
//
// Env: HOTLINE_URL, SUP_USER, SUP_PASSWORD, OP_USER, OP_PASSWORD, ADMIN_USER, ADMIN_PASSWORD,
// HOTLINE_PAGE_ROUTES (optional).

import {
  env, expect, hasRoute, log, mainText, navigation, open, pathOf, sessionCookie, shot, signIn,
  signOut, spec, submitSignIn,
} from './lib.mjs';

/// Where each role starts (pages::home_of).
const HOME = { supervisor: '/recordings', operator: '/operator', admin: '/admin/users' };

/// Checks the page a sign-in landed on: the role's home, 200 once that page is built.
async function expectHome(page, res, role) {
  const home = HOME[role];
  expect(pathOf(page) === home, `the ${role} landed on ${page.url()}, not ${home}`);
  if (hasRoute('GET', home)) {
    expect(res.status() === 200, `the ${role}'s home ${home} answered ${res.status()}, not 200`);
  } else {
    expect(
      res.status() === 200 || res.status() === 404,
      `the ${role}'s home ${home} (not built yet) answered ${res.status()}, not 404`,
    );
    if (res.status() === 404) log(`note: ${home} is not built yet (the console's 404 page, signed in)`);
  }
}

/// Checks that the page is the console's 403 page, for a signed-in `user`.
async function expectRefused(page, res, user, url) {
  expect(res.status() === 403, `${user} opening ${url} got HTTP ${res.status()}, not 403`);
  const text = await mainText(page);
  expect(text.includes('403'), `the refusal page does not say 403: ${JSON.stringify(text)}`);
  const header = await page.locator('header').innerText();
  expect(header.includes(user), `the refusal page does not show ${user} as signed in: ${JSON.stringify(header)}`);
  expect(await sessionCookie(page), `${user} lost the session on a refusal`);
}

/// The navigation's links (their paths).
async function navLinks(page) {
  const hrefs = await page.locator('header nav a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  return hrefs;
}

await spec('signin', async ({ page, base, step }) => {
  const sup = env('SUP_USER');
  const supPassword = env('SUP_PASSWORD');
  const op = env('OP_USER');
  const opPassword = env('OP_PASSWORD');
  const admin = env('ADMIN_USER');
  const adminPassword = env('ADMIN_PASSWORD');

  step('the sign-in page');
  let res = await open(page, `${base}/signin`);
  expect(res.status() === 200, `GET /signin answered ${res.status()}`);
  for (const name of ['user', 'password']) {
    expect(await page.locator(`form[action="/signin"] input[name="${name}"]`).isVisible(), `no visible ${name} field on /signin`);
  }
  expect((await page.locator('input[name="password"]').getAttribute('type')) === 'password', 'the password field is not type=password');
  await shot(page, 'signin-form');

  step('a wrong password: the form again with its message, no session');
  res = await submitSignIn(page, base, sup, `${supPassword}-wrong`);
  expect(res.status() === 401, `a wrong password answered ${res.status()}, not 401`);
  expect(pathOf(page) === '/signin', `a wrong password led to ${page.url()}`);
  const alert = page.locator('[role="alert"]');
  expect(await alert.isVisible(), 'a wrong password shows no message ([role=alert])');
  const message = (await alert.innerText()).trim();
  expect(message.length > 0, 'the wrong-password message is empty');
  log(`wrong password message: ${JSON.stringify(message)}`);
  expect(!(await sessionCookie(page)), 'a wrong password left a session cookie');
  expect((await page.locator('input[name="user"]').inputValue()) === sup, 'the form lost the user name typed');
  expect((await page.locator('input[name="password"]').inputValue()) === '', 'the form kept the wrong password');
  await shot(page, 'signin-wrong-password');
  res = await open(page, `${base}/me`);
  expect(pathOf(page) === '/signin', `after a wrong password /me led to ${page.url()}, not the sign-in page`);

  step('the supervisor signs in and lands on its home');
  res = await signIn(page, base, sup, supPassword);
  await expectHome(page, res, 'supervisor');
  await shot(page, 'signin-supervisor-home');
  const supNav = await navLinks(page);
  expect(supNav.includes('/recordings') && !supNav.includes('/admin/users'), `the supervisor's navigation: ${supNav.join(' ')}`);
  res = await open(page, `${base}/`);
  await expectHome(page, res, 'supervisor');

  step('the supervisor\'s /me');
  res = await open(page, `${base}/me`);
  expect(res.status() === 200, `/me answered ${res.status()}`);
  const me = await mainText(page);
  expect(me.includes(sup), `/me does not show ${sup}: ${JSON.stringify(me)}`);
  await shot(page, 'signin-supervisor-me');

  step('the supervisor signs out');
  await signOut(page);
  await shot(page, 'signin-signed-out');
  res = await open(page, `${base}/me`);
  expect(pathOf(page) === '/signin', `after sign-out /me led to ${page.url()}, not the sign-in page`);

  step('an anonymous visit to /me: sign-in, then back to /me');
  expect(new URL(page.url()).searchParams.get('next') === '/me', `the sign-in page does not come back to /me: ${page.url()}`);
  await page.locator('input[name="user"]').fill(op);
  await page.locator('input[name="password"]').fill(opPassword);
  res = await navigation(page, () => page.locator('form[action="/signin"] [type="submit"]').click());
  expect(pathOf(page) === '/me' && res.status() === 200, `signed in from /signin?next=/me, the operator is at ${page.url()} (HTTP ${res.status()})`);
  expect((await mainText(page)).includes(op), `/me does not show ${op}`);

  step('the operator\'s home');
  res = await open(page, `${base}/`);
  await expectHome(page, res, 'operator');
  await shot(page, 'signin-operator-home');

  step('the operator opens /recordings: refused (403)');
  res = await open(page, `${base}/recordings`);
  await expectRefused(page, res, op, '/recordings');
  const opNav = await navLinks(page);
  expect(!opNav.includes('/recordings'), `the operator's navigation links to the recordings: ${opNav.join(' ')}`);
  await shot(page, 'signin-operator-refused');
  await signOut(page);

  step('the admin signs in; /operator is a desk without a status');
  res = await signIn(page, base, admin, adminPassword);
  await expectHome(page, res, 'admin');
  await shot(page, 'signin-admin-home');
  res = await open(page, `${base}/operator`);
  expect(res.status() === 200, `/operator answered ${res.status()} to the admin`);
  expect(
    (await mainText(page)).includes('no es de operador'),
    `the admin's desk does not say the account has no status: ${JSON.stringify(await mainText(page))}`,
  );
  await shot(page, 'signin-admin-desk');
  await signOut(page);
});
