package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/capstan-io/capstan/schema/chserver"
)

// ClickHouse is a throwaway clickhouse-server the e2e scenario starts in a
// temporary directory on free loopback ports.
type ClickHouse struct {
	*chserver.Server
}

// StartClickHouse runs clickhouse-server storing under dir
// ($CLICKHOUSE_SERVER_BIN, PATH, then /usr/sbin and /usr/bin).
func StartClickHouse(dir string) (*ClickHouse, error) {
	s, err := chserver.New(dir)
	if err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		return nil, fmt.Errorf("clickhouse: %w (logs in %s/log)", err, dir)
	}
	return &ClickHouse{s}, nil
}

// Query runs a query over the HTTP interface and returns the TSV answer.
func (c *ClickHouse) Query(ctx context.Context, q string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u := fmt.Sprintf("%s/?query=%s", c.HTTPURL(), url.QueryEscape(q))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("clickhouse query: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("clickhouse query: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("clickhouse query %q: %d %s", q, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}
