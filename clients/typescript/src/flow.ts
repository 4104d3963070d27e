// The README's API tour as a typed client: create an account, credit it,
// record usage, read the ledger, add a card, switch on Automatic Top-Up,
// buy a top-up and list them, then read the notifications by event type.
// `make ts` type-checks it with tsc --strict against types generated from
// internal/httpapi/openapi.json, so a change to the document that breaks
// this flow for TypeScript users fails CI. It is not run.
import createClient from "openapi-fetch";
import type { components, paths } from "./topup.js";

type Event = components["schemas"]["Event"];

export async function tour(baseUrl: string, adminKey: string): Promise<void> {
  const topup = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${adminKey}` } });

  // Optional fields with a server default (currency, kind) stay optional.
  const created = await topup.POST("/v1/accounts", { body: { email: "ada@example.com" } });
  if (created.error) throw new Error(created.error.error.message);
  const id: string = created.data.id;
  const apiKey: string = created.data.api_key;
  const path = { id };

  const credit = await topup.POST("/v1/accounts/{id}/credits", {
    params: { path },
    body: { amount: "20.00", idempotency_key: "grant-1" },
  });
  if (credit.error) throw new Error(credit.error.error.code);
  const balance: string = credit.data.balance;

  const usage = await topup.POST("/v1/accounts/{id}/usage", {
    params: { path },
    body: { amount: "0.000125", idempotency_key: "call-1" },
  });
  if (usage.data && !usage.data.spendable) console.log("stopped:", usage.data.reason);
  await topup.POST("/v1/usage/batch", {
    body: { events: [{ account_id: id, amount: "0.01", idempotency_key: "call-2" }] },
  });

  const ledger = await topup.GET("/v1/accounts/{id}/transactions", { params: { path, query: { limit: 20 } } });
  for (const entry of ledger.data?.data ?? []) {
    const line: string = `${entry.created_at} ${entry.kind} ${entry.amount} → ${entry.balance_after}`;
    console.log(line);
  }

  const card = await topup.POST("/v1/accounts/{id}/payment_methods", {
    params: { path },
    body: { payment_method: "pm_card_visa" },
  });
  if (card.error) throw new Error(card.error.error.message);

  const settings = await topup.PUT("/v1/accounts/{id}/auto_top_up", {
    params: { path },
    body: { enabled: true, threshold: "5.00", target: "20.00" },
  });
  const threshold: string | null | undefined = settings.data?.threshold;

  const bought = await topup.POST("/v1/accounts/{id}/top_ups", {
    params: { path },
    body: { amount: "10.00", idempotency_key: "buy-1" },
  });
  if (bought.response.status === 402 && bought.error) {
    console.log("declined:", bought.error.error.decline_code, bought.error.error.top_up_id);
  } else if (bought.data?.status === "requires_action") {
    console.log("authenticate at", bought.data.action_url);
  }
  const history = await topup.GET("/v1/accounts/{id}/top_ups", { params: { path } });
  for (const t of history.data?.data ?? []) {
    const amount: string | null = t.amount;
    const attempts: number = t.attempts;
    console.log(t.id, t.status, amount, attempts);
  }

  const statement = await topup.GET("/v1/accounts/{id}/statement", {
    params: { path, query: { month: "2026-11", format: "json" } },
  });
  // The route also answers text/csv (format=csv): narrow to the JSON.
  if (statement.data && typeof statement.data !== "string") {
    const opening: string = statement.data.opening_balance;
    const closing: string = statement.data.closing_balance;
    console.log(statement.data.month, opening, "→", closing, statement.data.entries.length, "entries");
  }

  const audit = await topup.GET("/v1/accounts/{id}/auto_top_up/audit", { params: { path } });
  for (const change of audit.data?.data ?? []) {
    const before: string | null = change.old.threshold;
    const after: string | null = change.new.threshold;
    console.log(change.actor, before, "→", after);
  }

  const disputes = await topup.GET("/v1/accounts/{id}/disputes", { params: { path } });
  for (const d of disputes.data?.data ?? []) {
    const withdrawn: string = d.amount_withdrawn;
    console.log(d.id, d.top_up_id, d.status, d.amount, withdrawn, d.closed_at ?? "open");
  }

  const notifications = await topup.GET("/v1/accounts/{id}/notifications", { params: { path } });
  for (const event of notifications.data?.data ?? []) console.log(describe(event));

  console.log(balance, threshold, apiKey.length);
}

// describe narrows an event on its type: each type has its own data.
export function describe(event: Event): string {
  switch (event.type) {
    case "balance.low":
      return `balance ${event.data.balance} below ${event.data.threshold}`;
    case "top_up.succeeded":
    case "top_up.failed":
      return `top-up ${event.data.id} ${event.data.status} after ${event.data.attempts} attempts`;
    case "top_up.action_required":
      return `authenticate at ${event.data.action_url ?? "?"}`;
    case "top_up.refunded":
      return `top-up ${event.data.id} refunded ${event.data.refund.amount}`;
    case "top_up.disputed":
      return `top-up ${event.data.id} disputed (${event.data.dispute.reason}): Automatic Top-Up off`;
    case "auto_top_up.disabled":
      return `Automatic Top-Up off: ${event.data.reason}`;
    case "auto_top_up.limit_reached":
      return `monthly limit ${event.data.limit} reached in ${event.data.month}`;
    case "budget.threshold_reached":
    case "budget.exhausted":
      return `budget ${event.data.id} at ${event.data.percent} % (${event.data.spent} of ${event.data.limit ?? "no limit"})`;
    case "credit.expiring":
      return `grant ${event.data.id}: ${event.data.remaining} expires`;
    case "credit.expired":
      return `grant ${event.data.id}: ${event.data.amount_expired} expired`;
  }
}
