// runwatch dashboard: plain JS, no build. Lists the tenant's jobs with live bars and shows one job's
// event log. Streams use graphql-ws (window.graphqlWs, served from node_modules); each stream
// resubscribes itself after a disconnect with `after` = the last cursor it saw, so nothing is
// missed or shown twice (graphql-ws's own retry would re-send the original `after`).
const JOB = 'id kind name status total completed failed percent rate etaSeconds stage message errorMessage lastCursor';
const LIST = `query($first: Int) { batchJobs(first: $first) { nodes { ${JOB} } } }`;
const GET = `query($id: ID!) { batchJob(id: $id) { ${JOB} } }`;
const WATCH = `subscription($runId: ID!, $after: String) { runProgress(runId: $runId, after: $after) { cursor type timestamp message job { ${JOB} } } }`;
const FINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
const TOTALS = 'totals { jobs containers cpuCores memoryGb gpus }';
const BUDGET = 'budgetTotal budgetUsed budgetRemaining currency';
const ACTIVITY_NOW = `query { activity(scope: ENVIRONMENT) { ${TOTALS} budget { ${BUDGET} } } }`;
const ACTIVITY = `subscription { activity(scope: ENVIRONMENT) { __typename
  ... on ActivityUpdate { ${TOTALS} } ... on BillingUpdate { ${BUDGET} } ... on ActivityHint { kind message timestamp } } }`;
const LOSS = `subscription($runId: ID!, $after: String) { trainingEvents(runId: $runId, types: [TRAINING_PROGRESS], after: $after) {
  ... on TrainingProgress { cursor globalStep maxStep loss } } }`;
const $ = (id) => document.getElementById(id);

// ---- token: share link (#token=…), then saved, then dev mode's -------------------------------
async function findToken() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    sessionStorage.setItem('runwatch.token', fromHash);
    history.replaceState(null, '', location.pathname); // keep the token out of the address bar
    return fromHash;
  }
  const saved = sessionStorage.getItem('runwatch.token') || localStorage.getItem('runwatch.token');
  if (saved) return saved;
  try {
    const config = await (await fetch('/dashboard/config.json')).json();
    return config.devToken || null;
  } catch {
    return null;
  }
}
let token = null;

function notice(text) {
  $('notice').textContent = text || '';
  $('notice').hidden = !text;
}

async function gql(query, variables) {
  const res = await fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  if (body.errors && body.errors.length) {
    const e = new Error(body.errors[0].message);
    e.code = body.errors[0].extensions && body.errors[0].extensions.code;
    throw e;
  }
  return body.data;
}

// ---- streams -----------------------------------------------------------------------------
let client = null;
const connection = (state) => {
  $('connection').dataset.state = state;
  $('connection').textContent = state;
};
function ws() {
  if (!client) {
    client = graphqlWs.createClient({
      url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`,
      lazy: true,
      lazyCloseTimeout: 5000,
      retryAttempts: 0,
      connectionParams: () => ({ authorization: `Bearer ${token}` }),
      on: { connected: () => connection('live') },
    });
  }
  return client;
}

/**
 * Follows one subscription, resubscribing after a disconnect with backoff. `variables()` is asked at
 * every (re)subscribe, so a stream can resume from its last cursor; `onData(data)` returns true when
 * the stream is finished. Returns a stop function.
 */
function follow(query, variables, onData, onError) {
  let stopped = false;
  let unsubscribe = () => {};
  let failures = 0;
  const start = () => {
    if (stopped) return;
    unsubscribe = ws().subscribe(
      { query, variables: variables() },
      {
        next: (result) => {
          if (result.errors) return fail(result.errors);
          failures = 0;
          if (onData(result.data)) stopped = true;
        },
        error: (error) => fail(error),
        complete: () => {},
      },
    );
  };
  const fail = (error) => {
    if (stopped) return;
    if (Array.isArray(error)) {
      stopped = true;
      onError(error[0]);
      return;
    }
    const code = error && error.code;
    if (code === 4401 || code === 4403) {
      connection('error');
      notice(code === 4403 ? 'Your token expired: paste a fresh one.' : 'Your token is not valid: paste one.');
      return;
    }
    connection('reconnecting');
    failures++;
    const delay = Math.min(10000, 250 * 2 ** (failures - 1)) * (0.75 + Math.random() * 0.5);
    setTimeout(start, delay);
  };
  start();
  return () => {
    stopped = true;
    unsubscribe();
  };
}

/** Follows one job until its final event; `onEvent(event)` sees every event once. Returns a stop function. */
function watch(jobId, after, onEvent) {
  let cursor = after || null;
  return follow(
    WATCH,
    () => ({ runId: jobId, after: cursor }),
    (data) => {
      const event = data.runProgress;
      cursor = event.cursor;
      onEvent(event);
      return FINAL.has(event.job.status) && event.type !== 'PROGRESS';
    },
    (error) => notice(`Cannot watch ${jobId}: ${error.message}`),
  );
}

// ---- formatting ----------------------------------------------------------------------------
const duration = (s) => {
  if (s == null || !isFinite(s)) return '–';
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
};
const rate = (r) => (r == null ? '–' : `${r >= 100 ? Math.round(r) : r.toPrecision(3).replace(/\.?0+$/, '')}/s`);
const done = (j) => `${j.completed.toLocaleString()}/${j.total == null ? '?' : j.total.toLocaleString()}${j.failed ? ` (${j.failed} failed)` : ''}`;
const pct = (j) => (j.percent == null ? (j.status === 'COMPLETED' ? 100 : 0) : Math.min(100, j.percent));
const el = (tag, attrs = {}, text) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
};

// ---- list page -----------------------------------------------------------------------------
const rows = new Map(); // job id → { row, stop }

function renderRow(job) {
  let entry = rows.get(job.id);
  if (!entry) {
    const row = el('tr', { 'data-job-id': job.id });
    const name = el('td', { class: 'name' });
    name.append(el('a', { href: `/jobs/${encodeURIComponent(job.id)}` }, job.name));
    const bar = el('div', { class: 'bar' });
    bar.append(el('div', { class: 'fill' }));
    const barCell = el('td', { class: 'barcol' });
    barCell.append(bar);
    row.append(name, el('td', { class: 'kind muted' }), el('td', { class: 'st' }), barCell, el('td', { class: 'done num' }), el('td', { class: 'rate num' }), el('td', { class: 'eta num' }), el('td', { class: 'stage' }));
    entry = { row, stop: null, last: null };
    rows.set(job.id, entry);
  }
  const { row } = entry;
  entry.last = job;
  row.dataset.status = job.status;
  row.dataset.percent = String(pct(job));
  row.querySelector('.kind').textContent = job.kind;
  const st = row.querySelector('.st');
  st.replaceChildren(el('span', { class: 'status', 'data-status': job.status }, job.status));
  row.querySelector('.fill').style.width = `${pct(job)}%`;
  row.querySelector('.done').textContent = `${done(job)} · ${Math.floor(pct(job))}%`;
  row.querySelector('.rate').textContent = rate(job.rate);
  row.querySelector('.eta').textContent = FINAL.has(job.status) ? '–' : duration(job.etaSeconds);
  row.querySelector('.stage').textContent = job.stage || '';
  return entry;
}

async function refreshList() {
  let jobs;
  try {
    jobs = (await gql(LIST, { first: 50 })).batchJobs.nodes;
  } catch (e) {
    notice(`Cannot list jobs: ${e.message}`);
    return;
  }
  notice('');
  const body = $('jobs-body');
  const order = [];
  for (const job of jobs) {
    const known = rows.get(job.id);
    // A live stream owns a row's state; the list only fills rows nobody streams.
    const entry = known && known.stop ? known : renderRow(job);
    order.push(entry.row);
    if (!entry.stop && !FINAL.has(job.status)) entry.stop = watch(job.id, job.lastCursor, (event) => renderRow(event.job));
  }
  body.replaceChildren(...order);
  $('empty').hidden = jobs.length > 0;
}

// ---- activity panel ------------------------------------------------------------------------
const num = (n, digits = 1) => (n == null ? '–' : Number.isInteger(n) ? n.toLocaleString() : n.toFixed(digits));
function renderTotals(t) {
  $('act-jobs').textContent = num(t.jobs);
  $('act-containers').textContent = num(t.containers);
  $('act-cpu').textContent = num(t.cpuCores);
  $('act-memory').textContent = `${num(t.memoryGb)} GB`;
  $('act-gpus').textContent = num(t.gpus);
  $('activity').dataset.jobs = String(t.jobs);
}
function renderBudget(b) {
  const cur = b.currency ? ` ${b.currency}` : '';
  $('act-budget').textContent =
    b.budgetTotal == null ? `${num(b.budgetUsed, 2)}${cur} used (no budget set)` : `${num(b.budgetUsed, 2)} of ${num(b.budgetTotal, 2)}${cur} used, ${num(b.budgetRemaining, 2)}${cur} left`;
}
function addHint(h) {
  const li = el('li', { 'data-kind': h.kind }, `${new Date(h.timestamp).toLocaleTimeString()} ${h.message}`);
  $('act-hints').prepend(li);
  while ($('act-hints').children.length > 8) $('act-hints').lastElementChild.remove();
}
async function showActivity() {
  try {
    const now = (await gql(ACTIVITY_NOW)).activity;
    renderTotals(now.totals);
    renderBudget(now.budget);
  } catch {
    $('activity-off').hidden = false; // e.g. the token lacks activity:read
    return;
  }
  $('activity').hidden = false;
  follow(
    ACTIVITY,
    () => ({}),
    (data) => {
      const e = data.activity;
      if (e.__typename === 'ActivityUpdate') renderTotals(e.totals);
      else if (e.__typename === 'BillingUpdate') renderBudget(e);
      else if (e.__typename === 'ActivityHint') addHint(e);
      return e.__typename === 'ContextMismatch';
    },
    () => {
      $('activity').hidden = true;
      $('activity-off').hidden = false;
    },
  );
}

// ---- loss chart (training runs) ------------------------------------------------------------
const lossPoints = []; // [globalStep, loss], in step order
function drawLoss() {
  const pts = lossPoints.filter((p) => p[1] != null && isFinite(p[1]));
  if (pts.length === 0) return;
  const [x0, x1] = [pts[0][0], pts[pts.length - 1][0]];
  const ys = pts.map((p) => p[1]);
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x) => (x1 === x0 ? 300 : ((x - x0) / (x1 - x0)) * 590 + 5);
  const sy = (y) => (y1 === y0 ? 90 : 175 - ((y - y0) / (y1 - y0)) * 170);
  $('loss-line').setAttribute('points', pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' '));
  $('training').dataset.points = String(pts.length);
  const last = pts[pts.length - 1];
  $('loss-latest').textContent = `step ${last[0].toLocaleString()}: ${last[1].toPrecision(4)}`;
  $('loss-range').textContent = `steps ${x0.toLocaleString()}–${x1.toLocaleString()}, loss ${y0.toPrecision(3)}–${y1.toPrecision(3)}`;
}
function showLoss(runId) {
  let cursor = null;
  follow(
    LOSS,
    () => ({ runId, after: cursor }),
    (data) => {
      const e = data.trainingEvents;
      if (e.cursor) cursor = e.cursor;
      if (e.globalStep != null) {
        if (lossPoints.length && e.globalStep <= lossPoints[lossPoints.length - 1][0]) return false; // a snapshot repeats a step
        lossPoints.push([e.globalStep, e.loss]);
        if (lossPoints.length > 2000) lossPoints.splice(0, lossPoints.length - 2000);
        drawLoss();
      }
      return false;
    },
    (error) => notice(`Cannot show training events: ${error.message}`),
  );
}

// ---- job page ------------------------------------------------------------------------------
function renderJob(job) {
  document.title = `${job.name} · runwatch`;
  $('job-name').textContent = job.name;
  $('job-status').textContent = job.status;
  $('job-status').dataset.status = job.status;
  $('job-view').dataset.status = job.status;
  $('job-kind').textContent = job.kind;
  $('job-id').textContent = job.id;
  $('job-view').querySelector('.fill').style.width = `${pct(job)}%`;
  $('job-done').textContent = `${done(job)} · ${Math.floor(pct(job))}%`;
  $('job-rate').textContent = rate(job.rate);
  $('job-eta').textContent = FINAL.has(job.status) ? '–' : duration(job.etaSeconds);
  $('job-stage').textContent = job.stage || '–';
  $('job-message').textContent = job.message || '–';
  $('job-error').hidden = !job.errorMessage;
  $('job-error').textContent = job.errorMessage || '';
  $('training').hidden = job.kind !== 'TRAINING';
}

function logEvent(event) {
  const row = el('tr', { 'data-type': event.type });
  row.append(
    el('td', { class: 'num' }, new Date(event.timestamp).toLocaleTimeString()),
    el('td', {}, event.type),
    el('td', { class: 'num' }, done(event.job)),
    el('td', {}, event.job.status),
    el('td', { class: 'name' }, event.message || ''),
  );
  const body = $('events-body');
  body.prepend(row);
  while (body.children.length > 500) body.lastElementChild.remove();
}

async function showJob(id) {
  $('job-view').hidden = false;
  let job;
  try {
    job = (await gql(GET, { id })).batchJob;
  } catch (e) {
    notice(`Cannot load job: ${e.message}`);
    return;
  }
  if (!job) {
    notice(`No job ${id} for this token.`);
    return;
  }
  renderJob(job);
  if (job.kind === 'TRAINING') showLoss(id);
  watch(id, null, (event) => {
    renderJob(event.job);
    logEvent(event);
  });
}

// ---- start ---------------------------------------------------------------------------------
$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const value = $('token-input').value.trim();
  if (!value) return;
  localStorage.setItem('runwatch.token', value);
  sessionStorage.removeItem('runwatch.token');
  location.reload();
});

token = await findToken();
if (!token) {
  notice('Paste a bearer token (runwatch token, or the dev token npm start prints) to see your jobs.');
} else {
  const match = /^\/jobs\/([^/]+)$/.exec(location.pathname);
  if (match) await showJob(decodeURIComponent(match[1]));
  else {
    $('list-view').hidden = false;
    await refreshList();
    void showActivity();
    setInterval(refreshList, 3000); // new jobs appear within 3 s; running ones stream
  }
}
