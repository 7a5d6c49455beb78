package main

import (
	"flag"
	"testing"
	"time"
)

// Every flag of `flow-ci archive` is in a table of docs/archive.md, and the tables name
// no flag it lacks.
func TestArchiveFlagsAreDocumented(t *testing.T) {
	documented := documentedFlags(t, "../../docs/archive.md")
	var chunk int64
	newArchiveFlagSet(&archiveOptions{}, &chunk).VisitAll(func(f *flag.Flag) {
		if !documented[f.Name] {
			t.Errorf("--%s is not in docs/archive.md's flags tables", f.Name)
		}
		delete(documented, f.Name)
	})
	for name := range documented {
		t.Errorf("docs/archive.md documents --%s, which the archive does not have", name)
	}
}

func TestArchiveFlags(t *testing.T) {
	cases := []struct {
		args []string
		ok   bool
		want func(*archiveOptions) bool
	}{
		{args: []string{"--namespace=x"}, ok: true, want: func(o *archiveOptions) bool {
			return o.store == "embedded" && o.limits.MaxLine == 256<<10 && o.limits.MaxLog == 256<<20 &&
				o.limits.Chunk == 256<<10 && o.limits.Flush == time.Second && o.hold == 5*time.Minute &&
				o.standby.Window == 30*time.Second && o.standby.Budget == 128<<20
		}},
		{args: []string{"--namespace=x", "--standby-window=0", "--standby-bytes=0"}, ok: true, want: func(o *archiveOptions) bool {
			return o.standby.Window == 0 // no standby: its budget does not matter
		}},
		{args: []string{"--namespace=x", "--standby-bytes=0"}},
		{args: []string{"--namespace=x", "--standby-window=-1s"}},
		{args: []string{"--namespace=x", "--max-line-bytes=1Ki", "--chunk-bytes=1"}, ok: true, want: func(o *archiveOptions) bool {
			return o.limits.MaxLine == 1024 && o.limits.Chunk == 4<<10 // at least 4 KiB
		}},
		{args: []string{"--namespace=x", "--store=postgres", "--postgres-url-file=/f", "--s3-endpoint=https://s3.example:9000"}, ok: true,
			want: func(o *archiveOptions) bool { return o.s3.Endpoint == "s3.example:9000" }},
		{args: []string{"--namespace=x", "--store=postgres"}},
		{args: []string{"--namespace=x", "--store=etcd"}},
		{args: []string{}},
		{args: []string{"--namespace=x", "--tls-cert-file=/c"}},
		{args: []string{"--namespace=x", "--max-log-bytes=0"}},
		{args: []string{"--namespace=x", "--max-line-bytes=lots"}},
	}
	for _, tc := range cases {
		o, _, err := parseArchiveFlags(tc.args)
		if (err == nil) != tc.ok {
			t.Errorf("%v: error %v, want ok=%v", tc.args, err, tc.ok)
			continue
		}
		if tc.ok && !tc.want(o) {
			t.Errorf("%v: options %+v", tc.args, o)
		}
	}
}

func TestRedactURL(t *testing.T) {
	cases := map[string]string{
		"failed to connect to postgres://flow:s3cret@db:5432/archive": "failed to connect to postgres://flow:xxxxx@db:5432/archive",
		"dial tcp db:5432: refused":                                   "dial tcp db:5432: refused",
		"postgres://flow@db/archive down":                             "postgres://flow@db/archive down",
	}
	for in, want := range cases {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
