package httpapi

import (
	"os"
	"testing"

	"github.com/topup/topup/internal/pgtest"
)

// TestMain gives the tests that run two replicas on one PostgreSQL a
// database of their own (pgtest); they skip when none answers, outside CI.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
