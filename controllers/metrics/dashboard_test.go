package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestDashboardSeries: the Grafana dashboard in config/grafana and the metrics table of
// docs/operating.md name only series the operator exports, and the table names them all.
func TestDashboardSeries(t *testing.T) {
	exported := map[string]bool{"flowci_pipelineruns": true}
	ch := make(chan *prometheus.Desc, 32)
	for _, c := range collectors {
		c.Describe(ch)
	}
	close(ch)
	name := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range ch {
		exported[name.FindStringSubmatch(d.String())[1]] = true
	}
	series := regexp.MustCompile(`flowci_[a-z_]+`)
	documented := map[string]bool{}
	for _, file := range []string{"../../config/grafana/flow-ci-dashboard.json", "../../docs/operating.md"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, s := range series.FindAllString(string(raw), -1) {
			base := s
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				base = strings.TrimSuffix(base, suffix)
			}
			if !exported[base] {
				t.Errorf("%s names %s, which the operator does not export", file, s)
			}
			if strings.HasSuffix(file, ".md") {
				documented[base] = true
			}
			seen++
		}
		if seen == 0 {
			t.Errorf("%s names no flowci series", file)
		}
	}
	for name := range exported {
		if !documented[name] {
			t.Errorf("docs/operating.md does not document %s", name)
		}
	}
}
