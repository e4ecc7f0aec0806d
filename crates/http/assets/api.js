// The JSON API as the pages use it: upstream's envelope {code, info, data}, HTTP 200.
// Nothing here is private to the pages; any client can make the same calls.

export const BASE = '/api/v1/raffle';

/** A refused call: the envelope's code and info (or `network` / `http_NNN`). */
export class ApiError extends Error {
  constructor(code, info, data = null) {
    super(`${code}: ${info}`);
    this.code = code;
    this.info = info || '';
    this.data = data;
  }
}

/**
 * Calls `BASE/path`. Options: `method` (POST by default), `body` (sent as JSON),
 * `query` (an object of query parameters), `auth` (the Authorization header).
 * Resolves to `data`; rejects with an ApiError.
 */
export async function call(path, { method = 'POST', body, query, auth } = {}) {
  const url = new URL(`${BASE}/${path}`, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (auth) headers.authorization = auth;
  let res;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError('network', String(e && e.message ? e.message : e));
  }
  let envelope;
  try {
    envelope = await res.json();
  } catch {
    throw new ApiError(`http_${res.status}`, res.statusText);
  }
  if (!envelope || envelope.code !== '0000') {
    throw new ApiError(
      envelope ? envelope.code : `http_${res.status}`,
      envelope ? envelope.info : '',
      envelope ? envelope.data : null,
    );
  }
  return envelope.data;
}

/** Creates an element: `h('p', {class: 'x', onclick: f}, 'text', child…)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
