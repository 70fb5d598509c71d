// Building the page. Every piece of text goes in through textContent (never innerHTML), so HTML in an
// API value (a customer's friendly name, say) shows as text and never runs.

/**
 * h("a", {href: "#/x", class: "link"}, "text", child, ...) -> an element.
 * Attributes: `class`, `text` (textContent), `on<event>` (a listener function), `hidden`/`disabled`
 * booleans, anything else through setAttribute. Children: strings (text nodes), nodes, arrays, null.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") element.textContent = String(value);
    else if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace everything inside `parent`. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** A description list from [term, value] pairs (values: text or nodes; null rows left out). */
export function summaryList(rows) {
  return h(
    "dl",
    { class: "summary-list" },
    rows
      .filter((row) => row && row[1] !== null && row[1] !== undefined && row[1] !== "")
      .map(([term, value]) => h("div", { class: "summary-list__row" }, h("dt", {}, term), h("dd", {}, value))),
  );
}

/** A new random key for one attempt at one action (Idempotency-Key). */
export function newKey() {
  return crypto.randomUUID();
}

/**
 * The key for the next attempt after a failed one (`error` an ApiError): the same until a definite answer (no
 * answer, status 0, or a 5xx, which may come after the API did the work: a retry with the key is answered with
 * the first outcome), a new one after a refusal (4xx: the next attempt is another one).
 */
export function keyAfter(error, key) {
  return error.status === 0 || error.status >= 500 ? key : newKey();
}

/**
 * A data table: table({caption, columns: ["Name", ...], rows: [[cell, ...], ...]}). The first cell of a
 * row is its header; every cell carries its column's name (data-label) for the narrow-screen layout.
 */
export function table({ caption, columns, rows, captionHidden = false }) {
  return h("div", { class: "table-wrap" }, h("table", { class: "table" },
    h("caption", { class: captionHidden ? "visually-hidden" : "caption", text: caption }),
    h("thead", {}, h("tr", {}, columns.map((column) => h("th", { scope: "col", text: column })))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((value, i) =>
      h(i === 0 ? "th" : "td", { scope: i === 0 ? "row" : null, "data-label": columns[i] }, value)))))));
}
