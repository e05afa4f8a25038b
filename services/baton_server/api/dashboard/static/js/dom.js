// A small element builder (text is always set as text, never parsed as HTML) and formatters.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value);
  }
  append(el, children);
  return el;
}

export function mount(...children) {
  const app = document.getElementById("app");
  app.replaceChildren(...children.flat().filter(Boolean));
  return app;
}

export function stateBadge(state) {
  const type = state ? state.type : "SCHEDULED";
  const name = state ? state.name || type : "?";
  return h("span", { class: `state s-${type}`, "data-state": type, title: state && state.message ? state.message : name }, name);
}

export function when(value) {
  if (!value) return "";
  const date = new Date(value);
  return date.toLocaleString(undefined, { hour12: false });
}

export function ago(value) {
  if (!value) return "";
  const seconds = (Date.now() - new Date(value).getTime()) / 1000;
  if (Math.abs(seconds) < 60) return seconds >= 0 ? `${Math.round(seconds)}s ago` : `in ${Math.round(-seconds)}s`;
  if (Math.abs(seconds) < 3600) return seconds >= 0 ? `${Math.round(seconds / 60)}m ago` : `in ${Math.round(-seconds / 60)}m`;
  return when(value);
}

export function duration(start, end) {
  if (!start) return "";
  const seconds = ((end ? new Date(end) : new Date()) - new Date(start)) / 1000;
  return seconds < 60 ? `${seconds.toFixed(1)}s` : `${Math.floor(seconds / 60)}m ${Math.round(seconds % 60)}s`;
}

export function json(value) {
  return h("pre", {}, JSON.stringify(value, null, 2));
}

export function say(message, ok = false) {
  const banner = document.getElementById("banner");
  banner.textContent = message;
  banner.className = ok ? "ok" : "";
  banner.hidden = !message;
}

// Calls `fn` at most once per `ms`, the last call winning: live updates batch their re-reads.
export function throttle(fn, ms) {
  let timer = null;
  let again = false;
  return () => {
    if (timer) {
      again = true;
      return;
    }
    fn();
    timer = setTimeout(function tick() {
      timer = null;
      if (again) {
        again = false;
        fn();
        timer = setTimeout(tick, ms);
      }
    }, ms);
  };
}

export function liveBadge() {
  const el = h("span", { class: "live off", "data-live": "off" }, "○ connecting");
  el.set = (on) => {
    el.className = on ? "live" : "live off";
    el.dataset.live = on ? "on" : "off";
    el.textContent = on ? "● live" : "○ reconnecting";
  };
  return el;
}

export const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "CRASHED"]);
export const STATES = ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED", "PAUSED", "CANCELLING"];
