// The dashboard: hash routes (#/runs, #/runs/ID, ...), each a page module with render(args)
// returning a cleanup function that closes its live streams.
import { loadSession } from "./api.js";
import { say } from "./dom.js";

// Each route matches the path before "?"; a page gets its path's parts (decoded) and then the
// query string as it stands (still encoded, for URLSearchParams: decoding it first would turn
// "+00:00" into " 00:00" and an encoded "&" into a separator).
const ROUTES = [
  [/^#\/runs\/([0-9a-f-]{36})$/, "run", "runs"],
  [/^#\/runs$/, "runs", "runs"],
  [/^#\/deployments\/([0-9a-f-]{36})$/, "deployment", "deployments"],
  [/^#\/deployments$/, "deployments", "deployments"],
  [/^#\/work-pools$/, "pools", "work-pools"],
  [/^#\/events\/([0-9a-f-]{36})$/, "event", "events"],
  [/^#\/events$/, "events", "events"],
  [/^#\/automations\/(.+)$/, "automation", "automations"],
  [/^#\/automations$/, "automations", "automations"],
  [/^#\/dead-letters$/, "dead_letters", "dead-letters"],
];

let cleanup = null;
let generation = 0;

// The page a hash shows, its nav entry, and its arguments; null for an unknown hash.
function match(hash) {
  const split = hash.indexOf("?");
  const path = split < 0 ? hash : hash.slice(0, split);
  const found = ROUTES.find(([pattern]) => pattern.test(path));
  if (!found) return null;
  const [pattern, page, nav] = found;
  const args = [...path.match(pattern).slice(1).map((a) => decodeURIComponent(a)), split < 0 ? "" : hash.slice(split + 1)];
  return { page, nav, args };
}

async function route() {
  const found = match(location.hash || "#/runs");
  if (!found) {
    location.hash = "#/runs";
    return;
  }
  const { page, nav, args } = found;
  if (cleanup) cleanup();
  cleanup = null;
  say("");
  for (const link of document.querySelectorAll("[data-nav]")) link.classList.toggle("active", link.dataset.nav === nav);
  const mine = ++generation;
  try {
    const module = await import(`./pages/${page}.js`);
    const done = await module.render(...args);
    if (mine === generation) cleanup = done || null;
    else if (done) done();
  } catch (error) {
    if (mine === generation) say(error.message || String(error));
  }
}

async function start() {
  const first = match(location.hash || "#/runs");
  if (first) import(`./pages/${first.page}.js`).catch(() => {}); // fetched while the session is read
  const session = await loadSession();
  const who = document.getElementById("who");
  if (session.auth) {
    who.textContent = `${session.name} · ${session.scopes.join(", ")}`;
    document.getElementById("signout").hidden = false;
  } else {
    who.textContent = "no authentication";
  }
  window.addEventListener("hashchange", route);
  await route();
}

start().catch((error) => say(error.message || String(error)));
