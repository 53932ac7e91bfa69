// The mtl dashboard: plain browser JavaScript, no build step. It loads the run so far from
// /api/run, then follows /api/stream (server-sent events) and redraws at most 4 times a second.
'use strict';
(function () {
  const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
  const PHASES = ['units', 'compute', 'transfer', 'aggregate', 'optimize', 'broadcast', 'total'];
  const $ = (id) => document.getElementById(id);

  const state = { tasks: [], steps: [], evals: [], lastStep: 0, status: null, evalMetric: {}, charts: {}, dirty: false };

  function finite(v) {
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  }

  // Axis labels that fit: 16000 → 16k, 0.00012 → 1.2e-4.
  function compact(v) {
    if (v === null || v === undefined) return '';
    const a = Math.abs(v);
    if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
    if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
    if (a !== 0 && a < 1e-3) return v.toExponential(1);
    return String(+v.toPrecision(4));
  }

  function makeChart(id, seriesLabels, opts) {
    const el = $(id);
    const series = [{ label: 'step' }].concat(seriesLabels.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true })));
    const width = Math.max(300, el.clientWidth - 4);
    const chart = new uPlot(
      { width, height: 240, series, scales: { x: { time: false }, y: opts && opts.log ? { distr: 3 } : {} }, axes: [{ label: 'step' }, { size: 60, values: (u, vals) => vals.map(compact) }], legend: { live: true } },
      [[]].concat(seriesLabels.map(() => [])),
      el,
    );
    state.charts[id] = chart;
    return chart;
  }

  function setChart(id, data) {
    const chart = state.charts[id];
    if (!chart) return;
    chart.setData(data);
    $(id).setAttribute('data-points', String(data[0].length));
  }

  function buildCharts() {
    const t = state.tasks;
    makeChart('loss-chart', t);
    makeChart('eval-chart', t.map((task) => `${task} ${state.evalMetric[task] || ''}`.trim()));
    makeChart('weights-chart', t);
    makeChart('throughput-chart', ['samples/s']);
    makeChart('time-chart', PHASES);
  }

  function redraw() {
    state.dirty = false;
    const s = state.steps;
    const xs = s.map((r) => r.step);
    setChart('loss-chart', [xs].concat(state.tasks.map((t) => s.map((r) => finite(r.losses[t])))));
    const weightOf = (r, t) => {
      const w = finite(r.aggregatorWeights && r.aggregatorWeights[t]);
      return w !== null ? w : finite(r.lossWeights && r.lossWeights[t]);
    };
    setChart('weights-chart', [xs].concat(state.tasks.map((t) => s.map((r) => weightOf(r, t)))));
    setChart('throughput-chart', [xs, s.map((r) => (r.timeMs.total > 0 ? (r.samples * 1000) / r.timeMs.total : null))]);
    setChart('time-chart', [xs].concat(PHASES.map((p) => s.map((r) => finite(r.timeMs[p])))));
    const ev = state.evals;
    setChart('eval-chart', [ev.map((r) => r.step)].concat(state.tasks.map((t) => ev.map((r) => {
      const e = r.tasks[t];
      if (!e) return null;
      const m = state.evalMetric[t];
      return finite(m && m !== 'loss' ? e.metrics[m] : e.loss);
    }))));
    drawCosine();
    drawHeader();
  }

  function schedule() {
    if (state.dirty) return;
    state.dirty = true;
    setTimeout(redraw, 250);
  }

  function drawCosine() {
    const last = state.steps[state.steps.length - 1];
    const el = $('cosine-heatmap');
    if (!last) return;
    $('cosine-step').textContent = `(step ${last.step})`;
    const tasks = state.tasks;
    const cos = (a, b) => {
      if (a === b) return 1;
      const v = last.cosine[`${a}/${b}`];
      return finite(v !== undefined ? v : last.cosine[`${b}/${a}`]);
    };
    const table = document.createElement('table');
    const head = table.insertRow();
    head.insertCell().textContent = '';
    for (const t of tasks) head.insertCell().textContent = t;
    for (const a of tasks) {
      const row = table.insertRow();
      row.insertCell().textContent = a;
      for (const b of tasks) {
        const cell = row.insertCell();
        const v = cos(a, b);
        cell.textContent = v === null ? '–' : v.toFixed(2);
        if (v !== null) {
          // Blue: aligned gradients; red: conflicting ones.
          const alpha = Math.min(1, Math.abs(v)).toFixed(2);
          cell.style.background = v >= 0 ? `rgba(31, 119, 180, ${alpha})` : `rgba(214, 39, 40, ${alpha})`;
        }
      }
    }
    el.replaceChildren(table);
  }

  function drawHeader() {
    const st = state.status;
    if (!st) return;
    $('run-name').textContent = `${st.name}${st.runId ? ` · ${st.runId}` : ''}`;
    $('run-state').textContent = st.state;
    $('step').textContent = String(Math.max(st.step, state.lastStep));
    $('total-steps').textContent = String(st.totalSteps);
    $('aggregator').textContent = st.aggregator;
    $('message').textContent = st.message || '';
    const recent = state.steps.slice(-20);
    const ms = recent.reduce((a, r) => a + r.timeMs.total, 0);
    const samples = recent.reduce((a, r) => a + r.samples, 0);
    $('throughput').textContent = ms > 0 ? `${Math.round((samples * 1000) / ms)} samples/s · ${((recent.length * 1000) / ms).toFixed(1)} steps/s` : '–';
  }

  function drawWorkers() {
    const st = state.status;
    const body = $('workers').tBodies[0];
    body.replaceChildren();
    for (const w of st.workers) {
      const row = body.insertRow();
      row.dataset.worker = w.id;
      const cells = [w.id, w.name, w.state, w.backend, String(w.unitsDone), w.meanUnitMs > 0 ? w.meanUnitMs.toFixed(1) : '–'];
      const classes = ['', '', 'state', 'backend', 'units num', 'unit-ms num'];
      cells.forEach((text, i) => {
        const cell = row.insertCell();
        cell.textContent = text;
        if (classes[i]) cell.className = classes[i];
      });
    }
    const c = st.counters || {};
    const parts = Object.keys(c).map((k) => `${k} ${k.startsWith('bytes') ? (c[k] / 1048576).toFixed(1) + ' MiB' : c[k]}`);
    $('counters').textContent = parts.join(' · ');
  }

  function addEvent(e) {
    const li = document.createElement('li');
    li.className = e.level;
    li.textContent = `${e.time ? e.time.slice(11, 19) : ''} ${e.type}: ${e.message}`;
    const list = $('events');
    list.prepend(li);
    while (list.children.length > 300) list.lastChild.remove();
  }

  function addStep(r) {
    if (r.step <= state.lastStep) return; // already in the history
    state.steps.push(r);
    state.lastStep = r.step;
    schedule();
  }

  function addEval(r) {
    if (state.evals.some((x) => x.step === r.step && x.stage === r.stage)) return;
    state.evals.push(r);
    schedule();
  }

  function setStatus(st) {
    // mtl serve: another run has become the pool's current one; start over with it.
    if (st.pool && state.status && st.runId !== state.status.runId) location.reload();
    state.status = st;
    drawWorkers();
    drawHeader();
  }

  function setLive(text, cls) {
    const el = $('live');
    el.textContent = text;
    el.className = `badge ${cls}`;
  }

  async function start() {
    // Open the stream first and hold its messages until the history is in, so none is lost.
    const pending = [];
    let ready = false;
    const source = new EventSource('/api/stream');
    const handle = (type, data) => {
      if (type === 'step') addStep(data);
      else if (type === 'eval') addEval(data);
      else if (type === 'event') addEvent(data);
      else if (type === 'status') setStatus(data);
    };
    for (const type of ['step', 'eval', 'event', 'status']) {
      source.addEventListener(type, (m) => {
        const data = JSON.parse(m.data);
        if (ready) handle(type, data);
        else pending.push([type, data]);
      });
    }
    source.addEventListener('open', () => setLive('live', 'live'));
    source.addEventListener('end', () => {
      source.close();
      setLive(state.status && state.status.live ? 'run over' : 'finished run', 'done');
      if (state.status && state.status.pool) setTimeout(() => location.reload(), 3000);
    });
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) setLive('disconnected', 'done');
      else setLive('reconnecting', '');
    });

    const view = await (await fetch('/api/run')).json();
    state.tasks = view.status.tasks.length > 0 ? view.status.tasks : Object.keys((view.steps[0] || { losses: {} }).losses);
    // The held-out curve shows each task's first metric (accuracy, mse, ...), else its loss.
    for (const t of state.tasks) state.evalMetric[t] = ((view.status.taskMetrics || {})[t] || [])[0] || 'loss';
    buildCharts();
    state.steps = view.steps.slice();
    state.lastStep = state.steps.length > 0 ? state.steps[state.steps.length - 1].step : 0;
    state.evals = view.evals.slice();
    for (const e of view.events) addEvent(e);
    setStatus(view.status);
    if (!view.status.live) setLive('finished run', 'done');
    ready = true;
    for (const [type, data] of pending) handle(type, data);
    redraw();
    window.addEventListener('resize', () => {
      for (const id of Object.keys(state.charts)) state.charts[id].setSize({ width: Math.max(300, $(id).clientWidth - 4), height: 240 });
    });
  }

  window.mtlDashboard = state;
  start().catch((err) => {
    $('message').textContent = `dashboard failed: ${err && err.message ? err.message : err}`;
  });
})();
