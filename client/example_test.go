package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/topup/topup/client"
)

// Example runs the operator's main flow against a real Topup (an
// in-process server on SQLite, sandbox payments): an account, a credit,
// usage with a replayed key, a declined card, and the ledger walked.
func Example() {
	dir, err := os.MkdirTemp("", "topup-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, stop, err := launch(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	c := client.New(srv.url, srv.adminKey)

	acct, err := c.CreateAccount(ctx, client.AccountParams{Email: "ada@example.com"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Credit(ctx, acct.ID, client.CreditParams{Amount: "20.00"}); err != nil {
		log.Fatal(err)
	}
	res, err := c.RecordUsage(ctx, acct.ID, client.UsageParams{Amount: "0.000125", IdempotencyKey: "call-1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("balance", res.Balance, "spendable", res.Spendable)
	res, _ = c.RecordUsage(ctx, acct.ID, client.UsageParams{Amount: "0.000125", IdempotencyKey: "call-1"})
	fmt.Println("same key again: replayed", res.Replayed, "balance", res.Balance)

	card, _ := c.AttachPaymentMethod(ctx, acct.ID, "pm_card_chargeDeclined")
	_, err = c.CreateTopUp(ctx, acct.ID, client.TopUpParams{Amount: "10.00", PaymentMethod: card.ID})
	var declined *client.Error
	if errors.As(err, &declined) && errors.Is(err, client.ErrCardDeclined) {
		fmt.Println("top-up refused:", declined.Status, declined.Code, declined.DeclineCode)
	}

	for e, err := range c.Transactions(ctx, acct.ID) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Kind, e.Amount, "->", e.BalanceAfter)
	}
	// Output:
	// balance 19.999875 spendable true
	// same key again: replayed true balance 19.999875
	// top-up refused: 402 card_declined card_declined
	// usage -0.000125 -> 19.999875
	// credit 20.00 -> 20.00
}
