// A run's page: its state timeline, task runs as a graph (edges from their inputs, subflows
// linked), live logs, parameters, result, artifacts, parent and child runs; cancel, retry and
// resume.
import { can, get, post, stream } from "../api.js";
import { TERMINAL, duration, h, json, liveBadge, mount, say, stateBadge, svg, throttle, when } from "../dom.js";

const LEVELS = { 10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL" };

function graphView(graph) {
  const tasks = graph.task_runs;
  if (!tasks.length) return h("p", { class: "muted", id: "graph-empty" }, "No task runs yet.");
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const subflows = new Map(graph.children.filter((c) => c.parent_task_run_id).map((c) => [c.parent_task_run_id, c]));
  const depth = new Map();
  const upstream = (task) =>
    Object.values(task.task_inputs || {}).flat().filter((i) => i.input_type === "task_run" && byId.has(i.id)).map((i) => i.id);
  const level = (task, seen = new Set()) => {
    if (depth.has(task.id)) return depth.get(task.id);
    if (seen.has(task.id)) return 0;
    seen.add(task.id);
    const ups = upstream(task);
    const d = ups.length ? 1 + Math.max(...ups.map((u) => level(byId.get(u), seen))) : 0;
    depth.set(task.id, d);
    return d;
  };
  const columns = [];
  for (const task of tasks) {
    const d = level(task);
    (columns[d] = columns[d] || []).push(task);
  }
  const W = 170, H = 30, GX = 40, GY = 12;
  const place = new Map();
  columns.forEach((column, x) => column.forEach((task, y) => place.set(task.id, { x: 10 + x * (W + GX), y: 10 + y * (H + GY) })));
  const width = 20 + columns.length * (W + GX);
  const height = 20 + Math.max(...columns.map((c) => c.length)) * (H + GY);
  const edges = [];
  for (const task of tasks) {
    for (const up of upstream(task)) {
      const a = place.get(up), b = place.get(task.id);
      edges.push(svg("line", { x1: a.x + W, y1: a.y + H / 2, x2: b.x, y2: b.y + H / 2 }));
    }
  }
  const nodes = tasks.map((task) => {
    const p = place.get(task.id);
    const child = subflows.get(task.id);
    const type = task.state ? task.state.type : "SCHEDULED";
    const label = `${child ? "↳ " : ""}${task.name}`.slice(0, 26);
    const group = svg(
      "g",
      { class: "node", "data-task": task.id, "data-state": type },
      svg("title", {}, `${task.name}: ${task.state ? task.state.name : ""} ${duration(task.start_time, task.end_time)}`),
      svg("rect", { x: p.x, y: p.y, width: W, height: H, rx: 5, class: `f-${type}` }),
      svg("text", { x: p.x + 8, y: p.y + 19 }, label),
    );
    if (child) {
      const link = svg("a", { href: `#/runs/${child.id}` }, group);
      return link;
    }
    return group;
  });
  return svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, id: "task-graph" }, edges, nodes);
}

function timeline(states) {
  return h(
    "table",
    { id: "timeline" },
    h("thead", {}, h("tr", {}, ["#", "State", "When", "Message"].map((t) => h("th", {}, t)))),
    h("tbody", {}, states.map((s) => h("tr", {}, h("td", {}, s.version), h("td", {}, stateBadge(s)), h("td", {}, when(s.timestamp)), h("td", {}, s.message || "")))),
  );
}

function relatives(graph) {
  const items = [];
  if (graph.parent) items.push(h("li", {}, "parent: ", h("a", { href: `#/runs/${graph.parent.id}` }, `${graph.parent.flow_name} / ${graph.parent.name}`), " ", stateBadge(graph.parent.state)));
  for (const child of graph.children) items.push(h("li", { "data-child": child.id }, child.parent_task_run_id ? "subflow: " : "child: ", h("a", { href: `#/runs/${child.id}` }, `${child.flow_name} / ${child.name}`), " ", stateBadge(child.state)));
  return items.length ? h("ul", { id: "relatives" }, items) : h("p", { class: "muted" }, "No parent or child runs.");
}

// An artifact as its kind reads: markdown as its text (not rendered: nothing a run wrote runs
// here), a table as a table, a link as a link (http and https only).
function artifactBody(artifact) {
  const data = artifact.data;
  if (artifact.type === "link") {
    const url = String((data && data.link) || "");
    const text = (data && data.link_text) || url;
    return /^https?:\/\//i.test(url) ? h("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, text) : h("span", {}, text);
  }
  if (artifact.type === "table") {
    let rows = Array.isArray(data) ? data : [];
    let columns = [];
    if (!Array.isArray(data) && data && typeof data === "object") {
      columns = Object.keys(data); // column -> list of cells
      const length = Math.max(0, ...columns.map((c) => (Array.isArray(data[c]) ? data[c].length : 0)));
      rows = Array.from({ length }, (_, i) => Object.fromEntries(columns.map((c) => [c, (data[c] || [])[i]])));
    } else if (rows.length && !Array.isArray(rows[0])) {
      columns = [...new Set(rows.flatMap((row) => Object.keys(row || {})))];
    }
    const cell = (value) => h("td", {}, value === undefined || value === null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value));
    return h(
      "table",
      { class: "artifact-table" },
      columns.length ? h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", {}, c)))) : null,
      h("tbody", {}, ...rows.map((row) => h("tr", {}, ...(Array.isArray(row) ? row.map(cell) : columns.map((c) => cell(row[c])))))),
    );
  }
  return h("pre", { class: "artifact-markdown" }, String(data ?? ""));
}

function artifacts(list) {
  if (!list.length) return h("p", { class: "muted" }, "No artifacts.");
  return h(
    "div",
    { id: "artifacts" },
    ...list.map((artifact) =>
      h(
        "div",
        { class: "card", "data-artifact": artifact.key || artifact.id, "data-type": artifact.type },
        h("h3", {}, artifact.key || "(no key)", " ", h("span", { class: "muted" }, `${artifact.type} · ${when(artifact.created)}`)),
        artifact.description ? h("p", {}, artifact.description) : null,
        artifactBody(artifact),
      ),
    ),
  );
}

function read(id) {
  return Promise.all([
    get(`/flow_runs/${id}`),
    get(`/flow_runs/${id}/states`),
    get(`/ui/flow_runs/${id}/graph`),
    get(`/artifacts?flow_run_id=${id}`),
  ]);
}

export async function render(id) {
  let [run, states, graph, made] = await read(id); // at once: the page's first draw waits for all
  const live = liveBadge();
  const badge = h("span", { id: "run-state" }, stateBadge(run.state));
  const actions = h("div", { class: "actions", id: "run-actions" });
  const details = h("dl", { id: "run-details" });
  const timelineSlot = h("div");
  const graphSlot = h("div", { class: "graph" });
  const relativesSlot = h("div");
  const artifactsSlot = h("div");
  const logs = h("pre", { class: "logs", id: "logs" });
  mount(
    h("p", {}, h("a", { href: "#/runs" }, "← runs")),
    h("h1", {}, `${run.flow_name} / ${run.name} `, badge, " ", live),
    actions,
    h("div", { class: "grid" }, h("div", { class: "card" }, h("h2", {}, "Run"), details), h("div", { class: "card" }, h("h2", {}, "Parameters"), json(run.parameters)), h("div", { class: "card" }, h("h2", {}, "Result"), h("div", { id: "result" }))),
    h("h2", {}, "Task runs"),
    graphSlot,
    h("h2", {}, "Artifacts"),
    artifactsSlot,
    h("h2", {}, "Parent and child runs"),
    relativesSlot,
    h("h2", {}, "State timeline"),
    timelineSlot,
    h("h2", {}, "Logs"),
    logs,
  );

  function drawRun() {
    badge.replaceChildren(stateBadge(run.state));
    details.replaceChildren(
      ...[
        ["id", run.id],
        ["flow", run.flow_name],
        ["deployment", run.deployment_id ? h("a", { href: `#/deployments/${run.deployment_id}` }, run.deployment_id) : "none (ad hoc)"],
        ["work pool", run.work_pool_name ? `${run.work_pool_name} / ${run.work_queue_name || "default"}` : ""],
        ["worker", run.worker_id || ""],
        ["tags", (run.tags || []).join(", ")],
        ["runs", run.run_count],
        ["expected start", when(run.expected_start_time)],
        ["started", when(run.start_time)],
        ["ended", when(run.end_time)],
        ["duration", duration(run.start_time, run.end_time)],
      ].flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
    );
    document.getElementById("result").replaceChildren(
      ...[
        run.state.data ? json(run.state.data) : h("p", { class: "muted" }, TERMINAL.has(run.state.type) ? "No stored result." : "Not finished."),
        run.state.message ? h("p", {}, run.state.message) : null,
      ].filter(Boolean),
    );
    actions.replaceChildren();
    if (can("run") && !TERMINAL.has(run.state.type) && run.state.type !== "CANCELLING") {
      actions.append(h("button", { class: "danger", id: "cancel", onclick: () => act("cancel") }, "Cancel"));
    }
    if (can("run") && TERMINAL.has(run.state.type) && run.deployment_id) {
      actions.append(h("button", { class: "primary", id: "retry", onclick: () => act("retry") }, "Retry"));
    }
    if (can("run") && run.deployment_id && ["SCHEDULED", "PENDING", "RUNNING"].includes(run.state.type)) {
      actions.append(h("button", { id: "suspend", onclick: () => act("suspend", { reason: "paused from the dashboard" }) }, "Pause"));
    }
    if (can("run") && run.state.type === "PAUSED") {
      actions.append(h("button", { class: "primary", id: "resume", onclick: resume }, "Resume"));
    }
  }
  // A pause that waits for input asks for it (JSON); the server checks it against the pause's schema.
  async function resume() {
    const pause = run.state.data && run.state.data.pause;
    const schema = pause ? await get(`/flow_runs/${id}/inputs/${encodeURIComponent(pause.key)}-schema`).catch(() => null) : null;
    let body = {};
    if (schema) {
      const fields = Object.keys(schema.value.properties || {}).join(", ");
      const text = prompt(`Input for ${pause.key} (a JSON object: ${fields})`, "{}");
      if (text === null) return;
      try {
        body = { run_input: JSON.parse(text) };
      } catch (error) {
        say(`resume refused: the input is not JSON (${error.message})`);
        return;
      }
    }
    await act("resume", body);
  }
  async function act(what, body) {
    try {
      const result = await post(`/flow_runs/${id}/${what}`, body);
      say(`${what}: ${result.verdict}${result.reason ? ` (${result.reason})` : ""}`, result.verdict === "ACCEPT");
      await refresh();
    } catch (error) {
      say(`${what} refused: ${error.message}`);
    }
  }
  function draw() {
    drawRun();
    timelineSlot.replaceChildren(timeline(states));
    graphSlot.replaceChildren(graphView(graph));
    relativesSlot.replaceChildren(relatives(graph));
    artifactsSlot.replaceChildren(artifacts(made));
  }
  async function refresh() {
    [run, states, graph, made] = await read(id);
    draw();
  }
  draw();

  const again = throttle(() => refresh().catch(() => {}), 700);
  const changes = stream("/events/stream", { resource: `baton.resource.id=baton.flow-run.${id}` }, { onState: live.set, onEvent: again });
  let logStream = null;
  const follow = () => {
    logStream = stream("/logs/stream", { flow_run_id: id }, {
      type: "message",
      onEvent(record) {
        logs.append(`${when(record.timestamp)} ${LEVELS[record.level] || record.level} ${record.message}\n`);
        logs.scrollTop = logs.scrollHeight;
        again();
      },
      onEnd: () => again(),
    });
  };
  follow();
  return () => {
    changes.close();
    if (logStream) logStream.close();
  };
}
