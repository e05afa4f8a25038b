// The runs list: filters, a histogram of runs over time by state, keyset pages, live updates
// from the event stream (a state change updates its row; a new run re-reads the first page).
import { get, stream } from "../api.js";
import { STATES, ago, duration, h, liveBadge, mount, stateBadge, throttle } from "../dom.js";

const WINDOWS = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, all: null };

function filtersFrom(search) {
  const params = new URLSearchParams(search);
  return {
    state: params.getAll("state"),
    flow_name: params.get("flow_name") || "",
    deployment_id: params.get("deployment_id") || "",
    tag: params.get("tag") || "",
    window: params.get("window") || "24h",
  };
}

function apiParams(filters) {
  const seconds = WINDOWS[filters.window];
  return {
    state: filters.state,
    flow_name: filters.flow_name,
    deployment_id: filters.deployment_id,
    tag: filters.tag ? filters.tag.split(",").map((t) => t.trim()).filter(Boolean) : [],
    since: seconds ? new Date(Date.now() - seconds * 1000).toISOString() : undefined,
  };
}

function histogramView(data) {
  const max = Math.max(1, ...data.buckets.map((b) => Object.values(b.counts).reduce((a, n) => a + n, 0)));
  return h(
    "div",
    { class: "histogram", "data-total": data.buckets.reduce((a, b) => a + Object.values(b.counts).reduce((x, n) => x + n, 0), 0) },
    data.buckets.map((bucket) => {
      const bar = h("div", { class: "bar", title: `${new Date(bucket.start).toLocaleString()}: ${JSON.stringify(bucket.counts)}` });
      for (const type of STATES) {
        const n = bucket.counts[type];
        if (!n) continue;
        const seg = h("div", { class: `seg s-${type}` });
        seg.style.height = `${(100 * n) / max}%`;
        bar.append(seg);
      }
      return bar;
    }),
  );
}

function row(run) {
  const tr = h(
    "tr",
    { "data-run": run.id },
    h("td", {}, h("a", { href: `#/runs/${run.id}` }, run.name)),
    h("td", {}, run.flow_name),
    h("td", { class: "state-cell" }, stateBadge(run.state)),
    h("td", {}, (run.tags || []).join(", ")),
    h("td", { title: run.created }, ago(run.created)),
    h("td", {}, duration(run.start_time, run.end_time)),
  );
  return tr;
}

export async function render(search = "") {
  const filters = filtersFrom(search);
  // the deployment filter's choices arrive beside the first page, not before it
  const choices = h("select", { name: "deployment_id" }, h("option", { value: "" }, "any"));
  get("/deployments")
    .then((deployments) => choices.append(...deployments.map((d) => h("option", { value: d.id, selected: d.id === filters.deployment_id }, `${d.flow_name}/${d.name}`))))
    .catch(() => {});
  const form = h(
    "form",
    { class: "filters", id: "run-filters" },
    h("label", {}, "State", h("select", { name: "state", multiple: true, size: 3 }, STATES.map((s) => h("option", { value: s, selected: filters.state.includes(s) }, s)))),
    h("label", {}, "Flow", h("input", { name: "flow_name", value: filters.flow_name, placeholder: "flow name" })),
    h("label", {}, "Deployment", choices),
    h("label", {}, "Tags", h("input", { name: "tag", value: filters.tag, placeholder: "a,b" })),
    h("label", {}, "Created", h("select", { name: "window" }, Object.keys(WINDOWS).map((w) => h("option", { value: w, selected: w === filters.window }, w === "all" ? "any time" : `last ${w}`)))),
    h("button", { type: "submit", class: "primary" }, "Filter"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = new URLSearchParams();
    for (const [name, value] of data.entries()) if (value) next.append(name, value);
    location.hash = `#/runs?${next.toString()}`;
  });
  const live = liveBadge();
  const histogramSlot = h("div", { id: "histogram" });
  const body = h("tbody", { id: "runs" });
  const more = h("button", { type: "button", hidden: true }, "Older runs");
  mount(
    h("h1", {}, "Flow runs ", live),
    form,
    histogramSlot,
    h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Flow", "State", "Tags", "Created", "Duration"].map((t) => h("th", {}, t)))), body),
    h("p", {}, more),
  );

  const params = apiParams(filters);
  const rows = new Map();
  let cursor = null;

  async function firstPage() {
    const page = await get("/flow_runs", { ...params, limit: 50 });
    rows.clear();
    body.replaceChildren(...page.items.map((run) => {
      const tr = row(run);
      rows.set(run.id, { tr, version: run.state_version });
      return tr;
    }));
    if (!page.items.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No runs match.")));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  }
  async function histogram() {
    const windowSeconds = WINDOWS[filters.window] || 7 * 86400;
    const until = new Date();
    const data = await get("/ui/runs/histogram", { ...params, since: new Date(until - windowSeconds * 1000).toISOString(), until: until.toISOString(), buckets: 60 });
    histogramSlot.replaceChildren(histogramView(data));
  }
  more.addEventListener("click", async () => {
    const page = await get("/flow_runs", { ...params, limit: 50, cursor });
    for (const run of page.items) {
      const tr = row(run);
      rows.set(run.id, { tr, version: run.state_version });
      body.append(tr);
    }
    cursor = page.next_cursor;
    more.hidden = !cursor;
  });
  await Promise.all([firstPage(), histogram()]);

  const reread = throttle(() => firstPage().catch(() => {}), 1000);
  const rechart = throttle(() => histogram().catch(() => {}), 3000);
  const source = stream("/events/stream", { name: "baton.flow-run.*" }, {
    onState: live.set,
    onEvent(event) {
      const id = event.resource["baton.resource.id"].slice("baton.flow-run.".length);
      const known = rows.get(id);
      const version = event.payload && event.payload.state_version;
      rechart();
      if (known) {
        if (version && version < known.version) return;
        known.version = version || known.version;
        known.tr.querySelector(".state-cell").replaceChildren(
          stateBadge({ type: event.resource["baton.state-type"], name: event.resource["baton.state-name"], message: event.resource["baton.state-message"] }),
        );
      } else {
        reread(); // a run this page has not seen: newest first, so it belongs on the first page
      }
    },
  });
  return () => source.close();
}
