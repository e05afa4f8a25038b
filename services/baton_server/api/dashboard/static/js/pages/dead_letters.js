// Dead letters: what RabbitMQ parked in baton.dead and why; inspect, replay, drop (admin).
import { can, get, post } from "../api.js";
import { h, mount, say, when } from "../dom.js";

export async function render() {
  const body = h("tbody", { id: "dead-letters" });
  mount(h("h1", {}, "Dead letters"), h("table", {}, h("thead", {}, h("tr", {}, ["Message", "Kind", "From", "Reason", "Parked", ""].map((t) => h("th", {}, t)))), body));
  async function act(what, id) {
    try {
      const outcome = await post(`/ui/dead_letters/${what}`, { message_ids: [id] });
      say(`${what}: ${outcome.done.length} done${Object.keys(outcome.failed).length ? `, failed: ${JSON.stringify(outcome.failed)}` : ""}`, true);
      await draw();
    } catch (error) {
      say(error.message);
    }
  }
  async function draw() {
    const letters = await get("/ui/dead_letters", { limit: 200 });
    body.replaceChildren(
      ...letters.map((d) =>
        h(
          "tr",
          { "data-letter": d.message_id },
          h("td", {}, h("details", {}, h("summary", {}, d.message_id), h("pre", {}, d.body))),
          h("td", {}, d.kind),
          h("td", {}, `${d.exchange} → ${d.routing_key} (${d.queue})`),
          h("td", {}, d.reason),
          h("td", {}, when(d.parked)),
          h("td", {}, can("admin") ? [h("button", { onclick: () => act("replay", d.message_id) }, "Replay"), " ", h("button", { class: "danger", onclick: () => act("drop", d.message_id) }, "Drop")] : null),
        ),
      ),
    );
    if (!letters.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "baton.dead is empty.")));
  }
  await draw();
}
