// The README's flow against the types openapi-typescript generates from docs/openapi.json (./api.d.ts).
//
// tests/e2e/test_generated_clients.py generates the types next to a copy of this file and type-checks both with
// `tsc --strict`: a contract change that breaks a caller (a renamed field, a new enum value not handled, a
// response no longer modelled) fails the build. The Python flow (flow.py) is the one run against the stack.
import type { components, operations } from "./api";

type Schemas = components["schemas"];
type Body<K extends keyof operations> = operations[K] extends {
  requestBody: { content: { "application/json": infer B } };
}
  ? B
  : never;
type Reply<K extends keyof operations, Status extends keyof operations[K]["responses"]> =
  operations[K]["responses"][Status] extends { content: infer C } ? C[keyof C] : never;

interface Answer<T> {
  status: number;
  body: T;
}

async function call<T>(
  base: string,
  method: "GET" | "POST",
  path: string,
  token: string | null,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer<T>> {
  const sent: Record<string, string> = { ...headers };
  if (token !== null) sent.Authorization = `Bearer ${token}`;
  if (body !== undefined) sent["Content-Type"] ??= "application/json";
  const response = await fetch(base + path, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as T };
}

function describe(action: Schemas["Action"]): string {
  switch (action) {
    case "send_consent":
      return "Send consent request";
    case "resend_consent":
      return "Resend consent request";
    case "submit":
      return "Submit";
    case "cancel":
      return "Cancel";
    case "claim_customer":
      return "Claim customer";
    default: {
      const unknown: never = action; // a new action in the contract fails here until handled
      return unknown;
    }
  }
}

function explain(problem: Schemas["Problem"]): string {
  const fields = (problem.errors ?? []).map((error: Schemas["FieldProblem"]) => `${error.field}: ${error.message}`);
  const code: Schemas["ProblemCode"] = problem.code;
  return `${problem.status} ${code}: ${problem.detail} ${fields.join("; ")}`;
}

export async function walk(base: string, token: string, consentToken: string): Promise<string[]> {
  const log: string[] = [];

  const engagements = await call<Reply<"listEngagements", 200>>(base, "GET", "/engagements", token);
  for (const engagement of engagements.body.items) {
    const rate: number | undefined = engagement.payment_rules?.hourly_rate_usd; // money is a number
    const windowDays: number = engagement.consent_window_days; // sent always: required
    log.push(`${engagement.engagement_id} ${engagement.payment_type} ${rate ?? "-"} ${windowDays}`);
  }
  const locations = await call<Reply<"listLocations", 200>>(base, "GET", "/locations", token);
  const location: string = locations.body.items[0].location_id;

  const identifier: Schemas["IdentifierInput"] = { type: "domain", value: "fabrikam.com" };
  const check: Body<"checkEligibility"> = { location_id: location, identifier };
  const preview = await call<Reply<"checkEligibility", 200>>(base, "POST", "/eligibility-checks", token, check);
  for (const refused of preview.body.ineligible) {
    const codes: Schemas["ReasonCode"][] = refused.reasons.map((reason) => reason.code);
    log.push(`${refused.engagement_id}: ${codes.join(",")}`);
  }

  const addition: Body<"addCustomer"> = {
    friendly_name: "Fabrikam migration",
    location_id: location,
    identifier,
    engagement_ids: ["e-azure-migrate"],
    customer_contact: { name: "Ana García", email: "ana@fabrikam.com", language: "es" },
    partner_contact: { name: "Pat Partner", email: "pat@contoso.example" },
  };
  const key = { "Idempotency-Key": "ts-flow-1" };
  const added = await call<Reply<"addCustomer", 201> | Reply<"addCustomer", 422>>(
    base, "POST", "/customers", token, addition, key,
  );
  if (added.status !== 201) throw new Error(explain(added.body as Schemas["Problem"]));
  const claim: Schemas["ClaimView"] = (added.body as Schemas["ClaimsResponse"]).claims[0];
  const state: Schemas["ClaimState"] = claim.state;
  log.push(`${claim.claim_id} ${state} ${claim.consent_requests.count}`);

  const consent: Body<"requestConsent"> = { deal_size_usd: 25000, disclaimer_accepted: true };
  const requested = await call<Reply<"requestConsent", 200>>(
    base, "POST", `/claims/${claim.claim_id}/consent-requests`, token, consent, { "Idempotency-Key": "ts-flow-2" },
  );
  const evidence: Schemas["ConsentEvidence"][] = requested.body.consent_evidence;
  log.push(evidence.map((sent) => sent.language).join(","));
  const decision: operations["decideConsent"]["requestBody"]["content"]["application/x-www-form-urlencoded"] = {
    decision: "accept",
  };
  await fetch(`${base}/consent/${consentToken}`, { method: "POST", body: new URLSearchParams(decision) });

  const known = await call<Reply<"listKnownCustomers", 200>>(base, "GET", "/known-customers", token);
  const customer: Schemas["KnownCustomerView"] = known.body.items[0];
  const claimBody: Body<"claimCustomer"> = {
    friendly_name: "Fabrikam security",
    location_id: location,
    engagement_ids: ["e-security-workshop"],
  };
  const claimed = await call<Reply<"claimCustomer", 201>>(
    base, "POST", `/known-customers/${encodeURIComponent(customer.customer_id)}/claims`, token, claimBody,
  );
  const origin: Schemas["Origin"] = claimed.body.claims[0].origin;
  log.push(origin);

  const tab: Schemas["Tab"] = "eligible";
  const page = await call<Reply<"getCustomersPage", 200>>(
    base, "GET", `/engagements/e-security-workshop/customers?tab=${tab}`, token,
  );
  for (const item of page.body.items) {
    const kind: "claim" | "known_customer" = item.kind;
    const type: Schemas["IdentifierType"] = item.customer.type;
    log.push(`${kind} ${type} ${item.state ?? "-"} ${item.actions.map(describe).join(", ")}`);
  }

  // refusals, each in the shape the contract gives it
  const stranger = await call<Reply<"listEngagements", 401>>(base, "GET", "/engagements", null);
  if ("message" in stranger.body) log.push(stranger.body.message);
  const unsupported = await call<Reply<"addCustomer", 415>>(
    base, "POST", "/customers", token, addition, { "Content-Type": "text/plain" },
  );
  log.push(explain(unsupported.body));
  const invalid = await call<Reply<"addCustomer", 422>>(base, "POST", "/customers", token, {
    ...addition,
    location_id: "12",
  });
  log.push(explain(invalid.body));
  return log;
}
