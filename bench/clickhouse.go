package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ClickHouse is a throwaway clickhouse-server the e2e scenario starts in a
// temporary directory on free loopback ports.
type ClickHouse struct {
	Proc     *Proc
	TCPPort  int
	HTTPPort int
	Dir      string
}

// ClickHouseBinary finds the server binary: $CLICKHOUSE_SERVER_BIN, PATH,
// then /usr/sbin and /usr/bin (as schema/chtest does).
func ClickHouseBinary() (string, error) {
	if p := os.Getenv("CLICKHOUSE_SERVER_BIN"); p != "" {
		return p, nil
	}
	for _, p := range []string{"clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("clickhouse-server not found; install the clickhouse-server package (make deps)")
}

// StartClickHouse runs clickhouse-server storing under dir.
func StartClickHouse(ctx context.Context, dir string) (*ClickHouse, error) {
	bin, err := ClickHouseBinary()
	if err != nil {
		return nil, err
	}
	tcp, err := FreePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"data", "tmp", "log", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("clickhouse dir: %w", err)
		}
	}
	config := fmt.Sprintf(`<yandex>
  <logger><level>warning</level><log>%[1]s/log/server.log</log><errorlog>%[1]s/log/error.log</errorlog><size>50M</size><count>2</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>%[2]d</tcp_port>
  <http_port>%[3]d</http_port>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/tmp/</tmp_path>
  <user_files_path>%[1]s/user_files/</user_files_path>
  <format_schema_path>%[1]s/format_schemas/</format_schema_path>
  <users_config>%[1]s/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <mlock_executable>false</mlock_executable>
</yandex>
`, dir, tcp, httpPort)
	users := `<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), []byte(config), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(users), 0o644); err != nil {
		return nil, err
	}
	p, err := StartProc("clickhouse-server", bin, []string{"--config-file=" + filepath.Join(dir, "config.xml")}, nil, filepath.Join(dir, "log", "stdout.log"))
	if err != nil {
		return nil, err
	}
	ch := &ClickHouse{Proc: p, TCPPort: tcp, HTTPPort: httpPort, Dir: dir}
	if err := WaitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/ping", httpPort), p, 60*time.Second); err != nil {
		p.Stop(5 * time.Second)
		return nil, fmt.Errorf("clickhouse: %w (logs in %s/log)", err, dir)
	}
	return ch, nil
}

// DSN is the clickhouse-go URL of database db.
func (c *ClickHouse) DSN(db string) string {
	return fmt.Sprintf("clickhouse://default@127.0.0.1:%d/%s", c.TCPPort, db)
}

// Query runs a query over the HTTP interface and returns the TSV answer.
func (c *ClickHouse) Query(ctx context.Context, q string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u := fmt.Sprintf("http://127.0.0.1:%d/?query=%s", c.HTTPPort, url.QueryEscape(q))
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

// Stop shuts the server down.
func (c *ClickHouse) Stop() error { return c.Proc.Stop(30 * time.Second) }
