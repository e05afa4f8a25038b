// One automation: its trigger and actions, and its firings with each action's outcome, live.
import { can, get, post, stream } from "../api.js";
import { h, json, liveBadge, mount, say, throttle, when } from "../dom.js";

export async function render(name) {
  const live = liveBadge();
  const head = h("div");
  const firings = h("tbody", { id: "firings" });
  mount(h("p", {}, h("a", { href: "#/automations" }, "← automations")), head, h("h2", {}, "Firings ", live), h("table", {}, h("thead", {}, h("tr", {}, ["When", "Kind", "Outcome", "Events", "Actions"].map((t) => h("th", {}, t)))), firings));
  async function draw() {
    const [a, page] = await Promise.all([get(`/automations/${encodeURIComponent(name)}`), get(`/automations/${encodeURIComponent(name)}/firings`, { limit: 100 })]);
    head.replaceChildren(...[
      h("h1", {}, a.name, " ", h("span", { class: "muted", id: "automation-status" }, a.enabled ? "enabled" : "disabled")),
      can("deploy") ? h("div", { class: "actions" }, h("button", { id: "toggle", onclick: () => post(`/automations/${encodeURIComponent(name)}/${a.enabled ? "pause" : "resume"}`).then(draw).catch((e) => say(e.message)) }, a.enabled ? "Disable" : "Enable")) : null,
      a.description ? h("p", {}, a.description) : null,
      h("div", { class: "grid" }, h("div", { class: "card" }, h("h2", {}, "Trigger"), json(a.trigger)), h("div", { class: "card" }, h("h2", {}, "Actions"), json(a.actions))),
    ].filter(Boolean));
    firings.replaceChildren(
      ...page.items.map((f) =>
        h(
          "tr",
          { "data-firing": f.id },
          h("td", {}, when(f.created)),
          h("td", {}, f.kind),
          h("td", { class: "outcome" }, f.ok === null ? "pending" : f.ok ? "ok" : "failed"),
          h("td", {}, f.event_ids.length, " event(s)"),
          h("td", {}, (f.actions || []).map((x) => h("div", {}, `${x.type} ${x.ok === null ? "pending" : x.ok ? "ok" : "failed"}: ${x.detail}`, x.flow_run_id ? [" ", h("a", { href: `#/runs/${x.flow_run_id}` }, "run")] : null))),
        ),
      ),
    );
    if (!page.items.length) firings.append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "It has not fired yet.")));
  }
  await draw();
  const again = throttle(() => draw().catch(() => {}), 1000);
  const source = stream("/events/stream", {}, { onState: live.set, onEvent: again });
  return () => source.close();
}
