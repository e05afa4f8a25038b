// Automations: triggers, actions, enabled or not; enable and disable (a deploy key).
import { can, get, post } from "../api.js";
import { h, mount, say } from "../dom.js";

function triggerText(trigger) {
  if (trigger.type === "compound" || trigger.type === "sequence") {
    return `${trigger.type} (${trigger.require || ""}) of ${trigger.triggers.map(triggerText).join("; ")}`;
  }
  const names = (trigger.expect || []).join(" | ") || "any event";
  const match = Object.entries(trigger.match || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  return `${trigger.posture || ""} ${names}${match ? ` [${match}]` : ""}${trigger.threshold > 1 ? ` ×${trigger.threshold}` : ""}${trigger.within ? ` within ${trigger.within}s` : ""}`.trim();
}

export async function render() {
  const body = h("tbody", { id: "automations" });
  mount(h("h1", {}, "Automations"), h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Trigger", "Actions", "Status", ""].map((t) => h("th", {}, t)))), body));
  async function draw() {
    const items = await get("/automations");
    body.replaceChildren(
      ...items.map((a) =>
        h(
          "tr",
          { "data-automation": a.name },
          h("td", {}, h("a", { href: `#/automations/${encodeURIComponent(a.name)}` }, a.name)),
          h("td", {}, triggerText(a.trigger)),
          h("td", {}, a.actions.map((x) => x.type).join(", ")),
          h("td", { class: "enabled" }, a.enabled ? "enabled" : "disabled"),
          h("td", {}, can("deploy") ? h("button", { class: "toggle", onclick: () => post(`/automations/${encodeURIComponent(a.name)}/${a.enabled ? "pause" : "resume"}`).then(draw).catch((e) => say(e.message)) }, a.enabled ? "Disable" : "Enable") : null),
        ),
      ),
    );
    if (!items.length) body.append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No automations.")));
  }
  await draw();
}
