package schema

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one versioned step of the ClickHouse schema, rendered for a
// flavour. Every statement is idempotent (IF NOT EXISTS), because
// ClickHouse has no transactions: a step interrupted half-way is simply
// run again.
type Migration struct {
	Version    uint32
	Name       string
	Statements []string
}

type renderData struct {
	DB      string // quoted database name
	Modern  bool
	LC      string // low-cardinality string type
	Time    string // event timestamp type
	Minute  string // rollup minute type
	Running string // frozen for 0003: runningCondition0003
	// RunningNow is the current RunningCondition, for later migrations.
	RunningNow string
	// AddColumn is "ADD COLUMN IF NOT EXISTS", or "ADD COLUMN" where the
	// server lacks IF NOT EXISTS (18.16); Migrate then takes "column
	// already exists" as done, so the step stays safe to repeat.
	AddColumn string
	days      int
}

// TTL renders the retention clause for a table keyed by col (modern only).
func (d renderData) TTL(col string) string {
	if !d.Modern || d.days <= 0 {
		return ""
	}
	return "\n" + ttlClause(col, d.days)
}

func ttlClause(col string, days int) string {
	return fmt.Sprintf("TTL toDateTime(%s) + INTERVAL %d DAY", col, days)
}

// ttlColumns is each table's retention column.
var ttlColumns = map[string]string{
	EventsTable:       "received_at",
	EventsMinuteTable: "minute",
	DevicesTable:      "last_seen",
	RollupTable:       "minute",
}

// Migrations renders every migration for a flavour; db "" is rendered as
// the default database name. Exposed so the same DDL can be reviewed or
// run elsewhere (tests run it on chDB).
func Migrations(flavor Flavor, db string, retentionDays int) ([]Migration, error) {
	if db == "" {
		db = DefaultDatabase
	}
	data := renderData{DB: quoteIdent(db), Running: runningCondition0003, RunningNow: RunningCondition, days: retentionDays}
	data.AddColumn = "ADD COLUMN IF NOT EXISTS"
	if flavor == FlavorLegacy {
		data.AddColumn = "ADD COLUMN"
	}
	if flavor == FlavorModern {
		data.Modern = true
		data.LC, data.Time, data.Minute = "LowCardinality(String)", "DateTime64(3, 'UTC')", "DateTime('UTC')"
	} else {
		data.LC, data.Time, data.Minute = "String", "DateTime", "DateTime"
	}
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var out []Migration
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, label, ok := strings.Cut(base, "_")
		v, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", name)
		}
		src, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		tmpl, err := template.New(base).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, data); err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		out = append(out, Migration{Version: uint32(v), Name: label, Statements: splitStatements(buf.String())})
	}
	return out, nil
}

// Exception codes of ALTER TABLE ADD COLUMN for a column that exists.
const (
	codeIllegalColumn   = 44
	codeDuplicateColumn = 15
)

// columnAlreadyAdded reports an ADD COLUMN without IF NOT EXISTS that
// failed because an interrupted earlier run of the migration added it.
func columnAlreadyAdded(stmt string, code int) bool {
	return (code == codeIllegalColumn || code == codeDuplicateColumn) &&
		strings.HasPrefix(stmt, "ALTER TABLE ") && strings.Contains(stmt, " ADD COLUMN ") &&
		!strings.Contains(stmt, " ADD COLUMN IF NOT EXISTS ")
}

// splitStatements drops "--" comment lines and splits on ";" at line end.
func splitStatements(sql string) []string {
	var cur strings.Builder
	var out []string
	for _, line := range strings.Split(sql, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		trimmed := strings.TrimRight(line, " \t")
		if strings.HasSuffix(trimmed, ";") {
			cur.WriteString(strings.TrimSuffix(trimmed, ";"))
			if s := strings.TrimSpace(cur.String()); s != "" {
				out = append(out, s)
			}
			cur.Reset()
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// Migrate creates the database and applies pending migrations in order,
// recording each in capstan_schema_migrations. Several processes may run
// it at once: a lock table serialises them (CREATE TABLE succeeds for
// exactly one), and every statement is idempotent in case a stale lock
// had to be broken. It also brings TTL retention in line with
// opts.RetentionDays on modern servers.
func Migrate(ctx context.Context, q Querier, opts MigrateOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	db := opts.Database
	if db == "" {
		if err := queryRow(ctx, q, "SELECT currentDatabase()", &db); err != nil {
			return fmt.Errorf("current database: %w", err)
		}
	}
	flavor, err := DetectFlavor(ctx, q)
	if err != nil {
		return err
	}
	migrations, err := Migrations(flavor, db, opts.RetentionDays)
	if err != nil {
		return err
	}
	if err := q.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(db)); err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	stale := opts.LockStaleAfter
	if stale <= 0 {
		stale = 2 * time.Minute
	}
	release, err := acquireMigrationLock(ctx, q, db, stale, log)
	if err != nil {
		return err
	}
	defer release()

	if err := q.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+qualify(db, MigrationsTable)+
		" (version UInt32, name String, applied_at DateTime) ENGINE = ReplacingMergeTree ORDER BY version"); err != nil {
		return fmt.Errorf("create %s: %w", MigrationsTable, err)
	}
	applied, err := appliedVersions(ctx, q, db)
	if err != nil {
		return err
	}
	for _, m := range migrations {
		if applied[m.Version] {
			continue
		}
		for _, stmt := range m.Statements {
			if err := q.Exec(ctx, stmt); err != nil && !columnAlreadyAdded(stmt, ErrorCode(err)) {
				return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
			}
		}
		// INSERT ... SELECT: 18.16's native protocol does not take inline VALUES.
		rec := fmt.Sprintf("INSERT INTO %s (version, name, applied_at) SELECT toUInt32(%d), %s, now()",
			qualify(db, MigrationsTable), m.Version, Quote(m.Name))
		if err := q.Exec(ctx, rec); err != nil {
			return fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		log.Info("clickhouse migration applied", "database", db, "version", m.Version, "name", m.Name, "flavor", flavor.String())
	}
	if flavor == FlavorModern {
		if err := reconcileTTL(ctx, q, db, opts.RetentionDays, log); err != nil {
			return err
		}
	}
	return nil
}

// AppliedMigrations lists the versions recorded in db, ascending.
func AppliedMigrations(ctx context.Context, q Querier, db string) ([]uint32, error) {
	m, err := appliedVersions(ctx, q, db)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

func appliedVersions(ctx context.Context, q Querier, db string) (map[uint32]bool, error) {
	rows, err := q.Query(ctx, "SELECT DISTINCT version FROM "+qualify(db, MigrationsTable))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", MigrationsTable, err)
	}
	defer rows.Close()
	out := map[uint32]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read %s: %w", MigrationsTable, err)
		}
		out[v] = true
	}
	return out, rows.Err()
}

// acquireMigrationLock creates the lock table; whoever creates it holds
// the lock until it drops it. A lock older than stale belongs to a process
// that died mid-migration and is broken.
func acquireMigrationLock(ctx context.Context, q Querier, db string, stale time.Duration, log *slog.Logger) (func(), error) {
	lock := qualify(db, migrationLockTable)
	host, _ := os.Hostname()
	create := fmt.Sprintf("CREATE TABLE %s (owner String) ENGINE = Memory", lock)
	ageSQL := fmt.Sprintf("SELECT toInt64(now()) - toInt64(metadata_modification_time) FROM system.tables WHERE database = %s AND name = %s",
		Quote(db), Quote(migrationLockTable))
	for wait := 20 * time.Millisecond; ; {
		err := q.Exec(ctx, create)
		if err == nil {
			release := func() {
				// Use a fresh context: release must happen even when ctx was cancelled.
				rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := q.Exec(rctx, "DROP TABLE IF EXISTS "+lock); err != nil {
					log.Warn("clickhouse migration lock not released", "database", db, "err", err)
				}
			}
			return release, nil
		}
		if ErrorCode(err) != codeTableAlreadyExists {
			return nil, fmt.Errorf("take migration lock (%s on %s): %w", lock, host, err)
		}
		var age int64
		if err := queryRow(ctx, q, ageSQL, &age); err == nil && time.Duration(age)*time.Second >= stale {
			log.Warn("breaking stale clickhouse migration lock", "database", db, "age_seconds", age)
			if err := q.Exec(ctx, "DROP TABLE IF EXISTS "+lock); err != nil {
				return nil, fmt.Errorf("break stale migration lock: %w", err)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for migration lock %s: %w", lock, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Second)
	}
}

// reconcileTTL sets (or removes) each table's TTL to match retentionDays,
// so a changed setting applies to existing tables.
func reconcileTTL(ctx context.Context, q Querier, db string, days int, log *slog.Logger) error {
	for _, table := range []string{EventsTable, EventsMinuteTable, DevicesTable, RollupTable} {
		var engine string
		err := queryRow(ctx, q, fmt.Sprintf("SELECT engine_full FROM system.tables WHERE database = %s AND name = %s",
			Quote(db), Quote(table)), &engine)
		if err != nil {
			return fmt.Errorf("read %s engine: %w", table, err)
		}
		has := strings.Contains(engine, " TTL ")
		want := fmt.Sprintf("toIntervalDay(%d)", days)
		var alter string
		switch {
		case days > 0 && !(has && strings.Contains(engine, want)):
			alter = "MODIFY " + ttlClause(ttlColumns[table], days)
		case days <= 0 && has:
			alter = "REMOVE TTL"
		default:
			continue
		}
		if err := q.Exec(ctx, "ALTER TABLE "+qualify(db, table)+" "+alter); err != nil {
			return fmt.Errorf("retention of %s: %w", table, err)
		}
		log.Info("clickhouse retention changed", "table", table, "retention_days", days)
	}
	return nil
}

// DropExpiredPartitions enforces retention where TTL is unavailable
// (legacy servers such as 18.16; harmless on modern ones): it drops the
// daily partitions of capstan_events and the rollups older than
// retentionDays before now, and deletes device rows not seen since then.
// The consumer runs it periodically. retentionDays <= 0 does nothing.
// Returns how many partitions were dropped.
func DropExpiredPartitions(ctx context.Context, q Querier, db string, retentionDays int, now time.Time) (int, error) {
	if retentionDays <= 0 {
		return 0, nil
	}
	if db == "" {
		if err := queryRow(ctx, q, "SELECT currentDatabase()", &db); err != nil {
			return 0, fmt.Errorf("current database: %w", err)
		}
	}
	cutoff := now.UTC().AddDate(0, 0, -retentionDays)
	cutoffDay := cutoff.Format("20060102")
	dropped := 0
	for _, table := range []string{EventsTable, EventsMinuteTable, RollupTable} {
		rows, err := q.Query(ctx, fmt.Sprintf(
			"SELECT DISTINCT partition FROM system.parts WHERE database = %s AND table = %s AND active ORDER BY partition",
			Quote(db), Quote(table)))
		if err != nil {
			return dropped, fmt.Errorf("list partitions of %s: %w", table, err)
		}
		var old []string
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return dropped, fmt.Errorf("list partitions of %s: %w", table, err)
			}
			// Partition values are toYYYYMMDD days: 8 digits compare as strings.
			if len(p) == 8 && p < cutoffDay {
				old = append(old, p)
			}
		}
		rows.Close()
		for _, p := range old {
			if err := q.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION %s", qualify(db, table), p)); err != nil {
				return dropped, fmt.Errorf("drop partition %s of %s: %w", p, table, err)
			}
			dropped++
		}
	}
	cond := fmt.Sprintf("last_seen < toDateTime(%d)", cutoff.Unix())
	var n uint64
	if err := queryRow(ctx, q, "SELECT count() FROM "+qualify(db, DevicesTable)+" WHERE "+cond, &n); err != nil {
		return dropped, fmt.Errorf("count expired devices: %w", err)
	}
	if n > 0 {
		if err := q.Exec(ctx, "ALTER TABLE "+qualify(db, DevicesTable)+" DELETE WHERE "+cond); err != nil {
			return dropped, fmt.Errorf("delete expired devices: %w", err)
		}
	}
	return dropped, nil
}
