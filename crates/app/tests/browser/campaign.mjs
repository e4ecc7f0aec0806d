// Campaigns in the console: an error shown at its field, a changed award title applied
// and seen on the player page, the simulation chart, versions and rollback.

import { launch, page, ok, shot, steps, assert, BASE, ADMIN_TOKEN } from './lib.mjs';

const ACTIVITY = 100301;
const browser = await launch();
const p = await page(browser);
const player = await page(browser);

const doc = await ok('admin/campaign/export', { method: 'GET', query: { activityId: ACTIVITY }, admin: true });
const index = doc.strategy.awards.findIndex((a) => a.awardId === 104);
assert.ok(index >= 0, 'award 104 in the document');
const field = (name) => `input[data-path="strategy.awards[${index}].${name}"]`;
const titles = async () => {
  await player.goto(`${BASE}/?userId=cp-1&activityId=${ACTIVITY}`);
  await player.waitForSelector('body[data-ready="true"]');
  return player.$$eval('#grid .cell .title', (els) => els.map((e) => e.textContent));
};

async function openEditor() {
  await p.evaluate(() => { location.hash = 'campaigns'; });
  const edit = `button.edit[data-activity-id="${ACTIVITY}"]`;
  await p.waitForSelector(edit);
  await p.click(edit);
  await p.waitForSelector(field('awardTitle'));
}

async function apply() {
  await p.evaluate(() => { document.querySelector('#flash').textContent = ''; });
  await p.click('#campaign-apply');
  await p.waitForFunction(() => document.querySelector('#flash').textContent.match(/已发布为版本 \d+/));
  return Number((await p.textContent('#flash')).match(/(\d+)/)[1]);
}

await steps([
  ['the console lists the campaigns', async () => {
    await p.goto(`${BASE}/admin`);
    await p.waitForSelector('body[data-ready="true"]');
    await p.fill('#token', ADMIN_TOKEN);
    await p.click('#signin-form button[type="submit"]');
    await p.waitForSelector('#nav:not([hidden])');
    await openEditor();
    assert.equal(await p.inputValue(field('awardTitle')), doc.strategy.awards[index].awardTitle);
  }],
  ['an error is shown at its field, and nothing is applied', async () => {
    await p.fill(field('awardRate'), '-0.5');
    await p.click('#campaign-validate');
    await p.waitForSelector(`${field('awardRate')}[aria-invalid="true"]`);
    const described = await p.getAttribute(field('awardRate'), 'aria-describedby');
    const message = await p.textContent(`#${described}`);
    assert.ok(message.length > 3, message);
    assert.match(await p.textContent('#campaign-errors'), /处错误/);
    // Apply refuses the same document, with the error at the same field.
    await p.click('#campaign-apply');
    await p.waitForSelector(`${field('awardRate')}[aria-invalid="true"]`);
    await shot(p, 'console-campaign-error.png', { fullPage: true });
    const again = await ok('admin/campaign/export', { method: 'GET', query: { activityId: ACTIVITY }, admin: true });
    assert.deepEqual(again.strategy.awards[index], doc.strategy.awards[index], 'nothing written');
    await p.fill(field('awardRate'), doc.strategy.awards[index].awardRate);
    await p.click('#campaign-validate');
    await p.waitForFunction(() => document.querySelector('#flash').textContent.includes('校验通过'));
    assert.equal(await p.$(`${field('awardRate')}[aria-invalid="true"]`), null);
  }],
  ['the simulation chart', async () => {
    await p.fill('#sim-users', '200');
    await p.fill('#sim-draws', '5');
    await p.click('#campaign-simulate');
    await p.waitForSelector('#simulation svg.chart rect');
    const bars = await p.$$eval('#simulation svg.chart rect', (els) => els.length);
    assert.equal(bars, 2 * doc.strategy.awards.length, 'expected and granted for each award');
  }],
  ['a changed award title is applied and seen on the player page; rollback gives it back', async () => {
    const before = await titles();
    assert.ok(before.includes(doc.strategy.awards[index].awardTitle));
    await p.fill(field('awardTitle'), '浏览器台灯');
    const first = await apply();
    assert.ok((await titles()).includes('浏览器台灯'), 'the player page shows the new title');
    await p.fill(field('awardTitle'), '浏览器台灯二代');
    const second = await apply();
    assert.ok(second > first, `${second} > ${first}`);
    assert.ok((await titles()).includes('浏览器台灯二代'));
    await p.waitForSelector(`button.rollback[data-version="${first}"]`);
    await shot(p, 'console-campaign.png', { fullPage: true });
    await p.evaluate(() => { document.querySelector('#flash').textContent = ''; });
    await p.click(`button.rollback[data-version="${first}"]`);
    await p.waitForFunction(() => document.querySelector('#flash').textContent.includes('已回滚'));
    assert.ok((await titles()).includes('浏览器台灯'), 'rolled back to the first version');
    assert.ok(!(await titles()).includes('浏览器台灯二代'));
  }],
]);

await browser.close();
