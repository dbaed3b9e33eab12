// runwatch dashboard: plain JS, no build. Lists the tenant's jobs with live bars and shows one job's
// event log. Streams use graphql-ws (window.graphqlWs, served from node_modules); each stream
// resubscribes itself after a disconnect with `after` = the last cursor it saw, so nothing is
// missed or shown twice (graphql-ws's own retry would re-send the original `after`).
const JOB = `id kind name status total completed failed percent rate etaSeconds stage message errorMessage lastCursor
  parentId tags stalled heartbeatSeconds createdAt startedAt finishedAt updatedAt childCounts { queued running paused completed failed cancelled }`;
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

// ---- formatting ----------------------------------------------------------------------------
const duration = (s) => {
  if (s == null || !isFinite(s)) return '–';
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
};
const rate = (r) =>
  r == null ? '–' : `${r >= 10_000 ? `${Math.round(r / 1000).toLocaleString()}k` : r >= 100 ? Math.round(r) : r.toPrecision(3).replace(/\.?0+$/, '')}/s`;
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

// Older than the stream's snapshot (its newest 100): fetched with batchJobs when asked for ("older →" on
// the last page), then kept live by the same jobUpdates stream, which sends every matching job's changes.
const SNAPSHOT_SIZE = 100;
const OLDER = `query($first: Int, $after: String, $status: [JobStatus!], $kind: [JobKind!], $tags: [String!]) {
  batchJobs(first: $first, after: $after, status: $status, kind: $kind, tags: $tags) { nodes { ${JOB} } pageInfo { endCursor hasNextPage } } }`;
const older = { cursor: null, more: true, loading: false };

async function loadOlder() {
  if (older.loading || !older.more) return;
  older.loading = true;
  const filter = filterFromForm();
  try {
    if (!older.cursor) {
      // the position just past the snapshot's jobs
      const skip = (await gql(OLDER, { ...filter, first: SNAPSHOT_SIZE })).batchJobs.pageInfo;
      older.cursor = skip.endCursor;
      older.more = skip.hasNextPage;
    }
    if (older.more) {
      const page = (await gql(OLDER, { ...filter, first: PAGE_SIZE * 2, after: older.cursor })).batchJobs;
      for (const job of page.nodes) if (!jobs.has(job.id)) jobs.set(job.id, job);
      older.cursor = page.pageInfo.endCursor;
      older.more = page.pageInfo.hasNextPage;
    }
  } catch (e) {
    notice(`Cannot load older jobs: ${e.message}`);
  } finally {
    older.loading = false;
  }
}

function listen() {
  if (stopList) stopList();
  jobs.clear();
  listPage = 0;
  Object.assign(older, { cursor: null, more: true, loading: false });
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
      // a job leaving a status filter comes once more (with previousStatus): it leaves the list
      if (filter.status && !filter.status.includes(update.job.status)) jobs.delete(update.job.id);
      else jobs.set(update.job.id, update.job);
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
  $('pager').hidden = pages <= 1 && !(older.more && all.length >= SNAPSHOT_SIZE);
  $('page-info').textContent = `${listPage * PAGE_SIZE + 1}–${listPage * PAGE_SIZE + shown.length} of ${top.length}`;
  $('page-prev').disabled = listPage === 0;
  const mayHaveOlder = older.more && (older.cursor !== null || all.length >= SNAPSHOT_SIZE);
  $('page-next').disabled = listPage >= pages - 1 && !mayHaveOlder;
  renderRunning(all);
  $('list-count').textContent = top.length ? `${top.length}${older.more && all.length >= SNAPSHOT_SIZE ? '+' : ''} shown, live` : '';
}

/** The activity panel's running jobs (of those the list holds), with live bars: most recently updated first. */
function renderRunning(all) {
  const running = all.filter((j) => j.status === 'RUNNING').sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : -1)).slice(0, 8);
  $('act-running').replaceChildren(
    ...running.map((j) => {
      const li = el('li', { 'data-job-id': j.id, 'data-stalled': String(isStalled(j)) });
      const bar = el('div', { class: 'bar' });
      const fill = el('div', { class: 'fill' });
      fill.style.width = `${pct(j)}%`;
      bar.append(fill);
      li.append(el('a', { href: `/jobs/${encodeURIComponent(j.id)}`, title: j.name }, j.name), el('span', { class: 'num small muted' }, `${Math.floor(pct(j))}%`), bar);
      return li;
    }),
  );
  $('act-running-title').hidden = running.length === 0;
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
  $('page-next').addEventListener('click', async () => {
    const pages = Math.ceil([...jobs.values()].filter((j) => !(j.parentId && jobs.has(j.parentId))).length / PAGE_SIZE);
    if (listPage >= pages - 1) await loadOlder();
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
  const li = el('li', { 'data-kind': h.kind }, `${new Date(h.timestamp).toLocaleTimeString([], { hourCycle: 'h23' })} ${h.message}`);
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

// ---- charts (uPlot, served from the package: https://github.com/leeoniya/uPlot) -------------
// A job's chart opens with the whole curve from `metricSeries` (at most 1000 points spanning the run) and,
// for a training run's loss, grows live from `trainingEvents`. Other metrics load on open, on choosing
// them, and once more when the job finishes.
const SERIES = `query($jobId: ID!, $name: String!, $maxPoints: Int) { metricSeries(jobId: $jobId, name: $name, maxPoints: $maxPoints) { step value } }`;
const chart = { plot: null, name: null, xs: [], ys: [], job: null, live: [], loading: false };

/** Unit of a series by its name: seconds for `…Seconds`, none otherwise. */
const unitOf = (name) => (/seconds$/i.test(name) ? 's' : '');
/** What x counts for a series (metricSeries's MetricPoint.step). */
const isStepSeries = (job, name) => job.kind === 'TRAINING' && (name === 'loss' || name === 'learningRate' || name.startsWith('validation'));
const xLabelOf = (job, name) => (isStepSeries(job, name) ? 'training step' : name === 'latencySeconds' || job.successRate != null ? 'item (seq)' : 'report (n-th value)');

function drawChart() {
  const box = $('chart');
  const { xs, ys, name, job } = chart;
  $('chart-card').dataset.points = String(xs.length);
  $('chart-card').dataset.xMin = xs.length ? String(xs[0]) : '';
  $('chart-card').dataset.xMax = xs.length ? String(xs[xs.length - 1]) : '';
  const unit = unitOf(name);
  const axisLabels = [xLabelOf(job, name), unit ? `${name} (${unit})` : name];
  $('chart-card').dataset.axes = axisLabels.join(' | ');
  if (xs.length) {
    const last = ys[ys.length - 1];
    $('chart-latest').textContent = `${isStepSeries(job, name) ? 'step' : xLabelOf(job, name).split(' ')[0]} ${xs[xs.length - 1].toLocaleString()}: ${fmtValue(last)}${unit}`;
    $('chart-range').textContent = `${xs.length.toLocaleString()} points, ${xLabelOf(job, name)} ${xs[0].toLocaleString()}–${xs[xs.length - 1].toLocaleString()}; min ${fmtValue(Math.min(...ys))}${unit}, max ${fmtValue(Math.max(...ys))}${unit}`;
  } else {
    $('chart-latest').textContent = 'no values yet';
    $('chart-range').textContent = '';
  }
  const width = Math.max(280, box.clientWidth || 600);
  if (!chart.plot || chart.plot.series[1].label !== name) {
    if (chart.plot) chart.plot.destroy();
    const axis = { stroke: '#8a94a6', grid: { stroke: '#263040', width: 1 }, ticks: { stroke: '#263040' } };
    chart.plot = new uPlot(
      {
        width,
        height: 220,
        scales: { x: { time: false } },
        legend: { show: false },
        cursor: { drag: { x: true, y: false } },
        axes: [
          { ...axis, label: axisLabels[0], labelSize: 20 },
          { ...axis, label: axisLabels[1], labelSize: 20, size: 60, values: (u, vals) => vals.map((v) => fmtValue(v)) },
        ],
        series: [{ label: 'x' }, { label: name, stroke: '#4c9aff', width: 2, points: { show: false } }],
      },
      [xs, ys],
      box,
    );
  } else chart.plot.setData([xs, ys]);
}
const fmtValue = (v) => (v == null || !isFinite(v) ? '–' : Math.abs(v) >= 1000 ? Math.round(v).toLocaleString() : Number(v.toPrecision(4)).toString());

async function loadSeries(name) {
  chart.name = name;
  chart.loading = true;
  let points = [];
  try {
    points = (await gql(SERIES, { jobId: chart.job.id, name, maxPoints: 1000 })).metricSeries;
  } catch (e) {
    notice(`Cannot load ${name}: ${e.message}`);
  }
  if (chart.name !== name) return;
  chart.loading = false;
  chart.xs = points.map((p) => p.step);
  chart.ys = points.map((p) => p.value);
  for (const [x, y] of chart.live.splice(0)) appendPoint(x, y, false);
  drawChart();
}
function appendPoint(x, y, draw = true) {
  if (chart.loading) return chart.live.push([x, y]);
  if (y == null || !isFinite(y) || (chart.xs.length && x <= chart.xs[chart.xs.length - 1])) return; // a snapshot repeats a step
  chart.xs.push(x);
  chart.ys.push(y);
  if (draw) drawChart();
}

function showChart(job) {
  chart.job = job;
  const names = (job.metrics || []).map((m) => m.name);
  if (job.kind === 'TRAINING') names.unshift('loss', 'learningRate');
  if (!names.length) return;
  const unique = [...new Set(names)];
  $('chart-metric').replaceChildren(...unique.map((n) => el('option', { value: n }, n)));
  $('chart-metric').addEventListener('change', () => loadSeries($('chart-metric').value));
  $('chart-card').hidden = false;
  if (job.kind === 'TRAINING') {
    let cursor = null;
    follow(
      LOSS,
      () => ({ runId: job.id, after: cursor }),
      (data) => {
        const e = data.trainingEvents;
        if (e.cursor) cursor = e.cursor;
        if (e.globalStep != null && chart.name === 'loss') appendPoint(e.globalStep, e.loss);
        return false;
      },
      (error) => notice(`Cannot show training events: ${error.message}`),
    );
  }
  void loadSeries(unique[0]);
  addEventListener('resize', () => chart.plot && chart.plot.setSize({ width: Math.max(280, $('chart').clientWidth), height: 220 }));
}

// ---- job page ------------------------------------------------------------------------------
const JOB_PAGE = `${JOB} successRate metrics { name last count mean min max }
  steps { name status startedAt finishedAt durationSeconds completed total error }`;
const GET = `query($id: ID!) { batchJob(id: $id) { ${JOB_PAGE} } }`;
const HISTORY = `subscription($runId: ID!, $after: String) { runProgress(runId: $runId, after: $after, items: true, logs: true) {
  cursor type timestamp message job { ${JOB_PAGE} }
  items { seq itemId ok latencySeconds error metrics { name value } }
  logs { level message source timestamp droppedBefore } } }`;
const ITEMS = `query($jobId: ID!, $ok: Boolean, $first: Int) { itemResults(jobId: $jobId, ok: $ok, first: $first) {
  nodes { seq itemId ok latencySeconds error metrics { name value } } } }`;

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
  renderSteps(job.steps || []);
  renderMetrics(job);
}

let lastSteps = [];
setInterval(() => {
  if (lastSteps.some((s) => s.status === 'RUNNING') && !$('steps-card').hidden) renderSteps(lastSteps);
}, 1000);

/** Steps as a timeline: each bar spans its start to its finish (or now) on the job's own time axis. */
function renderSteps(steps) {
  lastSteps = steps;
  $('steps-card').hidden = steps.length === 0;
  if (!steps.length) return;
  const now = Date.now();
  const started = steps.filter((s) => s.startedAt);
  const t0 = Math.min(...started.map((s) => Date.parse(s.startedAt)), now);
  const t1 = Math.max(...started.map((s) => (s.finishedAt ? Date.parse(s.finishedAt) : now)), t0 + 1);
  $('steps').replaceChildren(
    ...steps.map((s) => {
      const row = el('div', { class: 'step', 'data-step': s.name, 'data-status': s.status });
      const track = el('div', { class: 'track' });
      if (s.startedAt) {
        const a = Date.parse(s.startedAt);
        const b = s.finishedAt ? Date.parse(s.finishedAt) : now;
        const span = el('div', { class: 'span', title: `${new Date(a).toLocaleTimeString()} – ${s.finishedAt ? new Date(b).toLocaleTimeString() : 'now'}` });
        span.style.left = `${((a - t0) / (t1 - t0)) * 100}%`;
        span.style.width = `${Math.max(0.5, ((b - a) / (t1 - t0)) * 100)}%`;
        track.append(span);
      }
      const units = s.total != null ? ` · ${(s.completed ?? 0).toLocaleString()}/${s.total.toLocaleString()}` : s.completed != null ? ` · ${s.completed.toLocaleString()}` : '';
      row.append(
        el('span', { class: 'stepname', title: s.name }, s.name),
        track,
        el('span', { class: 'stepdur num' }, s.durationSeconds == null ? s.status.toLowerCase() : `${s.durationSeconds < 10 ? `${s.durationSeconds.toFixed(1)}s` : duration(s.durationSeconds)}${units}`),
      );
      if (s.error) row.append(el('span', { class: 'err small steperr', title: s.error }, s.error));
      return row;
    }),
  );
}

function renderMetrics(job) {
  const metrics = job.metrics || [];
  $('metrics-card').hidden = metrics.length === 0 && job.successRate == null;
  $('success-rate').textContent = job.successRate == null ? '' : `success rate ${(job.successRate * 100).toFixed(1)}%`;
  $('metrics-body').replaceChildren(
    ...metrics.map((m) => {
      const u = unitOf(m.name);
      const tr = el('tr', { 'data-metric': m.name });
      tr.append(el('td', {}, m.name), ...[m.last, m.mean, m.min, m.max].map((v) => el('td', { class: 'num' }, `${fmtValue(v)}${u}`)), el('td', { class: 'num' }, m.count.toLocaleString()));
      return tr;
    }),
  );
}

/** The latest item results, failed first (newest first within each), at most 30 shown. */
const shownItems = { failed: [], ok: [] };
function addItems(items, atFront) {
  for (const it of items) {
    const list = it.ok ? shownItems.ok : shownItems.failed;
    if (list.some((x) => x.seq === it.seq)) continue;
    if (atFront) list.unshift(it);
    else list.push(it);
  }
  for (const list of [shownItems.failed, shownItems.ok]) list.sort((a, b) => b.seq - a.seq).splice(10);
  const all = [...shownItems.failed, ...shownItems.ok];
  $('items-card').hidden = all.length === 0;
  $('items-body').replaceChildren(
    ...all.map((it) => {
      const tr = el('tr', { 'data-ok': String(it.ok), 'data-item': it.itemId });
      tr.append(
        el('td', { class: 'mono', title: it.itemId }, it.itemId),
        el('td', {}, it.ok ? 'ok' : 'failed'),
        el('td', { class: 'num' }, it.latencySeconds == null ? '–' : `${fmtValue(it.latencySeconds)}s`),
        el('td', { class: 'small' }, (it.metrics || []).map((m) => `${m.name} ${fmtValue(m.value)}`).join(', ')),
        el('td', { class: 'itemerr small', title: it.error || '' }, it.error || ''),
      );
      return tr;
    }),
  );
}

const MAX_LOG_LINES = 300;
function addLogs(lines) {
  $('logs-card').hidden = false;
  const box = $('logs');
  const stick = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  for (const l of lines) {
    if (l.droppedBefore) box.append(el('div', { class: 'logline dropped' }, `… ${l.droppedBefore} lines dropped by the rate limit`));
    const line = el('div', { class: 'logline', 'data-level': l.level });
    line.append(
      el('span', { class: 'muted' }, `${new Date(l.timestamp).toLocaleTimeString([], { hourCycle: 'h23' })} `),
      el('span', { class: 'lvl' }, `${l.level.padEnd(7)} `),
      ...(l.source ? [el('span', { class: 'muted' }, `[${l.source}] `)] : []),
      document.createTextNode(l.message),
    );
    box.append(line);
  }
  while (box.children.length > MAX_LOG_LINES) box.firstElementChild.remove();
  if (stick) box.scrollTop = box.scrollHeight;
}

/** The event log, newest first; a run of PROGRESS events folds into one row that counts them. */
function logEvent(event) {
  const body = $('events-body');
  const top = body.firstElementChild;
  if (event.type === 'PROGRESS' && top && top.dataset.type === 'PROGRESS') {
    const n = Number(top.dataset.count) + 1;
    top.dataset.count = String(n);
    top.children[0].textContent = new Date(event.timestamp).toLocaleTimeString([], { hourCycle: 'h23' });
    top.children[1].textContent = `PROGRESS ×${n}`;
    top.children[2].textContent = done(event.job);
    top.children[3].textContent = event.job.status;
    top.children[4].textContent = `${top.dataset.from} → ${done(event.job)}`;
    return;
  }
  const row = el('tr', { 'data-type': event.type, 'data-count': '1', 'data-from': done(event.job) });
  const message =
    event.message ||
    (event.type === 'PROGRESS' ? `${event.job.stage ? `stage ${event.job.stage}, ` : ''}${rate(event.job.rate)}` : event.type === 'SNAPSHOT' ? 'state when the page opened' : '');
  row.append(
    el('td', { class: 'num' }, new Date(event.timestamp).toLocaleTimeString([], { hourCycle: 'h23' })),
    el('td', {}, event.type),
    el('td', { class: 'num' }, done(event.job)),
    el('td', {}, event.job.status),
    el('td', { class: 'name' }, message),
  );
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
  showChart(job);
  // The history: replay the job's stream from its epoch's start (`after` = offset 0); when history no longer
  // holds it, the server sends a fresh SNAPSHOT first instead.
  const from = job.lastCursor ? `${job.lastCursor.slice(0, job.lastCursor.lastIndexOf('.'))}.0` : null;
  let cursor = from;
  Promise.all([gql(ITEMS, { jobId: id, ok: false, first: 10 }), gql(ITEMS, { jobId: id, first: 10 })])
    .then(([failed, latest]) => addItems([...failed.itemResults.nodes, ...latest.itemResults.nodes], false))
    .catch(() => {});
  follow(
    HISTORY,
    () => ({ runId: id, after: cursor }),
    (data) => {
      const event = data.runProgress;
      cursor = event.cursor;
      renderJob(event.job);
      if (event.type === 'ITEM_RESULTS') addItems(event.items || [], true);
      else if (event.type === 'LOG') addLogs(event.logs || []);
      else logEvent(event);
      const finished = FINAL.has(event.job.status) && event.type !== 'PROGRESS';
      if (finished && chart.name && chart.job.kind !== 'TRAINING') void loadSeries(chart.name);
      return finished;
    },
    (error) => notice(`Cannot watch ${id}: ${error.message}`),
  );
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
