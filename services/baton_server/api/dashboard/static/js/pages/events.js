// The event feed: the newest stored events, then each new one as it is stored (filters by name
// and resource, as the API takes them).
import { get, stream } from "../api.js";
import { h, liveBadge, mount, when } from "../dom.js";

function row(event) {
  const resource = event.resource || {};
  return h(
    "tr",
    { "data-event": event.id },
    h("td", {}, when(event.occurred)),
    h("td", {}, h("a", { href: `#/events/${event.id}?occurred=${encodeURIComponent(event.occurred)}` }, event.event)),
    h("td", {}, resource["baton.resource.name"] || "", " ", h("span", { class: "muted" }, resource["baton.resource.id"] || "")),
  );
}

export async function render(search = "") {
  const params = new URLSearchParams(search);
  const filters = { name: params.get("name") || "", resource: params.get("resource") || "" };
  const form = h(
    "form",
    { class: "filters", id: "event-filters" },
    h("label", {}, "Name", h("input", { name: "name", value: filters.name, placeholder: "order.* or baton.flow-run.*" })),
    h("label", {}, "Resource", h("input", { name: "resource", value: filters.resource, placeholder: "baton.resource.id=order.*" })),
    h("button", { type: "submit", class: "primary" }, "Filter"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [name, value] of new FormData(form).entries()) if (value) next.append(name, value);
    location.hash = `#/events?${next.toString()}`;
  });
  const live = liveBadge();
  const body = h("tbody", { id: "events" });
  mount(h("h1", {}, "Events ", live), form, h("table", {}, h("thead", {}, h("tr", {}, ["Occurred", "Event", "Resource"].map((t) => h("th", {}, t)))), body));
  const wanted = { name: filters.name, resource: filters.resource };
  const page = await get("/events", { ...wanted, limit: 100 });
  const seen = new Set(page.items.map((e) => e.id));
  const empty = h("tr", { class: "empty" }, h("td", { colspan: 3, class: "muted" }, "No events match yet: new ones appear here as they are stored."));
  body.replaceChildren(...(page.items.length ? page.items.map(row) : [empty]));
  const source = stream("/events/stream", wanted, {
    onState: live.set,
    onEvent(event) {
      if (seen.has(event.id)) return;
      seen.add(event.id);
      empty.remove();
      body.prepend(row(event));
      while (body.children.length > 500) body.lastChild.remove();
    },
  });
  return () => source.close();
}
