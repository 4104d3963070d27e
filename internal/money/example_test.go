package money_test

import (
	"errors"
	"fmt"

	"github.com/topup/topup/internal/money"
)

func ExampleParse() {
	usd, _ := money.LookupCurrency("usd")

	price, err := money.Parse("0.000125")
	if err != nil {
		panic(err)
	}
	fmt.Println(price.Format(usd), int64(price))

	charge, _ := money.Parse("10.5")
	cents, _ := charge.MinorUnits(usd)
	fmt.Println(charge.Format(usd), cents)

	_, err = money.Parse("1e3")
	fmt.Println(errors.Is(err, money.ErrSyntax))

	_, err = money.Parse("0.0000001")
	fmt.Println(errors.Is(err, money.ErrTooPrecise))
	// Output:
	// 0.000125 125
	// 10.50 1050
	// true
	// true
}
