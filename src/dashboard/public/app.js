// runwatch dashboard: plain JS, no build. Lists the tenant's jobs with live bars and shows one job's
// event log. Streams use graphql-ws (window.graphqlWs, served from node_modules); each stream
// resubscribes itself after a disconnect with `after` = the last cursor it saw, so nothing is
// missed or shown twice (graphql-ws's own retry would re-send the original `after`).
const JOB = `id kind name status total completed failed percent rate etaSeconds stage message errorMessage lastCursor
  parentId tags stalled heartbeatSeconds createdAt startedAt finishedAt updatedAt childCounts { queued running paused completed failed cancelled }`;
const GET = `query($id: ID!) { batchJob(id: $id) { ${JOB} } }`;
const WATCH = `subscription($runId: ID!, $after: String) { runProgress(runId: $runId, after: $after) { cursor type timestamp message job { ${JOB} } } }`;
const FINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
const TOTALS = 'totals { jobs containers cpuCores memoryGb gpus }';
const BUDGET = 'budgetTotal budgetUsed budgetRemaining currency';
const ACTIVITY_NOW = `query { activity(scope: ENVIRONMENT) { ${TOTALS} budget { ${BUDGET} } } }`;
const ACTIVITY = `subscription { activity(scope: ENVIRONMENT) { __typename
  ... on ActivityUpdate { ${TOTALS} } ... on BillingUpdate { ${BUDGET} } ... on ActivityHint { kind message timestamp jobId } } }`;
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
// The list is one `jobUpdates` subscription (no polling): a SNAPSHOT per job (the newest 100 matching the
// filter), then CREATED / STATUS / PROGRESS updates, resumed with the last cursor after a disconnect. A job
// group shows as its parent's row, its children folded under it. Filters resubscribe with a new `filter`;
// paging is over the jobs the stream holds, newest first.
const UPDATES = `subscription($filter: JobFilter, $after: String) { jobUpdates(filter: $filter, after: $after) {
  type cursor job { ${JOB} } } }`;
const PAGE_SIZE = 25;
const jobs = new Map(); // job id → latest job
const rows = new Map(); // job id → <tr>
const unfolded = new Set(); // parent ids whose children show
const stalledHints = new Set(); // job ids an activity hint said stalled (cleared by the job's next update)
let listPage = 0;
let stopList = null;

function filterFromForm() {
  const filter = {};
  const status = $('f-status').value;
  const kind = $('f-kind').value;
  const tags = $('f-tags').value.split(',').map((t) => t.trim()).filter(Boolean);
  if (status) filter.status = status.split(',');
  if (kind) filter.kind = [kind];
  if (tags.length) filter.tags = tags;
  return filter;
}

function listen() {
  if (stopList) stopList();
  jobs.clear();
  listPage = 0;
  scheduleRender();
  let cursor = null;
  const filter = filterFromForm();
  stopList = follow(
    UPDATES,
    () => ({ filter, after: cursor }),
    (data) => {
      const update = data.jobUpdates;
      cursor = update.cursor;
      stalledHints.delete(update.job.id);
      jobs.set(update.job.id, update.job);
      scheduleRender();
      return false;
    },
    (error) => notice(`Cannot list jobs: ${error.message}`),
  );
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderList();
  });
}

const newestFirst = (a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0);
/** RUNNING and silent for longer than its heartbeat (the server's `stalled`, or an activity hint, or the local clock). */
const isStalled = (j) =>
  j.status === 'RUNNING' && (j.stalled || stalledHints.has(j.id) || (j.heartbeatSeconds > 0 && Date.now() - Date.parse(j.updatedAt) > (j.heartbeatSeconds + 2) * 1000));

function renderList() {
  const all = [...jobs.values()];
  const children = new Map(); // parent id → its children held
  const top = [];
  for (const j of all) {
    if (j.parentId && jobs.has(j.parentId)) {
      if (!children.has(j.parentId)) children.set(j.parentId, []);
      children.get(j.parentId).push(j);
    } else top.push(j);
  }
  top.sort(newestFirst);
  const pages = Math.max(1, Math.ceil(top.length / PAGE_SIZE));
  listPage = Math.min(listPage, pages - 1);
  const shown = top.slice(listPage * PAGE_SIZE, (listPage + 1) * PAGE_SIZE);
  const order = [];
  const addRows = (j, depth) => {
    const kids = (children.get(j.id) || []).sort(newestFirst);
    order.push(renderRow(j, depth, kids.length));
    if (unfolded.has(j.id)) for (const k of kids) addRows(k, depth + 1);
  };
  for (const j of shown) addRows(j, 0);
  $('jobs-body').replaceChildren(...order);
  for (const id of rows.keys()) if (!jobs.has(id)) rows.delete(id);
  $('empty').hidden = top.length > 0;
  $('empty').dataset.filtered = String(Object.keys(filterFromForm()).length > 0);
  $('pager').hidden = pages <= 1;
  $('page-info').textContent = `${listPage * PAGE_SIZE + 1}–${listPage * PAGE_SIZE + shown.length} of ${top.length}`;
  $('page-prev').disabled = listPage === 0;
  $('page-next').disabled = listPage >= pages - 1;
  $('list-count').textContent = top.length ? `${top.length}${top.length >= 100 ? '+' : ''} shown, live` : '';
}

const CHILD_STATES = ['completed', 'failed', 'cancelled', 'running', 'paused', 'queued'];
function renderRow(job, depth, heldChildren) {
  let row = rows.get(job.id);
  if (!row) {
    row = el('tr', { 'data-job-id': job.id });
    const name = el('td', { class: 'name' });
    const line = el('div', { class: 'nameline' });
    line.append(el('button', { class: 'fold', type: 'button', 'aria-label': 'show children' }), el('a', { class: 'jobname', href: `/jobs/${encodeURIComponent(job.id)}` }));
    name.append(line, el('div', { class: 'sub muted small' }), el('div', { class: 'err small' }));
    const bar = el('div', { class: 'bar' });
    bar.append(el('div', { class: 'fill' }));
    const barCell = el('td', { class: 'barcol' });
    barCell.append(bar, el('div', { class: 'kids' }), el('div', { class: 'pcttext num' }));
    row.append(name, el('td', { class: 'stcol' }), barCell, el('td', { class: 'done num' }), el('td', { class: 'rate num opt' }), el('td', { class: 'eta num opt' }), el('td', { class: 'created num opt2' }), el('td', { class: 'dur num' }));
    row.querySelector('.fold').addEventListener('click', () => {
      const id = row.dataset.jobId;
      if (unfolded.has(id)) unfolded.delete(id);
      else unfolded.add(id);
      renderList();
    });
    rows.set(job.id, row);
  }
  const stalled = isStalled(job);
  const counts = job.childCounts;
  row.dataset.status = job.status;
  row.dataset.percent = String(pct(job));
  row.dataset.depth = String(depth);
  row.dataset.stalled = String(stalled);
  if (job.parentId) row.dataset.parentId = job.parentId;
  row.classList.toggle('group', !!counts);
  row.classList.toggle('child', depth > 0);
  const fold = row.querySelector('.fold');
  fold.hidden = !counts;
  fold.textContent = unfolded.has(job.id) ? '▾' : '▸';
  fold.setAttribute('aria-expanded', String(unfolded.has(job.id)));
  fold.title = counts ? `${heldChildren} ${heldChildren === 1 ? 'child' : 'children'}: ${unfolded.has(job.id) ? 'fold' : 'unfold'}` : '';
  const link = row.querySelector('.jobname');
  link.textContent = job.name;
  link.title = job.name;
  const sub = [job.kind.toLowerCase()];
  if (counts) sub.push(`group of ${CHILD_STATES.reduce((n, s) => n + counts[s], 0)}`);
  const subEl = row.querySelector('.sub');
  subEl.replaceChildren(
    ...sub.map((s) => el('span', {}, s)),
    ...(job.stage ? [el('span', { class: 'stage' }, job.stage)] : []),
    ...(job.tags || []).map((t) => el('span', { class: 'tag' }, t)),
  );
  const err = row.querySelector('.err');
  err.textContent = job.status === 'FAILED' ? job.errorMessage || 'failed (no error given)' : '';
  err.title = err.textContent;
  err.hidden = !err.textContent;
  const st = row.querySelector('.stcol');
  const badges = [el('span', { class: 'status', 'data-status': job.status }, job.status)];
  if (stalled) badges.push(el('span', { class: 'stalled', title: `no report for over ${job.heartbeatSeconds}s (heartbeat)` }, 'stalled'));
  st.replaceChildren(...badges);
  row.querySelector('.fill').style.width = `${pct(job)}%`;
  const kids = row.querySelector('.kids');
  if (counts) {
    const total = CHILD_STATES.reduce((n, s) => n + counts[s], 0) || 1;
    kids.replaceChildren(...CHILD_STATES.filter((s) => counts[s] > 0).map((s) => {
      const seg = el('span', { class: `seg ${s}`, title: `${counts[s]} ${s}` });
      seg.style.width = `${(counts[s] / total) * 100}%`;
      return seg;
    }));
    kids.title = CHILD_STATES.filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`).join(', ');
    kids.hidden = false;
  } else kids.hidden = true;
  row.querySelector('.done').textContent = `${done(job)} · ${Math.floor(pct(job))}%`;
  row.querySelector('.done').title = row.querySelector('.done').textContent;
  row.querySelector('.pcttext').textContent = `${Math.floor(pct(job))}% · ${job.completed.toLocaleString()}/${job.total == null ? '?' : job.total.toLocaleString()}`;
  row.querySelector('.rate').textContent = rate(job.rate);
  row.querySelector('.eta').textContent = FINAL.has(job.status) ? '–' : duration(job.etaSeconds);
  const created = row.querySelector('.created');
  created.textContent = when(job.createdAt);
  created.title = new Date(job.createdAt).toLocaleString();
  updateDuration(row, job);
  return row;
}

/** Wall time from start to finish (or to now while it runs); from creation while queued. */
function updateDuration(row, job) {
  const cell = row.querySelector('.dur');
  if (!job.startedAt) {
    cell.textContent = '–';
    cell.title = 'not started';
    return;
  }
  const end = job.finishedAt ? Date.parse(job.finishedAt) : Date.now();
  cell.textContent = duration((end - Date.parse(job.startedAt)) / 1000);
  cell.title = `started ${new Date(job.startedAt).toLocaleString()}${job.finishedAt ? `, finished ${new Date(job.finishedAt).toLocaleString()}` : ''}`;
}

/** Today: the time; before: the date and time. */
function when(iso) {
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })
    : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
}

/** Once a second, on this page's clock only: running durations and local stall marks move (no request). */
function tick() {
  for (const [id, row] of rows) {
    const job = jobs.get(id);
    if (!job || FINAL.has(job.status)) continue;
    updateDuration(row, job);
    if (String(isStalled(job)) !== row.dataset.stalled) scheduleRender();
  }
}

function startList() {
  $('list-view').hidden = false;
  let typing = null;
  $('f-status').addEventListener('change', listen);
  $('f-kind').addEventListener('change', listen);
  $('f-tags').addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(listen, 300);
  });
  $('filters').addEventListener('submit', (e) => {
    e.preventDefault();
    listen();
  });
  $('page-prev').addEventListener('click', () => {
    listPage = Math.max(0, listPage - 1);
    renderList();
  });
  $('page-next').addEventListener('click', () => {
    listPage++;
    renderList();
  });
  listen();
  setInterval(tick, 1000);
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
  const over = b.budgetRemaining != null && b.budgetRemaining < 0;
  $('act-budget').dataset.over = String(over);
  $('act-budget').textContent =
    b.budgetTotal == null
      ? `${num(b.budgetUsed, 2)}${cur} used (no budget set)`
      : over
        ? `${num(b.budgetUsed, 2)} of ${num(b.budgetTotal, 2)}${cur} used: over budget by ${num(-b.budgetRemaining, 2)}${cur}`
        : `${num(b.budgetUsed, 2)} of ${num(b.budgetTotal, 2)}${cur} used, ${num(b.budgetRemaining, 2)}${cur} left`;
}
function addHint(h) {
  if (h.kind === 'JOB_STALLED' && h.jobId && jobs.has(h.jobId)) {
    stalledHints.add(h.jobId);
    scheduleRender();
  }
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
    startList();
    void showActivity();
  }
}
