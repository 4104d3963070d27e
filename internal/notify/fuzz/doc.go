// Package fuzz holds the fuzz targets of package notify's webhook signature
// helpers (Sign, VerifySignature). They live apart from notify's own tests
// because that test binary links the SQLite driver, whose first
// instrumented build takes minutes; this one links only notify.
package fuzz
