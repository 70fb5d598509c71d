// Sign in. Local stack (config.auth "local"): choose a demo partner and roles; POST /_local/tokens issues
// the token. OIDC (config.auth "oidc", as on AWS): one button to the identity provider (oidc.js); after a
// failed answer from it the route is #/signin?failed=1.

import { ApiError, post } from "../api.js";
import { config } from "../config.js";
import { h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { navigate, returnAddress, setTitle } from "../router.js";
import { errorSummary } from "../components/problems.js";
import { session, signIn } from "../session.js";

function notice(text) {
  return h("div", { class: "notice notice--error", role: "alert" }, h("p", { text }));
}

/** Why the user is here again: the sign-in failed, or the last session ended by itself. */
function reason(query) {
  if (query.failed) return notice(t("signin.oidc_failed"));
  return session.ended() ? notice(t("signin.session_ended")) : null;
}

/** After signing in: the address the user was sent here from (`next`), else the engagements. */
function goOn(query) {
  const next = returnAddress(query.next);
  if (next) location.replace(`#${next}`);
  else navigate("/engagements");
}

function oidcSignInView({ main, query }) {
  const problems = h("div", {}, reason(query));
  const button = h("button", { type: "button", class: "button", text: t("signin.submit") });
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await (await import("../oidc.js")).startSignIn(returnAddress(query.next));
    } catch {
      replace(problems, notice(t("signin.oidc_unavailable")));
      button.disabled = false;
    }
  });
  replace(main, h("h1", { text: t("signin.title") }), h("p", { class: "lead", text: t("signin.oidc_intro") }), problems, button);
}

export async function signInView({ main, query }) {
  setTitle(t("signin.title"));
  if (config.auth === "oidc") return oidcSignInView({ main, query });
  const partners = config.demo.partners || [];
  const roles = config.demo.roles || [];
  const partner = h("fieldset", { class: "fieldset" },
    h("legend", { class: "legend", text: t("signin.partner") }),
    partners.map((id, i) => h("div", { class: "choice" },
      h("input", { type: "radio", name: "partner", id: `partner-${id}`, value: id, checked: i === 0 }),
      h("label", { for: `partner-${id}`, text: id }))));
  const role = h("fieldset", { class: "fieldset" },
    h("legend", { class: "legend", text: t("signin.roles") }),
    h("p", { class: "hint", text: t("signin.roles_hint") }),
    roles.map((name, i) => h("div", { class: "choice" },
      h("input", { type: "checkbox", name: "role", id: `role-${name}`, value: name, checked: i === 0 }),
      h("label", { for: `role-${name}` }, t(`role.${name}`), " ", h("code", { text: name })))));
  const problems = h("div", {}, reason(query));
  const form = h("form", { class: "form", novalidate: true }, problems, partner, role,
    h("button", { type: "submit", class: "button", text: t("signin.submit") }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      const answer = await post("/_local/tokens", { partner_id: data.get("partner"), roles: data.getAll("role") }, { token: null });
      signIn(answer.token);
      goOn(query);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replace(problems, errorSummary(error));
      problems.firstChild.focus();
    }
  });
  replace(main, h("h1", { text: t("signin.title") }), h("p", { class: "lead", text: t("signin.intro") }), form);
}
