// Labelled form controls (GOV.UK question pattern): label, optional hint, then the control.

import { h } from "../dom.js";

/** field({id, label, hint, control: "textarea"|"input", ...attributes}) -> {group, control}. */
export function field({ id, label, hint, control = "input", ...attributes }) {
  const hintId = hint ? `${id}-hint` : null;
  const element = h(control, { id, name: id, class: `control control--${control}`, "aria-describedby": hintId, ...attributes });
  const group = h("div", { class: "form-group" },
    h("label", { for: id, class: "label", text: label }),
    hint ? h("p", { id: hintId, class: "hint", text: hint }) : null,
    element);
  return { group, control: element };
}

/** A link that looks and acts as a button (GOV.UK "start button" pattern): Space activates it too. */
export function buttonLink(href, text, attributes = {}) {
  return h("a", {
    href, role: "button", draggable: "false", class: "button", ...attributes,
    onkeydown: (event) => {
      if (event.key === " ") {
        event.preventDefault();
        event.currentTarget.click();
      }
    },
  }, text);
}
