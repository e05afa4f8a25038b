// One deployment: its schedules, recent runs, pause and resume, and a "run" form generated from
// its parameter schema, checked here before it is sent (and by the API again).
import { can, get, post } from "../api.js";
import { ago, h, mount, say, stateBadge, when } from "../dom.js";

function resolve(schema, root) {
  if (schema && schema.$ref && schema.$ref.startsWith("#/definitions/")) return root.definitions[schema.$ref.slice(14)] || {};
  if (schema && schema.$ref && schema.$ref.startsWith("#/$defs/")) return (root.$defs || {})[schema.$ref.slice(8)] || {};
  if (schema && schema.allOf && schema.allOf.length === 1) return resolve(schema.allOf[0], root);
  return schema || {};
}

function kindOf(spec) {
  if (spec.enum) return "enum";
  const types = [].concat(spec.type || (spec.anyOf || []).map((a) => a.type).filter((t) => t && t !== "null"));
  return types[0] || "any";
}

function fieldFor(name, spec, required, current) {
  const kind = kindOf(spec);
  const id = `param-${name}`;
  let input;
  const value = current !== undefined ? current : spec.default;
  if (kind === "boolean") input = h("input", { type: "checkbox", id, name, checked: !!value });
  else if (kind === "enum") input = h("select", { id, name }, spec.enum.map((v) => h("option", { value: JSON.stringify(v), selected: v === value }, String(v))));
  else if (kind === "integer" || kind === "number") input = h("input", { type: "text", inputmode: "decimal", id, name, value: value === undefined || value === null ? "" : String(value) });
  else if (kind === "string") input = h("input", { type: "text", id, name, value: value === undefined || value === null ? "" : value });
  else input = h("textarea", { id, name, rows: 3 }, value === undefined ? "" : JSON.stringify(value, null, 2));
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, spec.title || name, required ? " *" : ""),
    input,
    h("small", {}, [kind, spec.description].filter(Boolean).join(" · ")),
    h("span", { class: "error", "data-error": name }),
  );
}

// The form's values as parameters, or the errors that keep it from being sent.
function readForm(form, properties, required) {
  const values = {};
  const errors = {};
  for (const [name, spec] of Object.entries(properties)) {
    const input = form.elements[name];
    const kind = kindOf(spec);
    const raw = input.type === "checkbox" ? null : input.value.trim();
    if (kind === "boolean") {
      values[name] = input.checked;
      continue;
    }
    if (raw === "") {
      if (required.includes(name) && spec.default === undefined) errors[name] = "required";
      continue;
    }
    if (kind === "integer" || kind === "number") {
      const n = Number(raw);
      if (!Number.isFinite(n) || (kind === "integer" && !Number.isInteger(n))) errors[name] = `not ${kind === "integer" ? "an integer" : "a number"}: ${raw}`;
      else if (spec.minimum !== undefined && n < spec.minimum) errors[name] = `at least ${spec.minimum}`;
      else if (spec.maximum !== undefined && n > spec.maximum) errors[name] = `at most ${spec.maximum}`;
      else values[name] = n;
    } else if (kind === "string") {
      if (spec.minLength !== undefined && raw.length < spec.minLength) errors[name] = `at least ${spec.minLength} characters`;
      else if (spec.maxLength !== undefined && raw.length > spec.maxLength) errors[name] = `at most ${spec.maxLength} characters`;
      else if (spec.pattern && !new RegExp(spec.pattern).test(raw)) errors[name] = `does not match ${spec.pattern}`;
      else values[name] = input.value;
    } else if (kind === "enum") {
      values[name] = JSON.parse(raw);
    } else {
      try {
        values[name] = JSON.parse(raw);
        if (kind === "array" && !Array.isArray(values[name])) errors[name] = "not a JSON list";
        if (kind === "object" && (typeof values[name] !== "object" || Array.isArray(values[name]) || values[name] === null)) errors[name] = "not a JSON object";
      } catch {
        errors[name] = "not valid JSON";
      }
    }
  }
  return { values, errors };
}

export async function render(id) {
  const [d, recent, upcoming] = await Promise.all([
    get(`/deployments/${id}`),
    get("/flow_runs", { deployment_id: id, limit: 10 }),
    get(`/deployments/${id}/schedules/upcoming`, { n: 5 }),
  ]);
  const root = d.parameter_schema || {};
  const properties = Object.fromEntries(Object.entries(root.properties || {}).map(([k, v]) => [k, resolve(v, root)]));
  const required = root.required || [];
  const form = h("form", { id: "run-form", novalidate: true });
  form.append(
    ...Object.entries(properties).map(([name, spec]) => fieldFor(name, spec, required.includes(name), (d.parameters || {})[name])),
    Object.keys(properties).length ? null : h("p", { class: "muted" }, "This flow takes no parameters."),
    h("p", { class: "error", id: "run-form-error" }),
    h("button", { type: "submit", class: "primary", id: "run-submit" }, "Run"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const el of form.querySelectorAll("[data-error]")) el.textContent = "";
    form.querySelector("#run-form-error").textContent = "";
    const { values, errors } = readForm(form, properties, required);
    if (Object.keys(errors).length) {
      for (const [name, message] of Object.entries(errors)) form.querySelector(`[data-error="${name}"]`).textContent = message;
      form.querySelector("#run-form-error").textContent = "Fix the parameters above: nothing was sent.";
      return;
    }
    try {
      const run = await post(`/deployments/${id}/runs`, { parameters: values });
      location.hash = `#/runs/${run.id}`;
    } catch (error) {
      const detail = Array.isArray(error.detail) ? error.detail.map((e) => `${(e.loc || []).join(".")}: ${e.msg || e.message || JSON.stringify(e)}`).join("; ") : error.message;
      form.querySelector("#run-form-error").textContent = `Refused by the API: ${detail}`;
    }
  });
  const pause = h(
    "button",
    { id: "pause-deployment", onclick: async () => {
      try {
        await post(`/deployments/${id}/${d.paused ? "resume" : "pause"}`);
        await render(id);
      } catch (error) {
        say(error.message);
      }
    } },
    d.paused ? "Resume" : "Pause",
  );
  mount(
    h("p", {}, h("a", { href: "#/deployments" }, "← deployments")),
    h("h1", {}, `${d.flow_name} / ${d.name} `, h("span", { id: "deployment-status", class: "muted" }, d.paused ? "paused" : "active")),
    can("deploy") ? h("div", { class: "actions" }, pause) : null,
    h(
      "div",
      { class: "grid" },
      h("div", { class: "card" }, h("h2", {}, "Details"), h("dl", {}, [["entrypoint", d.entrypoint], ["work pool", `${d.work_pool_name} / ${d.work_queue_name}`], ["tags", (d.tags || []).join(", ")], ["description", d.description || ""]].flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v || "")]))),
      h("div", { class: "card" }, h("h2", {}, "Schedules"), upcoming.length ? upcoming.map((u) => h("div", {}, h("b", {}, u.slug || ""), u.active ? "" : " (paused)", h("div", { class: "muted" }, u.starts.map(when).join(", ")))) : h("p", { class: "muted" }, "No schedules.")),
      can("run") ? h("div", { class: "card" }, h("h2", {}, "Run it"), form) : null,
    ),
    h("h2", {}, "Recent runs ", h("a", { href: `#/runs?deployment_id=${id}&window=all` }, "all")),
    h("table", {}, h("tbody", {}, recent.items.map((r) => h("tr", {}, h("td", {}, h("a", { href: `#/runs/${r.id}` }, r.name)), h("td", {}, stateBadge(r.state)), h("td", {}, ago(r.created)))))),
  );
}
