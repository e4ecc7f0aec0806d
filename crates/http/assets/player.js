// The player page: draw in a 3×3 grid or on a wheel, the account (draws left, points,
// sign-in, the points shop, progress rewards), "my prizes" and the odds. Every call is a
// public API call; see README ("Web pages") for who the player is and which activity.

import { call, h, fill, sleep } from './api.js';
import { t, lang, setLang, applyStatic, errorText } from './i18n.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const TOKEN_KEY = 'big-market.token';
const VIEW_KEY = 'big-market.view';

// Who: ?userId= as upstream's demo, else a user token (?token=, kept in this tab's
// sessionStorage and taken out of the address bar; an operator's login page on the same
// origin may put it there instead).
let token = params.get('token');
if (token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  params.delete('token');
  const rest = params.toString();
  history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
} else {
  token = sessionStorage.getItem(TOKEN_KEY);
}
const userId = (params.get('userId') || '').trim();
const byToken = !userId && Boolean(token);

const state = {
  activityId: null,
  awards: [],
  account: null,
  points: null,
  signed: null,
  skus: [],
  weights: [],
  records: [],
  odds: null,
  view: localStorage.getItem(VIEW_KEY) === 'wheel' ? 'wheel' : 'grid',
  busy: false,
  wheelTurn: 0,
};

/** A user endpoint: the plain one with userId, or its `_by_token` twin. */
function user(path, body = {}) {
  if (byToken) return call(`${path}_by_token`, { body, auth: token });
  return call(path, { body: { userId, ...body } });
}

/** The `@RequestParam userId` endpoints (sign-in, points). */
function userParam(path) {
  if (byToken) return call(`${path}_by_token`, { auth: token });
  return call(path, { query: { userId } });
}

function activityFromAddress() {
  const m = location.pathname.match(/^\/activity\/(\d{1,18})\/?$/);
  if (m) return m[1];
  const q = params.get('activityId');
  return q && /^\d{1,18}$/.test(q) ? q : null;
}

async function findActivity() {
  const given = activityFromAddress();
  if (given) return Number(given);
  // The stage an operator made active for this channel and source (upstream's
  // sample stage c01/s01 when none is given).
  const id = await call('activity/query_stage_activity_id', {
    method: 'GET',
    query: { channel: params.get('channel') || 'c01', source: params.get('source') || 's01' },
  });
  return id;
}

// ---------------------------------------------------------------- rendering

const RING = 8;

function lockText(a) {
  if (a.awardRuleLockCount == null) return '';
  return a.isAwardUnlock ? t('lock.open') : t('lock.wait', { n: a.waitUnLockCount });
}

function awardCell(a, pos) {
  const locked = a.awardRuleLockCount != null && !a.isAwardUnlock;
  return h(
    'li',
    {
      class: `cell pos-${pos}${locked ? ' locked' : ''}`,
      'data-award-id': a.awardId,
      'data-award-index': a.sort,
    },
    h('span', { class: 'title' }, a.awardTitle),
    a.awardSubtitle ? h('span', { class: 'sub' }, a.awardSubtitle) : null,
    a.awardRuleLockCount != null
      ? h('span', { class: `lock${locked ? ' is-locked' : ''}` }, locked ? lockText(a) : `✓ ${lockText(a)}`)
      : null,
  );
}

function renderGrid() {
  const grid = $('grid');
  const ring = state.awards.slice(0, RING);
  const cells = ring.map((a, i) => awardCell(a, i));
  for (let i = ring.length; i < RING; i += 1) {
    cells.push(h('li', { class: `cell pos-${i} empty`, 'aria-hidden': 'true' }));
  }
  const button = h(
    'button',
    { type: 'button', id: 'draw', class: 'draw', onclick: () => draw() },
    t('draw.button'),
  );
  if (state.busy) {
    button.disabled = true;
    button.textContent = t('draw.busy');
  }
  cells.push(h('li', { class: 'cell pos-center' }, button));
  fill(grid, cells);
}

const WHEEL_COLORS = ['#ffe08a', '#ffd0d0', '#cfe8ff', '#d8f5d0', '#ffe0b8', '#e6d8ff', '#d0f2f2', '#f5d8ec'];

function renderWheel() {
  const svg = $('wheel-svg');
  const n = Math.max(state.awards.length, 1);
  const seg = 360 / n;
  const ns = 'http://www.w3.org/2000/svg';
  const el = (tag, attrs) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  };
  const g = el('g', { id: 'wheel-rotor' });
  state.awards.forEach((a, i) => {
    const a0 = ((i * seg - 90) * Math.PI) / 180;
    const a1 = (((i + 1) * seg - 90) * Math.PI) / 180;
    const r = 100;
    const path = el('path', {
      d: `M0 0 L${r * Math.cos(a0)} ${r * Math.sin(a0)} A${r} ${r} 0 ${seg > 180 ? 1 : 0} 1 ${r * Math.cos(a1)} ${r * Math.sin(a1)} Z`,
      fill: WHEEL_COLORS[i % WHEEL_COLORS.length],
      stroke: '#fff',
      'stroke-width': '1.5',
    });
    const mid = (i + 0.5) * seg;
    const label = el('text', {
      x: '0',
      y: '-62',
      transform: `rotate(${mid})`,
      'text-anchor': 'middle',
      class: 'wheel-label',
    });
    label.textContent = a.awardTitle.length > 6 ? `${a.awardTitle.slice(0, 6)}…` : a.awardTitle;
    g.append(path, label);
  });
  svg.replaceChildren(g, el('circle', { r: '14', fill: '#c0392b' }));
  g.style.transform = `rotate(${state.wheelTurn}deg)`;
  fill(
    $('wheel-list'),
    state.awards.map((a) =>
      h(
        'li',
        {
          'data-award-id': a.awardId,
          'data-award-index': a.sort,
          class: a.awardRuleLockCount != null && !a.isAwardUnlock ? 'locked' : '',
        },
        h('span', { class: 'title' }, a.awardTitle),
        lockText(a) ? h('span', { class: 'lock' }, ` · ${lockText(a)}`) : null,
      ),
    ),
  );
  const b = $('wheel-draw');
  b.disabled = state.busy;
  b.textContent = state.busy ? t('draw.busy') : t('draw.button');
}

function renderView() {
  const wheel = state.view === 'wheel';
  $('grid').hidden = wheel;
  $('wheel').hidden = !wheel;
  $('view-grid').setAttribute('aria-pressed', String(!wheel));
  $('view-wheel').setAttribute('aria-pressed', String(wheel));
  if (wheel) renderWheel();
  else renderGrid();
}

function renderAccount() {
  const a = state.account;
  $('acc-total').textContent = a ? String(a.totalCountSurplus) : '–';
  $('acc-day').textContent = a ? String(a.dayCountSurplus) : '–';
  $('acc-month').textContent = a ? String(a.monthCountSurplus) : '–';
  $('acc-points').textContent = state.points == null ? '–' : formatNumber(state.points);
  const sign = $('sign');
  sign.disabled = state.signed === true;
  sign.textContent = state.signed ? `✓ ${t('sign.done')}` : t('sign.button');
}

function formatNumber(n) {
  return Number(n).toLocaleString(lang() === 'zh' ? 'zh-CN' : 'en', { maximumFractionDigits: 2 });
}

function renderShop() {
  fill(
    $('shop'),
    state.skus.map((s) => {
      const n = s.activityCount.totalCount;
      const p = formatNumber(s.productAmount);
      return h(
        'li',
        { 'data-sku': s.sku },
        h('span', { class: 'item' }, t('shop.item', { n })),
        h('span', { class: 'price' }, t('shop.price', { p })),
        h(
          'button',
          {
            type: 'button',
            class: 'buy',
            'aria-label': t('shop.buy.label', { n, p }),
            onclick: () => buy(s.sku),
          },
          t('shop.buy'),
        ),
      );
    }),
  );
}

function renderWeights() {
  fill(
    $('weights'),
    state.weights.map((w) => {
      const used = w.userActivityAccountTotalUseCount;
      const need = w.ruleWeightCount;
      const reached = used >= need;
      const titles = w.strategyAwards.map((s) => s.awardTitle).join(t('sep'));
      const id = `weight-${need}`;
      return h(
        'li',
        { class: reached ? 'reached' : '' },
        h('span', { id }, t('weight.progress', { used: Math.min(used, need), need }), reached ? ` · ✓ ${t('weight.reached')}` : ''),
        h('progress', { max: need, value: Math.min(used, need), 'aria-labelledby': id }),
        h('span', { class: 'sub' }, t('weight.awards', { list: titles })),
      );
    }),
  );
}

function renderRecords() {
  if (!state.records.length) {
    fill($('records'), h('li', { class: 'none' }, t('records.none')));
    return;
  }
  fill(
    $('records'),
    state.records.map((r) =>
      h(
        'li',
        { 'data-order-id': r.orderId, 'data-state': r.awardState },
        h('span', { class: 'title' }, r.awardTitle),
        h('time', { datetime: r.awardTime.replace(' ', 'T') }, r.awardTime),
        h(
          'span',
          { class: `state ${r.awardState}` },
          r.awardState === 'completed' ? `✓ ${t('records.completed')}` : `… ${t('records.create')}`,
        ),
        r.awardState !== 'completed' && r.deliveryNote
          ? h('span', { class: 'sub' }, t('records.reason', { note: r.deliveryNote }))
          : null,
      ),
    ),
  );
}

function renderOdds() {
  const rows = state.odds || [];
  fill(
    $('odds'),
    rows.map((o) =>
      h(
        'tr',
        {},
        h('td', {}, o.soldOut ? `${o.title} · ${t('odds.soldOut')}` : o.title),
        h(
          'td',
          { class: 'num', title: o.exact || '' },
          `${(o.p * 100).toLocaleString(lang() === 'zh' ? 'zh-CN' : 'en', { maximumFractionDigits: 4 })}%`,
        ),
      ),
    ),
  );
}

function renderAll() {
  applyStatic();
  $('activity-label').textContent = state.activityId ? t('player.activity', { id: state.activityId }) : '';
  $('user-label').textContent = byToken ? '' : t('player.user', { user: userId });
  document.title = t('app.title');
  renderView();
  renderAccount();
  renderShop();
  renderWeights();
  renderRecords();
  renderOdds();
}

// ---------------------------------------------------------------- data

function oddsFromRates(awards) {
  const total = awards.reduce((s, a) => s + Number(a.awardRate || 0), 0);
  if (!(total > 0)) return [];
  return awards.map((a) => ({ title: a.awardTitle, p: Number(a.awardRate || 0) / total }));
}

async function loadOdds() {
  // The published odds when the service has them, else the configured rates.
  try {
    const odds = await call('activity/query_award_odds', { method: 'GET', query: { activityId: state.activityId } });
    if (odds && Array.isArray(odds.awards) && odds.awards.every((a) => typeof a.probability === 'number')) {
      const titles = new Map(state.awards.map((a) => [a.awardId, a.awardTitle]));
      // The exact odds are weight / totalWeight (shown on hover); a sold-out award gives
      // its luck award for now.
      state.odds = odds.awards.map((a) => ({
        title: a.awardTitle || titles.get(a.awardId) || String(a.awardId),
        p: a.probability,
        exact: `${a.weight} / ${odds.totalWeight}`,
        soldOut: a.soldOut === true,
      }));
      return;
    }
  } catch {
    // Not offered by this service: fall back below.
  }
  state.odds = oddsFromRates(state.awards);
}

async function refresh(parts = ['awards', 'account', 'points', 'signed', 'weights', 'records']) {
  const id = state.activityId;
  const jobs = {
    awards: async () => {
      state.awards = (await user('strategy/query_raffle_award_list', { activityId: id })).slice().sort((a, b) => a.sort - b.sort);
    },
    account: async () => { state.account = await user('activity/query_user_activity_account', { activityId: id }); },
    points: async () => { state.points = await userParam('activity/query_user_credit_account'); },
    signed: async () => { state.signed = await userParam('activity/is_calendar_sign_rebate'); },
    weights: async () => { state.weights = await user('strategy/query_raffle_strategy_rule_weight', { activityId: id }); },
    records: async () => { state.records = await user('activity/query_user_award_record_list', { activityId: id }); },
    skus: async () => { state.skus = await call('activity/query_sku_product_list_by_activity_id', { query: { activityId: id } }); },
  };
  const results = await Promise.allSettled(parts.map((p) => jobs[p]()));
  const failed = results.find((r) => r.status === 'rejected');
  if (!state.busy) renderAll();
  if (failed) throw failed.reason;
}

// ---------------------------------------------------------------- actions

function say(text) {
  $('status').textContent = text;
}

function alertUser(text) {
  const el = $('alert');
  el.hidden = !text;
  el.textContent = text || '';
}

const reducedMotion = () => matchMedia('(prefers-reduced-motion: reduce)').matches;

function highlight(sort) {
  for (const el of document.querySelectorAll('#grid .cell, #wheel-list li')) {
    const hit = sort != null && el.dataset.awardIndex === String(sort);
    el.classList.toggle('hit', hit);
    if (hit) el.setAttribute('aria-current', 'true');
    else el.removeAttribute('aria-current');
  }
}

/** Runs the grid's light around the ring until `result` settles, then stops on it. */
async function spinGrid(result) {
  const ring = state.awards.slice(0, RING).map((a) => a.sort);
  let settled = false;
  let value;
  let error;
  result.then((v) => { value = v; settled = true; }, (e) => { error = e; settled = true; });
  let pos = 0;
  if (!reducedMotion()) {
    while (!settled) {
      highlight(ring[pos]);
      pos = (pos + 1) % ring.length;
      await sleep(60);
    }
  }
  await result.catch(() => {});
  if (error) {
    highlight(null);
    throw error;
  }
  const target = ring.indexOf(value.awardIndex);
  if (!reducedMotion() && target >= 0) {
    const steps = ((target - pos + ring.length) % ring.length) + ring.length;
    for (let i = 0; i < steps; i += 1) {
      highlight(ring[pos]);
      pos = (pos + 1) % ring.length;
      await sleep(50 + 180 * ((i + 1) / steps) ** 2);
    }
  }
  highlight(value.awardIndex);
  return value;
}

/** Turns the wheel so the pointer (at the top) stops on the awarded segment. */
async function spinWheel(result) {
  const value = await result;
  const i = state.awards.findIndex((a) => a.sort === value.awardIndex);
  const seg = 360 / Math.max(state.awards.length, 1);
  const current = ((state.wheelTurn % 360) + 360) % 360;
  const stop = 360 - (i + 0.5) * seg;
  state.wheelTurn += 5 * 360 + ((stop - current + 360) % 360);
  const rotor = $('wheel-rotor');
  if (rotor) {
    rotor.classList.toggle('animate', !reducedMotion());
    rotor.style.transform = `rotate(${state.wheelTurn}deg)`;
    if (!reducedMotion()) await sleep(2600);
  }
  $('wheel').dataset.stoppedAt = String(value.awardIndex);
  highlight(value.awardIndex);
  return value;
}

async function draw() {
  if (state.busy) return;
  state.busy = true;
  alertUser('');
  say(t('draw.busy'));
  renderView();
  const request = user('activity/draw', { activityId: state.activityId });
  try {
    const won = await (state.view === 'wheel' ? spinWheel(request) : spinGrid(request));
    state.busy = false;
    say(t('draw.announce', { title: won.awardTitle }));
    $('result-text').textContent = t('draw.won', { title: won.awardTitle });
    $('result').dataset.awardIndex = String(won.awardIndex);
    $('result').dataset.awardId = String(won.awardId);
    const sort = won.awardIndex;
    await refresh().catch(() => {});
    highlight(sort);
    $('result').showModal();
    $('result-close').focus();
  } catch (e) {
    state.busy = false;
    renderView();
    say('');
    alertUser(errorText(e));
    refresh(['account']).catch(() => {});
  }
}

async function sign() {
  $('account-msg').textContent = '';
  try {
    await userParam('activity/calendar_sign_rebate');
    $('account-msg').textContent = t('sign.ok');
  } catch (e) {
    $('account-msg').textContent = e.code === '0003' && !/登录/.test(e.info) ? t('sign.dup') : errorText(e);
  }
  await refresh(['signed', 'account', 'points']).catch(() => {});
  // The sign-in's rebate (draws, points) is delivered by the outbox: look again shortly.
  for (let i = 0; i < 5; i += 1) {
    await sleep(400);
    await refresh(['account', 'points']).catch(() => {});
  }
}

async function buy(sku) {
  const msg = $('account-msg');
  msg.textContent = '';
  const before = state.account ? state.account.totalCountSurplus : null;
  try {
    await user('activity/credit_pay_exchange_sku', { sku });
  } catch (e) {
    msg.textContent = errorText(e);
    return;
  }
  msg.textContent = t('shop.ok');
  // The draws arrive when the payment event is consumed.
  for (let i = 0; i < 15; i += 1) {
    await refresh(['account', 'points']).catch(() => {});
    if (!state.account || state.account.totalCountSurplus !== before) break;
    await sleep(300);
  }
}

// ---------------------------------------------------------------- start

function askForUser() {
  $('who').hidden = false;
  $('who-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = $('who-input').value.trim();
    if (!id) return;
    params.set('userId', id);
    location.search = params.toString();
  });
  $('who-input').focus();
}

async function start() {
  applyStatic();
  $('lang').addEventListener('click', () => {
    setLang(lang() === 'zh' ? 'en' : 'zh');
    renderAll();
  });
  if (!userId && !byToken) {
    askForUser();
    return;
  }
  try {
    state.activityId = await findActivity();
  } catch (e) {
    fatal(errorText(e));
    return;
  }
  if (!state.activityId) {
    fatal(t('player.noActivity'));
    return;
  }
  $('game').hidden = false;
  $('view-grid').addEventListener('click', () => switchView('grid'));
  $('view-wheel').addEventListener('click', () => switchView('wheel'));
  $('wheel-draw').addEventListener('click', () => draw());
  $('sign').addEventListener('click', () => sign());
  $('result').addEventListener('close', () => {
    const b = state.view === 'wheel' ? $('wheel-draw') : $('draw');
    if (b) b.focus();
  });
  try {
    await refresh(['awards', 'account', 'points', 'signed', 'weights', 'records', 'skus']);
  } catch (e) {
    alertUser(errorText(e));
  }
  await loadOdds();
  renderAll();
  document.body.dataset.ready = 'true';
}

function switchView(view) {
  if (state.busy) return;
  state.view = view;
  localStorage.setItem(VIEW_KEY, view);
  renderView();
}

function fatal(text) {
  const el = $('fatal');
  el.hidden = false;
  el.textContent = text;
  document.body.dataset.ready = 'true';
}

start();
