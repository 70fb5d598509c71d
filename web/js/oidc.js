// OpenID Connect sign-in (config.auth === "oidc", as on AWS): the authorization code flow with PKCE
// against config.issuer (the issuer the HTTP API authorizer trusts), through oidc-client-ts (web/vendor/,
// pinned in web/package-lock.json). It is imported only in this mode, so the local first screen stays light.
// Tokens stay in memory (an InMemoryWebStorage user store): never in the URL, localStorage or
// sessionStorage; a reload signs in again (the identity provider's own session makes that a redirect).
// Only the pending sign-in request (its state id and PKCE code verifier, no token) waits in sessionStorage
// while the browser is at the identity provider, since memory does not survive that navigation; it is
// removed when the answer comes back. oidc-client-ts would otherwise keep it in localStorage.

import { config } from "./config.js";

const APP_URL = new URL("../", import.meta.url).href; // /app/: the redirect URI registered for the client
let manager = null;

async function userManager() {
  if (manager) return manager;
  const { InMemoryWebStorage, UserManager, WebStorageStateStore } = await import("../vendor/oidc-client-ts.js");
  manager = new UserManager({
    authority: config.issuer,
    client_id: config.clientId,
    redirect_uri: APP_URL,
    post_logout_redirect_uri: APP_URL,
    response_type: "code",
    scope: config.scope || "openid",
    userStore: new WebStorageStateStore({ store: new InMemoryWebStorage() }),
    stateStore: new WebStorageStateStore({ prefix: "mci.oidc.", store: window.sessionStorage }),
    automaticSilentRenew: false, // needs an iframe, which the CSP forbids; an expired session signs in again
    monitorSession: false,
  });
  return manager;
}

/** Whether this page load is the identity provider's answer (`/app/?code=...&state=...` or `?error=...`). */
export function isSignInAnswer() {
  const query = new URLSearchParams(location.search);
  return query.has("state") && (query.has("code") || query.has("error"));
}

/** Off to the identity provider; the browser comes back to /app/ with a code (and `next`, the app's address to
 * open then, in the request's state, kept with the PKCE verifier). */
export async function startSignIn(next = null) {
  await (await userManager()).signinRedirect(next ? { state: { next } } : undefined);
}

/**
 * The identity provider's answer: exchange the code (with the PKCE verifier) for tokens, take the code
 * out of the address bar, and resolve to {token: the access token the API takes, next: the address to open}.
 */
export async function finishSignIn() {
  const answer = location.href;
  history.replaceState(null, "", `${APP_URL}#/engagements`);
  const user = await (await userManager()).signinRedirectCallback(answer);
  return { token: user.access_token, next: user.state && typeof user.state.next === "string" ? user.state.next : null };
}

/** Forget the tokens; at an identity provider that offers it, end its session too (a redirect). */
export async function signOutAtIssuer() {
  const users = await userManager();
  const endSession = await users.metadataService.getEndSessionEndpoint().catch(() => undefined);
  if (endSession) await users.signoutRedirect();
  else await users.removeUser();
}
