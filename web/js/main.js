// The partner web app's entry: configuration, language, the header, and the routes.
// Plain ES modules, no framework and no build step. To add a view: write web/js/views/<name>.js
// exporting an async view ({params, query, main, isCurrent}), and add one route(...) line below.

import { SESSION_ENDED, configure } from "./api.js";
import { config, loadConfig } from "./config.js";
import { h, replace } from "./dom.js";
import { LANGUAGES, currentLanguage, preferredLanguage, setLanguage, t } from "./i18n.js";
import { before, fallback, navigate, render, returnAddress, route, start } from "./router.js";
import { session, signIn, signOut } from "./session.js";
import { addCustomerView } from "./views/add-customer.js";
import { claimCustomerView } from "./views/claim-customer.js";
import { claimView } from "./views/claim.js";
import { consentView } from "./views/consent.js";
import { customersView } from "./views/customers.js";
import { engagementsView } from "./views/engagements.js";
import { notFoundView } from "./views/not-found.js";
import { signInView } from "./views/signin.js";

const PUBLIC_PATHS = ["/signin"];

function routes() {
  route("/signin", signInView);
  route("/engagements", engagementsView);
  route("/engagements/{id}/customers", customersView);
  route("/claims/{id}", claimView);
  route("/engagements/{id}/add", addCustomerView);
  route("/engagements/{id}/claim/{customerId}", claimCustomerView);
  route("/claims/{id}/consent", consentView);
  route("/", async () => navigate(session.signedIn() ? "/engagements" : "/signin"));
  fallback(notFoundView);
  // Signed out: Sign in first, then back to the address asked for (a link, a reload, an expired session).
  before(({ path }) => (session.signedIn() || PUBLIC_PATHS.includes(path) ? null : { path: "/signin", query: { next: returnAddress() } }));
}

/** The header: app name, who is signed in, language switch, sign out. Redrawn on every change. */
export function drawHeader() {
  document.getElementById("app-title").textContent = t("app.name");
  const skip = document.getElementById("skip-link");
  skip.textContent = t("app.skip");
  const other = LANGUAGES.find((language) => language !== currentLanguage());
  const items = [
    h(
      "button",
      {
        type: "button",
        class: "link-button",
        lang: other,
        "aria-label": t(`language.switch.${other}`),
        onclick: async () => {
          await setLanguage(other);
          drawHeader();
          await render();
        },
      },
      t(`language.name.${other}`),
    ),
  ];
  if (session.signedIn()) {
    items.unshift(
      h("a", { href: "#/engagements" }, t("nav.engagements")),
      h("span", { class: "app-header__who" }, t("nav.signed_in_as", { partner: session.partnerId(), roles: session.roles().join(", ") })),
    );
    items.push(
      h(
        "button",
        {
          type: "button",
          class: "link-button",
          onclick: async () => {
            signOut();
            if (config.auth === "oidc") await (await import("./oidc.js")).signOutAtIssuer();
            drawHeader();
            navigate("/signin");
          },
        },
        t("nav.sign_out"),
      ),
    );
  }
  replace(document.getElementById("app-nav"), h("ul", {}, items.map((item) => h("li", {}, item))));
}

/** OIDC: the identity provider's answer to a sign-in (the page was loaded at /app/?code=...&state=...). */
async function finishOidcSignIn() {
  const oidc = await import("./oidc.js");
  if (!oidc.isSignInAnswer()) return;
  try {
    const { token, next } = await oidc.finishSignIn();
    signIn(token, { remember: false });
    if (returnAddress(next)) history.replaceState(null, "", `#${next}`);
  } catch {
    navigate("/signin", { failed: 1 });
  }
}

async function boot() {
  document.getElementById("skip-link").addEventListener("click", (event) => {
    event.preventDefault(); // "#main" would be a route: move focus instead
    document.getElementById("main").focus();
  });
  configure(await loadConfig());
  await setLanguage(preferredLanguage());
  if (config.auth === "oidc") await finishOidcSignIn();
  routes();
  drawHeader();
  window.addEventListener("hashchange", drawHeader);
  window.addEventListener(SESSION_ENDED, () => {
    drawHeader();
    render(); // signed out now: the guard sends this address to Sign in as `next`
  });
  await start();
}

boot();
