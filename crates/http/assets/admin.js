// The operator console. It signs in with the admin token (kept in this tab's
// sessionStorage, sent as `Authorization: Bearer`, never in a URL) and uses the
// operator endpoints of the public API and `/metrics`, as any operator tool could.

import { call, h, fill } from './api.js';
import { t, lang, setLang, applyStatic, errorText } from './i18n.js';
import { barChart } from './chart.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'big-market.admin-token';
let token = sessionStorage.getItem(TOKEN_KEY);
let timer = null;

/** An operator call (empty token: no header, for a service without admin_token). */
function admin(path, opts = {}) {
  return call(path, { ...opts, auth: token ? `Bearer ${token}` : undefined });
}
const get = (path, query) => admin(path, { method: 'GET', query });

function flash(text, ok = true) {
  const el = $('flash');
  el.className = ok ? 'status ok' : 'status alert';
  el.textContent = text;
}

function table(headers, rows, empty = t('common.empty')) {
  if (!rows.length) return h('p', { class: 'note' }, empty);
  return h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))),
    ),
  );
}

function failure(e) {
  if (e && e.code === '0008') {
    signOut(t('admin.refused'));
    return;
  }
  flash(errorText(e), false);
}

// ---------------------------------------------------------------- sign-in

async function signIn(candidate) {
  const previous = token;
  token = candidate;
  try {
    await get('dcc/query_config');
  } catch (e) {
    token = previous;
    const err = $('token-error');
    err.hidden = false;
    err.textContent = e.code === '0008' ? `${t('admin.refused')} ${e.info}` : errorText(e);
    $('token').setAttribute('aria-invalid', 'true');
    $('token').focus();
    return false;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  $('token-error').hidden = true;
  $('token').removeAttribute('aria-invalid');
  showConsole();
  return true;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  token = null;
  clearInterval(timer);
  $('nav').hidden = true;
  $('signout').hidden = true;
  fill($('view'));
  $('signin').hidden = false;
  if (message) {
    const err = $('token-error');
    err.hidden = false;
    err.textContent = message;
  }
  $('token').focus();
}

function showConsole() {
  $('signin').hidden = true;
  $('nav').hidden = false;
  $('signout').hidden = false;
  route();
}

// ---------------------------------------------------------------- views

const views = {
  dashboard,
  campaigns,
  stock,
  odds,
  users,
  undelivered,
  parked,
  switches,
  stages,
};

function route() {
  clearInterval(timer);
  const name = (location.hash || '#dashboard').slice(1).split('/')[0];
  const view = views[name] ? name : 'dashboard';
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === `#${view}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  $('flash').textContent = '';
  const root = $('view');
  root.dataset.view = view;
  fill(root);
  views[view](root).catch(failure);
}

// ---- dashboard: from /metrics (no token needed), polled

const samples = [];

function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

async function dashboard(root) {
  const tiles = h('div', { class: 'tiles', id: 'tiles' });
  const codes = h('div', { id: 'codes' });
  const backlog = h('div', { id: 'backlog' });
  const updated = h('p', { class: 'note', id: 'updated' });
  fill(
    root,
    tiles,
    h('section', { class: 'card' }, h('h2', {}, t('dash.codes')), codes),
    h('section', { class: 'card' }, h('h2', {}, t('dash.backlog')), backlog),
    updated,
  );
  const tick = async () => {
    const res = await fetch('/metrics', { cache: 'no-store' });
    const all = parseMetrics(await res.text());
    const sum = (name, pred = () => true) =>
      all.filter((s) => s.name === name && pred(s.labels)).reduce((a, s) => a + s.value, 0);
    const draws = sum('big_market_draws_total');
    const now = Date.now();
    samples.push({ now, draws });
    while (samples.length > 2 && now - samples[1].now >= 60_000) samples.shift();
    const first = samples[0];
    const perMinute = samples.length > 1 && now > first.now ? ((draws - first.draws) * 60_000) / (now - first.now) : null;
    const breaker = sum('big_market_draw_breaker_open') > 0;
    const pending = sum('big_market_outbox_tasks', (l) => l.state === 'create' || l.state === 'fail');
    const parkedN = sum('big_market_outbox_tasks', (l) => l.state === 'parked');
    fill(
      tiles,
      tile(t('dash.drawsPerMinute'), perMinute == null ? '–' : perMinute.toFixed(1), 'draws-per-minute'),
      tile(t('dash.draws'), String(draws), 'draws-total'),
      tile(t('dash.backlog.tile'), `${pending} / ${parkedN}`, 'backlog-total'),
      tile(t('dash.breaker'), breaker ? t('dash.breaker.open') : t('dash.breaker.closed'), 'breaker'),
    );
    const byCode = new Map();
    for (const s of all.filter((x) => x.name === 'big_market_http_requests_total')) {
      const c = s.labels.code;
      if (c === '0000' || /^http_[23]/.test(c)) continue;
      byCode.set(c, (byCode.get(c) || 0) + s.value);
    }
    fill(
      codes,
      table(
        [t('dash.code'), t('dash.count'), t('common.note')],
        [...byCode.entries()].sort((a, b) => b[1] - a[1]).map(([c, n]) => [c, String(n), errorText({ code: c, info: '' })]),
        t('dash.none'),
      ),
    );
    const states = all.filter((s) => s.name === 'big_market_outbox_tasks');
    fill(
      backlog,
      table(
        [t('dash.state'), t('dash.tasks')],
        states.map((s) => [s.labels.state, String(s.value)]),
        t('dash.none'),
      ),
      h('p', {}, `${t('dash.oldest')}: ${sum('big_market_outbox_oldest_pending_seconds').toFixed(0)}`),
    );
    updated.textContent = t('dash.updated', { time: new Date().toLocaleTimeString(lang() === 'zh' ? 'zh-CN' : 'en') });
  };
  await tick();
  timer = setInterval(() => tick().catch(failure), 3000);
}

function tile(label, value, id) {
  return h('div', { class: 'tile', id }, h('span', { class: 'label' }, label), h('span', { class: 'big' }, value));
}

// ---- strategies (for the pickers)

async function strategyPicker(onPick) {
  const list = await get('erp/query_strategy_list');
  const select = h(
    'select',
    { id: 'strategy', 'aria-label': t('common.strategy') },
    list.map((s) =>
      h('option', { value: s.strategyId }, s.activityId ? `${s.strategyId} · ${t('common.activity')} ${s.activityId}` : String(s.strategyId)),
    ),
  );
  const pick = () => onPick(list.find((s) => String(s.strategyId) === select.value));
  select.addEventListener('change', pick);
  return { select, list, pick };
}

// ---- live stock

async function stock(root) {
  const out = h('div', { id: 'stock-out' });
  const picker = await strategyPicker((s) => show(s).catch(failure));
  const refresh = h('button', { type: 'button', onclick: () => picker.pick() }, t('common.refresh'));
  fill(root, h('div', { class: 'row' }, h('label', {}, t('common.strategy'), picker.select), refresh), out);
  async function show(s) {
    if (!s) return;
    const awards = await get('erp/query_strategy_award_stock', { strategyId: s.strategyId });
    const parts = [
      h('h2', {}, t('stock.award', { id: s.strategyId })),
      table(
        ['ID', t('common.award'), t('stock.left', { left: '', total: '' }).replace(/\s*\/\s*/, ' / ').trim() || '', ''],
        awards.map((a) => [
          String(a.awardId),
          a.awardTitle,
          t('stock.left', { left: a.awardCountSurplus, total: a.awardCount }),
          h('meter', { class: 'meter', min: 0, max: Math.max(a.awardCount, 1), value: a.awardCountSurplus, 'aria-label': `${a.awardTitle} ${t('stock.left', { left: a.awardCountSurplus, total: a.awardCount })}` }),
        ]),
      ),
    ];
    if (s.activityId) {
      const skus = await call('activity/query_sku_product_list_by_activity_id', { query: { activityId: s.activityId } });
      parts.push(
        h('h2', {}, t('stock.sku', { id: s.activityId })),
        table(
          ['SKU', t('shop.price', { p: '' }).trim(), '', ''],
          skus.map((k) => [
            String(k.sku),
            String(k.productAmount),
            t('stock.left', { left: k.stockCountSurplus, total: k.stockCount }),
            h('meter', { class: 'meter', min: 0, max: Math.max(k.stockCount, 1), value: k.stockCountSurplus, 'aria-label': `SKU ${k.sku}` }),
          ]),
        ),
      );
    }
    fill(out, h('section', { class: 'card' }, parts));
  }
  await picker.pick();
  timer = setInterval(() => picker.pick(), 5000);
}

// ---- configured vs observed odds

async function odds(root) {
  const out = h('div', { id: 'odds-out' });
  const samplesInput = h('input', { id: 'samples', type: 'number', min: 1, max: 1000000, value: 100000 });
  const picker = await strategyPicker(() => {});
  const run = async () => {
    const tables = await get('erp/audit_strategy', { strategyId: picker.select.value, samples: samplesInput.value });
    const pct = (v) => `${(v * 100).toFixed(2)}%`;
    fill(
      out,
      tables.map((tb) =>
        h(
          'section',
          { class: 'card audit-table', 'data-key': tb.key },
          h('h2', {}, t('odds.table', { key: tb.key, n: tb.samples, chi: tb.chiSquare.toFixed(2), p: tb.pValue.toFixed(3) })),
          barChart({
            title: tb.key,
            categories: tb.awards.map((a) => `${a.awardTitle} (${a.awardId})`),
            series: [
              { name: t('odds.configured'), values: tb.awards.map((a) => a.expectedProbability) },
              { name: t('odds.observed'), values: tb.awards.map((a) => a.observedFrequency) },
            ],
            format: pct,
          }),
        ),
      ),
    );
  };
  const button = h('button', { type: 'button', id: 'run-audit', onclick: () => run().catch(failure) }, t('odds.run'));
  fill(
    root,
    h('div', { class: 'row' }, h('label', {}, t('common.strategy'), picker.select), h('label', { for: 'samples' }, t('odds.samples'), samplesInput), button),
    out,
  );
  await run();
}

// ---- user lookup

async function users(root) {
  const userInput = h('input', { id: 'lookup-user', required: true, maxlength: 32 });
  const activityInput = h('input', { id: 'lookup-activity', type: 'number', value: 100301, required: true });
  const out = h('div', { id: 'user-out' });
  const form = h(
    'form',
    { class: 'row' },
    h('label', {}, t('common.user'), userInput),
    h('label', {}, t('common.activity'), activityInput),
    h('button', { type: 'submit' }, t('common.load')),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    lookup(userInput.value.trim(), Number(activityInput.value)).catch(failure);
  });
  fill(root, form, out);
  async function lookup(userId, activityId) {
    const body = { userId, activityId };
    const [account, points, records, detail] = await Promise.all([
      call('activity/query_user_activity_account', { body }),
      call('activity/query_user_credit_account', { query: { userId } }),
      call('activity/query_user_award_record_list', { body }),
      get('erp/query_user_detail', { userId }).catch(() => null),
    ]);
    const parts = [
      h('h2', {}, `${t('common.user')} ${userId}`),
      h(
        'dl',
        { class: 'figures' },
        [
          [t('account.total'), `${account.totalCountSurplus} / ${account.totalCount}`],
          [t('account.day'), `${account.dayCountSurplus} / ${account.dayCount}`],
          [t('account.month'), `${account.monthCountSurplus} / ${account.monthCount}`],
          [t('users.points'), String(points)],
        ].map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))),
      ),
      h('h3', {}, t('users.records')),
      table(
        [t('common.award'), t('common.time'), t('common.state'), t('common.note'), 'order'],
        records.map((r) => [r.awardTitle, r.awardTime, r.awardState, r.deliveryNote || '', r.orderId]),
      ),
    ];
    if (detail) {
      parts.push(
        h('h3', {}, t('users.orders')),
        table(
          [t('common.activity'), 'order', t('common.time'), t('common.state')],
          detail.raffleOrders.map((o) => [String(o.activityId), o.orderId, o.orderTime, o.orderState]),
        ),
        h('h3', {}, t('users.ledger')),
        table(
          ['order', t('common.note'), 'amount', t('common.state'), t('common.time')],
          detail.creditOrders.map((c) => [c.orderId, c.tradeName, String(c.tradeAmount), c.tradeType, c.createTime]),
        ),
      );
    }
    fill(out, h('section', { class: 'card' }, parts));
  }
}

// ---- undelivered awards

async function undelivered(root) {
  const list = await get('erp/query_undelivered_award_list', { limit: 200 });
  fill(
    root,
    h(
      'section',
      { class: 'card' },
      h('h2', {}, t('nav.undelivered')),
      table(
        [t('common.user'), 'order', t('common.award'), t('common.time'), t('common.note'), t('common.actions')],
        list.map((a) => [
          a.userId,
          a.orderId,
          a.awardTitle,
          a.awardTime,
          a.note || '',
          h(
            'button',
            {
              type: 'button',
              class: 'redeliver',
              'data-order-id': a.orderId,
              'aria-label': `${t('undelivered.redeliver')} ${a.orderId}`,
              onclick: async () => {
                try {
                  await admin('erp/redeliver_award', { body: { userId: a.userId, orderId: a.orderId } });
                  await undelivered(root);
                  flash(t('undelivered.ok', { id: a.orderId }));
                } catch (e) {
                  failure(e);
                }
              },
            },
            t('undelivered.redeliver'),
          ),
        ]),
      ),
    ),
  );
}

// ---- parked tasks

async function parked(root) {
  const list = await get('erp/query_parked_task_list', { limit: 200 });
  fill(
    root,
    h(
      'section',
      { class: 'card' },
      h('h2', {}, t('nav.parked')),
      table(
        ['message', t('common.user'), 'topic', '#', t('common.note'), t('common.time'), t('common.actions')],
        list.map((p) => [
          p.messageId,
          p.userId,
          p.topic,
          String(p.attempts),
          p.lastError || '',
          p.updateTime,
          h(
            'button',
            {
              type: 'button',
              class: 'requeue',
              'data-message-id': p.messageId,
              'aria-label': `${t('parked.requeue')} ${p.messageId}`,
              onclick: async () => {
                try {
                  await admin('erp/requeue_task', { body: { messageId: p.messageId } });
                  await parked(root);
                  flash(t('parked.ok', { id: p.messageId }));
                } catch (e) {
                  failure(e);
                }
              },
            },
            t('parked.requeue'),
          ),
        ]),
      ),
    ),
  );
}

// ---- switches

async function switches(root) {
  const values = await get('dcc/query_config');
  fill(
    root,
    h(
      'section',
      { class: 'card' },
      h('h2', {}, t('nav.switches')),
      Object.entries(values).map(([key, value]) =>
        h(
          'div',
          { class: 'row switch', 'data-key': key },
          h('span', { id: `sw-${key}` }, t(`switch.${key}`), ' · ', h('strong', {}, t('switch.now', { v: value }))),
          ['open', 'close'].map((v) =>
            h(
              'button',
              {
                type: 'button',
                'aria-pressed': String(value === v),
                'aria-describedby': `sw-${key}`,
                'data-value': v,
                onclick: async () => {
                  try {
                    await get('dcc/update_config', { key, value: v });
                    await switches(root);
                    flash(t('switch.ok', { key, v }));
                  } catch (e) {
                    failure(e);
                  }
                },
              },
              t(`switch.${v}`),
            ),
          ),
        ),
      ),
    ),
  );
}

// ---- stages

async function stages(root) {
  const list = await get('erp/query_raffle_activity_stage_list');
  fill(
    root,
    h(
      'section',
      { class: 'card' },
      h('h2', {}, t('nav.stages')),
      table(
        ['id', 'channel', 'source', t('common.activity'), t('common.state'), t('common.actions')],
        list.map((s) => [
          String(s.id),
          s.channel,
          s.source,
          String(s.activityId),
          s.state,
          s.state === 'active'
            ? '✓'
            : h(
                'button',
                {
                  type: 'button',
                  onclick: async () => {
                    try {
                      await admin('erp/update_stage_activity_2_active', { body: { id: s.id } });
                      await stages(root);
                      flash(t('stages.ok', { id: s.id }));
                    } catch (e) {
                      failure(e);
                    }
                  },
                },
                t('stages.activate'),
              ),
        ]),
      ),
    ),
  );
}

// ---- campaigns (documents: list, edit with errors at their fields, simulate, apply,
// versions, rollback)

const CAMPAIGN = 'admin/campaign';

function idQuery(item) {
  if (item.activityId != null) return { activityId: item.activityId };
  return { strategyId: item.strategyId };
}

async function campaigns(root) {
  let list;
  try {
    list = await get(`${CAMPAIGN}/list`);
  } catch (e) {
    if (e.code === '0008') throw e;
    fill(root, h('p', { class: 'alert' }, t('camp.unavailable', { e: errorText(e) })));
    return;
  }
  const editor = h('div', { id: 'campaign-editor' });
  const rows = (Array.isArray(list) ? list : list.items || []).map((c) => [
    c.activityId != null ? `${t('common.activity')} ${c.activityId}` : `${t('common.strategy')} ${c.strategyId}`,
    c.name || c.activityName || c.strategyDesc || '',
    c.state || '',
    c.currentVersion != null ? t('camp.version', { v: c.currentVersion }) : '',
    h(
      'button',
      {
        type: 'button',
        class: 'edit',
        'data-activity-id': c.activityId,
        'data-strategy-id': c.strategyId,
        'aria-label': `${t('camp.edit')} ${c.activityId != null ? c.activityId : c.strategyId}`,
        onclick: () => edit(c).catch(failure),
      },
      t('camp.edit'),
    ),
  ]);
  fill(root, h('section', { class: 'card' }, h('h2', {}, t('camp.list')), table(['id', '', t('common.state'), '', ''], rows)), editor);

  async function edit(item) {
    const doc = await get(`${CAMPAIGN}/export`, idQuery(item));
    renderEditor(editor, item, doc);
  }
}

/** Reads `a.b[2].c` paths. */
function pathParts(path) {
  return path.replace(/^\$\.?/, '').split(/\.|\[(\d+)\]/).filter((p) => p !== undefined && p !== '');
}
function setAt(doc, path, value) {
  const parts = pathParts(path);
  let cur = doc;
  for (const p of parts.slice(0, -1)) cur = cur[p];
  const last = parts[parts.length - 1];
  const before = cur[last];
  if (typeof before === 'number') {
    const n = Number(value);
    cur[last] = value.trim() === '' || Number.isNaN(n) ? value : n;
  } else {
    cur[last] = value;
  }
}
function getAt(doc, path) {
  return pathParts(path).reduce((c, p) => (c == null ? c : c[p]), doc);
}

function renderEditor(root, item, doc) {
  const errorsBox = h('div', { id: 'campaign-errors', role: 'alert' });
  const input = (path, label) => {
    const value = getAt(doc, path);
    if (value === undefined || (typeof value === 'object' && value !== null)) return h('span', {});
    const el = h('input', { 'data-path': path, 'aria-label': `${label} (${path})`, value: value == null ? '' : String(value) });
    el.addEventListener('input', () => {
      setAt(doc, path, el.value);
      raw.value = JSON.stringify(doc, null, 2);
    });
    return h('span', { class: 'field' }, el);
  };
  const sections = [];
  if (doc.activity) {
    const fields = ['activityName', 'activityDesc', 'beginDateTime', 'endDateTime', 'state'].filter((f) => f in doc.activity);
    sections.push(
      h('h3', {}, t('camp.activityFields')),
      h('div', { class: 'row' }, fields.map((f) => h('label', {}, f, input(`activity.${f}`, f)))),
    );
  }
  const awards = doc.strategy && Array.isArray(doc.strategy.awards) ? doc.strategy.awards : [];
  const awardCols = ['awardId', 'awardTitle', 'awardSubtitle', 'awardRate', 'awardCount', 'sort', 'awardKey', 'awardConfig'];
  sections.push(
    h('h3', {}, t('camp.awards')),
    h(
      'div',
      { class: 'scroll doc-grid' },
      h(
        'table',
        {},
        h('thead', {}, h('tr', {}, awardCols.map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, awards.map((_, i) => h('tr', {}, awardCols.map((c) => h('td', {}, input(`strategy.awards[${i}].${c}`, c)))))),
      ),
    ),
  );
  const skus = Array.isArray(doc.skus) ? doc.skus : [];
  if (skus.length) {
    const skuCols = ['sku', 'productAmount', 'stockCount'];
    sections.push(
      h('h3', {}, t('camp.skus')),
      h(
        'div',
        { class: 'scroll doc-grid' },
        h(
          'table',
          {},
          h('thead', {}, h('tr', {}, skuCols.map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, skus.map((_, i) => h('tr', {}, skuCols.map((c) => h('td', {}, input(`skus[${i}].${c}`, c)))))),
        ),
      ),
    );
  }
  const raw = h('textarea', { class: 'raw', id: 'campaign-raw', 'aria-label': t('camp.raw'), spellcheck: 'false' });
  raw.value = JSON.stringify(doc, null, 2);
  raw.addEventListener('change', () => {
    try {
      const parsed = JSON.parse(raw.value);
      renderEditor(root, item, parsed);
    } catch (e) {
      showErrors([{ path: '$', message: t('camp.rawError', { e: e.message }) }]);
    }
  });

  const sim = {
    users: h('input', { type: 'number', min: 1, value: 1000, id: 'sim-users' }),
    draws: h('input', { type: 'number', min: 1, value: 10, id: 'sim-draws' }),
    seed: h('input', { type: 'number', value: 1, id: 'sim-seed' }),
  };
  const simOut = h('div', { id: 'simulation' });
  const versionsBox = h('div', { id: 'versions' });

  function clearErrors() {
    for (const el of root.querySelectorAll('[aria-invalid="true"]')) {
      el.removeAttribute('aria-invalid');
      el.removeAttribute('aria-describedby');
    }
    for (const el of root.querySelectorAll('.field-error')) el.remove();
    fill(errorsBox);
  }
  function showErrors(errors) {
    clearErrors();
    const elsewhere = [];
    errors.forEach((e, i) => {
      const path = String(e.path || '').replace(/^\$\.?/, '');
      const field = [...root.querySelectorAll('input[data-path]')].find((x) => x.dataset.path === path);
      if (field) {
        const id = `err-${i}`;
        field.setAttribute('aria-invalid', 'true');
        field.setAttribute('aria-describedby', id);
        field.parentElement.append(h('span', { class: 'field-error', id }, e.message));
      } else {
        elsewhere.push(h('li', {}, h('code', {}, e.path || '$'), ': ', e.message));
      }
    });
    fill(errorsBox, h('p', { class: 'errors' }, t('camp.invalid', { n: errors.length })), elsewhere.length ? h('ul', {}, elsewhere) : null);
    const first = root.querySelector('[aria-invalid="true"]');
    if (first) first.focus();
  }

  async function validate() {
    const r = await admin(`${CAMPAIGN}/validate`, { body: doc });
    if (r.valid) {
      clearErrors();
      flash(t('camp.valid'));
    } else {
      showErrors(r.errors || []);
    }
    return r.valid;
  }
  async function apply() {
    try {
      const r = await admin(`${CAMPAIGN}/apply`, { body: doc });
      clearErrors();
      flash(t('camp.applied', { v: r.version }));
      root.dataset.version = String(r.version);
      await versions();
    } catch (e) {
      if (e.data && Array.isArray(e.data.errors)) showErrors(e.data.errors);
      else throw e;
    }
  }
  async function simulate() {
    const r = await admin(`${CAMPAIGN}/simulate`, {
      body: { document: doc, users: Number(sim.users.value), drawsPerUser: Number(sim.draws.value), seed: Number(sim.seed.value) },
    });
    const rows = Array.isArray(r) ? r : r.awards || [];
    const pick = (o, re) => {
      const k = Object.keys(o).find((x) => re.test(x));
      return k ? Number(o[k]) || 0 : 0;
    };
    const titles = new Map(awards.map((a) => [a.awardId, a.awardTitle]));
    fill(
      simOut,
      barChart({
        title: t('camp.simulate'),
        categories: rows.map((a) => `${a.awardTitle || titles.get(a.awardId) || a.awardId}`),
        series: [
          { name: t('camp.expected'), values: rows.map((a) => pick(a, /^expected/i)) },
          { name: t('camp.granted'), values: rows.map((a) => pick(a, /^granted|^count$|granted/i)) },
        ],
        format: (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)),
      }),
    );
  }
  async function versions() {
    const list = await get(`${CAMPAIGN}/versions`, idQuery(item));
    fill(
      versionsBox,
      table(
        ['#', t('common.time'), 'author', t('common.note'), ''],
        list.map((v) => [
          String(v.version),
          v.createTime || '',
          v.author || '',
          typeof v.summary === 'string' ? v.summary : JSON.stringify(v.summary || ''),
          h(
            'button',
            {
              type: 'button',
              class: 'rollback',
              'data-version': v.version,
              onclick: async () => {
                try {
                  const n = await admin(`${CAMPAIGN}/rollback`, { body: { ...idQuery(item), version: v.version } });
                  flash(t('camp.rolledBack', { v: typeof n === 'object' && n ? n.version : n }));
                  renderEditor(root, item, await get(`${CAMPAIGN}/export`, idQuery(item)));
                } catch (e) {
                  failure(e);
                }
              },
            },
            t('camp.rollback'),
          ),
        ]),
      ),
    );
  }

  const act = (label, f, id) => h('button', { type: 'button', id, onclick: () => f().catch(failure) }, label);
  fill(
    root,
    h(
      'section',
      { class: 'card' },
      h('h2', {}, item.activityId != null ? `${t('common.activity')} ${item.activityId}` : `${t('common.strategy')} ${item.strategyId}`),
      errorsBox,
      sections,
      h('details', {}, h('summary', {}, t('camp.raw')), raw),
      h(
        'div',
        { class: 'row' },
        act(t('camp.validate'), validate, 'campaign-validate'),
        act(t('camp.apply'), apply, 'campaign-apply'),
      ),
      h('h3', {}, t('camp.simulate')),
      h(
        'div',
        { class: 'row' },
        h('label', {}, t('camp.users'), sim.users),
        h('label', {}, t('camp.draws'), sim.draws),
        h('label', {}, t('camp.seed'), sim.seed),
        act(t('camp.simulate'), simulate, 'campaign-simulate'),
      ),
      simOut,
      h('h3', {}, t('camp.versions')),
      versionsBox,
    ),
  );
  versions().catch(() => {});
}

// ---------------------------------------------------------------- start

function start() {
  applyStatic();
  $('lang').addEventListener('click', () => {
    setLang(lang() === 'zh' ? 'en' : 'zh');
    if (token !== null) route();
  });
  $('signout').addEventListener('click', () => signOut());
  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    signIn($('token').value.trim());
  });
  window.addEventListener('hashchange', () => {
    if (token !== null) route();
  });
  if (token !== null) showConsole();
  else {
    $('signin').hidden = false;
    $('token').focus();
  }
  document.body.dataset.ready = 'true';
}

start();
