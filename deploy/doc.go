// Package deploy holds what runs Capstan outside the binary (docker-compose
// stack, Prometheus rules, Grafana dashboards, Kubernetes manifests) and the
// checks that keep those files valid and in step with the code.
//
// The Go code here reads dashboards the way Grafana and its ClickHouse
// plugin do, so tests can run every dashboard query against real engines.
package deploy
