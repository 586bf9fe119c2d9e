package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/capstan-io/capstan/schema"
)

// ClickHouseConnector opens the ClickHouse at dsn and applies Capstan's
// migrations (safe from several processes at once), keeping raw events
// retentionDays days (0 = forever). Use it with Start.
func ClickHouseConnector(dsn string, retentionDays int, log *slog.Logger) Connector {
	return ClickHouseClusterConnector(dsn, "", retentionDays, log)
}

// ClickHouseClusterConnector is ClickHouseConnector for the ClickHouse
// cluster named cluster ("" = one server): ON CLUSTER migrations with
// replicated and Distributed tables, synchronous Distributed inserts
// (see schema.OpenClickHouseCluster). Give the Config the same Cluster.
func ClickHouseClusterConnector(dsn, cluster string, retentionDays int, log *slog.Logger) Connector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context) (driver.Conn, error) {
		conn, err := schema.OpenClickHouseCluster(ctx, dsn, cluster)
		if err != nil {
			return nil, err
		}
		if err := schema.Migrate(ctx, conn, schema.MigrateOptions{RetentionDays: retentionDays, Cluster: cluster, Logger: log}); err != nil {
			conn.Close()
			return nil, fmt.Errorf("migrate clickhouse: %w", err)
		}
		log.Info("clickhouse ready", "dsn", redactDSN(dsn), "cluster", cluster)
		return conn, nil
	}
}

// redactDSN hides the password for logs.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparseable clickhouse url)"
	}
	return u.Redacted()
}
