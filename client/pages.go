package client

import (
	"context"
	"iter"
	"net/url"
)

// list reads one page of the list at path.
func list[T any](ctx context.Context, c *Client, path string, q url.Values, p ListParams) (*List[T], error) {
	v := p.values()
	for k, vs := range q {
		v[k] = vs
	}
	var out List[T]
	if _, err := c.do(ctx, call{method: "GET", path: path, query: v, retry: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// all walks every page of the list at path, 100 items at a time, yielding
// each item, newest first; an error ends the walk after being yielded.
func all[T any](ctx context.Context, c *Client, path string, q url.Values, id func(T) string) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		p := ListParams{Limit: 100}
		for {
			page, err := list[T](ctx, c, path, q, p)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range page.Data {
				if !yield(item, nil) {
					return
				}
			}
			if !page.HasMore || len(page.Data) == 0 {
				return
			}
			p.StartingAfter = id(page.Data[len(page.Data)-1])
		}
	}
}

// APIKeys walks every key of the account (never the keys themselves).
func (c *Client) APIKeys(ctx context.Context, id string) iter.Seq2[APIKey, error] {
	return all(ctx, c, pathf("/v1/accounts/%s/api_keys", id), nil, func(k APIKey) string { return k.ID })
}

// AutoTopUpAudit walks every change of the account's settings.
func (c *Client) AutoTopUpAudit(ctx context.Context, id string) iter.Seq2[AuditEntry, error] {
	return all(ctx, c, pathf("/v1/accounts/%s/auto_top_up/audit", id), nil, func(a AuditEntry) string { return a.ID })
}

// PaymentMethods walks every card of the account.
func (c *Client) PaymentMethods(ctx context.Context, id string) iter.Seq2[PaymentMethod, error] {
	return all(ctx, c, pathf("/v1/accounts/%s/payment_methods", id), nil, func(p PaymentMethod) string { return p.ID })
}

// Budgets walks every budget of the account.
func (c *Client) Budgets(ctx context.Context, id string) iter.Seq2[Budget, error] {
	return all(ctx, c, pathf("/v1/accounts/%s/budgets", id), nil, func(b Budget) string { return b.ID })
}

// WebhookEndpoints walks every endpoint of the account.
func (c *Client) WebhookEndpoints(ctx context.Context, id string) iter.Seq2[WebhookEndpoint, error] {
	return all(ctx, c, pathf("/v1/accounts/%s/webhook_endpoints", id), nil, func(e WebhookEndpoint) string { return e.ID })
}

// Deliveries walks every delivery attempt to an endpoint.
func (c *Client) Deliveries(ctx context.Context, id, endpointID string) iter.Seq2[Delivery, error] {
	return all(ctx, c, pathf("/v1/accounts/%s/webhook_endpoints/%s/deliveries", id, endpointID), nil, func(d Delivery) string { return d.ID })
}
