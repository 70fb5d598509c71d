// ARIA tabs (WAI-ARIA Authoring Practices, automatic activation): a tablist of buttons with
// aria-selected and a roving tabindex; Left/Right (wrapping), Home and End move between tabs and
// show their panel. `onSelect(id, panel)` fills a panel the first time it is shown (and on reselect).

import { h } from "../dom.js";

/** tabs({label, prefix, items: [{id, label}], selected, onSelect}) -> the element holding tabs and panels. */
export function tabs({ label, prefix, items, selected, onSelect }) {
  const buttons = [];
  const panels = [];
  const select = (index, { focus = false } = {}) => {
    buttons.forEach((button, i) => {
      const on = i === index;
      button.setAttribute("aria-selected", String(on));
      button.tabIndex = on ? 0 : -1;
      panels[i].hidden = !on;
    });
    if (focus) buttons[index].focus();
    onSelect(items[index].id, panels[index]);
  };
  items.forEach((item, index) => {
    const tabId = `${prefix}-tab-${item.id}`;
    const panelId = `${prefix}-panel-${item.id}`;
    buttons.push(h("button", {
      type: "button", role: "tab", id: tabId, class: "tab", "aria-controls": panelId,
      onclick: () => select(index),
      onkeydown: (event) => {
        const last = items.length - 1;
        const next = { ArrowRight: index === last ? 0 : index + 1, ArrowLeft: index === 0 ? last : index - 1,
          Home: 0, End: last }[event.key];
        if (next === undefined) return;
        event.preventDefault();
        select(next, { focus: true });
      },
    }, item.label));
    panels.push(h("div", { role: "tabpanel", id: panelId, class: "tabpanel", "aria-labelledby": tabId, tabindex: "0" }));
  });
  const root = h("div", { class: "tabs" }, h("div", { role: "tablist", "aria-label": label, class: "tablist" }, buttons), panels);
  const start = Math.max(0, items.findIndex((item) => item.id === selected));
  // Select after the caller has put `root` in the page.
  queueMicrotask(() => select(start));
  return root;
}
