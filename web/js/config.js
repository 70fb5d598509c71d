// /app/config.json: where the API is and how to sign in. Locally (the local stack writes it):
// {"apiUrl": same origin, "issuer", "clientId", "scope", "auth": "local", "demo": {"partners", "roles"}}.
// On AWS it is written at deploy: {"apiUrl", "issuer" (JwtIssuer), "clientId", "scope", "auth": "oidc"}.

export const config = {
  apiUrl: "",
  issuer: "",
  clientId: null,
  scope: "openid",
  auth: "local",
  demo: { partners: [], roles: [] },
};

export async function loadConfig() {
  const response = await fetch(new URL("../config.json", import.meta.url), { cache: "no-cache" });
  if (!response.ok) throw new Error(`config.json: ${response.status}`);
  Object.assign(config, await response.json());
  return config;
}
