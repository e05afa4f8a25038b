// Deployments: schedules with their next times, triggers, the Late count; pause and resume.
import { can, get, post, stream } from "../api.js";
import { h, liveBadge, mount, say, throttle, when } from "../dom.js";

function scheduleText(item) {
  const s = item.schedule;
  const what = s.cron ? `cron ${s.cron}` : s.interval ? `every ${s.interval}s` : s.rrule ? `rrule ${s.rrule}` : JSON.stringify(s);
  return `${item.slug || ""}: ${what}${item.active ? "" : " (paused)"}`;
}

export async function render() {
  const live = liveBadge();
  const body = h("tbody", { id: "deployments" });
  mount(
    h("h1", {}, "Deployments ", live),
    h("table", {}, h("thead", {}, h("tr", {}, ["Deployment", "Work pool", "Schedules and next runs", "Triggers", "Late", "Status", ""].map((t) => h("th", {}, t)))), body),
  );
  async function draw() {
    const items = await get("/ui/deployments");
    body.replaceChildren(
      ...items.map((d) =>
        h(
          "tr",
          { "data-deployment": d.id },
          h("td", {}, h("a", { href: `#/deployments/${d.id}` }, `${d.flow_name} / ${d.name}`)),
          h("td", {}, `${d.work_pool_name} / ${d.work_queue_name}`),
          h("td", {}, d.schedules.length ? d.schedules.map((s) => h("div", {}, scheduleText(s), s.next.length ? h("div", { class: "muted" }, "next: ", s.next.map(when).join(", ")) : null)) : h("span", { class: "muted" }, "none")),
          h("td", {}, d.triggers.length ? d.triggers.map((t) => h("div", {}, h("a", { href: `#/automations/${encodeURIComponent(t.name)}` }, t.name), t.enabled ? "" : " (disabled)")) : h("span", { class: "muted" }, "none")),
          h("td", { class: "late" }, String(d.late)),
          h("td", { class: "paused" }, d.paused ? "paused" : "active"),
          h(
            "td",
            {},
            h("a", { href: `#/runs?deployment_id=${d.id}` }, "runs"),
            " ",
            can("run") ? h("a", { href: `#/deployments/${d.id}`, class: "button" }, "Run…") : null,
            " ",
            can("deploy")
              ? h("button", { class: "pause", onclick: () => post(`/deployments/${d.id}/${d.paused ? "resume" : "pause"}`).then(draw).catch((e) => say(e.message)) }, d.paused ? "Resume" : "Pause")
              : null,
          ),
        ),
      ),
    );
    if (!items.length) body.append(h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No deployments yet: `baton deploy`.")));
  }
  await draw();
  const again = throttle(() => draw().catch(() => {}), 2000);
  // every run's change: a run leaving Late (taken at last, cancelled) lowers its Late count
  const source = stream("/events/stream", { name: ["baton.deployment.*", "baton.flow-run.*"] }, { onState: live.set, onEvent: again });
  return () => source.close();
}
