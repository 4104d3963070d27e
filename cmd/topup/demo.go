package main

import (
	"context"
	"errors"
	"io"
)

func cmdDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("demo: not yet built")
}
