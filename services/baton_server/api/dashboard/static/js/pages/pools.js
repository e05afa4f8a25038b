// Work pools with their queues and workers: online or offline, slots in use, runs waiting,
// concurrency limits. Re-read when runs change state or workers come and go.
import { get, stream } from "../api.js";
import { ago, h, liveBadge, mount, throttle } from "../dom.js";

function poolCard(pool) {
  return h(
    "div",
    { class: "card", "data-pool": pool.name },
    h("h2", {}, pool.name, " ", h("span", { class: "muted" }, `${pool.type}${pool.paused ? " · paused" : ""}`)),
    h("p", {}, `slots in use: ${pool.running}${pool.concurrency_limit !== null && pool.concurrency_limit !== undefined ? ` of ${pool.concurrency_limit}` : " (no pool limit)"}`),
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ["Queue", "Priority", "Limit", "Running", "Waiting", "Status"].map((t) => h("th", {}, t)))),
      h("tbody", {}, pool.queues.map((q) => h("tr", { "data-queue": q.name }, h("td", {}, q.name), h("td", {}, q.priority), h("td", {}, q.concurrency_limit ?? "none"), h("td", { class: "running" }, q.running), h("td", { class: "waiting" }, q.waiting), h("td", {}, q.paused ? "paused" : "active")))),
    ),
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ["Worker", "Status", "Slots", "Running", "Last heartbeat"].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        pool.workers.length
          ? pool.workers.map((w) => h("tr", { "data-worker": w.name }, h("td", {}, w.name), h("td", { class: "worker-status" }, h("span", { class: `dot ${w.online ? "online" : "offline"}` }), w.online ? "online" : "offline"), h("td", {}, w.slots ?? "∞"), h("td", {}, w.running), h("td", {}, ago(w.last_heartbeat))))
          : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No workers."))],
      ),
    ),
  );
}

export async function render() {
  const live = liveBadge();
  const slot = h("div", { id: "pools" });
  mount(h("h1", {}, "Work pools ", live), slot);
  async function draw() {
    const pools = await get("/ui/work_pools");
    slot.replaceChildren(...(pools.length ? pools.map(poolCard) : [h("p", { class: "muted" }, "No work pools.")]));
  }
  await draw();
  const again = throttle(() => draw().catch(() => {}), 2000);
  const source = stream("/events/stream", { name: ["baton.flow-run.*", "baton.worker.*", "baton.work-pool.*"] }, { onState: live.set, onEvent: again });
  return () => source.close();
}
