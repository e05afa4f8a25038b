// One event: its resource, related resources, payload, and the automations it fired.
import { get } from "../api.js";
import { h, json, mount, when } from "../dom.js";

function labels(resource) {
  return h("dl", {}, Object.entries(resource).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function link(resource) {
  const id = resource["baton.resource.id"] || "";
  if (id.startsWith("baton.flow-run.")) return h("a", { href: `#/runs/${id.slice(15)}` }, id);
  if (id.startsWith("baton.deployment.")) return h("a", { href: `#/deployments/${id.slice(17)}` }, id);
  return id;
}

export async function render(id, search) {
  const occurred = new URLSearchParams(search).get("occurred");
  const { event, firings } = await get(`/ui/events/${id}`, { occurred });
  mount(
    h("p", {}, h("a", { href: "#/events" }, "← events")),
    h("h1", {}, event.event),
    h("p", { class: "muted" }, `occurred ${when(event.occurred)} · received ${when(event.received)} · id ${event.id}`),
    h("div", { class: "grid" }, h("div", { class: "card" }, h("h2", {}, "Resource ", link(event.resource)), labels(event.resource)), h("div", { class: "card" }, h("h2", {}, "Payload"), json(event.payload))),
    h("h2", {}, "Related"),
    h("table", {}, h("tbody", {}, event.related.length ? event.related.map((r) => h("tr", {}, h("td", {}, r["baton.resource.role"] || ""), h("td", {}, link(r)), h("td", {}, r["baton.resource.name"] || ""))) : [h("tr", {}, h("td", { class: "muted" }, "None."))])),
    h("h2", {}, "Automations it fired"),
    h(
      "table",
      { id: "event-firings" },
      h("tbody", {}, firings.length ? firings.map((f) => h("tr", { "data-firing": f.id }, h("td", {}, h("a", { href: `#/automations/${encodeURIComponent(f.automation_name)}` }, f.automation_name)), h("td", {}, f.kind), h("td", {}, f.ok === null ? "pending" : f.ok ? "ok" : "failed"), h("td", {}, when(f.created)), h("td", {}, json(f.actions)))) : [h("tr", {}, h("td", { class: "muted" }, "None."))]),
    ),
  );
}
