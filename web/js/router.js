// The hash router: "#/engagements/{id}/customers?tab=eligible" -> a view. A view is
// `async ({params, query, main}) => void`; it fills `main` (the page's <main>) and sets the title.
// After each render the view's <h1> gets focus, so screen readers announce the new page.

import { t } from "./i18n.js";
import { h, replace } from "./dom.js";

const routes = [];
let notFound = null;
let guard = null;
let rendering = 0;

/** route("/engagements/{id}/customers", view): {id} matches one path segment. */
export function route(pattern, view) {
  const names = [];
  const source = pattern.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{(\w+)\}/g, (whole, name) => {
    names.push(name);
    return "([^/]+)";
  });
  routes.push({ regex: new RegExp(`^${source}$`), names, view });
}

export function fallback(view) {
  notFound = view;
}

/** before(({path}) => {path, query} | null): where to go instead (e.g. sign in first, then come back). */
export function before(check) {
  guard = check;
}

export function href(path, query = {}) {
  const search = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== null && v !== undefined && v !== ""));
  const text = search.toString();
  return `#${path}${text ? `?${text}` : ""}`;
}

/**
 * The address to come back to after signing in (`next`), from the current one: a route of the app, never
 * Sign in itself; null when there is none.
 */
export function returnAddress(next = location.hash.replace(/^#/, "")) {
  return typeof next === "string" && next.startsWith("/") && !next.startsWith("//") && !/^\/signin(\?|$)/.test(next) && next !== "/" ? next : null;
}

export function navigate(path, query = {}) {
  const target = href(path, query);
  if (location.hash === target) render();
  else location.hash = target;
}

function current() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?");
  return { path, query: Object.fromEntries(new URLSearchParams(search)) };
}

export function setTitle(text) {
  document.title = `${text} · ${t("app.name")}`;
}

/**
 * Focus the page's heading (tabindex -1 so it can take focus without joining the tab order), or the
 * element the view marked with data-focus (e.g. the field of the form a link asked for).
 */
export function focusHeading(main) {
  const marked = main.querySelector("[data-focus]");
  if (marked) {
    marked.removeAttribute("data-focus");
    marked.focus();
    return;
  }
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

export async function render() {
  const main = document.getElementById("main");
  const { path, query } = current();
  const redirect = guard ? guard({ path }) : null;
  if (redirect && redirect.path !== path) {
    location.replace(href(redirect.path, redirect.query)); // replace: Back does not return to a page that bounces
    return;
  }
  const ticket = ++rendering;
  for (const { regex, names, view } of routes) {
    const found = regex.exec(path);
    if (!found) continue;
    const params = Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(found[i + 1])]));
    main.setAttribute("aria-busy", "true");
    try {
      await view({ params, query, main, isCurrent: () => ticket === rendering });
    } catch (error) {
      if (ticket !== rendering) return;
      replace(main, h("h1", { text: t("error.unexpected.title") }), h("p", { text: String(error.message || error) }));
    } finally {
      main.removeAttribute("aria-busy");
    }
    if (ticket === rendering) focusHeading(main);
    return;
  }
  if (notFound) await notFound({ params: {}, query, main, isCurrent: () => ticket === rendering });
  focusHeading(main);
}

export function start() {
  window.addEventListener("hashchange", render);
  return render();
}
