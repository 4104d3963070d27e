package topup_test

import (
	"os"
	"testing"

	"github.com/topup/topup/internal/topup/topuptest"
)

// TestMain makes the PostgreSQL database the tests share (a schema each).
func TestMain(m *testing.M) { os.Exit(topuptest.Main(m)) }
