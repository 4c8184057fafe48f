// The live tail of one task.
//
// Records come two ways: the history, paged from the REST API, and the live
// stream, from a subscription on the task's WebSocket. Every (re)connection
// runs the same sync: subscribe, hold the live records, page through the
// history from where the view ends (all of it the first time), then let the
// held records follow. A record is kept once, by id, so the overlap between
// the two ways, and the agent's resends, never show twice; and as the
// history is read after subscribing, nothing stored meanwhile is missed.
//
// The page stays quick with 100,000 lines: records live in an array, the
// filters keep an array of indexes into it, and only the rows in sight are
// in the DOM, placed by index (every row is ROW_HEIGHT pixels high).
"use strict";
(() => {
  const ROW_HEIGHT = 18;
  const OVERSCAN = 20; // rows drawn beyond the visible ones, for smooth scrolling
  const PAGE_SIZE = 1000; // the API's cap
  const RESYNC_MARGIN_MS = 5 * 60 * 1000; // history re-read before the newest record, after a drop
  const LEVELS = ["DEBUG", "INFO", "WARN", "ERROR"];
  const TAGS = { stdout: "out", stderr: "err", agent: "agent" };

  const taskId = decodeURIComponent(location.pathname.replace(/^\/tasks\//, ""));
  const $ = (id) => document.getElementById(id);
  const log = $("log"), spacer = $("spacer"), rows = $("rows"), status = $("status");

  const state = {
    records: [], // in the order shown
    ids: new Set(), // every id ever shown, so a cleared or repeated record stays out
    counts: Object.fromEntries(LEVELS.map((l) => [l, 0])),
    visible: [], // indexes into records that pass the filters
    sources: new Set(["stdout", "stderr", "agent"]),
    levels: new Set(LEVELS),
    search: "",
    paused: false,
    held: [], // arrived while paused
    follow: true,
    newest: null, // the latest timestamp seen, where a resync starts
  };
  window.kerutaViewer = state; // for tests and the curious: read, don't write

  $("task").textContent = taskId;
  document.title = `${taskId}: keruta logs`;

  // --- adding records -----------------------------------------------------------

  function add(records) {
    if (state.paused) {
      state.held.push(...records);
      $("pause").textContent = `resume (${state.held.length} new)`;
      return;
    }
    for (const record of records) {
      if (state.ids.has(record.id)) continue;
      state.ids.add(record.id);
      state.records.push(record);
      state.counts[record.level] = (state.counts[record.level] || 0) + 1;
      if (state.newest === null || record.timestamp > state.newest) state.newest = record.timestamp;
      if (passes(record)) state.visible.push(state.records.length - 1);
    }
    changed();
  }

  function passes(record) {
    return state.sources.has(record.source) && state.levels.has(record.level) &&
      (!state.search || record.message.toLowerCase().includes(state.search));
  }

  function refilter() {
    state.visible = [];
    state.records.forEach((record, index) => { if (passes(record)) state.visible.push(index); });
    changed();
  }

  // --- drawing ------------------------------------------------------------------

  let drawing = false;
  function changed() {
    if (!drawing) { drawing = true; requestAnimationFrame(draw); }
  }

  function draw() {
    drawing = false;
    for (const level of LEVELS) $(`count-${level}`).textContent = state.counts[level];
    $("shown").textContent = `${state.visible.length} of ${state.records.length} lines`;
    spacer.style.height = `${state.visible.length * ROW_HEIGHT}px`;
    if (state.follow) log.scrollTop = log.scrollHeight;
    const first = Math.max(0, Math.floor(log.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(state.visible.length, Math.ceil((log.scrollTop + log.clientHeight) / ROW_HEIGHT) + OVERSCAN);
    rows.style.top = `${first * ROW_HEIGHT}px`;
    const drawn = [];
    for (let i = first; i < last; i++) drawn.push(row(state.records[state.visible[i]]));
    rows.replaceChildren(...drawn);
  }

  function row(record) {
    const div = document.createElement("div");
    div.className = `row lvl-${record.level}`;
    div.dataset.id = record.id;
    div.dataset.source = record.source;
    div.dataset.line = record.lineNumber;
    div.append(
      span("ts", record.timestamp),
      span(`src src-${record.source}`, TAGS[record.source] || record.source),
      span(`lvl lvl-${record.level}`, record.level),
      span("msg", record.message),
    );
    return div;
  }

  function span(className, text) {
    const element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  // --- controls -----------------------------------------------------------------

  log.addEventListener("scroll", () => {
    // Scrolling up stops following; scrolling back to the end resumes it.
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - ROW_HEIGHT;
    if (state.follow !== atEnd) { state.follow = atEnd; $("autoscroll").checked = atEnd; }
    changed();
  });
  $("autoscroll").addEventListener("change", (event) => { state.follow = event.target.checked; changed(); });
  $("show-time").addEventListener("change", (event) => document.body.classList.toggle("no-time", !event.target.checked));
  $("pause").addEventListener("click", () => {
    state.paused = !state.paused;
    $("pause").classList.toggle("on", state.paused);
    $("pause").textContent = state.paused ? "resume" : "pause";
    if (!state.paused) { const held = state.held; state.held = []; add(held); }
  });
  $("clear").addEventListener("click", () => {
    state.records = []; state.visible = []; state.held = [];
    for (const level of LEVELS) state.counts[level] = 0;
    changed();
  });
  for (const [group, chosen] of [["sources", state.sources], ["levels", state.levels]]) {
    $(group).addEventListener("change", (event) => {
      if (event.target.checked) chosen.add(event.target.value); else chosen.delete(event.target.value);
      refilter();
    });
  }
  let searching = null;
  $("search").addEventListener("input", (event) => {
    clearTimeout(searching);
    searching = setTimeout(() => { state.search = event.target.value.toLowerCase(); refilter(); }, 150);
  });

  // --- connection ---------------------------------------------------------------

  let retryDelay = 500;

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/tasks/${encodeURIComponent(taskId)}`);
    let live = null; // records held while the history loads; null once synced
    ws.onopen = () => {
      if (api.token) ws.send(JSON.stringify({ type: "auth", token: api.token }));
      ws.send(JSON.stringify({ type: "subscribe", taskId, options: { batch: true } }));
    };
    ws.onmessage = async (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type === "subscribed") {
        live = [];
        await loadHistory();
        const held = live; live = null;
        add(held);
        retryDelay = 500;
        setStatus("live", "live");
      } else if (frame.type === "logs" || frame.type === "log") {
        const records = frame.type === "logs" ? frame.logs : [frame];
        if (live) live.push(...records); else add(records);
      } else if (frame.type === "error" && frame.skipped) {
        ws.close(); // this page fell behind: sync again, from the history
      } else if (frame.type === "error") {
        setStatus("down", `error: ${frame.message}`);
      }
    };
    ws.onclose = () => {
      setStatus("down", "reconnecting…");
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 5000);
    };
  }

  async function loadHistory() {
    let from = "";
    if (state.newest) {
      from = `&from=${new Date(Date.parse(state.newest) - RESYNC_MARGIN_MS).toISOString()}`;
    }
    setStatus("", "loading history…");
    for (let page = 0; ; page++) {
      let body;
      try {
        body = await api.get(`/tasks/${encodeURIComponent(taskId)}/logs?size=${PAGE_SIZE}&page=${page}${from}`);
      } catch (error) {
        if (error.status !== 404) setStatus("down", `history: ${error.message}`);
        return; // a task not seen yet has no history; its records will come live
      }
      add(body.content);
      if (body.last) return;
    }
  }

  function setStatus(kind, text) {
    status.className = kind;
    status.textContent = text;
  }

  connect();
})();
