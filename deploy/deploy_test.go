package deploy

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// repoRoot is the repository root as seen from this package's directory.
const repoRoot = ".."

const installHint = "run .ci/install-deps from the repository root"

// contractMetrics are the metric names the team agreed on, with whether
// each is a histogram (which adds _bucket, _sum and _count series).
var contractMetrics = map[string]bool{
	"capstan_guard_leader":                            false,
	"capstan_guard_decisions_total":                   false,
	"capstan_guard_evaluations_total":                 false,
	"capstan_guard_last_evaluation_timestamp_seconds": false,
	"capstan_rollout_percent":                         false,
	"capstan_rollout_paused":                          false,
	"capstan_release_changes_total":                   false,
	"capstan_stats_publish_resent_total":              false,
	"capstan_http_requests_total":                     false,
	"capstan_http_request_duration_seconds":           true,
	"capstan_update_checks_total":                     false,
	"capstan_release_snapshot_updates_total":          false,
	"capstan_release_overrides":                       false,
	"capstan_release_invalid_entries":                 false,
	"capstan_stats_events_total":                      false,
	"capstan_stats_events_rejected_total":             false,
	"capstan_stats_requests_total":                    false,
	"capstan_stats_request_duration_seconds":          true,
	"capstan_stats_publish_errors_total":              false,
	"capstan_http_open_connections":                   false,
	"capstan_http_refused_connections_total":          false,
	"capstan_consumer_batch_size":                     true,
	"capstan_consumer_insert_duration_seconds":        true,
	"capstan_consumer_inserted_events_total":          false,
	"capstan_consumer_insert_errors_total":            false,
	"capstan_consumer_insert_retries_total":           false,
	"capstan_consumer_redeliveries_total":             false,
	"capstan_consumer_dead_letters_total":             false,
	"capstan_consumer_pending_messages":               false,
	"capstan_consumer_lag_seconds":                    false,
	"capstan_consumer_last_insert_timestamp_seconds":  false,
}

// requireTool finds a command or fails with how to install it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("runs %s; skipped with -short", name)
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (needed to check the deployment files): %s", name, installHint)
	}
	return p
}

// run runs a command with a bounded time and a minimal environment, and
// returns its combined output.
func run(t *testing.T, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LANG=C.UTF-8"}, env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ------------------------------------------------------------ Prometheus

func TestPrometheusConfig(t *testing.T) {
	promtool := requireTool(t, "promtool")
	// rule_files resolve relative to the config, wherever promtool runs.
	for _, f := range []string{"deploy/prometheus/prometheus.yml", "deploy/prometheus/prometheus-allinone.yml"} {
		out, err := run(t, repoRoot, nil, promtool, "check", "config", f)
		if err != nil {
			t.Fatalf("promtool check config %s: %v\n%s", f, err, out)
		}
	}
}

type scrapeConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func readScrapeConfig(t *testing.T, path string) scrapeConfig {
	t.Helper()
	var cfg scrapeConfig
	if err := yaml.Unmarshal(readFile(t, path), &cfg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cfg
}

// No shipped config scrapes a target under two jobs: every series would
// be stored twice and every sum doubled.
func TestPrometheusScrapesEachTargetOnce(t *testing.T) {
	for _, f := range []string{"prometheus/prometheus.yml", "prometheus/prometheus-allinone.yml"} {
		cfg := readScrapeConfig(t, f)
		seen := map[string]string{}
		for _, sc := range cfg.ScrapeConfigs {
			for _, st := range sc.StaticConfigs {
				for _, target := range st.Targets {
					if job, dup := seen[target]; dup {
						t.Errorf("%s: %s is scraped by jobs %s and %s", f, target, job, sc.JobName)
					}
					seen[target] = sc.JobName
				}
			}
		}
		if len(cfg.RuleFiles) != 1 || cfg.RuleFiles[0] != "alerts.yml" {
			t.Errorf("%s: rule_files %v, want [alerts.yml]", f, cfg.RuleFiles)
		}
	}
}

// The all-in-one config scrapes one capstan serve once, as capstan-front,
// on its metrics port; alerts_test.yml shows CapstanNoConsumer stays quiet
// for it.
func TestPrometheusAllInOne(t *testing.T) {
	cfg := readScrapeConfig(t, "prometheus/prometheus-allinone.yml")
	var capstanTargets []string
	for _, sc := range cfg.ScrapeConfigs {
		if !strings.HasPrefix(sc.JobName, "capstan") {
			continue
		}
		if sc.JobName != "capstan-front" {
			t.Errorf("all-in-one config has job %s: scrape the process only as capstan-front", sc.JobName)
		}
		for _, st := range sc.StaticConfigs {
			capstanTargets = append(capstanTargets, st.Targets...)
		}
	}
	if len(capstanTargets) != 1 || !strings.HasSuffix(capstanTargets[0], ":9091") {
		t.Errorf("all-in-one config scrapes %v, want one target on the metrics port 9091", capstanTargets)
	}
	var tests ruleTests
	if err := yaml.Unmarshal(readFile(t, "prometheus/alerts_test.yml"), &tests); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tc := range tests.Tests {
		if strings.Contains(tc.Name, "all-in-one") {
			for _, c := range tc.Cases {
				found = found || (c.AlertName == "CapstanNoConsumer" && len(c.ExpAlerts) == 0)
			}
		}
	}
	if !found {
		t.Error("alerts_test.yml has no case where CapstanNoConsumer stays quiet for a healthy all-in-one")
	}
}

func TestPrometheusRules(t *testing.T) {
	promtool := requireTool(t, "promtool")
	if out, err := run(t, "prometheus", nil, promtool, "check", "rules", "alerts.yml"); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if out, err := run(t, "prometheus", nil, promtool, "test", "rules", "alerts_test.yml"); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name  string `yaml:"name"`
		Cases []struct {
			EvalTime  string           `yaml:"eval_time"`
			AlertName string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// Every alert has a test where it fires and one where it stays quiet, a
// severity and a summary, and uses only the agreed metric names.
func TestAlertsAreTestedBothWays(t *testing.T) {
	var rules ruleFile
	if err := yaml.Unmarshal(readFile(t, "prometheus/alerts.yml"), &rules); err != nil {
		t.Fatal(err)
	}
	var tests ruleTests
	if err := yaml.Unmarshal(readFile(t, "prometheus/alerts_test.yml"), &tests); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, c := range tc.Cases {
			if len(c.ExpAlerts) > 0 {
				fires[c.AlertName] = true
			} else {
				quiet[c.AlertName] = true
			}
		}
	}
	seen := map[string]bool{}
	source := sourceMetrics(t)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if !fires[r.Alert] {
				t.Errorf("alert %s has no test case where it fires (deploy/prometheus/alerts_test.yml)", r.Alert)
			}
			if !quiet[r.Alert] {
				t.Errorf("alert %s has no test case where it stays quiet (deploy/prometheus/alerts_test.yml)", r.Alert)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: needs summary and description annotations", r.Alert)
			}
			checkMetricNames(t, "alert "+r.Alert, r.Expr, source)
		}
	}
	for name := range fires {
		if !seen[name] {
			t.Errorf("alerts_test.yml tests %s, which alerts.yml does not define", name)
		}
	}
	if len(seen) < 7 {
		t.Errorf("only %d alerts defined", len(seen))
	}
}

var (
	sourceMetricsOnce map[string]bool
	sourceMetricsErr  error
)

func sourceMetrics(t *testing.T) map[string]bool {
	t.Helper()
	if sourceMetricsOnce == nil && sourceMetricsErr == nil {
		sourceMetricsOnce, sourceMetricsErr = SourceMetricNames(repoRoot)
	}
	if sourceMetricsErr != nil {
		t.Fatal(sourceMetricsErr)
	}
	return sourceMetricsOnce
}

// checkMetricNames fails for a capstan_* series that is not an agreed
// metric (or histogram series of one), or that no code registers.
func checkMetricNames(t *testing.T, where, expr string, source map[string]bool) {
	t.Helper()
	for _, name := range MetricNames(expr) {
		base := name
		if _, ok := contractMetrics[name]; !ok {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b := strings.TrimSuffix(name, suf); b != name && contractMetrics[b] {
					base = b
				}
			}
		}
		if _, ok := contractMetrics[base]; !ok {
			t.Errorf("%s uses %s, which is not one of Capstan's metrics", where, name)
			continue
		}
		if !source[base] {
			t.Errorf("%s uses %s, but no Capstan code registers it", where, base)
		}
	}
}

// ------------------------------------------------------------ compose

// composeConfig runs `docker-compose config` on the repository's file with
// .env.example as the only source of variables (a developer's .env and
// shell are never read) and returns the resolved file.
func composeConfig(t *testing.T, envFile string) (string, error) {
	t.Helper()
	dc := requireTool(t, "docker-compose")
	abs, err := filepath.Abs(envFile)
	if err != nil {
		t.Fatal(err)
	}
	return run(t, repoRoot, nil, dc, "--env-file", abs, "-f", "docker-compose.yml", "config")
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string                    `yaml:"image"`
	Build       any                       `yaml:"build"`
	Command     []string                  `yaml:"command"`
	Environment map[string]string         `yaml:"environment"`
	Volumes     []string                  `yaml:"volumes"`
	Ports       []any                     `yaml:"ports"`
	DependsOn   map[string]map[string]any `yaml:"depends_on"`
	Healthcheck map[string]any            `yaml:"healthcheck"`
}

func TestCompose(t *testing.T) {
	out, err := composeConfig(t, filepath.Join(repoRoot, ".env.example"))
	if err != nil {
		t.Fatalf("docker-compose config with .env.example: %v\n%s", err, out)
	}
	var cf composeFile
	if err := yaml.Unmarshal([]byte(out), &cf); err != nil {
		t.Fatalf("decode docker-compose config output: %v", err)
	}
	for _, name := range []string{"nats", "clickhouse", "front-1", "front-2", "consumer", "proxy", "prometheus", "grafana"} {
		if _, ok := cf.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	flags := commandFlags(t)
	envs := map[string]bool{}
	for _, f := range flags {
		envs[f.Env] = true
	}
	subEnvs := envsBySubcommand(flags)
	for name, s := range cf.Services {
		if len(s.Healthcheck) == 0 || s.Healthcheck["test"] == nil {
			t.Errorf("service %s has no health check", name)
		}
		if s.Build == nil {
			checkPinnedImage(t, "service "+name, s.Image)
		}
		for dep, cond := range s.DependsOn {
			if _, ok := cf.Services[dep]; !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
			}
			if c, _ := cond["condition"].(string); c == "" {
				t.Errorf("service %s: depends_on %s without a condition", name, dep)
			}
		}
		for k := range s.Environment {
			if !strings.HasPrefix(k, "CAPSTAN_") {
				continue
			}
			if !envs[k] {
				t.Errorf("service %s sets %s, which no capstan flag reads (cmd/capstan)", name, k)
			} else if s.Build != nil && len(s.Command) > 0 && !subEnvs[s.Command[0]][k] {
				t.Errorf("service %s sets %s, which `capstan %s` does not read", name, k, s.Command[0])
			}
		}
		for _, v := range s.Volumes {
			src := strings.SplitN(v, ":", 2)[0]
			if filepath.IsAbs(src) {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			}
		}
	}
	for _, name := range []string{"front-1", "front-2"} {
		s := cf.Services[name]
		if len(s.Command) == 0 || s.Command[0] != "serve" {
			t.Errorf("%s: command %v, want serve", name, s.Command)
		}
		if s.Environment["CAPSTAN_CONSUME"] != "false" {
			t.Errorf("%s: fronts must not consume (CAPSTAN_CONSUME=false)", name)
		}
		if !strings.HasPrefix(s.Environment["CAPSTAN_NATS_URL"], "nats://") {
			t.Errorf("%s: CAPSTAN_NATS_URL = %q", name, s.Environment["CAPSTAN_NATS_URL"])
		}
		if s.Environment["CAPSTAN_ADMIN_TOKEN"] == "" {
			t.Errorf("%s: no admin token", name)
		}
		if c := s.DependsOn["nats"]["condition"]; c != "service_healthy" {
			t.Errorf("%s: must wait for a healthy nats, got %v", name, c)
		}
	}
	cons := cf.Services["consumer"]
	if len(cons.Command) == 0 || cons.Command[0] != "consume" {
		t.Errorf("consumer: command %v, want consume", cons.Command)
	}
	if !strings.HasPrefix(cons.Environment["CAPSTAN_CLICKHOUSE_URL"], "clickhouse://capstan:") {
		t.Errorf("consumer: CAPSTAN_CLICKHOUSE_URL = %q, want the capstan user", cons.Environment["CAPSTAN_CLICKHOUSE_URL"])
	}
	for _, dep := range []string{"nats", "clickhouse"} {
		if c := cons.DependsOn[dep]["condition"]; c != "service_healthy" {
			t.Errorf("consumer: must wait for a healthy %s, got %v", dep, c)
		}
	}
	checkComposeFlags(t, cf, flags)
	checkPrometheusTargets(t, cf)
}

// subcommand is the capstan subcommand a flag belongs to: serve.go,
// serve_flags.go, ... define `capstan serve`'s flags.
func subcommand(f Flag) string {
	sub, _, _ := strings.Cut(strings.TrimSuffix(filepath.Base(f.File), ".go"), "_")
	return sub
}

// envsBySubcommand maps a subcommand to the environment variables it reads.
func envsBySubcommand(flags []Flag) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, f := range flags {
		sub := subcommand(f)
		if out[sub] == nil {
			out[sub] = map[string]bool{}
		}
		out[sub][f.Env] = true
	}
	return out
}

// checkComposeFlags: every --flag in a capstan command exists for that subcommand.
func checkComposeFlags(t *testing.T, cf composeFile, flags []Flag) {
	t.Helper()
	bySub := map[string]map[string]bool{}
	for _, f := range flags {
		sub := subcommand(f)
		if bySub[sub] == nil {
			bySub[sub] = map[string]bool{}
		}
		bySub[sub][f.Name] = true
	}
	for name, s := range cf.Services {
		if s.Build == nil || len(s.Command) == 0 {
			continue
		}
		sub := s.Command[0]
		for _, arg := range s.Command[1:] {
			if !strings.HasPrefix(arg, "-") {
				continue
			}
			flag := strings.SplitN(strings.TrimLeft(arg, "-"), "=", 2)[0]
			if !bySub[sub][flag] {
				t.Errorf("service %s: `capstan %s` has no flag --%s (cmd/capstan/%s.go)", name, sub, flag, sub)
			}
		}
	}
}

// checkPrometheusTargets: every scrape target is a compose service and port
// that serves /metrics.
func checkPrometheusTargets(t *testing.T, cf composeFile) {
	t.Helper()
	cfg := readScrapeConfig(t, "prometheus/prometheus.yml")
	// Both roles serve /metrics on --metrics-listen, never on the device port.
	want := map[string]string{"capstan-front": "9091", "capstan-consumer": "9091"}
	scraped := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		port, ok := want[sc.JobName]
		if !ok {
			continue
		}
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, p, _ := strings.Cut(target, ":")
				if _, ok := cf.Services[host]; !ok {
					t.Errorf("job %s scrapes %s, which is not a compose service", sc.JobName, target)
				}
				if p != port {
					t.Errorf("job %s scrapes %s, want port %s", sc.JobName, target, port)
				}
				scraped[host] = true
			}
		}
	}
	for name, s := range cf.Services {
		if s.Build != nil && !scraped[name] {
			t.Errorf("Prometheus does not scrape Capstan service %s", name)
		}
	}
}

var envRef = regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}`)

// Secrets have no defaults: without an .env the file does not resolve, and
// .env.example names every variable the file uses.
func TestComposeNeedsSecrets(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.env")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := composeConfig(t, empty)
	if err == nil {
		t.Fatalf("docker-compose config resolved without any secrets:\n%s", out)
	}
	example := parseEnvFile(t, filepath.Join(repoRoot, ".env.example"))
	compose := string(readFile(t, filepath.Join(repoRoot, "docker-compose.yml")))
	for _, m := range envRef.FindAllStringSubmatch(compose, -1) {
		if _, ok := example[m[1]]; !ok {
			t.Errorf("docker-compose.yml uses ${%s}, missing from .env.example", m[1])
		}
	}
	for _, secret := range []string{"CAPSTAN_ADMIN_TOKEN", "NATS_PASSWORD", "CLICKHOUSE_CAPSTAN_PASSWORD", "CLICKHOUSE_GRAFANA_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} {
		v, ok := example[secret]
		if !ok {
			t.Errorf(".env.example lacks %s", secret)
			continue
		}
		if !strings.HasPrefix(v, "replace-with-") {
			t.Errorf(".env.example: %s must be a placeholder (replace-with-...), got %q", secret, v)
		}
		if !regexp.MustCompile(`:\?`).MatchString(findRef(compose, secret)) {
			t.Errorf("docker-compose.yml must require %s (${%s:?...}) rather than default it", secret, secret)
		}
	}
}

func findRef(compose, name string) string {
	for _, m := range envRef.FindAllStringSubmatch(compose, -1) {
		if m[1] == name {
			return m[0]
		}
	}
	return ""
}

func parseEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(string(readFile(t, path)), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: bad line %q", path, line)
			continue
		}
		out[k] = v
	}
	return out
}

var imageTag = regexp.MustCompile(`^[a-z0-9./_-]+:[A-Za-z0-9._-]+$`)

func checkPinnedImage(t *testing.T, where, image string) {
	t.Helper()
	if !imageTag.MatchString(image) {
		t.Errorf("%s: image %q must carry an explicit tag", where, image)
		return
	}
	tag := image[strings.LastIndex(image, ":")+1:]
	if tag == "latest" || !regexp.MustCompile(`\d`).MatchString(tag) {
		t.Errorf("%s: image %q must be pinned to a version", where, image)
	}
}

// The users file is well-formed and reads the passwords compose passes in.
func TestClickHouseUsers(t *testing.T) {
	b := readFile(t, "clickhouse/users.d/capstan.xml")
	var doc struct {
		Users struct {
			Users []struct {
				XMLName  xml.Name
				Password struct {
					FromEnv string `xml:"from_env,attr"`
				} `xml:"password"`
				Profile string `xml:"profile"`
			} `xml:",any"`
		} `xml:"users"`
		Profiles struct {
			Profiles []struct {
				XMLName  xml.Name
				Readonly string `xml:"readonly"`
			} `xml:",any"`
		} `xml:"profiles"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("clickhouse users.d/capstan.xml: %v", err)
	}
	readonly := map[string]bool{}
	for _, p := range doc.Profiles.Profiles {
		readonly[p.XMLName.Local] = p.Readonly == "1"
	}
	compose := string(readFile(t, filepath.Join(repoRoot, "docker-compose.yml")))
	users := map[string]string{}
	for _, u := range doc.Users.Users {
		users[u.XMLName.Local] = u.Profile
		if u.Password.FromEnv == "" {
			t.Errorf("user %s: password must come from the environment", u.XMLName.Local)
		} else if !strings.Contains(compose, u.Password.FromEnv+":") {
			t.Errorf("user %s reads %s, which docker-compose.yml does not pass to clickhouse", u.XMLName.Local, u.Password.FromEnv)
		}
	}
	if _, ok := users["capstan"]; !ok {
		t.Error("no capstan user")
	}
	if p, ok := users["grafana"]; !ok || !readonly[p] {
		t.Errorf("grafana user must exist with a readonly=1 profile (profile %q)", p)
	}
}

// ------------------------------------------------------------ image

func TestDockerfile(t *testing.T) {
	df := string(readFile(t, filepath.Join(repoRoot, "Dockerfile")))
	var froms []string
	user := ""
	for _, line := range strings.Split(df, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, f[1])
		case "USER":
			user = f[1]
		}
	}
	if len(froms) < 2 {
		t.Fatalf("Dockerfile must be multi-stage, has %d FROM", len(froms))
	}
	for _, img := range froms {
		checkPinnedImage(t, "Dockerfile FROM", img)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w"`, "./cmd/capstan", "ENTRYPOINT"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("runtime image must run as a non-root user, USER = %q", user)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "cmd", "capstan")); err != nil {
		t.Error(err)
	}
}

// The build context leaves out what must not ship, but keeps every package
// the binary is built from.
func TestDockerignore(t *testing.T) {
	var patterns []string
	for _, line := range strings.Split(string(readFile(t, filepath.Join(repoRoot, ".dockerignore"))), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, strings.TrimPrefix(line, "/"))
		}
	}
	ignored := func(rel string) bool {
		for _, p := range patterns {
			// A pattern matches the path or one of its parent directories.
			for dir := rel; dir != "." && dir != "/"; dir = filepath.Dir(dir) {
				if ok, _ := filepath.Match(p, dir); ok {
					return true
				}
			}
		}
		return false
	}
	for _, must := range []string{".git", ".cache", "data", ".env"} {
		if !ignored(must) {
			t.Errorf(".dockerignore must exclude %s", must)
		}
	}
	for _, keep := range []string{"go.mod", "go.sum", "cmd/capstan/main.go"} {
		if ignored(keep) {
			t.Errorf(".dockerignore excludes %s, which the build needs", keep)
		}
	}
	if testing.Short() {
		return
	}
	out, err := run(t, repoRoot, []string{"GOFLAGS=-mod=readonly", "GOPATH=" + goEnv(t, "GOPATH"), "GOMODCACHE=" + goEnv(t, "GOMODCACHE"), "GOCACHE=" + goEnv(t, "GOCACHE"), "GOPROXY=off"},
		"go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "./cmd/capstan")
	if err != nil {
		t.Fatalf("go list -deps ./cmd/capstan: %v\n%s", err, out)
	}
	root, _ := filepath.Abs(repoRoot)
	for _, dir := range strings.Fields(out) {
		rel, err := filepath.Rel(root, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // module cache
		}
		if ignored(filepath.ToSlash(rel)) {
			t.Errorf(".dockerignore excludes %s, which ./cmd/capstan imports", rel)
		}
	}
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

var (
	flagsOnce []Flag
	flagsErr  error
)

func commandFlags(t *testing.T) []Flag {
	t.Helper()
	if flagsOnce == nil && flagsErr == nil {
		flagsOnce, flagsErr = CommandFlags(repoRoot)
	}
	if flagsErr != nil {
		t.Fatal(flagsErr)
	}
	return flagsOnce
}

// ------------------------------------------------------------ kubernetes

// k8sKinds are the kinds the manifests may use, by apiVersion.
var k8sKinds = map[string]string{
	"Deployment":              "apps/v1",
	"Service":                 "v1",
	"ConfigMap":               "v1",
	"Secret":                  "v1",
	"HorizontalPodAutoscaler": "autoscaling/v2",
	"PodDisruptionBudget":     "policy/v1",
	"Kustomization":           "kustomize.config.k8s.io/v1beta1",
}

// k8sObject is the generic shape of a manifest.
type k8sObject struct {
	APIVersion string         `yaml:"apiVersion"`
	Kind       string         `yaml:"kind"`
	Metadata   map[string]any `yaml:"metadata"`
	Spec       map[string]any `yaml:"spec"`
	Data       map[string]string
	StringData map[string]string `yaml:"stringData"`
	Resources  []string          `yaml:"resources"`
	File       string            `yaml:"-"`
}

// The structures the checks walk (a subset of the Kubernetes API).
type podSpecDoc struct {
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []containerDoc `yaml:"containers"`
				Volumes    []struct {
					Name string `yaml:"name"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type containerDoc struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
			ConfigMapKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	ReadinessProbe *probeDoc `yaml:"readinessProbe"`
	LivenessProbe  *probeDoc `yaml:"livenessProbe"`
	StartupProbe   *probeDoc `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name string `yaml:"name"`
	} `yaml:"volumeMounts"`
}

type probeDoc struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// decodeManifests decodes every YAML document of every file in dir,
// strictly (unknown top-level fields are errors).
func decodeManifests(t *testing.T, dir string) ([]k8sObject, map[string][]*yaml.Node) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no manifests in %s", dir)
	}
	var objs []k8sObject
	nodes := map[string][]*yaml.Node{}
	for _, f := range files {
		dec := yaml.NewDecoder(bytes.NewReader(readFile(t, f)))
		for i := 0; ; i++ {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			var o k8sObject
			if err := n.Decode(&o); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			o.File = filepath.Base(f)
			key := o.Kind + "/" + name(o)
			nodes[key] = append(nodes[key], &n)
			objs = append(objs, o)
		}
	}
	return objs, nodes
}

func name(o k8sObject) string {
	s, _ := o.Metadata["name"].(string)
	return s
}

func TestKubernetesManifests(t *testing.T) {
	objs, nodes := decodeManifests(t, "kubernetes")
	envs := map[string]bool{}
	for _, f := range commandFlags(t) {
		envs[f.Env] = true
	}
	byKind := map[string][]k8sObject{}
	files := map[string]bool{}
	var kustom *k8sObject
	for i, o := range objs {
		files[o.File] = true
		want, ok := k8sKinds[o.Kind]
		if !ok {
			t.Errorf("%s: unexpected kind %q", o.File, o.Kind)
			continue
		}
		if o.APIVersion != want {
			t.Errorf("%s %s: apiVersion %q, want %q", o.File, o.Kind, o.APIVersion, want)
		}
		if o.Kind == "Kustomization" {
			kustom = &objs[i]
			continue
		}
		if name(o) == "" {
			t.Errorf("%s %s: metadata.name missing", o.File, o.Kind)
		}
		if _, ok := o.Metadata["namespace"]; ok {
			t.Errorf("%s %s/%s: manifests are namespace-agnostic; drop metadata.namespace", o.File, o.Kind, name(o))
		}
		if len(nodes[o.Kind+"/"+name(o)]) > 1 {
			t.Errorf("%s/%s is defined twice", o.Kind, name(o))
		}
		byKind[o.Kind] = append(byKind[o.Kind], o)
	}
	if kustom == nil {
		t.Fatal("no kustomization.yaml")
	}
	listed := map[string]bool{}
	for _, r := range kustom.Resources {
		listed[r] = true
		if !files[r] {
			t.Errorf("kustomization lists %s, which does not exist", r)
		}
	}
	for f := range files {
		if f != "kustomization.yaml" && !listed[f] {
			t.Errorf("%s is not listed in kustomization.yaml", f)
		}
	}

	configKeys := map[string]map[string]bool{}
	for _, kind := range []string{"ConfigMap", "Secret"} {
		for _, o := range byKind[kind] {
			keys := map[string]bool{}
			for k := range o.Data {
				keys[k] = true
			}
			for k := range o.StringData {
				keys[k] = true
			}
			for k := range keys {
				if !envs[k] {
					t.Errorf("%s %s has key %s, which is not a Capstan environment variable", kind, name(o), k)
				}
			}
			configKeys[kind+"/"+name(o)] = keys
		}
	}

	deployments := map[string]podSpecDoc{}
	for _, o := range byKind["Deployment"] {
		var d podSpecDoc
		if err := nodes["Deployment/"+name(o)][0].Decode(&d); err != nil {
			t.Fatal(err)
		}
		deployments[name(o)] = d
		checkDeployment(t, name(o), d, envsBySubcommand(commandFlags(t)), configKeys)
	}
	front, ok := deployments["capstan-front"]
	if !ok {
		t.Fatal("no capstan-front Deployment")
	}
	if front.Spec.Replicas == nil || *front.Spec.Replicas < 2 {
		t.Error("capstan-front: want at least 2 replicas")
	}
	if c := front.Spec.Template.Spec.Containers; len(c) == 0 || len(c[0].Args) == 0 || c[0].Args[0] != "serve" {
		t.Error("capstan-front must run `capstan serve`")
	}
	cons, ok := deployments["capstan-consumer"]
	if !ok {
		t.Fatal("no capstan-consumer Deployment")
	}
	if c := cons.Spec.Template.Spec.Containers; len(c) == 0 || len(c[0].Args) == 0 || c[0].Args[0] != "consume" {
		t.Error("capstan-consumer must run `capstan consume`")
	}
	if configKeys["ConfigMap/capstan-config"]["CAPSTAN_CONSUME"] && !strings.EqualFold(configValue(objs, "CAPSTAN_CONSUME"), "false") {
		t.Error("fronts in Kubernetes are stateless: CAPSTAN_CONSUME must be false")
	}

	// Services select pods of a Deployment and target a named port it has.
	for _, o := range byKind["Service"] {
		var s struct {
			Spec struct {
				Selector map[string]string `yaml:"selector"`
				Ports    []struct {
					Port       int `yaml:"port"`
					TargetPort any `yaml:"targetPort"`
				} `yaml:"ports"`
			} `yaml:"spec"`
		}
		if err := nodes["Service/"+name(o)][0].Decode(&s); err != nil {
			t.Fatal(err)
		}
		matched := false
		for dn, d := range deployments {
			if !selects(s.Spec.Selector, d.Spec.Template.Metadata.Labels) {
				continue
			}
			matched = true
			for _, p := range s.Spec.Ports {
				if !hasPort(d.Spec.Template.Spec.Containers, p.TargetPort) {
					t.Errorf("Service %s targets port %v, which Deployment %s does not expose", name(o), p.TargetPort, dn)
				}
			}
		}
		if !matched {
			t.Errorf("Service %s selects no Deployment", name(o))
		}
	}

	// The HPA scales the front on CPU, which needs CPU requests.
	hpas := byKind["HorizontalPodAutoscaler"]
	if len(hpas) == 0 {
		t.Error("no HorizontalPodAutoscaler")
	}
	for _, o := range hpas {
		ref, _ := o.Spec["scaleTargetRef"].(map[string]any)
		target, _ := ref["name"].(string)
		if _, ok := deployments[target]; !ok || ref["kind"] != "Deployment" {
			t.Errorf("HPA %s scales %v, not one of the Deployments", name(o), ref)
		}
		min, _ := o.Spec["minReplicas"].(int)
		max, _ := o.Spec["maxReplicas"].(int)
		if min < 2 || max <= min {
			t.Errorf("HPA %s: minReplicas %d, maxReplicas %d", name(o), min, max)
		}
		metrics, _ := o.Spec["metrics"].([]any)
		if len(metrics) == 0 {
			t.Errorf("HPA %s has no metrics", name(o))
		}
	}
	for _, o := range byKind["PodDisruptionBudget"] {
		sel, _ := o.Spec["selector"].(map[string]any)
		ml := map[string]string{}
		if m, ok := sel["matchLabels"].(map[string]any); ok {
			for k, v := range m {
				ml[k], _ = v.(string)
			}
		}
		matched := false
		for _, d := range deployments {
			matched = matched || selects(ml, d.Spec.Template.Metadata.Labels)
		}
		if !matched {
			t.Errorf("PodDisruptionBudget %s selects no Deployment", name(o))
		}
	}
}

func configValue(objs []k8sObject, key string) string {
	for _, o := range objs {
		if v, ok := o.Data[key]; ok {
			return v
		}
	}
	return ""
}

// serverPorts: the port each role serves on.
var serverPorts = map[string]int{"serve": 8080, "consume": 9091}

// probePorts: where each role's probes ask. A front is alive when its
// metrics port answers (a flood of device connections does not reach it)
// and ready when its device port does.
var probePorts = map[string]map[string]int{
	"serve":   {"readiness": 8080, "liveness": 9091, "startup": 9091},
	"consume": {"readiness": 9091, "liveness": 9091, "startup": 9091},
}

// metricsPort is where Prometheus scrapes every role (--metrics-listen).
const metricsPort = 9091

func checkDeployment(t *testing.T, dn string, d podSpecDoc, envs map[string]map[string]bool, configKeys map[string]map[string]bool) {
	t.Helper()
	if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) || len(d.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("Deployment %s: selector does not match its pod labels", dn)
	}
	ps := d.Spec.Template.Spec
	if ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot {
		t.Errorf("Deployment %s: pods must set runAsNonRoot", dn)
	}
	if len(ps.Containers) == 0 {
		t.Fatalf("Deployment %s: no containers", dn)
	}
	volumes := map[string]bool{}
	for _, v := range ps.Volumes {
		volumes[v.Name] = true
	}
	for _, c := range ps.Containers {
		where := fmt.Sprintf("Deployment %s container %s", dn, c.Name)
		if c.Image == "" {
			t.Errorf("%s: no image", where)
		}
		if len(c.Args) == 0 {
			t.Errorf("%s: no args (serve or consume)", where)
			continue
		}
		port, ok := serverPorts[c.Args[0]]
		if !ok {
			t.Errorf("%s: unknown subcommand %q", where, c.Args[0])
			continue
		}
		portNames := map[string]int{}
		for _, p := range c.Ports {
			portNames[p.Name] = p.ContainerPort
		}
		if !hasPort([]containerDoc{c}, port) {
			t.Errorf("%s: `capstan %s` listens on %d, not exposed", where, c.Args[0], port)
		}
		probes := map[string]*probeDoc{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe}
		wantPath := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}
		for kind, p := range probes {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s probe", where, kind)
				continue
			}
			if p.HTTPGet.Path != wantPath[kind] {
				t.Errorf("%s: %s probe path %q, want %s", where, kind, p.HTTPGet.Path, wantPath[kind])
			}
			got := p.HTTPGet.Port
			if s, ok := got.(string); ok {
				got = portNames[s]
			}
			if want := probePorts[c.Args[0]][kind]; got != want {
				t.Errorf("%s: %s probe port %v, want %d", where, kind, p.HTTPGet.Port, want)
			}
		}
		if sp := c.StartupProbe; sp != nil && sp.HTTPGet != nil {
			if sp.HTTPGet.Path != "/healthz" {
				t.Errorf("%s: startup probe path %q", where, sp.HTTPGet.Path)
			}
			got := sp.HTTPGet.Port
			if s, ok := got.(string); ok {
				got = portNames[s]
			}
			if want := probePorts[c.Args[0]]["startup"]; got != want {
				t.Errorf("%s: startup probe port %v, want %d", where, sp.HTTPGet.Port, want)
			}
		}
		if !hasPort([]containerDoc{c}, metricsPort) {
			t.Errorf("%s: metrics port %d not exposed", where, metricsPort)
		}
		if a := d.Spec.Template.Metadata.Annotations; a["prometheus.io/scrape"] == "true" && a["prometheus.io/port"] != strconv.Itoa(metricsPort) {
			t.Errorf("Deployment %s: prometheus.io/port %q, want the metrics port %d", dn, a["prometheus.io/port"], metricsPort)
		}
		for _, r := range []string{"cpu", "memory"} {
			if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
				t.Errorf("%s: needs %s requests and limits (the HPA works on requests)", where, r)
			}
		}
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "CAPSTAN_") && !envs[c.Args[0]][e.Name] {
				t.Errorf("%s: env %s is not read by `capstan %s`", where, e.Name, c.Args[0])
			}
			if e.ValueFrom != nil {
				if r := e.ValueFrom.SecretKeyRef; r != nil && !configKeys["Secret/"+r.Name][r.Key] {
					t.Errorf("%s: env %s refers to missing Secret key %s/%s", where, e.Name, r.Name, r.Key)
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil && !configKeys["ConfigMap/"+r.Name][r.Key] {
					t.Errorf("%s: env %s refers to missing ConfigMap key %s/%s", where, e.Name, r.Name, r.Key)
				}
			}
		}
		for _, ef := range c.EnvFrom {
			if r := ef.ConfigMapRef; r != nil && configKeys["ConfigMap/"+r.Name] == nil {
				t.Errorf("%s: envFrom missing ConfigMap %s", where, r.Name)
			}
			if r := ef.SecretRef; r != nil && configKeys["Secret/"+r.Name] == nil {
				t.Errorf("%s: envFrom missing Secret %s", where, r.Name)
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				t.Errorf("%s: mounts unknown volume %s", where, m.Name)
			}
		}
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func hasPort(cs []containerDoc, target any) bool {
	for _, c := range cs {
		for _, p := range c.Ports {
			switch v := target.(type) {
			case int:
				if p.ContainerPort == v {
					return true
				}
			case string:
				if p.Name == v {
					return true
				}
			}
		}
	}
	return false
}
