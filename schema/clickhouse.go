package schema

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ClickHouse table names (in the database given by the DSN).
const (
	DefaultDatabase   = "capstan"
	MigrationsTable   = "capstan_schema_migrations"
	EventsTable       = "capstan_events"
	EventsMinuteTable = "capstan_events_minute"
	EventsMinuteView  = "capstan_events_minute_mv"
	// RollupTable is the per-minute rollup with the is_prod, is_emulator
	// and ignored dimensions (migration 0005); reports and dashboards
	// read it. EventsMinuteTable is still fed, for existing queries.
	RollupTable        = "capstan_rollup_minute"
	RollupView         = "capstan_rollup_minute_mv"
	DevicesTable       = "capstan_devices"
	DevicesView        = "capstan_devices_mv"
	migrationLockTable = "capstan_schema_lock"
)

// SQL conditions over an `action` column, shared by the views, the CLI
// report and the dashboards so they all agree on what an action means.
const (
	// FailureCondition: every action ending in _fail (update_fail included),
	// app_crash*, app_anr, and the refusals of a bundle sent without the
	// session key or checksum the device requires.
	FailureCondition = "(endsWith(action, '_fail') OR startsWith(action, 'app_crash') OR action IN ('app_anr', 'session_key_required', 'checksum_required'))"
	// InstallCondition: set = the device installed version_name.
	InstallCondition = "action = 'set'"
	// RollbackCondition: update_fail (notifyAppReady not called in time),
	// reset, and legacy revert.
	RollbackCondition = "action IN ('update_fail', 'reset', 'revert')"
	// CountedFailureCondition is FailureCondition without the events kept
	// but ignored (legacy download_fail); for the tables with an ignored
	// column (capstan_events, RollupTable).
	CountedFailureCondition = "(" + FailureCondition + " AND ignored = 0)"
	// ProductionCondition: devices running a production build on real
	// hardware, what reports and alerts count by default.
	ProductionCondition = "(is_prod = 1 AND is_emulator = 0)"
	// RunningCondition: the event says the device runs version_name (not a
	// failure, not download progress or bookkeeping of another bundle).
	RunningCondition = "NOT (" + FailureCondition + " OR startsWith(action, 'download_') OR action IN ('set_next', 'delete'))"
)

// runningCondition0003 is RunningCondition as migration 0003 applied it:
// an applied migration must render as it ran. Later migrations use the
// current one.
const runningCondition0003 = "NOT ((endsWith(action, '_fail') OR startsWith(action, 'app_crash') OR action = 'app_anr') OR startsWith(action, 'download_') OR action IN ('set_next', 'delete'))"

// IsFailureAction reports whether action is a failure signal (see
// FailureCondition).
func IsFailureAction(action string) bool {
	switch action {
	case "app_anr", "session_key_required", "checksum_required":
		return true
	}
	return strings.HasSuffix(action, "_fail") || strings.HasPrefix(action, "app_crash")
}

// Querier is the part of a ClickHouse connection the schema code needs;
// clickhouse-go's driver.Conn satisfies it.
type Querier interface {
	Exec(ctx context.Context, query string, args ...any) error
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// Flavor is the family of DDL and column types a server gets.
//
// Notes on ClickHouse 18.16 (native protocol revision 54412) with
// clickhouse-go v2.50, all verified by the tests:
//   - Ping, DDL, SELECT and PrepareBatch/Append/Send (String, UInt8,
//     DateTime, Array(String)) work unchanged.
//   - Exec("INSERT ... VALUES (...)") hangs until the read timeout: the old
//     server waits for data blocks from the client. Insert with a batch, or
//     INSERT ... SELECT.
//   - Server-side query parameters ({name:Type}) need revision 54459; use
//     clickhouse-go's client-side binding (? or Named) or rendered literals
//     (Quote). Per-query settings must be int or bool values (old binary
//     settings encoding).
//   - No TTL, DateTime64, Map or (non-experimental) LowCardinality: see
//     FlavorLegacy.
type Flavor int

const (
	// FlavorLegacy is for servers older than 22.3 (Debian's 18.16): String
	// instead of LowCardinality, DateTime (seconds) instead of DateTime64,
	// metadata as parallel key/value arrays, no TTL (see
	// DropExpiredPartitions).
	FlavorLegacy Flavor = iota + 1
	// FlavorModern is for 22.3 and newer (production runs 24.x-26.x):
	// LowCardinality(String), DateTime64(3, 'UTC'), Map(String, String), TTL.
	FlavorModern
)

// modernSince is the first version given FlavorModern: the first LTS where
// Map(String, String) is no longer experimental (21.8+) and DateTime64,
// LowCardinality and TTL are long stable.
var modernSince = [2]int{22, 3}

func (f Flavor) String() string {
	switch f {
	case FlavorLegacy:
		return "legacy"
	case FlavorModern:
		return "modern"
	}
	return fmt.Sprintf("Flavor(%d)", int(f))
}

// FlavorOf picks the flavour for a server version string such as
// "18.16.1" or "26.5.1.1".
func FlavorOf(version string) (Flavor, error) {
	parts := strings.SplitN(strings.TrimSpace(version), ".", 3)
	if len(parts) < 2 {
		return 0, fmt.Errorf("unrecognised ClickHouse version %q", version)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unrecognised ClickHouse version %q", version)
	}
	if major > modernSince[0] || major == modernSince[0] && minor >= modernSince[1] {
		return FlavorModern, nil
	}
	return FlavorLegacy, nil
}

// DetectFlavor asks the server for its version.
func DetectFlavor(ctx context.Context, q Querier) (Flavor, error) {
	var v string
	if err := queryRow(ctx, q, "SELECT version()", &v); err != nil {
		return 0, fmt.Errorf("clickhouse version: %w", err)
	}
	return FlavorOf(v)
}

// OpenClickHouse connects to a clickhouse://user:pass@host:9000/db URL with
// the native protocol and pings it. The database is created when missing
// so that the first consumer can migrate it. Timeouts not given in the URL
// (dial_timeout, read_timeout) default to 10s and 5m.
func OpenClickHouse(ctx context.Context, dsn string) (driver.Conn, error) {
	return OpenClickHouseCluster(ctx, dsn, "")
}

// OpenClickHouseCluster is OpenClickHouse for the servers of the named
// cluster ("" = one server): the URL may list several of its hosts
// (host1:9000,host2:9000; the driver tries them in order), the cluster
// must be in the server's remote_servers, and inserts into Distributed
// tables are synchronous (insert_distributed_sync=1): an insert returns
// once every row is on a replica of its shard, not in the receiving
// host's queue, so acknowledging it to JetStream cannot lose it. Block
// deduplication is off (insert_deduplicate=0): a block deduplicated in
// capstan_events_local would not reach the views (see the consumer).
func OpenClickHouseCluster(ctx context.Context, dsn, cluster string) (driver.Conn, error) {
	conn, err := openClickHouse(ctx, dsn, cluster)
	if err != nil || cluster == "" {
		return conn, err
	}
	var n uint64
	if err := queryRow(ctx, conn, "SELECT count() FROM system.clusters WHERE cluster = "+Quote(cluster), &n); err != nil {
		conn.Close()
		return nil, fmt.Errorf("read clickhouse clusters: %w", err)
	}
	if n == 0 {
		conn.Close()
		return nil, fmt.Errorf("clickhouse cluster %q is not in the server's remote_servers", cluster)
	}
	return conn, nil
}

func openClickHouse(ctx context.Context, dsn, cluster string) (driver.Conn, error) {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("clickhouse url: %w", err)
	}
	if cluster != "" {
		if opts.Settings == nil {
			opts.Settings = clickhouse.Settings{}
		}
		// Ints: 18.16's settings encoding takes no strings for numbers.
		opts.Settings["insert_distributed_sync"] = 1
		// A retried batch must reach the materialized views even where
		// its block already reached the replicated events table.
		opts.Settings["insert_deduplicate"] = 0
	}
	u, _ := url.Parse(dsn)
	if u == nil || !u.Query().Has("dial_timeout") {
		opts.DialTimeout = 10 * time.Second
	}
	if u == nil || !u.Query().Has("read_timeout") {
		opts.ReadTimeout = 5 * time.Minute
	}
	conn, err := openPing(ctx, opts)
	if ErrorCode(err) == codeUnknownDatabase && opts.Auth.Database != "" {
		db := opts.Auth.Database
		admin := *opts
		admin.Auth.Database = ""
		a, aerr := openPing(ctx, &admin)
		if aerr != nil {
			return nil, aerr
		}
		aerr = a.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(db))
		a.Close()
		if aerr != nil {
			return nil, fmt.Errorf("create database %s: %w", db, aerr)
		}
		conn, err = openPing(ctx, opts)
	}
	return conn, err
}

func openPing(ctx context.Context, opts *clickhouse.Options) (driver.Conn, error) {
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse %s: %w", strings.Join(opts.Addr, ","), err)
	}
	return conn, nil
}

// ClickHouse exception codes Capstan reacts to.
const (
	codeUnknownTable       = 60
	codeTableAlreadyExists = 57
	codeUnknownDatabase    = 81
)

var codeRe = regexp.MustCompile(`[Cc]ode: (\d+)`)

// ErrorCode extracts the ClickHouse exception code from err (0 if none),
// from a clickhouse-go exception or from the message text.
func ErrorCode(err error) int {
	if err == nil {
		return 0
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return int(ex.Code)
	}
	if m := codeRe.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// MigrateOptions configures Migrate.
type MigrateOptions struct {
	// Database to create and migrate; "" = the connection's database.
	Database string
	// RetentionDays keeps raw events, rollups and device rows this many
	// days (0 = forever). Modern servers enforce it with TTL (changed in
	// place on the next Migrate); legacy servers need DropExpiredPartitions.
	RetentionDays int
	// LockStaleAfter breaks a migration lock left by a process that died
	// (default 2 minutes).
	LockStaleAfter time.Duration
	// Cluster is the ClickHouse cluster (remote_servers name) to migrate
	// with ON CLUSTER DDL and replicated tables (see ClusterMigrations);
	// "" = one server.
	Cluster string
	Logger  *slog.Logger
}

// eventColumnsModern is the modern insert column list.
var eventColumnsModern = []string{
	"event_id", "received_at", "client_time", "app_id", "device_id", "platform", "action",
	"version_name", "file_name", "old_version_name", "version_build", "version_code",
	"version_os", "plugin_version", "custom_id", "channel", "install_source", "key_id",
	"is_emulator", "is_prod", "reported_version_name", "ignored", "metadata",
}

// EventColumns is the explicit column list of capstan_events inserts, in
// EventValues order.
func EventColumns(flavor Flavor) []string {
	cols := slices.Clone(eventColumnsModern)
	if flavor == FlavorLegacy {
		cols = append(cols[:len(cols)-1], "metadata_keys", "metadata_values")
	}
	return cols
}

// InsertSQL is the batch insert statement for capstan_events in database db
// ("" = the connection's database), for use with PrepareBatch + AppendEvent.
func InsertSQL(db string, flavor Flavor) string {
	return "INSERT INTO " + qualify(db, EventsTable) + " (" + strings.Join(EventColumns(flavor), ", ") + ")"
}

// EventValues are e's column values in EventColumns order, typed for
// clickhouse-go.
func EventValues(e *Event, flavor Flavor) []any {
	received := time.UnixMilli(e.ReceivedMs).UTC()
	client := time.UnixMilli(e.ClientMs).UTC()
	if flavor == FlavorLegacy {
		// DateTime has whole seconds.
		received, client = received.Truncate(time.Second), client.Truncate(time.Second)
	}
	vals := []any{
		e.ID, received, client, e.AppID, e.DeviceID, e.Platform, e.Action,
		e.VersionName, e.FileName, e.OldVersionName, e.VersionBuild, e.VersionCode,
		e.VersionOS, e.PluginVersion, e.CustomID, e.Channel, e.InstallSource, e.KeyID,
		b2u(e.IsEmulator), b2u(e.IsProd), e.ReportedVersion, b2u(e.Ignored),
	}
	if flavor == FlavorLegacy {
		keys := make([]string, 0, len(e.Metadata))
		for k := range e.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		values := make([]string, len(keys))
		for i, k := range keys {
			values[i] = e.Metadata[k]
		}
		return append(vals, keys, values)
	}
	m := e.Metadata
	if m == nil {
		m = map[string]string{}
	}
	return append(vals, m)
}

// AppendEvent appends e as one row to a batch prepared with InsertSQL.
func AppendEvent(b driver.Batch, e *Event, flavor Flavor) error {
	if err := b.Append(EventValues(e, flavor)...); err != nil {
		return fmt.Errorf("append event %s: %w", e.ID, err)
	}
	return nil
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// quoteIdent quotes a database or table name.
func quoteIdent(name string) string {
	return "`" + strings.ReplaceAll(strings.ReplaceAll(name, `\`, `\\`), "`", "\\`") + "`"
}

// qualify is db.table, or just table when db is "".
func qualify(db, table string) string {
	if db == "" {
		return table
	}
	return quoteIdent(db) + "." + table
}

// Quote renders s as a ClickHouse string literal (both flavours).
func Quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "\x00", `\0`)
	return "'" + r.Replace(s) + "'"
}

// queryRow scans the first row of query into dest (a driver.Conn's
// QueryRow is not part of Querier so chDB can stand in for a server).
func queryRow(ctx context.Context, q Querier, query string, dest ...any) error {
	rows, err := q.Query(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return errors.New("no rows")
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Err()
}
