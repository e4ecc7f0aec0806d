// The player page: awards, draws that stop on the returned awardIndex, locks, records,
// sign-in, the points shop, refusals in words, the wheel, a phone, English, a user token.

import { createHmac } from 'node:crypto';
import { launch, page, api, ok, recharge, eventually, shot, steps, assert, BASE } from './lib.mjs';

const ACTIVITY = 100301;
const browser = await launch();

const open = async (p, query) => {
  await p.goto(`${BASE}/?${new URLSearchParams(query)}`);
  await p.waitForSelector('body[data-ready="true"]');
};
const texts = (p, selector) => p.$$eval(selector, (els) => els.map((e) => e.textContent.trim()));
const awardList = (userId) => ok('strategy/query_raffle_award_list', { body: { userId, activityId: ACTIVITY } });
const records = (userId) => ok('activity/query_user_award_record_list', { body: { userId, activityId: ACTIVITY } });

/** Clicks the draw button, returns the server's answer and checks what the page shows. */
async function drawOnce(p, userId, selector = '#draw') {
  const before = (await records(userId)).length;
  const [response] = await Promise.all([
    p.waitForResponse((r) => r.url().endsWith('/activity/draw')),
    p.click(selector),
  ]);
  const answer = await response.json();
  assert.equal(answer.code, '0000', JSON.stringify(answer));
  const won = answer.data;
  await p.waitForSelector('dialog#result[open]');
  const highlighted = await p.$$eval('.hit', (els) => els.map((e) => e.dataset.awardIndex));
  assert.ok(highlighted.length >= 1, 'a cell is highlighted');
  assert.ok(highlighted.every((i) => i === String(won.awardIndex)), `highlight ${highlighted} = awardIndex ${won.awardIndex}`);
  assert.match(await p.textContent('#result-text'), new RegExp(won.awardTitle));
  assert.match(await p.textContent('#status'), new RegExp(won.awardTitle), 'announced in the live region');
  // The award record exists, newest first, and the page lists it.
  const after = await records(userId);
  assert.equal(after.length, before + 1);
  assert.equal(after[0].awardId, won.awardId);
  const listed = await p.$$eval('#records li[data-order-id]', (els) => els.map((e) => e.dataset.orderId));
  assert.ok(listed.includes(after[0].orderId), `record ${after[0].orderId} on the page`);
  await p.click('#result-close');
  await p.waitForFunction(() => !document.querySelector('#result').open);
  return won;
}

const p = await page(browser);

await steps([
  ['page load shows the 8 award titles and their locks', async () => {
    await open(p, { userId: 'pl-1', activityId: ACTIVITY });
    assert.equal(await p.getAttribute('html', 'lang'), 'zh-CN');
    const api = await awardList('pl-1');
    assert.equal(api.length, 8);
    const shown = await texts(p, '#grid .cell .title');
    assert.deepEqual(shown, api.sort((a, b) => a.sort - b.sort).map((a) => a.awardTitle));
    for (const a of api.filter((x) => x.awardRuleLockCount != null)) {
      const lock = await p.textContent(`#grid .cell[data-award-id="${a.awardId}"] .lock`);
      assert.match(lock, new RegExp(`再抽 ${a.waitUnLockCount} 次解锁`), lock);
    }
    const odds = await texts(p, '#odds td.num');
    assert.equal(odds.length, 8, 'every award has its configured probability');
    assert.equal(await p.textContent('#acc-total'), '0');
  }],
  ['draws stop on the returned awardIndex until every locked award unlocks', async () => {
    await recharge('pl-1', 9013, 'pl-1-a');
    await p.reload();
    await p.waitForSelector('body[data-ready="true"]');
    const total = Number(await p.textContent('#acc-total'));
    assert.ok(total >= 3, `draws granted: ${total}`);
    let draws = 0;
    while ((await p.$$('#grid .cell.locked')).length > 0) {
      assert.ok(draws < total, 'the locks open within the draws granted');
      await drawOnce(p, 'pl-1');
      draws += 1;
      const api = await awardList('pl-1');
      for (const a of api.filter((x) => x.awardRuleLockCount != null)) {
        const lock = await p.textContent(`#grid .cell[data-award-id="${a.awardId}"] .lock`);
        const want = a.isAwardUnlock ? '已解锁' : `再抽 ${a.waitUnLockCount} 次解锁`;
        assert.ok(lock.includes(want), `${a.awardTitle}: ${lock} (${want})`);
      }
      assert.equal(await p.textContent('#acc-total'), String(total - draws));
    }
    assert.ok(draws >= 1);
    await shot(p, 'player-desktop.png', { fullPage: true });
  }],
  ['the wheel stops on the returned awardIndex', async () => {
    await p.click('#view-wheel');
    assert.equal(await p.getAttribute('#view-wheel', 'aria-pressed'), 'true');
    assert.equal(await p.isVisible('#grid'), false);
    const shown = await texts(p, '#wheel-list li .title');
    assert.equal(shown.length, 8);
    const won = await drawOnce(p, 'pl-1', '#wheel-draw');
    assert.equal(await p.getAttribute('#wheel', 'data-stopped-at'), String(won.awardIndex));
    await shot(p, 'player-wheel.png');
    await p.click('#view-grid');
  }],
  ['keyboard only: Tab to the draw button, Enter draws, Escape closes the result', async () => {
    await recharge('pl-keys', 9013, 'pl-keys-a');
    const kp = await page(browser, { reducedMotion: 'reduce' });
    await open(kp, { userId: 'pl-keys', activityId: ACTIVITY });
    let focused = '';
    for (let i = 0; i < 12 && focused !== 'draw'; i += 1) {
      await kp.keyboard.press('Tab');
      focused = await kp.evaluate(() => document.activeElement && document.activeElement.id);
    }
    assert.equal(focused, 'draw', 'the draw button is reachable with Tab');
    const [response] = await Promise.all([
      kp.waitForResponse((r) => r.url().endsWith('/activity/draw')),
      kp.keyboard.press('Enter'),
    ]);
    const won = (await response.json()).data;
    await kp.waitForSelector('dialog#result[open]');
    assert.equal(await kp.evaluate(() => document.activeElement.id), 'result-close');
    assert.equal(await kp.getAttribute('#grid .hit', 'data-award-index'), String(won.awardIndex));
    await kp.keyboard.press('Escape');
    await kp.waitForFunction(() => !document.querySelector('#result').open);
    assert.equal(await kp.evaluate(() => document.activeElement.id), 'draw', 'focus back on the button');
    await kp.context().close();
  }],
  ['sign-in', async () => {
    assert.equal(await p.isDisabled('#sign'), false);
    await p.click('#sign');
    await p.waitForFunction(() => document.querySelector('#account-msg').textContent.includes('签到成功'));
    await p.waitForFunction(() => document.querySelector('#sign').disabled);
    assert.match(await p.textContent('#sign'), /今日已签到/);
    const points = await eventually('sign-in points credited', async () => {
      const v = await ok('activity/query_user_credit_account', { query: { userId: 'pl-1' } });
      return v >= 10 ? v : null;
    });
    await p.waitForFunction(
      (want) => Number(document.querySelector('#acc-points').textContent.replace(/,/g, '')) === want,
      points,
    );
    // A second sign-in the same day is refused in words.
    const again = await api('activity/calendar_sign_rebate', { query: { userId: 'pl-1' } });
    assert.equal(again.code, '0003');
  }],
  ['buy a SKU with points', async () => {
    const points = await ok('activity/query_user_credit_account', { query: { userId: 'pl-1' } });
    const skus = await ok('activity/query_sku_product_list_by_activity_id', { query: { activityId: ACTIVITY } });
    const sku = skus.filter((s) => s.productAmount <= points).sort((a, b) => a.productAmount - b.productAmount)[0];
    assert.ok(sku, `a SKU costing at most ${points} points`);
    const before = Number(await p.textContent('#acc-total'));
    await p.click(`#shop li[data-sku="${sku.sku}"] button`);
    await p.waitForFunction(() => document.querySelector('#account-msg').textContent.includes('兑换成功'));
    await p.waitForFunction(
      (want) => Number(document.querySelector('#acc-total').textContent) === want,
      before + sku.activityCount.totalCount,
    );
    const left = await ok('activity/query_user_credit_account', { query: { userId: 'pl-1' } });
    assert.ok(Math.abs(left - (points - sku.productAmount)) < 1e-6, `${points} - ${sku.productAmount} = ${left}`);
  }],
  ['not enough points', async () => {
    await open(p, { userId: 'pl-poor', activityId: ACTIVITY });
    assert.equal(await p.textContent('#acc-points'), '0');
    await p.click('#shop li[data-sku] button');
    await p.waitForFunction(() => document.querySelector('#account-msg').textContent.includes('积分不足'));
  }],
  ['no draws left', async () => {
    const [response] = await Promise.all([
      p.waitForResponse((r) => r.url().endsWith('/activity/draw')),
      p.click('#draw'),
    ]);
    const answer = await response.json();
    assert.notEqual(answer.code, '0000');
    await p.waitForSelector('#alert:not([hidden])');
    const text = await p.textContent('#alert');
    assert.match(text, /次数已用完/, text);
    assert.ok(!text.includes(answer.code), `a message, not the code: ${text}`);
    assert.equal(await p.$$eval('.hit', (els) => els.length), 0);
  }],
  ['a phone viewport', async () => {
    await recharge('pl-phone', 9013, 'pl-phone-a');
    const phone = await page(browser, { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await open(phone, { userId: 'pl-phone', activityId: ACTIVITY });
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 375, `no horizontal scrolling: ${overflow}`);
    for (const cell of await phone.$$('#grid .cell .title')) assert.ok(await cell.isVisible());
    const box = await phone.locator('#draw').boundingBox();
    assert.ok(box.width >= 44 && box.height >= 44, `a button a thumb can hit: ${JSON.stringify(box)}`);
    await phone.tap('#draw');
    await phone.waitForSelector('dialog#result[open]');
    await shot(phone, 'player-phone.png');
    await phone.click('#result-close');
    await phone.context().close();
  }],
  ['English when the browser prefers it, and the switch', async () => {
    const en = await page(browser, { locale: 'en-US' });
    await open(en, { userId: 'pl-1', activityId: ACTIVITY });
    assert.equal(await en.getAttribute('html', 'lang'), 'en');
    assert.equal((await en.textContent('#draw')).trim(), 'Draw');
    assert.match(await en.textContent('#grid'), /Unlocked|more draws/);
    await en.click('#lang');
    assert.equal((await en.textContent('#draw')).trim(), '抽奖');
    await en.context().close();
  }],
  ['a user token instead of userId', async () => {
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ openId: 'pl-token' })}`;
    const jwt = `${head}.${createHmac('sha256', process.env.JWT_SECRET).update(head).digest('base64url')}`;
    await recharge('pl-token', 9013, 'pl-token-a');
    const tp = await page(browser);
    await tp.goto(`${BASE}/activity/${ACTIVITY}?token=${jwt}`);
    await tp.waitForSelector('body[data-ready="true"]');
    assert.ok(!tp.url().includes('token='), `the token left the address bar: ${tp.url()}`);
    assert.equal(await tp.textContent('#acc-total'), '5');
    await tp.click('#draw');
    await tp.waitForSelector('dialog#result[open]');
    assert.equal((await records('pl-token')).length, 1);
    await tp.context().close();
  }],
]);

await browser.close();
