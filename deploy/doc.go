// Package deploy has no code. Its folder ships what runs beside the server: the Grafana
// dashboard (grafana/hotline.json), the Prometheus alerting and recording rules with their
// unit tests (prometheus/rules.yml, prometheus/rules_test.yml), a sample Prometheus
// configuration (prometheus/prometheus.yml), the list of metric names they may use
// (metrics.txt) and the on-call runbook (README.md). The package's tests check them all.
package deploy
