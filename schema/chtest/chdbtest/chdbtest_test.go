package chdbtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/capstan-io/capstan/schema/chtest"
	"github.com/capstan-io/capstan/schema/chtest/chdbtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

func TestQueryScansTypes(t *testing.T) {
	db := chdbtest.Open(t)
	if db.Version() < "2" { // 26.x
		t.Fatalf("chDB version %q", db.Version())
	}
	ctx := context.Background()
	name := chtest.DBName(t)
	for _, q := range []string{
		"CREATE DATABASE " + name,
		"CREATE TABLE " + name + ".x (s LowCardinality(String), n UInt64, t DateTime64(3, 'UTC'), a Array(String), m Map(String, String)) ENGINE = MergeTree ORDER BY s",
		"INSERT INTO " + name + ".x VALUES ('a', 18446744073709551615, '2024-05-06 07:08:09.123', ['x','y'], map('k','v'))",
	} {
		if err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.Query(ctx, "SELECT s, n, t, a, m, toFloat64(n) / 2 FROM "+name+".x")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatal("no row")
	}
	var (
		s    string
		n    uint64
		when time.Time
		a    []string
		m    map[string]string
		f    float64
	)
	if err := rows.Scan(&s, &n, &when, &a, &m, &f); err != nil {
		t.Fatal(err)
	}
	if s != "a" || n != 18446744073709551615 || when.UnixMilli() != 1714979289123 || len(a) != 2 || m["k"] != "v" || f < 9e18 {
		t.Fatalf("got %q %d %v %v %v %v", s, n, when, a, m, f)
	}
	if err := db.Exec(ctx, "SELECT nonsense("); err == nil {
		t.Fatal("syntax error not reported")
	}
}
