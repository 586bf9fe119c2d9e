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

	"github.com/capstan-io/capstan/internal/wait"
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

	// Cluster mode (see ClusterMigrations): "" on one server.
	Cluster bool
	// Local is the suffix of the tables that hold rows ("_local" on a
	// cluster, where the plain names are Distributed tables over them).
	Local string
	// On is " ON CLUSTER `name`", or "".
	On string
	// EventsShardingKey keeps a device's events (and its devices row)
	// on one shard, so FINAL and GROUP BY event_id stay per shard.
	EventsShardingKey string
	cluster, db       string
}

// Engine renders a MergeTree-family engine: as given on one server, or
// its Replicated form keyed by the {shard} and {replica} macros.
func (d renderData) Engine(engine, table string, args ...string) string {
	if !d.Cluster {
		if len(args) == 0 {
			return engine
		}
		return engine + "(" + strings.Join(args, ", ") + ")"
	}
	all := append([]string{Quote(replicaPath(d.db, table)), "'{replica}'"}, args...)
	return "Replicated" + engine + "(" + strings.Join(all, ", ") + ")"
}

// Distributed renders the statement creating table as a Distributed
// table over table+Local on every shard (cluster mode), or nothing.
func (d renderData) Distributed(table, shardingKey string) string {
	if !d.Cluster {
		return ""
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %[1]s.%[2]s%[3]s AS %[1]s.%[2]s%[4]s\nENGINE = Distributed(%[5]s, %[6]s, %[7]s, %[8]s);",
		d.DB, table, d.On, d.Local, Quote(d.cluster), Quote(d.db), Quote(table+d.Local), shardingKey)
}

// replicaPath is table's ZooKeeper/Keeper path, one per shard.
func replicaPath(db, table string) string {
	return "/clickhouse/tables/{shard}/" + db + "/" + table
}

// LocalSuffix names the row-holding tables under a cluster's Distributed
// tables: capstan_events_local under capstan_events, and so on.
const LocalSuffix = "_local"

// EventsShardingKey is the Distributed sharding key of capstan_events
// and capstan_devices.
const EventsShardingKey = "cityHash64(app_id, device_id)"

// onCluster renders the ON CLUSTER clause ("" without a cluster).
func onCluster(cluster string) string {
	if cluster == "" {
		return ""
	}
	return " ON CLUSTER " + quoteIdent(cluster)
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
	return ClusterMigrations(flavor, db, "", retentionDays)
}

// ClusterMigrations renders every migration for the ClickHouse cluster
// named cluster (as in the servers' remote_servers; "" = one server, as
// Migrations): ON CLUSTER DDL, Replicated*MergeTree tables named
// <table>_local under ZooKeeper/Keeper paths with the {shard} and
// {replica} macros, and a Distributed table under each table's own name,
// so inserts and every query read and write the whole cluster.
func ClusterMigrations(flavor Flavor, db, cluster string, retentionDays int) ([]Migration, error) {
	if db == "" {
		db = DefaultDatabase
	}
	data := renderData{DB: quoteIdent(db), Running: runningCondition0003, RunningNow: RunningCondition, days: retentionDays,
		cluster: cluster, db: db, EventsShardingKey: EventsShardingKey}
	if cluster != "" {
		data.Cluster, data.Local, data.On = true, LocalSuffix, onCluster(cluster)
	}
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
	migrations, err := ClusterMigrations(flavor, db, opts.Cluster, opts.RetentionDays)
	if err != nil {
		return err
	}
	on := onCluster(opts.Cluster)
	if opts.Cluster != "" && migrated(ctx, q, db, migrations) {
		// Nothing to do: take no cluster-wide lock, which would wait for
		// every host (a consumer must start while a replica is down).
		return reconcile(ctx, q, db, opts, flavor, log)
	}
	if err := q.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(db)+on); err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	stale := opts.LockStaleAfter
	if stale <= 0 {
		stale = 2 * time.Minute
	}
	release, err := acquireMigrationLock(ctx, q, db, opts.Cluster, stale, log)
	if err != nil {
		return err
	}
	defer release()

	engine := "ReplacingMergeTree"
	if opts.Cluster != "" {
		// One replica set across the whole cluster: every host sees every record.
		engine = fmt.Sprintf("ReplicatedReplacingMergeTree(%s, '{shard}-{replica}')", Quote("/clickhouse/tables/all/"+db+"/"+MigrationsTable))
	}
	if err := q.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+qualify(db, MigrationsTable)+on+
		" (version UInt32, name String, applied_at DateTime) ENGINE = "+engine+" ORDER BY version"); err != nil {
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
		log.Info("clickhouse migration applied", "database", db, "version", m.Version, "name", m.Name, "flavor", flavor.String(), "cluster", opts.Cluster)
	}
	return reconcile(ctx, q, db, opts, flavor, log)
}

// reconcile brings TTL retention in line with opts (modern servers).
func reconcile(ctx context.Context, q Querier, db string, opts MigrateOptions, flavor Flavor, log *slog.Logger) error {
	if flavor != FlavorModern {
		return nil
	}
	return reconcileTTL(ctx, q, db, opts.Cluster, opts.RetentionDays, log)
}

// migrated reports whether db records every migration (false on any error).
func migrated(ctx context.Context, q Querier, db string, ms []Migration) bool {
	applied, err := appliedVersions(ctx, q, db)
	if err != nil {
		return false
	}
	for _, m := range ms {
		if !applied[m.Version] {
			return false
		}
	}
	return true
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
//
// On a cluster the lock table is created ON CLUSTER: distributed DDL runs
// in one order on every host, so again exactly one creator succeeds.
func acquireMigrationLock(ctx context.Context, q Querier, db, cluster string, stale time.Duration, log *slog.Logger) (func(), error) {
	lock := qualify(db, migrationLockTable)
	on := onCluster(cluster)
	host, _ := os.Hostname()
	create := fmt.Sprintf("CREATE TABLE %s%s (owner String) ENGINE = Memory", lock, on)
	ageSQL := fmt.Sprintf("SELECT toInt64(now()) - toInt64(metadata_modification_time) FROM system.tables WHERE database = %s AND name = %s",
		Quote(db), Quote(migrationLockTable))
	for pause := 20 * time.Millisecond; ; {
		err := q.Exec(ctx, create)
		if err == nil {
			release := func() {
				// Use a fresh context: release must happen even when ctx was cancelled.
				rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := q.Exec(rctx, "DROP TABLE IF EXISTS "+lock+on); err != nil {
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
			if err := q.Exec(ctx, "DROP TABLE IF EXISTS "+lock+on); err != nil {
				return nil, fmt.Errorf("break stale migration lock: %w", err)
			}
			continue
		}
		if !wait.Sleep(ctx, pause) {
			return nil, fmt.Errorf("wait for migration lock %s: %w", lock, ctx.Err())
		}
		pause = min(pause*2, time.Second)
	}
}

// reconcileTTL sets (or removes) each table's TTL to match retentionDays,
// so a changed setting applies to existing tables.
func reconcileTTL(ctx context.Context, q Querier, db, cluster string, days int, log *slog.Logger) error {
	for _, base := range []string{EventsTable, EventsMinuteTable, DevicesTable, RollupTable} {
		table := localTable(base, cluster)
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
			alter = "MODIFY " + ttlClause(ttlColumns[base], days)
		case days <= 0 && has:
			alter = "REMOVE TTL"
		default:
			continue
		}
		if err := q.Exec(ctx, "ALTER TABLE "+qualify(db, table)+onCluster(cluster)+" "+alter); err != nil {
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
	return DropExpiredPartitionsOn(ctx, q, db, "", retentionDays, now)
}

// DropExpiredPartitionsOn is DropExpiredPartitions for the tables of
// cluster ("" = one server): it lists the partitions of this host's
// local tables and drops them ON CLUSTER (day partitions exist on every
// shard that took events that day; dropping a missing one is harmless).
func DropExpiredPartitionsOn(ctx context.Context, q Querier, db, cluster string, retentionDays int, now time.Time) (int, error) {
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
	on := onCluster(cluster)
	for _, base := range []string{EventsTable, EventsMinuteTable, RollupTable} {
		table := localTable(base, cluster)
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
			if err := q.Exec(ctx, fmt.Sprintf("ALTER TABLE %s%s DROP PARTITION %s", qualify(db, table), on, p)); err != nil {
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
		if err := q.Exec(ctx, "ALTER TABLE "+qualify(db, localTable(DevicesTable, cluster))+on+" DELETE WHERE "+cond); err != nil {
			return dropped, fmt.Errorf("delete expired devices: %w", err)
		}
	}
	return dropped, nil
}

// localTable is the table holding base's rows: base itself on one
// server, base+LocalSuffix under a cluster's Distributed table.
func localTable(base, cluster string) string {
	if cluster == "" {
		return base
	}
	return base + LocalSuffix
}
