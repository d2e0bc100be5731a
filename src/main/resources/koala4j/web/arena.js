// koala4j arena: plain JavaScript, no build step. Every text that came from a user or a model (prompts, names,
// errors) is set with textContent, never parsed as HTML; the page's Content-Security-Policy allows no inline script.
'use strict';

const state = { models: [], config: null, battle: null };
const $ = (sel) => document.querySelector(sel);

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') node.textContent = v;
    else if (k === 'className') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function authHeaders() {
  const key = localStorage.getItem('koala4j.apiKey');
  return key ? { Authorization: 'Bearer ' + key } : {};
}

async function api(path, options = {}) {
  const headers = Object.assign({ 'Content-Type': 'application/json' }, authHeaders(), options.headers || {});
  const res = await fetch(path, Object.assign({}, options, { headers }));
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
  if (!res.ok) {
    const message = body && body.error ? body.error.message : ('HTTP ' + res.status);
    const err = new Error(message);
    err.status = res.status;
    throw err;
  }
  return body;
}

/** Server-sent events over fetch (EventSource cannot send an Authorization header). */
async function streamEvents(ids, onEvent) {
  const res = await fetch('/v1/jobs/events?ids=' + ids.map(encodeURIComponent).join(','), { headers: authHeaders() });
  if (!res.ok) throw new Error('event stream: HTTP ' + res.status);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (!data) continue;
      onEvent(name, JSON.parse(data));
      if (name === 'end') { reader.cancel(); return; }
    }
  }
}

function describe(params) {
  const parts = [];
  if (params.seed !== null && params.seed !== undefined) parts.push('seed ' + params.seed);
  if (params.steps !== null && params.steps !== undefined) parts.push(params.steps + ' steps');
  if (params.guidance !== null && params.guidance !== undefined) parts.push('guidance ' + params.guidance);
  if (params.scheduler) parts.push(params.scheduler);
  if (params.size) parts.push(params.size);
  if (params.negative_prompt) parts.push('negative: ' + params.negative_prompt);
  return parts.join(' · ');
}

// ---- tabs

function showTab(name) {
  for (const b of document.querySelectorAll('.tab')) b.classList.toggle('active', b.dataset.tab === name);
  for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== 'tab-' + name;
  if (name === 'leaderboard') loadLeaderboard();
  if (name === 'gallery') loadGallery();
}

// ---- models

async function loadModels() {
  state.config = await api('/api/config');
  if (state.config.auth_required) {
    $('#auth').hidden = false;
    $('#api-key').value = localStorage.getItem('koala4j.apiKey') || '';
  }
  $('#prompt').maxLength = state.config.limits.max_prompt;
  $('#battle-prompt').maxLength = state.config.limits.max_prompt;
  const body = await api('/api/models');
  state.models = body.models;
  const box = $('#models');
  let checked = 0;
  for (const m of state.models) {
    const input = el('input', { type: 'checkbox', value: m.id, name: 'model' });
    input.disabled = !m.available;
    if (m.available && m.provider === 'local' && checked < 2) { input.checked = true; checked++; }
    const label = el('label', { className: m.available ? 'model' : 'model unavailable', title: m.id }, [input, ' ' + m.name]);
    if (!m.available) label.append(' ', el('span', { className: 'reason', text: '(unavailable: ' + m.reason + ')' }));
    box.append(label);
  }
  box.addEventListener('change', (e) => {
    const max = state.config.limits.max_compare;
    const selected = box.querySelectorAll('input:checked');
    if (selected.length > max) {
      e.target.checked = false;
      $('#compare-status').textContent = 'At most ' + max + ' models at once.';
    }
  });
}

function modelById(id) {
  return state.models.find((m) => m.id === id);
}

// ---- compare

function requestFor(model, shared) {
  const body = { model: model.id, prompt: shared.prompt, n: 1 };
  if (model.limits.extensions) {
    for (const k of ['negative_prompt', 'seed', 'steps', 'guidance']) if (shared[k] !== undefined) body[k] = shared[k];
    if (shared.size) body.size = shared.size;
  } else if (shared.size && model.limits.sizes.includes(shared.size)) {
    body.size = shared.size;
  }
  return body;
}

function card(model) {
  const c = el('figure', { className: 'card', dataset: { model: model.id } }, [
    el('h3', { text: model.name }),
    el('progress', { max: '1', value: '0' }),
    el('img', { alt: model.name }),
    el('div', { className: 'seconds' }),
    el('div', { className: 'params' }),
    el('div', { className: 'error' }),
  ]);
  return c;
}

function showResult(c, result) {
  c.querySelector('progress').value = c.querySelector('progress').max;
  c.querySelector('img').src = result.data[0].url;
  c.querySelector('.seconds').textContent = result.seconds.toFixed(2) + ' s';
  c.querySelector('.seconds').title = 'generation time; it waited ' + result.queued_seconds.toFixed(2) + ' s for a worker';
  c.querySelector('.params').textContent = describe(result.parameters);
}

function showError(c, message) {
  c.querySelector('.error').textContent = message;
  c.querySelector('progress').hidden = true;
}

function onJobEvent(cards, name, data) {
  const c = cards.get(data.job);
  if (!c) return;
  if (name === 'progress') {
    const p = c.querySelector('progress');
    p.max = data.total;
    p.value = data.step;
  } else if (name === 'done') {
    showResult(c, data.result);
  } else if (name === 'error') {
    showError(c, data.error.message);
  }
}

async function compare(event) {
  event.preventDefault();
  const status = $('#compare-status');
  const ids = [...document.querySelectorAll('#models input:checked')].map((i) => i.value);
  if (ids.length === 0) { status.textContent = 'Pick at least one model.'; return; }
  const shared = { prompt: $('#prompt').value };
  const seedText = $('#seed').value;
  shared.seed = seedText === '' ? Math.floor(Math.random() * 2 ** 32) : Number(seedText);
  if ($('#steps').value !== '') shared.steps = Number($('#steps').value);
  if ($('#guidance').value !== '') shared.guidance = Number($('#guidance').value);
  if ($('#negative').value !== '') shared.negative_prompt = $('#negative').value;
  if ($('#size').value !== '') shared.size = $('#size').value;
  const results = $('#results');
  results.replaceChildren();
  const cards = new Map();
  const jobs = [];
  $('#generate').disabled = true;
  status.textContent = 'Generating with ' + ids.length + ' model(s), seed ' + shared.seed + ' …';
  for (const id of ids) {
    const model = modelById(id);
    const c = card(model);
    results.append(c);
    try {
      const job = await api('/v1/jobs', { method: 'POST', body: JSON.stringify(requestFor(model, shared)) });
      cards.set(job.id, c);
      jobs.push(job.id);
    } catch (e) {
      showError(c, e.message);
    }
  }
  try {
    if (jobs.length) await streamEvents(jobs, (name, data) => onJobEvent(cards, name, data));
    status.textContent = 'Done: seed ' + shared.seed + '.';
  } catch (e) {
    status.textContent = e.message;
  } finally {
    $('#generate').disabled = false;
  }
}

// ---- blind battle

function resetSide(side) {
  const f = $('#battle-' + side);
  f.querySelector('.name').textContent = side === 'left' ? 'Model A' : 'Model B';
  f.querySelector('img').removeAttribute('src');
  f.querySelector('.seconds').textContent = '';
  f.querySelector('progress').value = 0;
}

function setVoting(enabled) {
  for (const b of ['left', 'tie', 'right']) $('#vote-' + b).disabled = !enabled;
}

async function startBattle(event) {
  event.preventDefault();
  const status = $('#battle-status');
  resetSide('left');
  resetSide('right');
  setVoting(false);
  $('#battle-start').disabled = true;
  status.textContent = 'Two anonymous models are drawing …';
  try {
    const battle = await api('/api/battles', { method: 'POST', body: JSON.stringify({ prompt: $('#battle-prompt').value }) });
    state.battle = battle;
    const cards = new Map([[battle.left.id, $('#battle-left')], [battle.right.id, $('#battle-right')]]);
    let finished = 0;
    let failed = false;
    await streamEvents([battle.left.id, battle.right.id], (name, data) => {
      const c = cards.get(data.job);
      if (name === 'progress') { const p = c.querySelector('progress'); p.max = data.total; p.value = data.step; }
      if (name === 'done') {
        finished++;
        c.querySelector('img').src = data.result.data[0].url;
        c.querySelector('.seconds').textContent = data.result.seconds.toFixed(2) + ' s';
      }
      if (name === 'error') { failed = true; status.textContent = data.error.message; }
    });
    if (finished === 2 && !failed) {
      status.textContent = 'Which image fits the prompt better?';
      setVoting(true);
    }
  } catch (e) {
    status.textContent = e.message;
  } finally {
    $('#battle-start').disabled = false;
  }
}

async function vote(winner) {
  if (!state.battle) return;
  setVoting(false);
  try {
    const result = await api('/api/battles/' + state.battle.id + '/vote', { method: 'POST', body: JSON.stringify({ winner }) });
    $('#battle-left .name').textContent = result.left.name;
    $('#battle-right .name').textContent = result.right.name;
    $('#battle-status').textContent = 'Thanks! Left was ' + result.left.name + ', right was ' + result.right.name + '.';
    state.battle = null;
  } catch (e) {
    $('#battle-status').textContent = e.message;
  }
}

// ---- leaderboard and gallery

async function loadLeaderboard() {
  const board = await api('/api/leaderboard');
  $('#leaderboard-votes').textContent = board.votes + ' votes, ' + board.method;
  const rows = board.rows.map((r, i) => el('tr', { dataset: { model: r.model.id } }, [
    el('td', { className: 'num', text: String(i + 1) }),
    el('td', { text: r.model.name }),
    el('td', { className: 'num rating', text: r.rating.toFixed(1) }),
    el('td', { className: 'num votes', text: String(r.votes) }),
    el('td', { className: 'num', text: String(r.wins) }),
    el('td', { className: 'num', text: String(r.losses) }),
    el('td', { className: 'num', text: String(r.ties) }),
  ]));
  $('#leaderboard tbody').replaceChildren(...rows);
}

let galleryTimer = null;

async function loadGallery() {
  const q = $('#gallery-q').value;
  const body = await api('/api/gallery?q=' + encodeURIComponent(q));
  const items = body.items.map((g) => el('figure', { className: 'card', dataset: { generation: g.id } }, [
    el('h3', { text: g.model.name }),
    ...g.images.map((src) => el('img', { src, alt: 'generated image' })),
    el('div', { className: 'prompt', text: g.prompt }),
    el('div', { className: 'seconds', text: g.seconds === null ? '' : g.seconds.toFixed(2) + ' s' }),
    el('div', { className: 'params', text: describe(g) }),
  ]));
  $('#gallery').replaceChildren(...items);
}

document.addEventListener('DOMContentLoaded', () => {
  for (const b of document.querySelectorAll('.tab')) b.addEventListener('click', () => showTab(b.dataset.tab));
  $('#api-key').addEventListener('change', (e) => localStorage.setItem('koala4j.apiKey', e.target.value));
  $('#compare-form').addEventListener('submit', compare);
  $('#battle-form').addEventListener('submit', startBattle);
  for (const w of ['left', 'tie', 'right']) $('#vote-' + w).addEventListener('click', () => vote(w));
  $('#gallery-q').addEventListener('input', () => { clearTimeout(galleryTimer); galleryTimer = setTimeout(loadGallery, 250); });
  loadModels().then(() => { document.body.dataset.ready = 'true'; })
    .catch((e) => { $('#compare-status').textContent = e.message; });
});
