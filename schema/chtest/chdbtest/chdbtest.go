// Package chdbtest runs SQL on chDB (the ClickHouse 26.x engine as a
// library) in tests, through the same Exec/Query methods a clickhouse-go
// connection has.
package chdbtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/capstan-io/capstan/schema/chtest"
	"github.com/capstan-io/capstan/schema/chtest/chdbtest/internal/libpath"
	"github.com/chdb-io/chdb-go/chdb"
)

// DB is the process's chDB session. chDB allows one session per process,
// so every test shares it; use a database per test (chtest.DBName).
type DB struct {
	mu      sync.Mutex
	s       *chdb.Session
	version string
}

var (
	once    sync.Once
	shared  *DB
	openErr error
)

// Open returns the shared chDB session, created on first use and closed by
// chtest.Main. Skipped with -short.
func Open(tb testing.TB) *DB {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs chDB; skipped with -short")
	}
	once.Do(func() { shared, openErr = open() })
	if openErr != nil {
		tb.Fatal(openErr)
	}
	return shared
}

func open() (*DB, error) {
	if libpath.Path == "" {
		return nil, fmt.Errorf("libchdb.so not found (want <repo>/%s): run .ci/install-deps", libpath.Rel)
	}
	removeStaleDirs()
	dir, err := os.MkdirTemp("", fmt.Sprintf("capstan-chdb-%d-", os.Getpid()))
	if err != nil {
		return nil, err
	}
	s, err := chdb.NewSession(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("chdb session: %w", err)
	}
	db := &DB{s: s}
	chtest.AtExit(func() { s.Close(); os.RemoveAll(dir) })
	if err := db.Exec(context.Background(), "SET session_timezone = 'UTC'"); err != nil {
		return nil, err
	}
	if err := db.QueryRow("SELECT version()", &db.version); err != nil {
		return nil, err
	}
	return db, nil
}

func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "capstan-chdb-*-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "capstan-chdb-%d-", &pid); err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

// Version is the engine's version().
func (d *DB) Version() string { return d.version }

// Exec runs one statement. Arguments are not supported: render literals.
func (d *DB) Exec(ctx context.Context, query string, args ...any) error {
	_, err := d.run(ctx, query, "TabSeparated", args)
	return err
}

func (d *DB) run(ctx context.Context, query, format string, args []any) ([]byte, error) {
	if len(args) > 0 {
		return nil, errors.New("chdbtest: query arguments are not supported")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.s.Query(query, format)
	if err != nil {
		return nil, fmt.Errorf("chdb: %w", err)
	}
	if r == nil {
		return nil, nil
	}
	defer r.Free()
	if err := r.Error(); err != nil {
		return nil, fmt.Errorf("chdb: %w", err)
	}
	return bytes.Clone(r.Buf()), nil
}

// QueryRow runs a query and scans its first row into dest.
func (d *DB) QueryRow(query string, dest ...any) error {
	rows, err := d.Query(context.Background(), query)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return errors.New("chdbtest: no rows")
	}
	return rows.Scan(dest...)
}

// Query runs a query; the rows scan into Go values like clickhouse-go's do
// for the types Capstan uses (strings, integers, floats, bools, times,
// slices and maps of those).
func (d *DB) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	out, err := d.run(ctx, query, "JSONCompactEachRowWithNamesAndTypes", args)
	if err != nil {
		return nil, err
	}
	rs := &rows{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 0; sc.Scan(); line++ {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var vals []any
		if err := dec.Decode(&vals); err != nil {
			return nil, fmt.Errorf("chdbtest: decode row: %w", err)
		}
		switch line {
		case 0:
			for _, v := range vals {
				rs.names = append(rs.names, fmt.Sprint(v))
			}
		case 1: // types
		default:
			rs.data = append(rs.data, vals)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return rs, nil
}

type rows struct {
	names []string
	data  [][]any
	cur   []any
	err   error
}

func (r *rows) Next() bool {
	if len(r.data) == 0 {
		return false
	}
	r.cur, r.data = r.data[0], r.data[1:]
	return true
}

func (r *rows) Scan(dest ...any) error {
	if r.cur == nil {
		return errors.New("chdbtest: Scan called without Next")
	}
	if len(dest) != len(r.cur) {
		return fmt.Errorf("chdbtest: %d destinations for %d columns", len(dest), len(r.cur))
	}
	for i, d := range dest {
		rv := reflect.ValueOf(d)
		if rv.Kind() != reflect.Pointer || rv.IsNil() {
			return fmt.Errorf("chdbtest: destination %d is not a pointer", i)
		}
		if err := assign(rv.Elem(), r.cur[i]); err != nil {
			return fmt.Errorf("chdbtest: column %s: %w", r.names[i], err)
		}
	}
	return nil
}

var timeType = reflect.TypeOf(time.Time{})

func assign(dst reflect.Value, v any) error {
	if dst.Kind() == reflect.Interface {
		dst.Set(reflect.ValueOf(v))
		return nil
	}
	if dst.Type() == timeType {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("time from %T", v)
		}
		for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02"} {
			if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
				dst.Set(reflect.ValueOf(t))
				return nil
			}
		}
		return fmt.Errorf("bad time %q", s)
	}
	text := func() string {
		switch x := v.(type) {
		case json.Number:
			return x.String()
		case string:
			return x
		case bool:
			return strconv.FormatBool(x)
		}
		return fmt.Sprint(v)
	}
	switch dst.Kind() {
	case reflect.String:
		dst.SetString(text())
	case reflect.Bool:
		b, err := strconv.ParseBool(text())
		if err != nil {
			return err
		}
		dst.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(text(), 10, 64)
		if err != nil {
			return err
		}
		dst.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(text(), 10, 64)
		if err != nil {
			return err
		}
		dst.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.ToLower(text()), 64)
		if err != nil {
			return err
		}
		dst.SetFloat(f)
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("slice from %T", v)
		}
		s := reflect.MakeSlice(dst.Type(), len(arr), len(arr))
		for i, e := range arr {
			if err := assign(s.Index(i), e); err != nil {
				return err
			}
		}
		dst.Set(s)
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("map from %T", v)
		}
		m := reflect.MakeMapWithSize(dst.Type(), len(obj))
		for k, e := range obj {
			kv := reflect.New(dst.Type().Key()).Elem()
			if err := assign(kv, k); err != nil {
				return err
			}
			ev := reflect.New(dst.Type().Elem()).Elem()
			if err := assign(ev, e); err != nil {
				return err
			}
			m.SetMapIndex(kv, ev)
		}
		dst.Set(m)
	default:
		return fmt.Errorf("unsupported destination %s", dst.Type())
	}
	return nil
}

func (r *rows) ScanStruct(any) error {
	return errors.New("chdbtest: ScanStruct is not supported")
}
func (r *rows) ColumnTypes() []driver.ColumnType { return nil }
func (r *rows) Totals(...any) error {
	return errors.New("chdbtest: Totals is not supported")
}
func (r *rows) Columns() []string { return r.names }
func (r *rows) Close() error      { r.data = nil; return nil }
func (r *rows) Err() error        { return r.err }
func (r *rows) HasData() bool     { return len(r.data) > 0 }
